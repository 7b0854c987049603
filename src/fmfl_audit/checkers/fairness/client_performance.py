"""FMFL-F08: per-client performance of the global classifier on each client's labelled holdout.

Every sequence classifier of the manifest is run (batched) on every client holdout. Per client:
accuracy; across clients with at least `min_holdout` records: the worst and best client, the gap
(best - worst), the spread (population standard deviation) and the mean accuracy per resource tier.
A finding names each client trailing the best by more than `max_accuracy_gap`, and the tier with the
lower mean accuracy when the tier gap exceeds `max_tier_gap`.
"""

from __future__ import annotations

import statistics
from typing import Any, ClassVar

from pydantic import Field

from fmfl_audit.checkers.base import (
    CheckContext,
    Checker,
    CheckerParams,
    CheckOutput,
    clients_with,
    missing_classifier,
)
from fmfl_audit.checkers.fairness._classifier import (
    load_classifier,
    predict_proba,
    sequence_classifiers,
)
from fmfl_audit.errors import CheckerError
from fmfl_audit.manifest.loader import Deployment
from fmfl_audit.manifest.model import Client, ModelSpec
from fmfl_audit.models import Area, Confidence, Evidence, FindingDraft, Metric, Severity


class ClientPerformanceParams(CheckerParams):
    """Settings of FMFL-F08."""

    max_accuracy_gap: float = Field(default=0.1, ge=0, le=1, description="Best - worst client cap.")
    max_tier_gap: float = Field(
        default=0.1, ge=0, le=1, description="Cap on the mean-accuracy gap between tiers."
    )
    min_holdout: int = Field(default=20, ge=1, description="Smaller holdouts are not graded.")
    batch_size: int = Field(default=32, ge=1)
    max_length: int = Field(default=256, ge=8)


