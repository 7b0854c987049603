"""FMFL-P06: cross-client leakage through the FM, as a source-owner x receiving-client matrix.

One pass over every *source* builds a keyed shingle index (see `_shingles`): each client's prompts
and private sample (or, in its place, the client's fingerprint file, with identical results) and the
server's `foundation_model.sensitive_data` (owner `fm:server`). A second pass probes every client's
synthetic data: a k-word shingle of a synthetic record delivered to client R that the index holds
for owner S counts towards S -> R, unless R itself holds the shingle (text R sent or holds may
come back to R: that is not leakage). Consecutive leaked shingles of one owner form one *leaked
span*.

Common-phrase discount (`common_phrase_bits`): two unrelated texts can share a formulaic phrase
("was listed on the National Register of Historic Places"). The spans one synthetic record shares
with one owner count as leaked only when their surprisal under the shipped background English
n-gram table (`_commonness`) adds up to `common_phrase_bits`; the others are reported separately
(`discounted_common_spans_from`, and a note) so nothing is hidden. A verbatim leak of 12 words of
rare text, or a near-verbatim one (a word changed every ~9 words: several short spans in one
record), scores well above the default; the score reads only the synthetic record's words, so
fingerprints keep working.

Both passes are shard map/reduce steps (`engine.executors`): an index task returns a shard's
record count and its sorted distinct shingle hashes, merged per source into the owner's set; a
probe task receives the built `LeakIndex` as `env.shared` and returns its shard's counts and first
evidence items, folded in file order. The key and `k` travel in the tasks' settings. Results do not
depend on where the files were cut or on how many workers ran.

Cost: hashing is linear in the number of words; the index is sorted numpy arrays (about 16 bytes
per distinct shingle, plus a 1-byte-per-shingle bitmap pre-filter), probes are batched look-ups
(bitmap, then `searchsorted` for the few candidates), so memory does not grow with the synthetic
data; an index partial holds at most its shard's distinct hashes. Evidence masks the leaked span
(`<LEAKED_FROM:owner>`) and every PII value or secret in the record (`_evidence.scrub`); no leaked
text is reported.
"""

from __future__ import annotations

import os
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field

from fmfl_audit.checkers.base import CheckContext, Checker, CheckerParams, CheckOutput, clients_with
from fmfl_audit.checkers.privacy._evidence import scrub, warm_scrubber
from fmfl_audit.checkers.privacy._shingles import (
    KEY_ENV,
    Fingerprint,
    HashSet,
    LeakIndex,
    LeakIndexBuilder,
    ShingleHasher,
    key_check,
    load_key,
    normalised_words,
    read_fingerprint,
    word_offsets,
)
from fmfl_audit.engine.executors import Cache, ShardEnv, ShardTask
from fmfl_audit.errors import CheckerError
from fmfl_audit.inputs.records import Record
from fmfl_audit.manifest.loader import Deployment
from fmfl_audit.manifest.model import DataSource
from fmfl_audit.models import Area, Confidence, Evidence, FindingDraft, Metric, Severity

SERVER = "fm:server"
"""Owner name of the server's sensitive data (no client id can contain a colon)."""


class LeakageParams(CheckerParams):
    """Settings of FMFL-P06."""

    k: int = Field(default=8, ge=3, le=64, description="Words per shingle.")
    min_leaked_spans: int = Field(
        default=1, ge=1, description="Leaked spans from one owner to one client that fire."
    )
    common_min_owners: int | None = Field(
        default=None,
        ge=2,
        description="Ignore shingles held by at least this many owners (shared boilerplate such "
        "as prompt templates); null keeps every shingle.",
    )
    common_phrase_bits: float | None = Field(
        default=70.0,
        ge=0,
        description="The spans a synthetic record shares with one owner count as leaked only when "
        "their surprisal under the shipped background English n-gram table adds up to this many "
        "bits (common phrases score less and are reported as discounted); null counts every span.",
    )
    key_env: str = Field(
        default=KEY_ENV, description="Environment variable with the shared fingerprint key."
    )
    key_file: Path | None = Field(
        default=None, description="File with the shared key (relative to the file that sets it)."
    )
    server_severity: Severity = Field(
        default=Severity.CRITICAL, description="Severity of server sensitive data leaking."
    )
    max_examples: int = Field(default=3, ge=0, le=20)
    batch_size: int = Field(default=2048, ge=1)


@dataclass(frozen=True)
class _IndexPart:
    """What one shard of a source adds to the index."""

    records: int
    hashes: Any
    """Sorted distinct uint64 shingle hashes of the shard."""


