"""FMFL-F03: group fairness of an FL model's predictions (fairlearn `MetricFrame`).

Per sensitive feature: selection rate, accuracy, TPR and FPR per group; demographic parity difference
and ratio (a ratio under 0.8 fails the four-fifths rule) and equalized odds difference. Groups smaller
than `min_group_size` are reported but left out of the graded comparison.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field

from fmfl_audit.checkers.base import CheckContext, Checker, CheckerParams, CheckOutput
from fmfl_audit.errors import CheckerError
from fmfl_audit.manifest.loader import Deployment
from fmfl_audit.manifest.model import ModelSpec
from fmfl_audit.models import Area, Confidence, Evidence, FindingDraft, Metric, Severity


class GroupFairnessParams(CheckerParams):
    """Settings of FMFL-F03."""

    min_dp_ratio: float = Field(default=0.8, ge=0, le=1, description="Four-fifths rule.")
    max_eo_difference: float = Field(default=0.2, ge=0, le=1)
    min_group_size: int = Field(default=30, ge=1, description="Smaller groups are not graded.")


def _truthy(value: Any, positive: Any) -> int:
    return int(str(value).strip().lower() == str(positive).strip().lower())


class GroupFairnessChecker(Checker):
    """Ensure the FL model treats sensitive groups alike."""

    id: ClassVar[str] = "FMFL-F03"
    title: ClassVar[str] = "Ensure the FL model meets group-fairness thresholds"
    area: ClassVar[Area] = Area.FAIRNESS
    threat: ClassVar[str] = "underrepresented attributes"
    inputs: ClassVar[tuple[str, ...]] = ("models[kind=predictions]",)
    Params = GroupFairnessParams

    def missing_inputs(self, deployment: Deployment) -> list[str]:
        if not [m for m in deployment.manifest.models if m.kind == "predictions"]:
            return ["models[] of kind 'predictions' (y_true, y_pred, sensitive columns)"]
        return []

    def run(self, ctx: CheckContext, params: Any) -> CheckOutput:
        assert isinstance(params, GroupFairnessParams)
        out = CheckOutput()
        for model in ctx.deployment.manifest.models:
            if model.kind == "predictions":
                self._assess(ctx, params, model, out)
        return out

    def _features(self, ctx: CheckContext, model: ModelSpec) -> tuple[str, ...]:
        assert model.predictions is not None
        feats = model.predictions.sensitive_features
        if not feats and ctx.deployment.manifest.evaluation is not None:
            feats = ctx.deployment.manifest.evaluation.sensitive_features
        if not feats:
            raise CheckerError(
                f"model {model.name!r}: no sensitive features (set predictions.sensitive_features "
                "or evaluation.sensitive_features)"
            )
        return feats

    def _assess(
        self, ctx: CheckContext, params: GroupFairnessParams, model: ModelSpec, out: CheckOutput
    ) -> None:
        import numpy as np

        preds = model.predictions
        assert preds is not None
        feats = self._features(ctx, model)
        y_true: list[int] = []
        y_pred: list[int] = []
        groups: dict[str, list[str]] = {f: [] for f in feats}
        src = preds.as_source()
        for batch in ctx.records(src, require_text=False, required=(preds.y_true, preds.y_pred, *feats)):
            for rec in batch:
                y_true.append(_truthy(rec.data[preds.y_true], preds.positive_label))
                y_pred.append(_truthy(rec.data[preds.y_pred], preds.positive_label))
                for f in feats:
                    groups[f].append(str(rec.data[f]))
        display = ctx.display(preds.path)
        if not y_true:
            raise CheckerError(f"{display}: no usable prediction rows")
        yt, yp = np.asarray(y_true), np.asarray(y_pred)
        figures: dict[str, Any] = {"records": len(y_true)}
        for f in feats:
            figures[f] = self._feature(params, model, f, yt, yp, np.asarray(groups[f]), display, out)
        out.metrics[model.subject] = figures

    def _feature(
        self,
        params: GroupFairnessParams,
        model: ModelSpec,
        feature: str,
        yt: Any,
        yp: Any,
        sf: Any,
        display: str,
        out: CheckOutput,
    ) -> dict[str, Any]:
        from fairlearn.metrics import (
            MetricFrame,
            count,
            demographic_parity_difference,
            demographic_parity_ratio,
            equalized_odds_difference,
            false_positive_rate,
            selection_rate,
            true_positive_rate,
        )
        from sklearn.metrics import accuracy_score

        frame = MetricFrame(
            metrics={
                "count": count,
                "selection_rate": selection_rate,
                "accuracy": accuracy_score,
                "tpr": true_positive_rate,
                "fpr": false_positive_rate,
            },
            y_true=yt,
            y_pred=yp,
            sensitive_features=sf,
        )
        by_group = {
            str(g): {k: (int(v) if k == "count" else _num(v)) for k, v in row.items()}
            for g, row in frame.by_group.to_dict(orient="index").items()
        }
        graded = [g for g, row in by_group.items() if row["count"] >= params.min_group_size]
        result: dict[str, Any] = {"groups": by_group, "graded_groups": sorted(graded)}
        if len(graded) < 2:
            result["note"] = f"fewer than two groups of at least {params.min_group_size} records"
            return result
        keep = [str(v) in graded for v in sf]
        yt_g, yp_g, sf_g = yt[keep], yp[keep], sf[keep]
        dpd = float(demographic_parity_difference(yt_g, yp_g, sensitive_features=sf_g))
        dpr = float(demographic_parity_ratio(yt_g, yp_g, sensitive_features=sf_g))
        eod = float(equalized_odds_difference(yt_g, yp_g, sensitive_features=sf_g))
        result.update(
            demographic_parity_difference=round(dpd, 6),
            demographic_parity_ratio=round(dpr, 6),
            equalized_odds_difference=round(eod, 6),
        )
        rates = {g: by_group[g]["selection_rate"] for g in graded}
        lo, hi = min(rates, key=rates.__getitem__), max(rates, key=rates.__getitem__)
        ev = (Evidence(location=display),)
        small = min(by_group[g]["count"] for g in graded)
        conf = Confidence.HIGH if small >= 4 * params.min_group_size else Confidence.MEDIUM
        if dpr < params.min_dp_ratio:
            out.findings.append(
                FindingDraft(
                    subject=model.subject,
                    key=f"{feature}:dp-ratio",
                    confidence=conf,
                    message=(
                        f"model {model.name} selects {feature}={lo} at {rates[lo]:.2f} vs "
                        f"{feature}={hi} at {rates[hi]:.2f}: demographic parity ratio {dpr:.2f} "
                        f"fails the four-fifths rule"
                    ),
                    metric=Metric(
                        name="demographic_parity_ratio", value=round(dpr, 6),
                        threshold=params.min_dp_ratio,
                    ),
                    evidence=ev,
                )
            )
        if eod > params.max_eo_difference:
            out.findings.append(
                FindingDraft(
                    subject=model.subject,
                    key=f"{feature}:eo-difference",
                    severity=Severity.MEDIUM,
                    confidence=conf,
                    message=(
                        f"model {model.name}: equalized odds difference {eod:.2f} across "
                        f"{feature} (error rates differ between groups)"
                    ),
                    metric=Metric(
                        name="equalized_odds_difference", value=round(eod, 6),
                        threshold=params.max_eo_difference,
                    ),
                    evidence=ev,
                )
            )
        return result


def _num(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    if f != f:
        return None
    return round(f, 6)
