"""FMFL-F03: group fairness of an FL model's predictions (fairlearn `MetricFrame`).

Predictions come from a predictions file (`models[] kind predictions`) or from running a sequence
classifier (`models[] kind sequence-classifier`) over `evaluation` (batched, inference mode). Per
sensitive feature, and per intersection of features (`gender&esl`): selection rate, accuracy, TPR
and FPR per group; demographic parity difference and ratio (a ratio under 0.8 fails the four-fifths
rule) and equalized odds difference, each with a seeded percentile bootstrap interval. Groups
smaller than `min_group_size` are reported but left out of the graded comparison.
"""

from __future__ import annotations

from itertools import combinations
from typing import Any, ClassVar

from pydantic import Field

from fmfl_audit.checkers.base import CheckContext, Checker, CheckerParams, CheckOutput
from fmfl_audit.checkers.fairness._classifier import (
    load_classifier,
    predict_proba,
    sequence_classifiers,
)
from fmfl_audit.errors import CheckerError
from fmfl_audit.manifest.loader import Deployment
from fmfl_audit.manifest.model import ModelSpec
from fmfl_audit.models import Area, Confidence, Evidence, FindingDraft, Metric, Severity

INTERSECTION_SEP = "&"


class GroupFairnessParams(CheckerParams):
    """Settings of FMFL-F03."""

    min_dp_ratio: float = Field(default=0.8, ge=0, le=1, description="Four-fifths rule.")
    max_eo_difference: float = Field(default=0.2, ge=0, le=1)
    min_group_size: int = Field(default=30, ge=1, description="Smaller groups are not graded.")
    intersections: bool = Field(
        default=True, description="Also grade combinations of sensitive features (pairs)."
    )
    bootstrap: int = Field(
        default=200, ge=0, le=10000, description="Bootstrap resamples for intervals; 0 = none."
    )
    interval: float = Field(default=0.95, gt=0, lt=1, description="Bootstrap interval coverage.")
    positive_label: str | int = Field(
        default=1, description="The favourable class, for models run on `evaluation`."
    )
    batch_size: int = Field(default=32, ge=1)
    max_length: int = Field(default=256, ge=8)


def _truthy(value: Any, positive: Any) -> int:
    return int(str(value).strip().lower() == str(positive).strip().lower())


