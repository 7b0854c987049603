"""FMFL-R08 (synthetic vs real distribution gap) and FMFL-R09 (degenerate synthetic records).

R08, per client: a classifier two-sample test (word TF-IDF + logistic regression told to separate
synthetic from real records; ROC AUC cross-validated with a seeded StratifiedKFold; 0.5 = same
distribution, 1.0 = fully separable), the Jensen-Shannon distance (base 2) between the label
distributions, and the vocabulary coverage (share of the real data's word types that the synthetic
data uses). Real data is the client's private_sample, else its holdout. Both sides are subsampled
(seeded reservoir) to `max_records`.

R09, per client: empty records, exact duplicates (after whitespace and case folding), near
duplicates (MinHash LSH over word 3-shingles with datasketch, seeded), repetition loops (share of
repeated word 3-grams), non-language text (share of alphabetic word tokens) and length outliers
(robust z-score of the log word count with median/MAD, the scale floored). Each category's rate
is held against `max_rate`. A record counts in the first of the first five categories it falls
into, in that order; length outliers are measured over every non-empty record that is not an exact
duplicate.

R09 runs as a shard map/reduce: each shard's map tokenises its records and returns, in file order,
their per-record facts (a SHA-256 of the folded text, the MinHash signature, the word count and the
record-local categories), never the texts. The reduce in the scan process replays the file in order
over those facts (the set of earlier digests, one MinHash LSH index, the lengths), so the counts do
not depend on where the file was cut. Evidence excerpts of the first few records of each reported
category are then read back in a second, light pass over the file (only when a finding fires).
"""

from __future__ import annotations

import hashlib
import math
import random
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pydantic import Field

from fmfl_audit.checkers.base import CheckContext, Checker, CheckerParams, CheckOutput, clients_with
from fmfl_audit.checkers.robustness._common import rate, robust_z, safe_excerpt, tokens
from fmfl_audit.engine.executors import ShardEnv, ShardTask
from fmfl_audit.inputs.records import Record
from fmfl_audit.manifest.loader import Deployment
from fmfl_audit.manifest.model import DataSource
from fmfl_audit.models import Area, Confidence, Evidence, FindingDraft, Metric, Severity


class OodParams(CheckerParams):
    """Settings of FMFL-R08."""

    max_auc: float = Field(default=0.85, gt=0.5, le=1, description="Two-sample AUC cap.")
    max_label_jsd: float = Field(default=0.3, ge=0, le=1, description="Label JS distance cap.")
    max_records: int = Field(default=2000, ge=20, description="Records per side at most.")
    folds: int = Field(default=5, ge=2, le=10)
    min_records: int = Field(default=20, ge=4, description="Records per side needed for a test.")


def _reservoir(ctx: CheckContext, source: DataSource, cap: int, salt: str) -> list[Any]:
    rng = random.Random(ctx.rule_seed(salt))
    sample: list[Any] = []
    seen = 0
    for batch in ctx.records(source):
        for rec in batch:
            seen += 1
            if len(sample) < cap:
                sample.append(rec)
            else:
                j = rng.randrange(seen)
                if j < cap:
                    sample[j] = rec
    return sample