@dataclass(frozen=True)
class _IndexTask(ShardTask):
    """P06's index step: the distinct keyed shingle hashes of one shard's texts."""

    key: bytes = field(repr=False)
    k: int

    def map(self, batches: Iterator[list[Record]], env: ShardEnv) -> _IndexPart:
        hasher = ShingleHasher(self.key, self.k)
        records = 0
        hs = HashSet()
        for batch in batches:
            records += len(batch)
            hs.add(hasher.hashes([r.text or "" for r in batch]))
        return _IndexPart(records=records, hashes=hs.array())


@dataclass
class _ProbeTally:
    """The probe results of one client's synthetic data (or one shard of it, merged in order)."""

    probed: int = 0
    leaking: int = 0
    spans_from: Counter[str] = field(default_factory=Counter)
    discounted_from: Counter[str] = field(default_factory=Counter)
    """Spans shared with an owner but too common in general English to count (per owner)."""
    examples: dict[str, list[Evidence]] = field(default_factory=dict)

    def merge(self, other: _ProbeTally, max_examples: int) -> None:
        """Add the tally of the next shard."""
        self.probed += other.probed
        self.leaking += other.leaking
        self.spans_from.update(other.spans_from)
        self.discounted_from.update(other.discounted_from)
        for name, ex in other.examples.items():
            mine = self.examples.setdefault(name, [])
            mine.extend(ex[: max(0, max_examples - len(mine))])


