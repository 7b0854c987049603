"""FMFL-R10: distillation teacher quality on client holdouts, from the teacher's predictions file.

`foundation_model.teacher_predictions` holds one record per holdout input: the client id, the true
label, the teacher's predicted label and its confidence in that prediction. Per client: accuracy,
expected calibration error (ECE: equal-width confidence bins, sum over bins of the bin's share times
|accuracy - mean confidence|) and the share of low-confidence predictions. Running the FM teacher
itself on the holdouts is not done here: the rule audits the outputs the federation distilled from.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, ClassVar

from pydantic import Field

from fmfl_audit.checkers.base import CheckContext, Checker, CheckerParams, CheckOutput
from fmfl_audit.errors import CheckerError
from fmfl_audit.manifest.loader import Deployment
from fmfl_audit.models import Area, Confidence, Evidence, FindingDraft, Metric, Severity


class TeacherParams(CheckerParams):
    """Settings of FMFL-R10."""

    min_accuracy: float = Field(default=0.7, ge=0, le=1)
    max_ece: float = Field(default=0.1, ge=0, le=1)
    max_low_confidence_share: float = Field(default=0.3, ge=0, le=1)
    low_confidence: float = Field(default=0.6, gt=0, le=1, description="Below this is low.")
    bins: int = Field(default=10, ge=2, le=100)
    min_records: int = Field(default=20, ge=1, description="Per client, for a finding.")
    client_field: str = "client_id"
    label_field: str = "label"
    pred_field: str = "pred"
    prob_fields: tuple[str, ...] = Field(
        default=("prob", "confidence"), description="Confidence columns, first present wins."
    )


def expected_calibration_error(conf: list[float], correct: list[bool], bins: int) -> float:
    """ECE with `bins` equal-width bins over [0, 1]."""
    n = len(conf)
    if n == 0:
        return 0.0
    sums: dict[int, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0])
    for c, ok in zip(conf, correct, strict=True):
        b = min(int(c * bins), bins - 1)
        s = sums[b]
        s[0] += 1
        s[1] += c
        s[2] += float(ok)
    return sum(s[0] / n * abs(s[2] / s[0] - s[1] / s[0]) for s in sums.values())


class TeacherQualityChecker(Checker):
    """Ensure the distillation teacher is accurate and calibrated on client data."""

    id: ClassVar[str] = "FMFL-R10"
    title: ClassVar[str] = (
        "Ensure the distillation teacher is accurate and calibrated on client data"
    )
    area: ClassVar[Area] = Area.ROBUSTNESS
    threat: ClassVar[str] = "OOD amplification"
    inputs: ClassVar[tuple[str, ...]] = ("foundation_model.teacher_predictions",)
    Params = TeacherParams

    def missing_inputs(self, deployment: Deployment) -> list[str]:
        fm = deployment.manifest.foundation_model
        return [] if fm and fm.teacher_predictions else ["foundation_model.teacher_predictions"]

    def run(self, ctx: CheckContext, params: Any) -> CheckOutput:
        assert isinstance(params, TeacherParams)
        fm = ctx.deployment.manifest.foundation_model
        assert fm is not None and fm.teacher_predictions is not None
        source = fm.teacher_predictions
        per: dict[str, tuple[list[float], list[bool]]] = defaultdict(lambda: ([], []))
        bad = 0
        required = (params.client_field, params.label_field, params.pred_field)
        for batch in ctx.records(source, require_text=False, required=required):
            for rec in batch:
                prob = next((rec.data[f] for f in params.prob_fields if f in rec.data), None)
                try:
                    conf = float(prob)  # type: ignore[arg-type]
                    if not 0 <= conf <= 1:
                        raise ValueError
                except (TypeError, ValueError):
                    bad += 1
                    continue
                confs, oks = per[str(rec.data[params.client_field])]
                confs.append(conf)
                oks.append(str(rec.data[params.label_field]) == str(rec.data[params.pred_field]))
        if not per:
            raise CheckerError(f"{ctx.display(source.path)}: no usable teacher predictions")
        out = CheckOutput(
            notes=["the FM teacher itself is not run: its recorded predictions are audited"]
        )
        if bad:
            out.notes.append(f"{bad} prediction(s) without a confidence in [0, 1] were skipped")
        display = ctx.display(source.path)
        for cid in sorted(per):
            confs, oks = per[cid]
            n = len(oks)
            # Rounded before the comparison so float noise (0.1000000002) never fires a rule.
            acc = round(sum(oks) / n, 6)
            ece = round(expected_calibration_error(confs, oks, params.bins), 6)
            low = round(sum(1 for c in confs if c < params.low_confidence) / n, 6)
            subject = f"client:{cid}"
            out.metrics[subject] = {
                "predictions": n,
                "accuracy": round(acc, 6),
                "ece": round(ece, 6),
                "low_confidence_share": round(low, 6),
            }
            if n < params.min_records:
                continue
            conf_level = Confidence.HIGH if n >= 100 else Confidence.MEDIUM
            ev = (Evidence(location=display),)
            if acc < params.min_accuracy:
                out.findings.append(
                    FindingDraft(
                        subject=subject,
                        key="accuracy",
                        confidence=conf_level,
                        message=f"the teacher is {acc:.0%} accurate on client {cid}'s holdout "
                        f"({n} predictions)",
                        metric=Metric(
                            name="accuracy", value=round(acc, 6), threshold=params.min_accuracy
                        ),
                        evidence=ev,
                    )
                )
            if ece > params.max_ece:
                out.findings.append(
                    FindingDraft(
                        subject=subject,
                        key="calibration",
                        confidence=conf_level,
                        message=f"the teacher is miscalibrated on client {cid}'s holdout "
                        f"(ECE {ece:.3f})",
                        metric=Metric(name="ece", value=round(ece, 6), threshold=params.max_ece),
                        evidence=ev,
                    )
                )
            if low > params.max_low_confidence_share:
                out.findings.append(
                    FindingDraft(
                        subject=subject,
                        key="low-confidence",
                        severity=Severity.LOW,
                        confidence=conf_level,
                        message=f"{low:.0%} of the teacher's predictions on client {cid}'s holdout "
                        f"have confidence below {params.low_confidence}",
                        metric=Metric(
                            name="low_confidence_share",
                            value=round(low, 6),
                            threshold=params.max_low_confidence_share,
                        ),
                        evidence=ev,
                    )
                )
        return out
