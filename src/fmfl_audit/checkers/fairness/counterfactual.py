"""FMFL-F04: counterfactual sensitivity of a sequence classifier to demographic terms.

Each evaluation text gets counterfactual twins: one with every gendered word swapped (WinoBias and
debiaswe lists: `she`->`he`, `girl`->`boy`, case kept), and, per HolisticBias axis in `axes`, one in
which the first descriptor mention of that axis is replaced by a descriptor of another group of the
same axis (chosen with a seeded generator). Original and twins are classified in batches. Per swap
family: the flip rate (predicted class differs) and the mean absolute change in the probability of
the class predicted for the original. A family fails when at least `min_swapped` texts were swapped
and the flip rate exceeds `max_flip_rate` or the mean change exceeds `max_mean_change`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import Field

from fmfl_audit.checkers.base import (
    CheckContext,
    Checker,
    CheckerParams,
    CheckOutput,
    missing_classifier,
)
from fmfl_audit.checkers.fairness._classifier import (
    load_classifier,
    predict_proba,
    sequence_classifiers,
)
from fmfl_audit.checkers.fairness._lexicon import (
    DemographicLexicon,
    load_gender_swaps,
    match_case,
    shared_lexicon,
    tokenize,
)
from fmfl_audit.checkers.probes.hooks import Judge, probe_missing, with_probes
from fmfl_audit.checkers.probes.params import CounterfactualProbeParams
from fmfl_audit.errors import CheckerError
from fmfl_audit.manifest.loader import Deployment
from fmfl_audit.manifest.model import ModelSpec
from fmfl_audit.models import Area, Confidence, Evidence, FindingDraft, Metric

GENDER_FAMILY = "gender"


class CounterfactualParams(CheckerParams):
    """Settings of FMFL-F04."""

    axes: tuple[str, ...] = Field(
        default=(
            "race_ethnicity",
            "religion",
            "age",
            "ability",
            "sexual_orientation",
            "nationality",
        ),
        description="HolisticBias axes swapped within the axis (gender uses the swap lists).",
    )
    gender_swaps: bool = True
    max_flip_rate: float = Field(default=0.05, ge=0, le=1)
    max_mean_change: float = Field(default=0.05, ge=0, le=1)
    min_swapped: int = Field(default=20, ge=1, description="Swapped texts a family needs.")
    noun_window: int = Field(default=2, ge=1, le=5)
    max_texts: int | None = Field(default=None, ge=1, description="Cap on evaluation texts read.")
    batch_size: int = Field(default=32, ge=1)
    max_length: int = Field(default=256, ge=8)
    max_examples: int = Field(default=3, ge=0, le=20)
    probe: CounterfactualProbeParams = Field(default_factory=CounterfactualProbeParams)


@dataclass(frozen=True)
class _Twin:
    family: str
    origin: int
    text: str
    location: str


def gender_swap(text: str, table: dict[str, str]) -> str | None:
    """`text` with every word of `table` swapped (case kept); None when nothing was swapped."""
    toks, spans = tokenize(text)
    parts: list[str] = []
    pos = 0
    changed = False
    for tok, (s, e) in zip(toks, spans, strict=True):
        repl = table.get(tok)
        if repl is None:
            continue
        parts.append(text[pos:s])
        parts.append(match_case(text[s:e], repl))
        pos = e
        changed = True
    if not changed:
        return None
    parts.append(text[pos:])
    return "".join(parts)


def axis_swap(
    text: str, lex: DemographicLexicon, axis: str, rng: random.Random, noun_window: int
) -> str | None:
    """`text` with its first `axis` descriptor replaced by one of another group; None if none."""
    toks, spans = tokenize(text)
    for m in lex.mentions(toks, axes=(axis,), noun_window=noun_window):
        if m.term.kind not in ("descriptor", "plural"):
            continue
        alts = lex.alternatives(axis, m.group)
        if not alts:
            return None
        alt = rng.choice(alts).text
        if m.term.kind == "plural":
            alt += "s"
        s, e = spans[m.start][0], spans[m.end - 1][1]
        return text[:s] + match_case(text[s:e], alt) + text[e:]
    return None


class CounterfactualChecker(Checker):
    """Ensure predictions do not change when only demographic terms change."""

    id: ClassVar[str] = "FMFL-F04"
    title: ClassVar[str] = "Ensure predictions do not flip when demographic terms are swapped"
    area: ClassVar[Area] = Area.FAIRNESS
    threat: ClassVar[str] = "underrepresented attributes"
    inputs: ClassVar[tuple[str, ...]] = ("models[kind=sequence-classifier]", "evaluation")
    Params = CounterfactualParams

    def missing_inputs(self, deployment: Deployment) -> list[str]:
        return probe_missing(deployment, missing_classifier(deployment, evaluation=True))

    def run(self, ctx: CheckContext, params: Any) -> CheckOutput:
        assert isinstance(params, CounterfactualParams)
        # Probe hook: paired prompts sent to the live FM (fmfl-audit probe).
        ready = not missing_classifier(ctx.deployment, evaluation=True)
        own = self._classifiers(ctx, params) if ready else None
        return with_probes(ctx, Judge.COUNTERFACTUAL, params.probe, own)

    def _classifiers(self, ctx: CheckContext, params: CounterfactualParams) -> CheckOutput:
        lex = shared_lexicon(ctx.cache)
        unknown = [a for a in params.axes if a not in lex.groups]
        if unknown:
            raise CheckerError(f"unknown HolisticBias axis {unknown[0]!r}")
        table = ctx.cache.get("fairness:gender-swaps", load_gender_swaps)
        texts, twins = self._twins(ctx, params, lex, table)
        out = CheckOutput(notes=[f"{len(twins)} counterfactual text(s) from {len(texts)} text(s)"])
        models = sequence_classifiers(ctx)
        ctx.progress.set_total(len(models))
        for model in models:
            self._assess(ctx, params, model, texts, twins, out)
            ctx.progress.advance()
        return out

    def _twins(
        self,
        ctx: CheckContext,
        params: CounterfactualParams,
        lex: DemographicLexicon,
        table: dict[str, str],
    ) -> tuple[list[str], list[_Twin]]:
        ev = ctx.deployment.manifest.evaluation
        assert ev is not None
        rngs = {a: random.Random(ctx.rule_seed(a)) for a in params.axes}
        texts: list[str] = []
        twins: list[_Twin] = []
        cap = params.max_texts
        for batch in ctx.records(ev.as_source()):
            if cap is not None and len(texts) >= cap:
                break
            for rec in batch[: None if cap is None else cap - len(texts)]:
                text = rec.text or ""
                i = len(texts)
                texts.append(text)
                if params.gender_swaps:
                    swapped = gender_swap(text, table)
                    if swapped is not None and swapped != text:
                        twins.append(_Twin(GENDER_FAMILY, i, swapped, rec.location))
                for axis in params.axes:
                    swapped = axis_swap(text, lex, axis, rngs[axis], params.noun_window)
                    if swapped is not None and swapped != text:
                        twins.append(_Twin(axis, i, swapped, rec.location))
        return texts, twins

    def _assess(
        self,
        ctx: CheckContext,
        params: CounterfactualParams,
        model: ModelSpec,
        texts: list[str],
        twins: list[_Twin],
        out: CheckOutput,
    ) -> None:
        import numpy as np

        clf = load_classifier(ctx, model)
        kw = {"batch_size": params.batch_size, "max_length": params.max_length}
        used = sorted({t.origin for t in twins})
        base = np.zeros((len(texts), clf.num_labels))
        if used:
            base[used] = predict_proba(clf, [texts[i] for i in used], **kw)
        twin_p = predict_proba(clf, [t.text for t in twins], **kw)
        figures: dict[str, Any] = {"texts": len(texts), "texts_with_swaps": len(used)}
        families = [GENDER_FAMILY] if params.gender_swaps else []
        families += list(params.axes)
        for fam in families:
            rows = [k for k, t in enumerate(twins) if t.family == fam]
            if not rows:
                figures[fam] = {"swapped": 0}
                continue
            origins = np.asarray([twins[k].origin for k in rows])
            pred0 = base[origins].argmax(axis=1)
            pred1 = twin_p[rows].argmax(axis=1)
            p0 = base[origins, pred0]
            p1 = twin_p[rows, pred0]
            flips = pred0 != pred1
            change = np.abs(p0 - p1)
            flip_rate = float(flips.mean())
            mean_change = float(change.mean())
            figures[fam] = {
                "swapped": len(rows),
                "flips": int(flips.sum()),
                "flip_rate": round(flip_rate, 6),
                "mean_abs_change": round(mean_change, 6),
                "max_abs_change": round(float(change.max()), 6),
            }
            if len(rows) < params.min_swapped:
                figures[fam]["graded"] = False
                continue
            figures[fam]["graded"] = True
            if flip_rate <= params.max_flip_rate and mean_change <= params.max_mean_change:
                continue
            flipped = [twins[rows[j]].location for j in np.flatnonzero(flips)]
            by_flip = flip_rate > params.max_flip_rate
            out.findings.append(
                FindingDraft(
                    subject=model.subject,
                    key=f"{fam}:counterfactual",
                    confidence=Confidence.HIGH
                    if len(rows) >= 5 * params.min_swapped
                    else Confidence.MEDIUM,
                    message=(
                        f"model {model.name} changes its prediction on {flip_rate:.0%} of "
                        f"{len(rows)} evaluation texts when {fam} terms are swapped (mean "
                        f"probability change {mean_change:.2f})"
                    ),
                    metric=Metric(
                        name="flip_rate" if by_flip else "mean_abs_change",
                        value=round(flip_rate if by_flip else mean_change, 6),
                        threshold=params.max_flip_rate if by_flip else params.max_mean_change,
                    ),
                    evidence=tuple(
                        Evidence(location=loc) for loc in flipped[: params.max_examples]
                    ),
                )
            )
        out.metrics[model.subject] = figures
