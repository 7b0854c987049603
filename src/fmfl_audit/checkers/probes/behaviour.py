"""FMFL-R13: the FM endpoint behaves like a trusted copy of its published model.

The black-box counterpart of FMFL-R05 (which compares weights the operator holds): every probe
suite was sent to the endpoint under audit and to `foundation_model.reference_endpoint` (the
published model, served by the operator, with the same approved system prompt), and each suite's
answers are compared pair by pair (`differential`: word distribution, length and verdicts, paired
tests, Bonferroni within a suite). Suite p-values are Benjamini-Hochberg adjusted across suites; a
suite fails when q <= `alpha` and the word divergence reaches `min_divergence`. A provider that
injects instructions into the system prompt, or serves modified weights, changes how the FM
answers: this rule sees it without seeing the prompt or the weights.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field

from fmfl_audit.checkers.base import CheckContext, Checker, CheckerParams, CheckOutput
from fmfl_audit.checkers.probes._common import SUBJECT, excerpt
from fmfl_audit.checkers.probes._stats import bh
from fmfl_audit.checkers.probes._transcript import load_transcript, transcript_path
from fmfl_audit.checkers.probes.differential import SuiteDifference, compare_suite
from fmfl_audit.errors import RuleSkipped
from fmfl_audit.manifest.loader import Deployment
from fmfl_audit.manifest.model import PROBE_SUITES
from fmfl_audit.models import Area, Confidence, FindingDraft, Metric


class BehaviourParams(CheckerParams):
    """Settings of FMFL-R13."""

    alpha: float = Field(default=0.01, gt=0, lt=1, description="Benjamini-Hochberg level.")
    min_pairs: int = Field(default=12, ge=2, description="Paired answers a suite needs.")
    min_divergence: float = Field(default=0.0, ge=0, le=1)
    permutations: int = Field(default=2000, ge=100, le=100_000)


class BehaviourDriftChecker(Checker):
    """Ensure the FM endpoint answers probes like the published reference model."""

    id: ClassVar[str] = "FMFL-R13"
    title: ClassVar[str] = "Ensure the FM endpoint behaves like its published reference model"
    area: ClassVar[Area] = Area.ROBUSTNESS
    threat: ClassVar[str] = "external poisoning"
    inputs: ClassVar[tuple[str, ...]] = (
        "foundation_model.reference_endpoint",
        "foundation_model.probe_transcript",
    )
    Params = BehaviourParams
    runtime_skips: ClassVar[tuple[str, ...]] = (
        "when no probe suite has `min_pairs` probes answered by both the endpoint and the "
        "reference endpoint in the transcript",
    )

    def missing_inputs(self, deployment: Deployment) -> list[str]:
        fm = deployment.manifest.foundation_model
        missing = []
        if fm is None or fm.reference_endpoint is None:
            missing.append("foundation_model.reference_endpoint")
        if transcript_path(deployment) is None:
            missing.append("foundation_model.probe_transcript (run `fmfl-audit probe`)")
        return missing

    def run(self, ctx: CheckContext, params: Any) -> CheckOutput:
        assert isinstance(params, BehaviourParams)
        transcript = load_transcript(ctx)
        assert transcript is not None
        diffs: list[SuiteDifference] = []
        small: dict[str, int] = {}
        for suite in PROBE_SUITES:
            d = compare_suite(ctx, transcript, suite, permutations=params.permutations)
            if d is None:
                continue
            if d.pairs < params.min_pairs:
                small[suite] = d.pairs
                continue
            diffs.append(d)
        ignored = transcript.ignored_summary()
        if not diffs:
            raise RuleSkipped(
                f"{transcript.display}: no suite has {params.min_pairs} probes answered by both "
                "the endpoint and the reference endpoint" + (f"; {ignored}" if ignored else "")
            )
        qs = bh([d.p_value for d in diffs])
        out = CheckOutput()
        out.metrics[SUBJECT] = {
            "suites": {
                d.suite: d.as_metric() | {"q_value": q} for d, q in zip(diffs, qs, strict=True)
            },
            "suites_too_few_pairs": small,
        }
        for d, q in zip(diffs, qs, strict=True):
            if q <= params.alpha and d.comparison.divergence >= params.min_divergence:
                out.findings.append(
                    FindingDraft(
                        subject=SUBJECT,
                        key=f"probe:differs:{d.suite}",
                        confidence=Confidence.HIGH if q <= params.alpha / 10 else Confidence.MEDIUM,
                        message=(
                            f"the FM endpoint answers the {d.suite!r} probes unlike the reference "
                            f"model: {d.summary()}; BH q={q:.2g}"
                        ),
                        metric=Metric(name="q_value", value=q, threshold=params.alpha),
                        evidence=d.evidence(excerpt),
                    )
                )
        note = transcript.ignored_note()
        if note is not None:
            out.notes.append(note)
        return out