def two_sample_auc(a: list[str], b: list[str], *, folds: int, seed: int) -> float:
    """Cross-validated ROC AUC of a TF-IDF + logistic-regression classifier telling a from b."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline

    texts = a + b
    y = [1] * len(a) + [0] * len(b)
    pipe = make_pipeline(
        TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1),
        LogisticRegression(max_iter=1000, C=1.0),
    )
    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    return float(cross_val_score(pipe, texts, y, cv=cv, scoring="roc_auc").mean())


def label_jsd(a: list[Any], b: list[Any]) -> float | None:
    """Jensen-Shannon distance (base 2) between two label distributions; None without labels."""
    from scipy.spatial.distance import jensenshannon

    ca = Counter(str(x) for x in a if x not in (None, ""))
    cb = Counter(str(x) for x in b if x not in (None, ""))
    if not ca or not cb:
        return None
    keys = sorted(set(ca) | set(cb))
    return float(jensenshannon([ca[k] for k in keys], [cb[k] for k in keys], base=2))


class OodChecker(Checker):
    """Ensure synthetic data stays close to each client's real distribution."""

    id: ClassVar[str] = "FMFL-R08"
    title: ClassVar[str] = "Ensure synthetic data stays close to each client's real distribution"
    area: ClassVar[Area] = Area.ROBUSTNESS
    threat: ClassVar[str] = "OOD amplification"
    inputs: ClassVar[tuple[str, ...]] = (
        "clients[].synthetic_data",
        "clients[].private_sample or holdout",
    )
    Params = OodParams

    def _pairs(self, deployment: Deployment) -> list[tuple[Any, DataSource]]:
        return [
            (c, c.private_sample or c.holdout)
            for c in clients_with(deployment, "synthetic_data")
            if (c.private_sample or c.holdout) is not None
        ]

    def missing_inputs(self, deployment: Deployment) -> list[str]:
        if self._pairs(deployment):
            return []
        return ["a client with synthetic_data and private_sample or holdout"]

    def run(self, ctx: CheckContext, params: Any) -> CheckOutput:
        assert isinstance(params, OodParams)
        out = CheckOutput()
        pairs = self._pairs(ctx.deployment)
        ctx.progress.set_total(len(pairs))
        for client, real_src in pairs:
            synth = _reservoir(ctx, client.synthetic_data, params.max_records, f"{client.id}:s")
            real = _reservoir(ctx, real_src, params.max_records, f"{client.id}:r")
            ctx.progress.advance()
            s_texts = [r.text or "" for r in synth]
            r_texts = [r.text or "" for r in real]
            s_vocab = {t for x in s_texts for t in tokens(x)}
            r_vocab = {t for x in r_texts for t in tokens(x)}
            coverage = len(s_vocab & r_vocab) / len(r_vocab) if r_vocab else None
            jsd = label_jsd([r.label for r in synth], [r.label for r in real])
            metrics: dict[str, Any] = {
                "synthetic_records": len(synth),
                "real_records": len(real),
                "real_source": "private_sample" if client.private_sample else "holdout",
                "vocabulary_coverage": None if coverage is None else round(coverage, 4),
                "label_jsd": None if jsd is None else round(jsd, 4),
                "auc": None,
            }
            out.metrics[client.subject] = metrics
            if min(len(synth), len(real)) < max(params.min_records, params.folds):
                out.notes.append(f"client {client.id}: too few records for the two-sample test")
            else:
                auc = two_sample_auc(
                    s_texts, r_texts, folds=params.folds, seed=ctx.rule_seed(client.id)
                )
                metrics["auc"] = round(auc, 4)
                if auc > params.max_auc:
                    out.findings.append(
                        FindingDraft(
                            subject=client.subject,
                            key="two-sample-auc",
                            confidence=Confidence.HIGH if len(synth) >= 100 else Confidence.MEDIUM,
                            message=(
                                f"the synthetic data of client {client.id} is easy to tell from "
                                f"its real data (classifier AUC {auc:.2f}; vocabulary coverage "
                                f"{metrics['vocabulary_coverage']})"
                            ),
                            metric=Metric(
                                name="auc", value=round(auc, 6), threshold=params.max_auc
                            ),
                            evidence=(Evidence(location=ctx.display(client.synthetic_data.path)),),
                        )
                    )
            if jsd is not None and jsd > params.max_label_jsd:
                out.findings.append(
                    FindingDraft(
                        subject=client.subject,
                        key="label-divergence",
                        severity=Severity.MEDIUM,
                        message=(
                            f"the label distribution of client {client.id}'s synthetic data "
                            f"diverges from its real data (Jensen-Shannon distance {jsd:.2f})"
                        ),
                        metric=Metric(
                            name="label_jsd", value=round(jsd, 6), threshold=params.max_label_jsd
                        ),
                        evidence=(Evidence(location=ctx.display(client.synthetic_data.path)),),
                    )
                )
        return out