class ClientPerformanceChecker(Checker):
    """Ensure the global model serves every client about equally well."""

    id: ClassVar[str] = "FMFL-F08"
    title: ClassVar[str] = "Ensure the global model performs comparably on every client"
    area: ClassVar[Area] = Area.FAIRNESS
    threat: ClassVar[str] = "resource disparity"
    inputs: ClassVar[tuple[str, ...]] = ("models[kind=sequence-classifier]", "clients[].holdout")
    Params = ClientPerformanceParams

    def missing_inputs(self, deployment: Deployment) -> list[str]:
        missing = missing_classifier(deployment, evaluation=False)
        if not clients_with(deployment, "holdout"):
            missing.append("clients[].holdout")
        return missing

    def run(self, ctx: CheckContext, params: Any) -> CheckOutput:
        assert isinstance(params, ClientPerformanceParams)
        out = CheckOutput()
        clients = clients_with(ctx.deployment, "holdout")
        models = sequence_classifiers(ctx)
        ctx.progress.set_total(len(models) * len(clients))
        for model in models:
            acc: dict[str, tuple[float, int]] = {}
            for c in clients:
                acc[c.id] = self._accuracy(ctx, params, model, c)
                ctx.progress.advance()
            self._assess(ctx, params, model, clients, acc, out)
        return out

    def _accuracy(
        self, ctx: CheckContext, params: ClientPerformanceParams, model: ModelSpec, client: Client
    ) -> tuple[float, int]:
        clf = load_classifier(ctx, model)
        src = client.holdout
        assert src is not None
        texts: list[str] = []
        labels: list[int] = []
        unusable = 0
        for batch in ctx.records(src, required=(src.label_field,)):
            for rec in batch:
                idx = clf.label_index(rec.label)
                if idx is None:
                    unusable += 1
                    continue
                texts.append(rec.text or "")
                labels.append(idx)
        if unusable:
            raise CheckerError(
                f"{ctx.display(src.path)}: {unusable} label(s) are not classes of model "
                f"{model.name!r} ({', '.join(clf.id2label.values())})"
            )
        if not texts:
            return 0.0, 0
        probs = predict_proba(
            clf, texts, batch_size=params.batch_size, max_length=params.max_length
        )
        pred = probs.argmax(axis=1).tolist()
        correct = sum(int(p == y) for p, y in zip(pred, labels, strict=True))
        return correct / len(texts), len(texts)

    def _assess(
        self,
        ctx: CheckContext,
        params: ClientPerformanceParams,
        model: ModelSpec,
        clients: list[Client],
        acc: dict[str, tuple[float, int]],
        out: CheckOutput,
    ) -> None:
        tiers = {c.id: c.resources.tier for c in clients}
        graded = {cid: a for cid, (a, n) in acc.items() if n >= params.min_holdout}
        figures: dict[str, Any] = {
            "clients": {
                cid: {
                    "accuracy": round(a, 6),
                    "holdout": n,
                    "tier": tiers[cid],
                    "graded": n >= params.min_holdout,
                }
                for cid, (a, n) in sorted(acc.items())
            }
        }
        out.metrics[model.subject] = figures
        if len(graded) < 2:
            figures["note"] = f"fewer than two clients with {params.min_holdout}+ holdout records"
            return
        worst = min(graded, key=lambda k: (graded[k], k))
        best = max(graded, key=lambda k: (graded[k], k))
        gap = graded[best] - graded[worst]
        by_tier: dict[str, list[float]] = {}
        for cid, a in graded.items():
            by_tier.setdefault(tiers[cid], []).append(a)
        tier_mean = {t: statistics.fmean(v) for t, v in sorted(by_tier.items())}
        figures.update(
            worst_client=worst,
            best_client=best,
            accuracy_gap=round(gap, 6),
            accuracy_std=round(statistics.pstdev(graded.values()), 6),
            mean_accuracy=round(statistics.fmean(graded.values()), 6),
            tier_mean_accuracy={t: round(v, 6) for t, v in tier_mean.items()},
        )
        # Every client trailing the best by more than the cap is a finding (ties at the bottom
        # are all named, not only the first).
        for cid in sorted(graded, key=lambda k: (graded[k], k)):
            lag = graded[best] - graded[cid]
            if lag <= params.max_accuracy_gap:
                break
            holdout = next(c.holdout for c in clients if c.id == cid)
            assert holdout is not None
            n = acc[cid][1]
            out.findings.append(
                FindingDraft(
                    subject=f"client:{cid}",
                    key=f"{model.name}:accuracy-gap",
                    confidence=(
                        Confidence.HIGH if n >= 5 * params.min_holdout else Confidence.MEDIUM
                    ),
                    message=(
                        f"model {model.name} reaches {graded[cid]:.0%} accuracy on client "
                        f"{cid}'s holdout vs {graded[best]:.0%} on {best} (gap {lag:.2f})"
                    ),
                    metric=Metric(
                        name="accuracy_gap", value=round(lag, 6), threshold=params.max_accuracy_gap
                    ),
                    evidence=(Evidence(location=ctx.display(holdout.path)),),
                )
            )
        if len(tier_mean) >= 2:
            lo = min(tier_mean, key=lambda t: (tier_mean[t], t))
            hi = max(tier_mean, key=lambda t: (tier_mean[t], t))
            tgap = tier_mean[hi] - tier_mean[lo]
            figures["tier_accuracy_gap"] = round(tgap, 6)
            if tgap > params.max_tier_gap:
                out.findings.append(
                    FindingDraft(
                        subject=f"tier:{lo}",
                        key=f"{model.name}:tier-gap",
                        severity=Severity.MEDIUM,
                        confidence=Confidence.MEDIUM,
                        message=(
                            f"model {model.name} averages {tier_mean[lo]:.0%} accuracy on "
                            f"{lo} clients vs {tier_mean[hi]:.0%} on {hi} clients"
                        ),
                        metric=Metric(
                            name="tier_accuracy_gap",
                            value=round(tgap, 6),
                            threshold=params.max_tier_gap,
                        ),
                    )
                )
