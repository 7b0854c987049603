"""FMFL-P07: PII values from one client's prompts reappearing in another client's synthetic data.

Presidio (the analyzer FMFL-P01 built, shared through the scan cache) finds PII in every client's
prompts; each value is normalised (NFKC, case-folded, only letters and digits kept, so `(555)
010-4477` and `555.010.4477` compare equal) and stored as a keyed BLAKE2b hash with a fresh per-scan
key: raw values are never kept nor reported. Each client's synthetic data is then scanned the same
way; a value that another client (and not the receiving client itself) put in its prompts is a
propagation. Findings are per receiving client and source client, counting distinct values.

Both passes run as shards on the scan's executor (`engine.executors`). The hash key is drawn once
per scan, in the scan's process, and travels in the shard tasks' settings, so every shard hashes
alike. A prompt shard returns the set of hashes it saw (`_SenderPart`); the union over a client's
shards is what that client put in its prompts. The resulting table (hash -> sending clients) is the
receivers' shared read-only input; a synthetic-data shard returns, per sending client, the
propagated hashes in order of first appearance with the entity type of that appearance, and the
first evidence items (`_ReceiverPart`). Partials are folded in file order, so the report does not
depend on where files were cut.
"""

from __future__ import annotations

import hashlib
import os
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pydantic import Field

from fmfl_audit.checkers.base import CheckContext, Checker, CheckerParams, CheckOutput, clients_with
from fmfl_audit.checkers.privacy._evidence import scrub, warm_scrubber
from fmfl_audit.checkers.privacy._presidio import (
    PresidioSettings,
    RecognizerSpec,
    shared_analyzer,
)
from fmfl_audit.engine.executors import ShardEnv, ShardTask
from fmfl_audit.inputs.records import Record
from fmfl_audit.manifest.loader import Deployment
from fmfl_audit.models import Area, Confidence, Evidence, FindingDraft, Metric


def normalise_value(value: str) -> str:
    """The comparable form of a PII value: NFKC, case-folded, letters and digits only."""
    return "".join(ch for ch in unicodedata.normalize("NFKC", value).casefold() if ch.isalnum())


class PropagationParams(CheckerParams):
    """Settings of FMFL-P07."""

    min_score: float = Field(default=0.4, ge=0, le=1, description="Presidio score threshold.")
    entities: tuple[str, ...] | None = None
    exclude_entities: tuple[str, ...] = ("URL", "DATE_TIME")
    min_value_length: int = Field(
        default=4, ge=1, description="Normalised values shorter than this are ignored."
    )
    min_values: int = Field(
        default=1, ge=1, description="Distinct propagated values from one client that fire."
    )
    recognizers: tuple[RecognizerSpec, ...] = ()
    max_examples: int = Field(default=3, ge=0, le=20)
    batch_size: int = Field(default=256, ge=1)
    language: str = "en"


@dataclass(frozen=True)
class _Settings:
    """What both passes share: how texts are analysed and values hashed."""

    presidio: PresidioSettings
    min_value_length: int
    key: bytes = field(repr=False)
    """The scan's hash key (`os.urandom`, drawn once per scan in the scan's process)."""

    def hash(self, value: str) -> bytes | None:
        """Keyed hash of a value's normalised form; None when that form is too short."""
        norm = normalise_value(value)
        if len(norm) < self.min_value_length:
            return None
        return hashlib.blake2b(norm.encode("utf-8"), key=self.key, digest_size=16).digest()

    def analyze(
        self, batches: Iterator[list[Record]], env: ShardEnv
    ) -> Iterator[tuple[Record, str, list[Any]]]:
        """(record, text, Presidio results) of every record, in order."""
        for batch in batches:
            texts = [r.text or "" for r in batch]
            found = self.presidio.analyze(env.cache, texts)
            yield from zip(batch, texts, found, strict=True)


@dataclass
class _SenderPart:
    """What one shard of a client's prompts holds: its PII hashes and how many values it had."""

    hashes: set[bytes] = field(default_factory=set)
    values: int = 0

    def merge(self, other: _SenderPart) -> None:
        """Add the part of the next shard."""
        self.hashes |= other.hashes
        self.values += other.values


@dataclass(frozen=True)
class _SenderTask(ShardTask):
    """P07's first map step: the hashed PII values of one shard of a client's prompts."""

    settings: _Settings

    def map(self, batches: Iterator[list[Record]], env: ShardEnv) -> _SenderPart:
        part = _SenderPart()
        for _rec, text, found in self.settings.analyze(batches, env):
            for r in found:
                h = self.settings.hash(text[r.start : r.end])
                if h is not None:
                    part.hashes.add(h)
                    part.values += 1
        return part


@dataclass
class _ReceiverPart:
    """Propagated values found in one client's synthetic data (or one shard of it)."""

    scanned: int = 0
    values: dict[str, dict[bytes, str]] = field(default_factory=lambda: defaultdict(dict))
    """Sending client -> its hashes found here, in order of first appearance, each with the
    entity type of that first appearance."""
    examples: dict[str, list[Evidence]] = field(default_factory=lambda: defaultdict(list))

    def merge(self, other: _ReceiverPart, max_examples: int) -> None:
        """Add the part of the next shard (file order: first appearances stay first)."""
        self.scanned += other.scanned
        for owner, hashes in other.values.items():
            mine = self.values[owner]
            for h, entity in hashes.items():
                mine.setdefault(h, entity)
        for owner, ex in other.examples.items():
            have = self.examples[owner]
            for e in ex:
                if len(have) >= max_examples:
                    break
                if all(x.location != e.location for x in have):
                    have.append(e)