class DegenerateParams(CheckerParams):
    """Settings of FMFL-R09."""

    max_rate: float = Field(default=0.05, ge=0, le=1, description="Rate cap per category.")
    near_duplicate_threshold: float = Field(default=0.8, gt=0, le=1, description="Jaccard.")
    num_perm: int = Field(default=64, ge=16, le=512)
    max_repeated_ngram_share: float = Field(default=0.5, gt=0, le=1)
    min_alpha_share: float = Field(default=0.5, ge=0, le=1)
    max_length_z: float = Field(default=4.0, gt=0, description="Robust z of log word count.")
    min_log_scale: float = Field(
        default=0.25, gt=0, description="Floor of the log-length scale (0.25 ~ x1.28 per unit)."
    )
    max_examples: int = Field(default=3, ge=0, le=20)


CATEGORIES = (
    "empty",
    "exact_duplicate",
    "near_duplicate",
    "repetition_loop",
    "non_language",
    "length_outlier",
)
DESCRIPTIONS = {
    "empty": "are empty",
    "exact_duplicate": "repeat an earlier record exactly",
    "near_duplicate": "nearly duplicate an earlier record",
    "repetition_loop": "are stuck in a repetition loop",
    "non_language": "are not natural-language text",
    "length_outlier": "have an outlying length",
}
_NONSPACE = re.compile(r"\S+")
_ALPHA_TOKEN = re.compile(r"^[\"'(\[]*[^\W\d_]+(?:['’-][^\W\d_]+)*[.,;:!?)\]\"']*$", re.UNICODE)


def repeated_share(toks: list[str], n: int = 3) -> float:
    """Share of word n-grams that repeat an earlier one (0 for short texts)."""
    grams = [tuple(toks[i : i + n]) for i in range(len(toks) - n + 1)]
    if len(grams) < 4:
        return 0.0
    return 1 - len(set(grams)) / len(grams)


def alpha_share(text: str) -> float:
    """Share of whitespace tokens that are words (letters with edge punctuation)."""
    parts = _NONSPACE.findall(text)
    return sum(1 for p in parts if _ALPHA_TOKEN.match(p)) / len(parts) if parts else 0.0


# What the map knows of a record on its own (`_DegenerateShard.kinds`).
_EMPTY, _LOCAL_DUPLICATE, _FIRST = 0, 1, 2
# Categories a record falls into whatever came before it in other shards (`_DegenerateShard.local`).
_NONE, _REPETITION, _NON_LANGUAGE = 0, 1, 2


@dataclass
class _DegenerateShard:
    """R09's partial: the per-record facts of one shard, in file order.

    Every record has a kind and a location. A record whose folded text did not occur earlier in the
    shard (`_FIRST`) also has, in the order of those records, its digest, word count, local
    category and MinHash signature (a row of `signatures`).
    """

    kinds: bytearray = field(default_factory=bytearray)
    locations: list[str] = field(default_factory=list)
    digests: list[bytes] = field(default_factory=list)
    lengths: list[int] = field(default_factory=list)
    local: bytearray = field(default_factory=bytearray)
    signatures: Any = None
    """numpy array (first-seen records x num_perm) of MinHash hash values; None when none."""
    scheme: str | None = None
    """The datasketch MinHash permutation scheme (None before datasketch 2)."""


def _minhash_template(num_perm: int, seed: int) -> Any:
    from datasketch import MinHash

    return MinHash(num_perm=num_perm, seed=seed)