@dataclass(frozen=True)
class _ProbeTask(ShardTask):
    """P06's probe step: one shard of a client's synthetic data against the index (`env.shared`)."""

    key: bytes = field(repr=False)
    k: int
    client_id: str
    common_min_owners: int | None
    max_examples: int
    common_phrase_bits: float | None = None

    def map(self, batches: Iterator[list[Record]], env: ShardEnv) -> _ProbeTally:
        import numpy as np

        index: LeakIndex = env.shared
        owners = index.owners
        hasher = ShingleHasher(self.key, self.k)
        me = owners.index(self.client_id) if self.client_id in owners else None
        tally = _ProbeTally()
        for batch in batches:
            words = [normalised_words(r.text or "") for r in batch]
            digests = [hasher.digests(ws) for ws in words]
            counts = np.array([len(d) // 8 for d in digests], dtype=np.int64)
            masks = index.lookup(np.frombuffer(b"".join(digests), dtype="<u8").astype(np.uint64))
            tally.probed += len(batch)
            starts = np.r_[0, np.cumsum(counts)]
            # Only records with at least one indexed shingle need a closer look.
            record_of_row = np.repeat(np.arange(len(batch)), counts)
            for j in np.unique(record_of_row[masks.any(axis=1)]):
                rec = batch[int(j)]
                runs = _leaked_runs(
                    index, masks[starts[j] : starts[j + 1]], me, self.common_min_owners
                )
                runs = self._discount(env, words[j], runs, owners, tally)
                if not runs:
                    continue
                tally.leaking += 1
                for owner_i, spans in sorted(runs.items()):
                    name = owners[owner_i]
                    tally.spans_from[name] += len(spans)
                    ex = tally.examples.setdefault(name, [])
                    if len(ex) < self.max_examples:
                        excerpt = _excerpt(
                            env.cache, rec.text or "", len(words[j]), spans, name, self.k
                        )
                        ex.append(Evidence(location=rec.location, excerpt=excerpt))
        return tally

    def _discount(
        self,
        env: ShardEnv,
        words: list[str],
        runs: dict[int, list[tuple[int, int]]],
        owners: list[str],
        tally: _ProbeTally,
    ) -> dict[int, list[tuple[int, int]]]:
        """The runs whose owner's spans in this record add up to `common_phrase_bits` of
        surprisal; the others are counted as discounted common phrases."""
        if self.common_phrase_bits is None or not runs:
            return runs
        from fmfl_audit.checkers.privacy._commonness import load_background

        bg = env.cache.get("p06:background", load_background)
        kept = {}
        for owner_i, spans in runs.items():
            bits = sum(bg.bits(words[a : b + self.k]) for a, b in spans)
            if bits >= self.common_phrase_bits:
                kept[owner_i] = spans
            else:
                tally.discounted_from[owners[owner_i]] += len(spans)
        return kept


class LeakageChecker(Checker):
    """Ensure one client's data (and the server's sensitive data) does not reach other clients."""

    id: ClassVar[str] = "FMFL-P06"
    title: ClassVar[str] = "Ensure one client's data does not reach another client through the FM"
    area: ClassVar[Area] = Area.PRIVACY
    threat: ClassVar[str] = "bottom-up propagation"
    inputs: ClassVar[tuple[str, ...]] = (
        "clients[].prompts | clients[].private_sample | clients[].fingerprint",
        "foundation_model.sensitive_data",
        "clients[].synthetic_data",
    )
    Params = LeakageParams

    def missing_inputs(self, deployment: Deployment) -> list[str]:
        missing = []
        if not clients_with(deployment, "synthetic_data"):
            missing.append("clients[].synthetic_data")
        fm = deployment.manifest.foundation_model
        has_source = any(
            c.prompts or c.private_sample or c.fingerprint for c in deployment.manifest.clients
        ) or (fm is not None and fm.sensitive_data is not None)
        if not has_source:
            missing.append("clients[].prompts, private_sample or fingerprint")
        return missing

    def run(self, ctx: CheckContext, params: Any) -> CheckOutput:
        assert isinstance(params, LeakageParams)
        warm_scrubber(ctx.cache, ctx.executor)
        out = CheckOutput()
        key = self._key(ctx, params)
        index, indexed = self._index(ctx, params, key, out)
        out.metrics["federation"] = {
            "sources_indexed": indexed,
            "distinct_shingles": len(index.hashes),
            "k": params.k,
        }
        matrix: dict[str, Counter[str]] = defaultdict(Counter)
        self._probe(ctx, params, key, index, matrix, out)
        out.metrics["federation"]["leakage_matrix"] = {
            src: dict(sorted(row.items())) for src, row in sorted(matrix.items())
        }
        return out

    @staticmethod
    def _key(ctx: CheckContext, params: LeakageParams) -> bytes:
        key_file = params.key_file
        if key_file is not None and not key_file.is_absolute():
            key_file = ctx.deployment.base_dir / key_file
        key = load_key(key_file=key_file, env=params.key_env)
        if key is not None:
            return key
        if any(c.fingerprint and not c.private_sample for c in ctx.deployment.manifest.clients):
            raise CheckerError(
                f"clients give fingerprints but no fingerprint key is set: put the key shared "
                f"with the clients in ${params.key_env} or in the rule's `key_file`"
            )
        # Raw data only: any key gives the same matches; a fresh one keeps the in-memory index
        # useless to anyone who dumps it.
        return os.urandom(32)

    def _index(
        self, ctx: CheckContext, params: LeakageParams, key: bytes, out: CheckOutput
    ) -> tuple[LeakIndex, dict[str, dict[str, int]]]:
        builder = LeakIndexBuilder()
        manifest = ctx.deployment.manifest
        total = sum(1 for c in manifest.clients if c.synthetic_data) + len(manifest.clients) + 1
        ctx.progress.set_total(total)
        fingerprints = {
            c.id: self._fingerprint(ctx, params, key, c.fingerprint)
            for c in manifest.clients
            if c.fingerprint is not None and c.private_sample is None
        }
        # Every source file in one executor map, so small files run in parallel too.
        labels: list[str] = []
        sources: list[DataSource] = []
        for client in manifest.clients:
            for kind, source in (("prompts", client.prompts), ("private", client.private_sample)):
                if source is not None:
                    labels.append(f"{client.id}:{kind}")
                    sources.append(source)
        fm = manifest.foundation_model
        if fm is not None and fm.sensitive_data is not None:
            labels.append("fm:sensitive_data")
            sources.append(fm.sensitive_data)
        sets = [HashSet() for _ in sources]
        records = [0] * len(sources)
        task = _IndexTask(key=key, k=params.k)
        for j, part in ctx.map_sources(
            [(src, task) for src in sources], batch_size=params.batch_size
        ):
            records[j] += part.records
            sets[j].add(part.hashes)
        done = dict(zip(labels, zip(records, sets, strict=True), strict=True))
        indexed: dict[str, dict[str, int]] = {}
        for client in manifest.clients:
            owner = builder.owner(client.id)
            for kind in ("prompts", "private"):
                label = f"{client.id}:{kind}"
                if label in done:
                    n, hs = done[label]
                    arr = hs.array()
                    builder.add(owner, arr)
                    indexed[label] = {"records": n, "shingles": len(arr)}
            fp = fingerprints.get(client.id)
            if fp is not None:
                builder.add(owner, fp.hashes)
                indexed[f"{client.id}:private"] = {
                    "records": fp.records,
                    "shingles": len(fp.hashes),
                }
                out.notes.append(f"client {client.id}: private data from its fingerprint")
            ctx.progress.advance()
        if "fm:sensitive_data" in done:
            owner = builder.owner(SERVER)
            n, hs = done["fm:sensitive_data"]
            builder.add(owner, hs.array())
            indexed["fm:sensitive_data"] = {
                "records": n,
                "shingles": len(builder.sets[owner].array()),
            }
        ctx.progress.advance()
        return builder.build(), indexed

    @staticmethod
    def _fingerprint(
        ctx: CheckContext, params: LeakageParams, key: bytes, path: Path
    ) -> Fingerprint:
        """A client's fingerprint file, checked against the rule's k and the auditor's key."""
        fp = read_fingerprint(path, ctx.display(path))
        if fp.k != params.k:
            raise CheckerError(
                f"{ctx.display(path)}: fingerprint made with k={fp.k}, "
                f"the rule uses k={params.k}; re-run `fmfl-audit fingerprint --k "
                f"{params.k}`"
            )
        if fp.key_check != key_check(key):
            raise CheckerError(
                f"{ctx.display(path)}: fingerprint made with another key "
                "than the auditor's (key_check differs)"
            )
        return fp

    def _probe(
        self,
        ctx: CheckContext,
        params: LeakageParams,
        key: bytes,
        index: LeakIndex,
        matrix: dict[str, Counter[str]],
        out: CheckOutput,
    ) -> None:
        """Probe every client's synthetic data against the index (one executor map)."""
        clients = clients_with(ctx.deployment, "synthetic_data")
        jobs = [
            (
                client.synthetic_data,
                _ProbeTask(
                    key=key,
                    k=params.k,
                    client_id=client.id,
                    common_min_owners=params.common_min_owners,
                    max_examples=params.max_examples,
                    common_phrase_bits=params.common_phrase_bits,
                ),
            )
            for client in clients
        ]
        tallies = [_ProbeTally() for _ in clients]
        for j, part in ctx.map_sources(jobs, batch_size=params.batch_size, shared=index):
            tallies[j].merge(part, params.max_examples)
        for client, tally in zip(clients, tallies, strict=True):
            self._report_client(params, client, tally, matrix, out)
            ctx.progress.advance()

    @staticmethod
    def _report_client(
        params: LeakageParams,
        client: Any,
        tally: _ProbeTally,
        matrix: dict[str, Counter[str]],
        out: CheckOutput,
    ) -> None:
        spans_from = tally.spans_from
        for name, n in spans_from.items():
            matrix[name][client.id] += n
        out.metrics[client.subject] = {
            "synthetic_records_probed": tally.probed,
            "records_with_leaked_spans": tally.leaking,
            "leaked_spans_from": dict(sorted(spans_from.items())),
            "discounted_common_spans_from": dict(sorted(tally.discounted_from.items())),
        }
        for name, n in sorted(tally.discounted_from.items()):
            out.notes.append(
                f"{n} span(s) shared by {name} and client {client.id}'s synthetic data were "
                f"discounted as common English phrases (< {params.common_phrase_bits:g} bits)"
            )
        for name, n in sorted(spans_from.items()):
            if n < params.min_leaked_spans:
                continue
            src_desc = (
                "the server's sensitive data"
                if name == SERVER
                else f"client {name}'s prompts or private records"
            )
            out.findings.append(
                FindingDraft(
                    subject=client.subject,
                    key=f"from:{name}",
                    severity=params.server_severity if name == SERVER else None,
                    confidence=Confidence.HIGH,
                    message=(
                        f"{n} span(s) of {src_desc} (>= {params.k} words each) appear in the "
                        f"synthetic data delivered to client {client.id}"
                    ),
                    metric=Metric(name="leaked_spans", value=n, threshold=params.min_leaked_spans),
                    evidence=tuple(tally.examples.get(name, ())),
                )
            )


def _leaked_runs(
    index: LeakIndex, rec_masks: Any, me: int | None, common_min_owners: int | None
) -> dict[int, list[tuple[int, int]]]:
    """Owner -> [(first shingle, last shingle)] runs of consecutive leaked shingles."""
    import numpy as np

    hit_rows = np.flatnonzero(rec_masks.any(axis=1))
    positions: dict[int, list[int]] = defaultdict(list)
    for i in hit_rows:
        holders = list(index.owners_of(rec_masks[i]))
        if me is not None and me in holders:
            continue
        if common_min_owners is not None and len(holders) >= common_min_owners:
            continue
        for h in holders:
            positions[h].append(int(i))
    runs: dict[int, list[tuple[int, int]]] = {}
    for owner, pos in positions.items():
        spans: list[tuple[int, int]] = []
        for p in pos:
            if spans and p == spans[-1][1] + 1:
                spans[-1] = (spans[-1][0], p)
            else:
                spans.append((p, p))
        runs[owner] = spans
    return runs


def _excerpt(
    cache: Cache, text: str, n_words: int, spans: list[tuple[int, int]], name: str, k: int
) -> str:
    """The record with each leaked span masked (all of it when offsets cannot be aligned)."""
    label = f"LEAKED_FROM:{name}"
    offsets = word_offsets(text)
    if len(offsets) != n_words:  # case folding split or merged a word: mask everything
        return f"<{label}>"
    red = [(offsets[a][0], offsets[b + k - 1][1], label) for a, b in spans]
    return scrub(cache, unicodedata.normalize("NFKC", text), red)