@dataclass(frozen=True)
class _ReceiverTask(ShardTask):
    """P07's second map step: one shard of a client's synthetic data against the senders' hashes
    (`env.shared`: hash -> ids of the clients whose prompts held it)."""

    settings: _Settings
    client_id: str
    max_examples: int

    def map(self, batches: Iterator[list[Record]], env: ShardEnv) -> _ReceiverPart:
        seen: dict[bytes, frozenset[str]] = env.shared
        part = _ReceiverPart()
        for rec, text, found in self.settings.analyze(batches, env):
            part.scanned += 1
            spans = [(r.start, r.end, r.entity_type) for r in found]
            for r in found:
                h = self.settings.hash(text[r.start : r.end])
                owners = seen.get(h, frozenset()) if h is not None else frozenset()
                if h is None or self.client_id in owners:
                    continue
                for owner in owners:
                    part.values[owner].setdefault(h, r.entity_type)
                    ex = part.examples[owner]
                    if len(ex) < self.max_examples and all(e.location != rec.location for e in ex):
                        ex.append(
                            Evidence(location=rec.location, excerpt=scrub(env.cache, text, spans))
                        )
        return part


class PropagationChecker(Checker):
    """Ensure PII from one client's prompts does not reappear in other clients' synthetic data."""

    id: ClassVar[str] = "FMFL-P07"
    title: ClassVar[str] = (
        "Ensure PII from one client's prompts does not reappear for other clients"
    )
    area: ClassVar[Area] = Area.PRIVACY
    threat: ClassVar[str] = "bottom-up propagation"
    inputs: ClassVar[tuple[str, ...]] = ("clients[].prompts", "clients[].synthetic_data")
    Params = PropagationParams

    def missing_inputs(self, deployment: Deployment) -> list[str]:
        missing = []
        if not clients_with(deployment, "prompts"):
            missing.append("clients[].prompts")
        if not clients_with(deployment, "synthetic_data"):
            missing.append("clients[].synthetic_data")
        return missing

    def run(self, ctx: CheckContext, params: Any) -> CheckOutput:
        assert isinstance(params, PropagationParams)
        warm_scrubber(ctx.cache, ctx.executor)
        analyzer = shared_analyzer(
            ctx.cache, language=params.language, recognizers=params.recognizers
        )
        out = CheckOutput(notes=[analyzer.note])
        settings = _Settings(
            presidio=PresidioSettings(
                language=params.language,
                recognizers=params.recognizers,
                min_score=params.min_score,
                entities=params.entities,
                exclude=params.exclude_entities,
                batch_size=params.batch_size,
            ),
            min_value_length=params.min_value_length,
            key=os.urandom(32),  # once per scan, here: every shard hashes with it
        )
        senders = clients_with(ctx.deployment, "prompts")
        receivers = clients_with(ctx.deployment, "synthetic_data")
        ctx.progress.set_total(len(senders) + len(receivers))
        owners: dict[bytes, set[str]] = defaultdict(set)
        sender_task = _SenderTask(settings)
        for client in senders:
            sent = _SenderPart()
            for part in ctx.map_shards(client.prompts, sender_task, batch_size=params.batch_size):
                sent.merge(part)
            for h in sent.hashes:
                owners[h].add(client.id)
            out.metrics.setdefault(client.subject, {})["prompt_pii_values"] = sent.values
            ctx.progress.advance()
        seen = {h: frozenset(ids) for h, ids in owners.items()}
        for client in receivers:
            self._probe(ctx, params, settings, seen, client, out)
            ctx.progress.advance()
        return out

    @staticmethod
    def _probe(
        ctx: CheckContext,
        params: PropagationParams,
        settings: _Settings,
        seen: dict[bytes, frozenset[str]],
        client: Any,
        out: CheckOutput,
    ) -> None:
        task = _ReceiverTask(settings, client_id=client.id, max_examples=params.max_examples)
        got = _ReceiverPart()
        for part in ctx.map_shards(
            client.synthetic_data, task, batch_size=params.batch_size, shared=seen
        ):
            got.merge(part, params.max_examples)
        values = {o: v for o, v in got.values.items() if v}
        figures = out.metrics.setdefault(client.subject, {})
        figures["synthetic_records_scanned"] = got.scanned
        figures["propagated_values_from"] = {o: len(v) for o, v in sorted(values.items())}
        for owner, vals in sorted(values.items()):
            n = len(vals)
            if n < params.min_values:
                continue
            by_entity = Counter(vals.values())
            kinds = ", ".join(f"{e} {c}" for e, c in sorted(by_entity.items()))
            out.findings.append(
                FindingDraft(
                    subject=client.subject,
                    key=f"from:{owner}",
                    confidence=Confidence.HIGH,
                    message=(
                        f"{n} distinct PII value(s) from client {owner}'s prompts reappear in the "
                        f"synthetic data delivered to client {client.id} ({kinds})"
                    ),
                    metric=Metric(name="propagated_values", value=n, threshold=params.min_values),
                    evidence=tuple(got.examples[owner]),
                )
            )