@dataclass(frozen=True)
class _DegenerateTask(ShardTask):
    """R09's map step: tokens, digests, MinHash signatures and local categories of one shard."""

    num_perm: int
    seed: int
    max_repeated_ngram_share: float
    min_alpha_share: float

    def map(self, batches: Iterator[list[Record]], env: ShardEnv) -> _DegenerateShard:
        import numpy as np

        # Copies of one seeded MinHash share its permutations (generating them is the costly part).
        template = env.cache.get(
            f"minhash:{self.num_perm}:{self.seed}",
            lambda: _minhash_template(self.num_perm, self.seed),
        )
        part = _DegenerateShard(scheme=getattr(template, "scheme", None))
        seen: set[bytes] = set()
        rows: list[Any] = []
        for batch in batches:
            for rec in batch:
                part.locations.append(rec.location)
                text = rec.text or ""
                if not text.strip():
                    part.kinds.append(_EMPTY)
                    continue
                norm = " ".join(text.lower().split())
                digest = hashlib.sha256(norm.encode()).digest()
                if digest in seen:
                    part.kinds.append(_LOCAL_DUPLICATE)
                    continue
                seen.add(digest)
                toks = tokens(text)
                shingles = {" ".join(toks[i : i + 3]) for i in range(max(1, len(toks) - 2))}
                mh = template.copy()
                mh.update_batch([s.encode("utf-8") for s in shingles])
                if repeated_share(toks) > self.max_repeated_ngram_share:
                    local = _REPETITION
                elif alpha_share(text) < self.min_alpha_share:
                    local = _NON_LANGUAGE
                else:
                    local = _NONE
                part.kinds.append(_FIRST)
                part.digests.append(digest)
                part.lengths.append(len(toks))
                part.local.append(local)
                rows.append(mh.hashvalues)
        if rows:
            part.signatures = np.stack(rows)
        return part


def _sketch(hashvalues: Any, seed: int, scheme: str | None) -> Any:
    """A MinHash of given hash values (for the LSH index; no permutations are generated)."""
    from datasketch import LeanMinHash

    if scheme is None:  # datasketch < 2 has one scheme and no `scheme` argument
        return LeanMinHash(seed=seed, hashvalues=hashvalues)
    return LeanMinHash(seed=seed, hashvalues=hashvalues, scheme=scheme)


class _DegenerateFold:
    """R09's reduce: replays the records of a file in order over the facts of its shards."""

    def __init__(self, params: DegenerateParams, seed: int) -> None:
        from datasketch import MinHashLSH

        self.params = params
        self.seed = seed
        self.lsh = MinHashLSH(threshold=params.near_duplicate_threshold, num_perm=params.num_perm)
        self.seen: set[bytes] = set()
        self.counts: Counter[str] = Counter()
        self.first: dict[str, list[str]] = {c: [] for c in CATEGORIES}
        """Locations of the first `max_examples` records of each category."""
        self.lengths: list[int] = []
        self.length_locations: list[str] = []
        self.total = 0

    def hit(self, cat: str, location: str) -> None:
        """Count a record in `cat`."""
        self.counts[cat] += 1
        if len(self.first[cat]) < self.params.max_examples:
            self.first[cat].append(location)

    def add(self, part: _DegenerateShard) -> None:
        """Fold the partial of the next shard."""
        j = 0
        for kind, location in zip(part.kinds, part.locations, strict=True):
            self.total += 1
            if kind == _EMPTY:
                self.hit("empty", location)
                continue
            if kind == _LOCAL_DUPLICATE:
                self.hit("exact_duplicate", location)
                continue
            digest, n, local = part.digests[j], part.lengths[j], part.local[j]
            signature = part.signatures[j]
            j += 1
            if digest in self.seen:
                self.hit("exact_duplicate", location)
                continue
            self.seen.add(digest)
            self.lengths.append(n)
            self.length_locations.append(location)
            mh = _sketch(signature, self.seed, part.scheme)
            near = n >= 3 and bool(self.lsh.query(mh))
            self.lsh.insert(f"{self.total}", mh)
            if near:
                self.hit("near_duplicate", location)
            elif local == _REPETITION:
                self.hit("repetition_loop", location)
            elif local == _NON_LANGUAGE:
                self.hit("non_language", location)

    def finish(self) -> None:
        """Count the length outliers (they need every length of the file)."""
        # Log lengths with a floor on the scale: in a small, uniform sample the MAD is tiny and a
        # 36-word story among 27-word ones would otherwise count as an outlier.
        zs = robust_z([math.log1p(n) for n in self.lengths], min_scale=self.params.min_log_scale)
        for z, location in zip(zs, self.length_locations, strict=True):
            if abs(z) > self.params.max_length_z:
                self.hit("length_outlier", location)


