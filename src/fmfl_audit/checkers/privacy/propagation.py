"""FMFL-P07: PII values from one client's prompts reappearing in another client's synthetic data.

Presidio (the analyzer FMFL-P01 built, shared through the scan cache) finds PII in every client's
prompts; each value is normalised (NFKC, case-folded, only letters and digits kept, so `(555)
010-4477` and `555.010.4477` compare equal) and stored as a keyed BLAKE2b hash with a fresh per-scan
key: raw values are never kept nor reported. Each client's synthetic data is then scanned the same
way; a value that another client (and not the receiving client itself) put in its prompts is a
propagation. Findings are per receiving client and source client, counting distinct values.
"""

from __future__ import annotations

import hashlib
import os
import unicodedata
from collections import Counter, defaultdict
from typing import Any, ClassVar

from pydantic import Field

from fmfl_audit.checkers.base import CheckContext, Checker, CheckerParams, CheckOutput, clients_with
from fmfl_audit.checkers.privacy._evidence import scrub
from fmfl_audit.checkers.privacy._presidio import RecognizerSpec, analyze_texts, shared_analyzer
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
        analyzer = shared_analyzer(
            ctx.cache, language=params.language, recognizers=params.recognizers
        )
        out = CheckOutput(notes=[f"NLP engine: {analyzer.description}"])
        key = os.urandom(32)
        senders = clients_with(ctx.deployment, "prompts")
        receivers = clients_with(ctx.deployment, "synthetic_data")
        ctx.progress.set_total(len(senders) + len(receivers))
        seen: dict[bytes, set[str]] = defaultdict(set)
        for client in senders:
            n = 0
            for _rec, text, found in self._scan(ctx, params, analyzer, client.prompts):
                for r in found:
                    h = self._hash(text[r.start : r.end], key, params)
                    if h is not None:
                        seen[h].add(client.id)
                        n += 1
            out.metrics.setdefault(client.subject, {})["prompt_pii_values"] = n
            ctx.progress.advance()
        for client in receivers:
            self._probe(ctx, params, analyzer, key, seen, client, out)
            ctx.progress.advance()
        return out

    def _scan(
        self, ctx: CheckContext, params: PropagationParams, analyzer: Any, source: Any
    ) -> Any:
        for batch in ctx.records(source, batch_size=params.batch_size):
            texts = [r.text or "" for r in batch]
            found = analyze_texts(
                analyzer,
                texts,
                language=params.language,
                min_score=params.min_score,
                entities=params.entities,
                exclude=params.exclude_entities,
                batch_size=params.batch_size,
            )
            yield from zip(batch, texts, found, strict=True)

    @staticmethod
    def _hash(value: str, key: bytes, params: PropagationParams) -> bytes | None:
        norm = normalise_value(value)
        if len(norm) < params.min_value_length:
            return None
        return hashlib.blake2b(norm.encode("utf-8"), key=key, digest_size=16).digest()

    def _probe(
        self,
        ctx: CheckContext,
        params: PropagationParams,
        analyzer: Any,
        key: bytes,
        seen: dict[bytes, set[str]],
        client: Any,
        out: CheckOutput,
    ) -> None:
        values: dict[str, set[bytes]] = defaultdict(set)
        by_entity: dict[str, Counter[str]] = defaultdict(Counter)
        examples: dict[str, list[Evidence]] = defaultdict(list)
        scanned = 0
        for rec, text, found in self._scan(ctx, params, analyzer, client.synthetic_data):
            scanned += 1
            spans = [(r.start, r.end, r.entity_type) for r in found]
            for r in found:
                h = self._hash(text[r.start : r.end], key, params)
                owners = seen.get(h, set()) if h is not None else set()
                if h is None or client.id in owners:
                    continue
                for owner in owners:
                    if h not in values[owner]:
                        values[owner].add(h)
                        by_entity[owner][r.entity_type] += 1
                    ex = examples[owner]
                    if len(ex) < params.max_examples and all(
                        e.location != rec.location for e in ex
                    ):
                        ex.append(
                            Evidence(location=rec.location, excerpt=scrub(ctx.cache, text, spans))
                        )
        figures = out.metrics.setdefault(client.subject, {})
        figures["synthetic_records_scanned"] = scanned
        figures["propagated_values_from"] = {o: len(v) for o, v in sorted(values.items())}
        for owner, vals in sorted(values.items()):
            n = len(vals)
            if n < params.min_values:
                continue
            kinds = ", ".join(f"{e} {c}" for e, c in sorted(by_entity[owner].items()))
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
                    evidence=tuple(examples[owner]),
                )
            )
