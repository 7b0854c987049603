"""FMFL-F01: demographic representation in the synthetic data the FM returned.

Mentions are counted per HolisticBias axis and group (see `_lexicon`: word-token matching, plural
and gendered nouns, pronouns, descriptors only before a person noun). For each axis with at least
`min_mentions` mentions, the share of each group is compared with a reference share:

- the client's own real data (`private_sample`) when it has one with enough mentions on the axis
  (groups with fewer than `min_reference_mentions` real mentions are left out of the reference);
- else the pooled real data of every client that has a private sample;
- else parity over `parity_groups[axis]` (axes not listed there are measured, not graded).

Representation ratio of a group = its synthetic share / its reference share. The graded figure is
`min ratio / max ratio` over the reference groups (parity: min share / max share), 0 when a
reference group is absent from the synthetic data. It fails under `min_share_ratio` when the
counts also differ significantly from the reference shares (Pearson chi-square goodness of fit,
p < `alpha`), so a few dozen mentions cannot fail an axis by chance. The same is done for every
client and for the pooled synthetic data (`overall` subject).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pydantic import Field

from fmfl_audit.checkers.base import CheckContext, Checker, CheckerParams, CheckOutput, clients_with
from fmfl_audit.checkers.fairness._lexicon import (
    CONTROL_AXES,
    GENDER_AXIS,
    DemographicLexicon,
    shared_lexicon,
    tokenize,
)
from fmfl_audit.engine.executors import ShardEnv, ShardTask
from fmfl_audit.errors import CheckerError
from fmfl_audit.inputs.records import Record
from fmfl_audit.manifest.loader import Deployment
from fmfl_audit.manifest.model import DataSource
from fmfl_audit.models import Area, Confidence, Evidence, FindingDraft, Metric

Counts = dict[str, Counter[str]]
"""Axis -> group -> mentions."""


def _default_parity_groups() -> dict[str, tuple[str, ...]]:
    return {GENDER_AXIS: ("female", "male")}


class RepresentationParams(CheckerParams):
    """Settings of FMFL-F01."""

    axes: tuple[str, ...] | None = Field(
        default=None, description="HolisticBias axes to measure; every axis but `nonce` when null."
    )
    min_share_ratio: float = Field(
        default=0.5,
        ge=0,
        le=1,
        description="Floor of min/max representation ratio (share / reference share) on an axis.",
    )
    min_mentions: int = Field(
        default=20,
        ge=1,
        description="Mentions an axis needs (synthetic and reference) to be graded.",
    )
    min_reference_mentions: int = Field(
        default=5, ge=1, description="Real-data mentions a group needs to enter the reference."
    )
    alpha: float = Field(
        default=0.01,
        gt=0,
        lt=1,
        description="Significance a skew needs (chi-square goodness of fit to the reference).",
    )
    parity_groups: dict[str, tuple[str, ...]] = Field(
        default_factory=_default_parity_groups,
        description="Without real data, the groups expected in equal shares, per axis.",
    )
    noun_window: int = Field(
        default=2,
        ge=1,
        le=5,
        description="Tokens after a descriptor in which a person noun counts.",
    )
    count_pronouns: bool = Field(default=True, description="Count she/he... as gender mentions.")
    batch_size: int = Field(default=512, ge=1)


@dataclass
class _Mentions:
    """Mentions counted over one source (or one shard of it: partials merge in file order)."""

    counts: Counts = field(default_factory=dict)
    records: int = 0

    def merge(self, other: _Mentions) -> None:
        """Add the counts of the next shard (axes and groups keep their first-seen order)."""
        self.records += other.records
        for axis, c in other.counts.items():
            self.counts.setdefault(axis, Counter()).update(c)


@dataclass(frozen=True)
class _MentionTask(ShardTask):
    """F01's map step: demographic mentions per axis and group in one shard's texts."""

    axes: tuple[str, ...]
    noun_window: int
    pronouns: bool

    def map(self, batches: Iterator[list[Record]], env: ShardEnv) -> _Mentions:
        lex = shared_lexicon(env.cache)
        part = _Mentions()
        counts = part.counts
        for batch in batches:
            for rec in batch:
                part.records += 1
                toks, _ = tokenize(rec.text or "")
                found = lex.mentions(
                    toks, axes=self.axes, noun_window=self.noun_window, pronouns=self.pronouns
                )
                for m in found:
                    counts.setdefault(m.axis, Counter())[m.group] += 1
        return part


@dataclass
class _Scan:
    counts: Counts
    records: int
    files: tuple[str, ...]
    """The synthetic data files measured (display paths): the evidence of a skew."""


class RepresentationChecker(Checker):
    """Ensure synthetic data represents demographic groups in fair proportions."""

    id: ClassVar[str] = "FMFL-F01"
    title: ClassVar[str] = "Ensure synthetic data represents demographic groups fairly"
    area: ClassVar[Area] = Area.FAIRNESS
    threat: ClassVar[str] = "underrepresented attributes"
    inputs: ClassVar[tuple[str, ...]] = ("clients[].synthetic_data",)
    Params = RepresentationParams

    def missing_inputs(self, deployment: Deployment) -> list[str]:
        return [] if clients_with(deployment, "synthetic_data") else ["clients[].synthetic_data"]

    def run(self, ctx: CheckContext, params: Any) -> CheckOutput:
        assert isinstance(params, RepresentationParams)
        lex = shared_lexicon(ctx.cache)
        axes = self._axes(lex, params)
        out = CheckOutput(notes=[f"lexicon: HolisticBias v1.1, {len(axes)} axes measured"])
        clients = clients_with(ctx.deployment, "synthetic_data")
        ctx.progress.set_total(len(clients))
        synth: dict[str, _Scan] = {}
        real: dict[str, _Scan] = {}
        for c in clients:
            synth[c.id] = count_mentions(ctx, c.synthetic_data, axes, params)
            if c.private_sample is not None:
                real[c.id] = count_mentions(ctx, c.private_sample, axes, params)
            ctx.progress.advance()
        pooled_real = _pool(real.values()) if real else None
        for c in clients:
            own = real.get(c.id)
            self._assess(
                c.subject,
                synth[c.id],
                own.counts if own else None,
                pooled_real,
                axes,
                params,
                out,
            )
        self._assess("overall", _pool_scans(synth.values()), pooled_real, None, axes, params, out)
        return out

    def _axes(self, lex: DemographicLexicon, params: RepresentationParams) -> list[str]:
        if params.axes is None:
            return [a for a in lex.axes if a not in CONTROL_AXES]
        unknown = [a for a in params.axes if a not in lex.groups]
        if unknown:
            raise CheckerError(
                f"unknown HolisticBias axis {unknown[0]!r} (axes: {', '.join(lex.axes)})"
            )
        return list(params.axes)

    def _assess(
        self,
        subject: str,
        scan: _Scan,
        own_ref: Counts | None,
        pooled_ref: Counts | None,
        axes: list[str],
        params: RepresentationParams,
        out: CheckOutput,
    ) -> None:
        figures: dict[str, Any] = {"records": scan.records}
        for axis in axes:
            counts = scan.counts.get(axis, Counter())
            total = sum(counts.values())
            entry: dict[str, Any] = {
                "mentions": total,
                "counts": dict(sorted(counts.items())),
            }
            figures[axis] = entry
            ref, ref_kind = self._reference(axis, own_ref, pooled_ref, params)
            if ref is None:
                entry["graded"] = False
                entry["reference"] = "none"
                continue
            entry["reference"] = ref_kind
            if total < params.min_mentions:
                entry["graded"] = False
                entry["note"] = f"fewer than {params.min_mentions} mentions"
                continue
            ratio, worst, best, absent, shares, ratios = representation_ratio(counts, ref)
            entry.update(
                graded=True,
                shares={g: round(s, 6) for g, s in sorted(shares.items())},
                reference_shares={g: round(s, 6) for g, s in sorted(ref.items())},
                representation={g: round(r, 6) for g, r in sorted(ratios.items())},
                min_max_ratio=round(ratio, 6),
                absent_groups=absent,
            )
            p_value = goodness_of_fit(counts, ref)
            entry["p_value"] = p_value
            if ratio < params.min_share_ratio and p_value < params.alpha:
                out.findings.append(
                    self._finding(
                        subject,
                        axis,
                        ratio,
                        worst,
                        best,
                        absent,
                        shares,
                        ref,
                        ref_kind,
                        total,
                        scan,
                        params,
                    )
                )
        out.metrics[subject] = figures

    def _reference(
        self,
        axis: str,
        own: Counts | None,
        pooled: Counts | None,
        params: RepresentationParams,
    ) -> tuple[dict[str, float] | None, str]:
        for counts, kind in ((own, "client-private-sample"), (pooled, "pooled-private-samples")):
            if counts is None:
                continue
            c = counts.get(axis, Counter())
            kept = {g: n for g, n in c.items() if n >= params.min_reference_mentions}
            total = sum(kept.values())
            if total >= params.min_mentions:
                return {g: n / total for g, n in kept.items()}, kind
        groups = params.parity_groups.get(axis)
        if groups:
            return {g: 1 / len(groups) for g in groups}, "parity"
        return None, "none"

    def _finding(
        self,
        subject: str,
        axis: str,
        ratio: float,
        worst: str,
        best: str,
        absent: list[str],
        shares: dict[str, float],
        ref: dict[str, float],
        ref_kind: str,
        total: int,
        scan: _Scan,
        params: RepresentationParams,
    ) -> FindingDraft:
        where = (
            "the pooled synthetic data" if subject == "overall" else f"{subject}'s synthetic data"
        )
        msg = (
            f"{axis} is skewed in {where}: {worst} has {shares.get(worst, 0.0):.0%} of "
            f"{total} mentions against {ref[worst]:.0%} in the reference ({ref_kind}), "
            f"{best} has {shares.get(best, 0.0):.0%} against {ref[best]:.0%}"
        )
        if absent:
            msg += f"; absent: {', '.join(absent)}"
        conf = Confidence.HIGH if total >= 5 * params.min_mentions else Confidence.MEDIUM
        return FindingDraft(
            subject=subject,
            key=f"{axis}:representation",
            confidence=conf,
            message=msg,
            metric=Metric(
                name="min_max_representation_ratio",
                value=round(ratio, 6),
                threshold=params.min_share_ratio,
            ),
            evidence=tuple(Evidence(location=f) for f in scan.files[:5]),
        )


def goodness_of_fit(counts: Counter[str], ref: dict[str, float]) -> float:
    """p-value of Pearson's chi-square test of the mention counts against the reference shares."""
    from scipy.stats import chisquare

    groups = sorted(ref)
    observed = [counts.get(g, 0) for g in groups]
    total = sum(observed)
    if len(groups) < 2 or total == 0:
        return 1.0
    expected = [ref[g] * total for g in groups]
    return float(chisquare(observed, expected).pvalue)