@dataclass(frozen=True)
class _ExcerptTask(ShardTask):
    """Redacted excerpts of the records at the given locations (R09's evidence pass)."""

    locations: frozenset[str]

    def map(self, batches: Iterator[list[Record]], env: ShardEnv) -> dict[str, str | None]:
        return {
            rec.location: safe_excerpt(rec.text or "") or None
            for batch in batches
            for rec in batch
            if rec.location in self.locations
        }


class DegenerateChecker(Checker):
    """Ensure synthetic data holds no degenerate records."""

    id: ClassVar[str] = "FMFL-R09"
    title: ClassVar[str] = "Ensure synthetic data holds no degenerate records"
    area: ClassVar[Area] = Area.ROBUSTNESS
    threat: ClassVar[str] = "OOD amplification"
    inputs: ClassVar[tuple[str, ...]] = ("clients[].synthetic_data",)
    Params = DegenerateParams

    def missing_inputs(self, deployment: Deployment) -> list[str]:
        return [] if clients_with(deployment, "synthetic_data") else ["clients[].synthetic_data"]

    def run(self, ctx: CheckContext, params: Any) -> CheckOutput:
        assert isinstance(params, DegenerateParams)
        out = CheckOutput(notes=["near duplicates: MinHash LSH (datasketch) on word 3-shingles"])
        clients = clients_with(ctx.deployment, "synthetic_data")
        ctx.progress.set_total(len(clients))
        for client in clients:
            self._client(ctx, params, client, out)
            ctx.progress.advance()
        return out

    def _client(
        self, ctx: CheckContext, params: DegenerateParams, client: Any, out: CheckOutput
    ) -> None:
        source = client.synthetic_data
        seed = ctx.rule_seed(client.id) % (2**31)
        task = _DegenerateTask(
            num_perm=params.num_perm,
            seed=seed,
            max_repeated_ngram_share=params.max_repeated_ngram_share,
            min_alpha_share=params.min_alpha_share,
        )
        fold = _DegenerateFold(params, seed)
        for part in ctx.map_shards(source, task):
            fold.add(part)
        fold.finish()
        counts, total = fold.counts, fold.total
        rates = {c: rate(counts[c], total) for c in CATEGORIES}
        out.metrics[client.subject] = {
            "records": total,
            **{f"{c}_count": counts[c] for c in CATEGORIES},
            **{f"{c}_rate": rates[c] for c in CATEGORIES},
        }
        reported = [c for c in CATEGORIES if counts[c] and rates[c] > params.max_rate]
        wanted = frozenset(loc for c in reported for loc in fold.first[c])
        excerpts: dict[str, str | None] = {}
        if wanted:
            for found in ctx.map_shards(source, _ExcerptTask(wanted)):
                excerpts.update(found)
        for c in reported:
            out.findings.append(
                FindingDraft(
                    subject=client.subject,
                    key=c,
                    message=(
                        f"{counts[c]} of {total} synthetic records of client {client.id} "
                        f"({rates[c]:.1%}) {DESCRIPTIONS[c]}"
                    ),
                    metric=Metric(name=f"{c}_rate", value=rates[c], threshold=params.max_rate),
                    evidence=tuple(
                        Evidence(location=loc, excerpt=excerpts[loc]) for loc in fold.first[c]
                    ),
                )
            )