class GroupFairnessChecker(Checker):
    """Ensure the FL model treats sensitive groups alike."""

    id: ClassVar[str] = "FMFL-F03"
    title: ClassVar[str] = "Ensure the FL model meets group-fairness thresholds"
    area: ClassVar[Area] = Area.FAIRNESS
    threat: ClassVar[str] = "underrepresented attributes"
    inputs: ClassVar[tuple[str, ...]] = (
        "models[kind=predictions] or models[kind=sequence-classifier] + evaluation",
    )
    Params = GroupFairnessParams

    def missing_inputs(self, deployment: Deployment) -> list[str]:
        m = deployment.manifest
        if any(x.kind == "predictions" for x in m.models):
            return []
        if any(x.kind == "sequence-classifier" for x in m.models) and m.evaluation is not None:
            if m.evaluation.sensitive_features:
                return []
            return ["evaluation.sensitive_features"]
        return [
            "models[] of kind 'predictions' (y_true, y_pred, sensitive columns), or a "
            "'sequence-classifier' with evaluation data"
        ]

    def run(self, ctx: CheckContext, params: Any) -> CheckOutput:
        assert isinstance(params, GroupFairnessParams)
        out = CheckOutput()
        manifest = ctx.deployment.manifest
        ev = manifest.evaluation
        classifiers = sequence_classifiers(ctx) if ev is not None else []
        todo = [m for m in manifest.models if m.kind == "predictions" or m in classifiers]
        ctx.progress.set_total(len(todo))
        for model in todo:
            if model.kind == "predictions":
                yt, yp, feats, display = self._read_predictions(ctx, model)
            else:
                yt, yp, feats, display = self._run_classifier(ctx, params, model)
            self._assess(ctx, params, model, yt, yp, feats, display, out)
            ctx.progress.advance()
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

    def _read_predictions(
        self, ctx: CheckContext, model: ModelSpec
    ) -> tuple[list[int], list[int], dict[str, list[str]], str]:
        preds = model.predictions
        assert preds is not None
        feats = self._features(ctx, model)
        y_true: list[int] = []
        y_pred: list[int] = []
        groups: dict[str, list[str]] = {f: [] for f in feats}
        src = preds.as_source()
        required = (preds.y_true, preds.y_pred, *feats)
        for batch in ctx.records(src, require_text=False, required=required):
            for rec in batch:
                y_true.append(_truthy(rec.data[preds.y_true], preds.positive_label))
                y_pred.append(_truthy(rec.data[preds.y_pred], preds.positive_label))
                for f in feats:
                    groups[f].append(str(rec.data[f]))
        return y_true, y_pred, groups, ctx.display(preds.path)

    def _run_classifier(
        self, ctx: CheckContext, params: GroupFairnessParams, model: ModelSpec
    ) -> tuple[list[int], list[int], dict[str, list[str]], str]:
        ev = ctx.deployment.manifest.evaluation
        assert ev is not None
        feats = ev.sensitive_features
        if not feats:
            raise CheckerError("evaluation has no sensitive_features")
        clf = load_classifier(ctx, model)
        pos = clf.label_index(params.positive_label)
        if pos is None:
            raise CheckerError(
                f"model {model.name!r}: positive_label {params.positive_label!r} is not one of its "
                f"classes ({', '.join(clf.id2label.values())})"
            )
        texts: list[str] = []
        y_true: list[int] = []
        groups: dict[str, list[str]] = {f: [] for f in feats}
        unusable = 0
        for batch in ctx.records(ev.as_source(), required=(ev.label_field, *feats)):
            for rec in batch:
                idx = clf.label_index(rec.label)
                if idx is None:
                    unusable += 1
                    continue
                texts.append(rec.text or "")
                y_true.append(int(idx == pos))
                for f in feats:
                    groups[f].append(str(rec.data[f]))
        if unusable:
            raise CheckerError(
                f"{ctx.display(ev.data)}: {unusable} label(s) are not classes of model "
                f"{model.name!r} ({', '.join(clf.id2label.values())})"
            )
        probs = predict_proba(
            clf, texts, batch_size=params.batch_size, max_length=params.max_length
        )
        y_pred = [int(i == pos) for i in probs.argmax(axis=1).tolist()]
        return y_true, y_pred, groups, ctx.display(ev.data)

    def _assess(
        self,
        ctx: CheckContext,
        params: GroupFairnessParams,
        model: ModelSpec,
        y_true: list[int],
        y_pred: list[int],
        groups: dict[str, list[str]],
        display: str,
        out: CheckOutput,
    ) -> None:
        import numpy as np

        if not y_true:
            raise CheckerError(f"{display}: no usable prediction rows")
        yt, yp = np.asarray(y_true), np.asarray(y_pred)
        features = dict(groups)
        if params.intersections and len(groups) > 1:
            for a, b in combinations(list(groups), 2):
                features[f"{a}{INTERSECTION_SEP}{b}"] = [
                    f"{x}{INTERSECTION_SEP}{y}" for x, y in zip(groups[a], groups[b], strict=True)
                ]
        figures: dict[str, Any] = {"records": len(y_true), "source": display}
        for f, values in features.items():
            seed = ctx.rule_seed(model.name, f)
            figures[f] = self._feature(
                params, model, f, yt, yp, np.asarray(values), display, seed, out
            )
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
        seed: int,
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
        by_group: dict[str, dict[str, Any]] = {
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
        if params.bootstrap:
            result["intervals"] = bootstrap_intervals(
                yt_g, yp_g, sf_g, n=params.bootstrap, coverage=params.interval, seed=seed
            )
        rates = {g: by_group[g]["selection_rate"] for g in graded}
        lo, hi = min(rates, key=rates.__getitem__), max(rates, key=rates.__getitem__)
        ev = (Evidence(location=display),)
        small = min(by_group[g]["count"] for g in graded)
        conf = Confidence.HIGH if small >= 4 * params.min_group_size else Confidence.MEDIUM
        ci = result.get("intervals", {})
        if dpr < params.min_dp_ratio:
            band = ci.get("demographic_parity_ratio")
            out.findings.append(
                FindingDraft(
                    subject=model.subject,
                    key=f"{feature}:dp-ratio",
                    confidence=conf,
                    message=(
                        f"model {model.name} selects {feature}={lo} at {rates[lo]:.2f} vs "
                        f"{feature}={hi} at {rates[hi]:.2f}: demographic parity ratio {dpr:.2f}"
                        + (
                            f" ({params.interval:.0%} CI {band[0]:.2f}-{band[1]:.2f})"
                            if band
                            else ""
                        )
                        + " fails the four-fifths rule"
                    ),
                    metric=Metric(
                        name="demographic_parity_ratio",
                        value=round(dpr, 6),
                        threshold=params.min_dp_ratio,
                    ),
                    evidence=ev,
                )
            )
        if eod > params.max_eo_difference:
            band = ci.get("equalized_odds_difference")
            out.findings.append(
                FindingDraft(
                    subject=model.subject,
                    key=f"{feature}:eo-difference",
                    severity=Severity.MEDIUM,
                    confidence=conf,
                    message=(
                        f"model {model.name}: equalized odds difference {eod:.2f}"
                        + (
                            f" ({params.interval:.0%} CI {band[0]:.2f}-{band[1]:.2f})"
                            if band
                            else ""
                        )
                        + f" across {feature} (error rates differ between groups)"
                    ),
                    metric=Metric(
                        name="equalized_odds_difference",
                        value=round(eod, 6),
                        threshold=params.max_eo_difference,
                    ),
                    evidence=ev,
                )
            )
        return result


def group_disparities(yt: Any, yp: Any, codes: Any, k: int) -> tuple[float, float, float]:
    """(DP difference, DP ratio, EO difference) of 0/1 arrays over group codes 0..k-1.

    The same definitions as fairlearn's functions (max-min selection rate, min/max selection rate,
    max of the TPR and FPR ranges), in plain numpy so a bootstrap can afford thousands of them.
    Groups absent from a resample are left out; an undefined rate (no positives) is ignored.
    """
    import numpy as np

    n = np.bincount(codes, minlength=k).astype(float)
    sel = np.bincount(codes, weights=yp, minlength=k)
    pos = np.bincount(codes, weights=yt, minlength=k)
    tp = np.bincount(codes, weights=yt * yp, minlength=k)
    present = n > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        sr = (sel / n)[present]
        tpr = (tp / pos)[present]
        fpr = ((sel - tp) / (n - pos))[present]
    dpd = float(sr.max() - sr.min())
    dpr = float(sr.min() / sr.max()) if sr.max() > 0 else 1.0

    def spread(x: Any) -> float:
        x = x[np.isfinite(x)]
        return float(x.max() - x.min()) if x.size else 0.0

    return dpd, dpr, max(spread(tpr), spread(fpr))


def bootstrap_intervals(
    yt: Any, yp: Any, sf: Any, *, n: int, coverage: float, seed: int
) -> dict[str, list[float]]:
    """Percentile bootstrap intervals of DP difference, DP ratio and EO difference."""
    import numpy as np

    _, codes = np.unique(sf, return_inverse=True)
    k = int(codes.max()) + 1
    yt_f, yp_f = yt.astype(float), yp.astype(float)
    rng = np.random.default_rng(seed)
    stats = np.empty((n, 3))
    size = len(yt)
    for b in range(n):
        idx = rng.integers(0, size, size)
        stats[b] = group_disparities(yt_f[idx], yp_f[idx], codes[idx], k)
    alpha = (1 - coverage) / 2
    lo, hi = np.quantile(stats, [alpha, 1 - alpha], axis=0)
    names = (
        "demographic_parity_difference",
        "demographic_parity_ratio",
        "equalized_odds_difference",
    )
    return {m: [round(float(lo[i]), 6), round(float(hi[i]), 6)] for i, m in enumerate(names)}


def _num(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    if f != f:
        return None
    return round(f, 6)