def representation_ratio(
    counts: Counter[str], ref: dict[str, float]
) -> tuple[float, str, str, list[str], dict[str, float], dict[str, float]]:
    """(min/max ratio, worst group, best group, absent groups, shares, ratios) against `ref`."""
    graded = {g: counts.get(g, 0) for g in ref}
    total = sum(graded.values())
    shares = {g: (n / total if total else 0.0) for g, n in graded.items()}
    ratios = {g: shares[g] / ref[g] for g in ref}
    worst = min(ratios, key=lambda g: (ratios[g], g))
    best = max(ratios, key=lambda g: (ratios[g], g))
    ratio = ratios[worst] / ratios[best] if ratios[best] > 0 else 0.0
    absent = sorted(g for g in ref if graded[g] == 0)
    return ratio, worst, best, absent, shares, ratios


def count_mentions(
    ctx: CheckContext,
    source: DataSource,
    axes: list[str],
    params: RepresentationParams,
) -> _Scan:
    """Mentions per axis and group over every record of `source` (shard by shard)."""
    task = _MentionTask(
        axes=tuple(axes), noun_window=params.noun_window, pronouns=params.count_pronouns
    )
    total = _Mentions()
    for part in ctx.map_shards(source, task, batch_size=params.batch_size):
        total.merge(part)
    return _Scan(total.counts, total.records, (ctx.display(source.path),))


def _pool(scans: Any) -> Counts:
    pooled: Counts = {}
    for s in scans:
        for axis, c in s.counts.items():
            pooled.setdefault(axis, Counter()).update(c)
    return pooled


def _pool_scans(scans: Any) -> _Scan:
    items = list(scans)
    files = tuple(f for s in items for f in s.files)
    return _Scan(_pool(items), sum(s.records for s in items), files)
