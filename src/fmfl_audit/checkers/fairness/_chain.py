"""FMFL-F05's stereotype chain: FM preference -> synthetic data stereotype rate -> model gaps.

Reuses FMFL-F02's measurements (`stereotype.py`, `_fm_preference.py`) with F02's default settings
for the knowledge and the chance model, and F05's own thresholds for what counts as amplified. The
FM preference is cached for the scan, so F02 and F05 score the probes once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fmfl_audit.checkers.base import CheckContext, CheckOutput, clients_with
from fmfl_audit.checkers.fairness._fm_preference import AxisPreference, measure
from fmfl_audit.checkers.fairness._stereotypes import shared_knowledge
from fmfl_audit.checkers.fairness.stereotype import (
    AxisFigures,
    StereoTally,
    StereotypeParams,
    assess_axis,
    tally_source,
)
from fmfl_audit.models import Confidence, Evidence, FindingDraft, Metric

if TYPE_CHECKING:
    from fmfl_audit.checkers.fairness.amplification import AmplificationParams, Stage


@dataclass
class Chain:
    """The measured links, per stereotype axis."""

    fm: dict[str, AxisPreference] = field(default_factory=dict)
    synthetic: dict[str, AxisFigures] = field(default_factory=dict)
    real: dict[str, AxisFigures] = field(default_factory=dict)
    fm_elevated: list[str] = field(default_factory=list)
    synthetic_elevated: list[str] = field(default_factory=list)

    def upstream(self) -> str:
        """A clause naming the elevated upstream links ('' when none is)."""
        parts = []
        for axis in self.fm_elevated:
            p = self.fm[axis]
            parts.append(f"the FM prefers {axis} stereotypes ({p.mean:+.2f} nats)")
        for axis in self.synthetic_elevated:
            s, r = self.synthetic[axis], self.real.get(axis)
            parts.append(
                f"{axis} stereotype rate {s.rate:.1%} in synthetic data"
                + (f" vs {r.rate:.1%} in real text" if r is not None else "")
            )
        return "; upstream: " + "; ".join(parts) if parts else ""

    def annotate(
        self,
        out: CheckOutput,
        real: Stage,
        stages: list[tuple[str, str, Stage]],
        feats: tuple[str, ...],
        params: AmplificationParams,
    ) -> None:
        """Add the `chain` metrics and name the upstream links in every finding's message."""
        gaps: dict[str, Any] = {}
        for f in feats:
            row: dict[str, Any] = {}
            for name, subject, _ in (("real", "real-data", None), *stages):
                cell = out.metrics.get(subject, {}).get(f)
                if isinstance(cell, dict) and "gap_stage" in cell:
                    row[name] = cell["gap_stage"]
                    row["real"] = cell["gap_real"]
            gaps[f] = row
        out.metrics["chain"] = {
            "fm_preference": {a: p.as_dict()["mean_log_odds"] for a, p in self.fm.items()},
            "synthetic_stereotype_rate": {
                a: round(f.rate, 6) for a, f in self.synthetic.items() if f.mentions
            },
            "real_stereotype_rate": {
                a: round(f.rate, 6) for a, f in self.real.items() if f.mentions
            },
            "group_gaps": gaps,
        }
        tail = self.upstream()
        if tail:
            out.findings[:] = [
                d.model_copy(update={"message": d.message + tail}) for d in out.findings
            ]


def _pooled(ctx: CheckContext, sources: list[Any], sp: StereotypeParams) -> StereoTally:
    t = StereoTally()
    for src in sources:
        t.merge(tally_source(ctx, src, sp, None), sp.max_examples)
    return t


def _real_params(sp: StereotypeParams) -> StereotypeParams:
    """The real text needs no examples (none is reported)."""
    return sp.model_copy(update={"max_examples": 0})


def stereotype_chain(ctx: CheckContext, params: AmplificationParams, out: CheckOutput) -> Chain:
    """Measure the chain's upstream links and report amplified synthetic stereotype rates."""
    from scipy.stats import fisher_exact

    sp = StereotypeParams(max_examples=3, fm_max_probes=StereotypeParams().fm_max_probes)
    know = shared_knowledge(
        ctx.cache, sp.resources, lemmatise=sp.lemmatise, expand=sp.wordnet_expansion
    )
    axes = tuple(know.axes)
    chain = Chain()
    dep = ctx.deployment
    fm = dep.manifest.foundation_model
    if fm is not None and fm.checkpoint is not None:
        words = shared_knowledge(ctx.cache, sp.resources, lemmatise=False, expand=False)
        chain.fm = measure(ctx, words, axes, max_probes=sp.fm_max_probes, alpha=sp.alpha)
        chain.fm_elevated = [
            a
            for a, p in chain.fm.items()
            if p.probes >= sp.fm_min_probes and p.low > sp.fm_min_effect
        ]
        out.metrics["fm"] = {a: p.as_dict() for a, p in chain.fm.items()}
    synth = _pooled(ctx, [c.synthetic_data for c in clients_with(dep, "synthetic_data")], sp)
    real_sources = [c.private_sample for c in clients_with(dep, "private_sample")]
    if dep.manifest.evaluation is not None:
        real_sources.append(dep.manifest.evaluation.as_source())
    real = _pooled(ctx, real_sources, _real_params(sp))
    for axis in axes:
        s, r = assess_axis(know, synth, axis, sp.prior_weight), assess_axis(know, real, axis, 0.5)
        chain.synthetic[axis], chain.real[axis] = s, r
        if not s.mentions or s.consistent < sp.min_statements:
            continue
        _, p = fisher_exact(
            [[s.consistent, s.mentions - s.consistent], [r.consistent, r.mentions - r.consistent]],
            alternative="greater",
        )
        lift = s.lift
        if (
            s.rate - r.rate > params.min_rate_increase
            and p < params.alpha
            and (lift is None or lift >= params.min_lift)
        ):
            chain.synthetic_elevated.append(axis)
            out.findings.append(_rate_finding(axis, s, r, float(p), params, synth))
    return chain


def _rate_finding(
    axis: str,
    s: AxisFigures,
    r: AxisFigures,
    p: float,
    params: AmplificationParams,
    synth: StereoTally,
) -> FindingDraft:
    return FindingDraft(
        subject="fm:synthetic-data",
        key=f"{axis}:stereotype-rate",
        confidence=Confidence.HIGH if p < params.alpha / 10 else Confidence.MEDIUM,
        message=(
            f"{axis}: the FM's synthetic data states stereotypes in {s.rate:.1%} of its "
            f"{s.mentions} group mentions vs {r.rate:.1%} of {r.mentions} in the clients' real "
            f"text (Fisher p={p:.2g}; {s.consistent} consistent vs {s.counter} counter statements)"
        ),
        metric=Metric(
            name="stereotype_rate_increase",
            value=round(s.rate - r.rate, 6),
            threshold=params.min_rate_increase,
        ),
        evidence=tuple(
            Evidence(location=e.location, excerpt=e.excerpt) for e in synth.examples.get(axis, ())
        ),
    )
