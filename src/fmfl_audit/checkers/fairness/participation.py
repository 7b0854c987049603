"""FMFL-F07: participation disparity across clients, resource tiers and FM access modes.

From the participation log (one row per client and round it took part in; a client absent from a
round did not take part, as did a row with `num_samples` 0): the participation rate of each client =
rounds taken part in / rounds held (`federation.rounds`, or the distinct rounds of the log when that
is larger or unset). Per resource tier and per FM access mode (`local` copy vs quota-limited
`shared-api`): the mean participation rate of their clients and the mean aggregation-weight share
per client. Findings: a tier or access mode whose mean rate is under `min_rate_ratio` times the best
one's; shared-API clients whose mean weight share per client is under `min_weight_ratio` times local
clients'; single clients under `min_client_rate`.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from typing import Any, ClassVar

from pydantic import Field

from fmfl_audit.checkers.base import CheckContext, Checker, CheckerParams, CheckOutput
from fmfl_audit.errors import CheckerError
from fmfl_audit.manifest.loader import Deployment
from fmfl_audit.models import Area, Confidence, Evidence, FindingDraft, Metric, Severity


class ParticipationParams(CheckerParams):
    """Settings of FMFL-F07."""

    min_rate_ratio: float = Field(
        default=0.8, ge=0, le=1, description="Floor of lowest / highest mean rate (tier, access)."
    )
    min_weight_ratio: float = Field(
        default=0.5,
        ge=0,
        le=1,
        description="Floor of shared-API / local mean weight share per client.",
    )
    min_client_rate: float = Field(default=0.5, ge=0, le=1, description="Per-client rate floor.")
    weight_column: str = "weight"
    samples_column: str = "num_samples"
    client_column: str = "client_id"
    round_column: str = "round"


def _float(value: Any) -> float | None:
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if f == f and f >= 0 else None


class ParticipationChecker(Checker):
    """Ensure clients take part comparably whatever their resources or FM access."""

    id: ClassVar[str] = "FMFL-F07"
    title: ClassVar[str] = "Ensure clients participate comparably regardless of resources"
    area: ClassVar[Area] = Area.FAIRNESS
    threat: ClassVar[str] = "resource disparity"
    inputs: ClassVar[tuple[str, ...]] = ("federation.participation_log", "clients")
    Params = ParticipationParams

    def missing_inputs(self, deployment: Deployment) -> list[str]:
        fed = deployment.manifest.federation
        return [] if fed and fed.participation_log else ["federation.participation_log"]

    def run(self, ctx: CheckContext, params: Any) -> CheckOutput:
        assert isinstance(params, ParticipationParams)
        fed = ctx.deployment.manifest.federation
        assert fed is not None and fed.participation_log is not None
        source = fed.participation_log
        rounds_of: dict[str, set[str]] = defaultdict(set)
        weight: dict[str, float] = defaultdict(float)
        all_rounds: set[str] = set()
        required = (params.client_column, params.round_column)
        numeric = (params.weight_column, params.samples_column)
        for batch in ctx.records(source, require_text=False, required=required, numeric=numeric):
            for rec in batch:
                cid = str(rec.data[params.client_column])
                rnd = str(rec.data[params.round_column])
                all_rounds.add(rnd)
                samples = _float(rec.data.get(params.samples_column))
                if samples == 0:
                    continue
                rounds_of[cid].add(rnd)
                w = _float(rec.data.get(params.weight_column))
                weight[cid] += w if w is not None else (samples or 0.0)
        display = ctx.display(source.path)
        if not all_rounds:
            raise CheckerError(f"{display}: no usable participation rows")
        n_rounds = max(len(all_rounds), fed.rounds or 0)
        return self._assess(ctx, params, rounds_of, weight, n_rounds, display)

    def _assess(
        self,
        ctx: CheckContext,
        params: ParticipationParams,
        rounds_of: dict[str, set[str]],
        weight: dict[str, float],
        n_rounds: int,
        display: str,
    ) -> CheckOutput:
        manifest = ctx.deployment.manifest
        tier = {c.id: c.resources.tier for c in manifest.clients}
        access = {c.id: c.resources.fm_access for c in manifest.clients}
        ids = sorted(set(tier) | set(rounds_of))
        rate = {cid: len(rounds_of.get(cid, ())) / n_rounds for cid in ids}
        total_w = sum(weight.values())
        share = {cid: (weight.get(cid, 0.0) / total_w if total_w else 0.0) for cid in ids}
        out = CheckOutput()
        for cid in ids:
            out.metrics[f"client:{cid}"] = {
                "rounds_participated": len(rounds_of.get(cid, ())),
                "participation_rate": round(rate[cid], 6),
                "weight_share": round(share[cid], 6),
                "tier": tier.get(cid, "undeclared"),
                "fm_access": access.get(cid, "undeclared"),
            }
        ev = (Evidence(location=display),)
        for label, attr in (("tier", tier), ("fm-access", access)):
            groups: dict[str, list[str]] = defaultdict(list)
            for cid in ids:
                if cid in attr:
                    groups[attr[cid]].append(cid)
            means = {g: statistics.fmean(rate[c] for c in m) for g, m in sorted(groups.items())}
            wmeans = {g: statistics.fmean(share[c] for c in m) for g, m in sorted(groups.items())}
            for g in means:
                out.metrics[f"{label}:{g}"] = {
                    "clients": len(groups[g]),
                    "mean_participation_rate": round(means[g], 6),
                    "mean_weight_share_per_client": round(wmeans[g], 6),
                    "weight_share": round(sum(share[c] for c in groups[g]), 6),
                }
            if len(means) < 2:
                continue
            lo = min(means, key=lambda g: (means[g], g))
            hi = max(means, key=lambda g: (means[g], g))
            ratio = means[lo] / means[hi] if means[hi] > 0 else 1.0
            if ratio < params.min_rate_ratio:
                out.findings.append(
                    FindingDraft(
                        subject=f"{label}:{lo}",
                        key="participation-rate",
                        message=(
                            f"{lo} clients took part in {means[lo]:.0%} of {n_rounds} rounds on "
                            f"average vs {means[hi]:.0%} for {hi} clients "
                            f"(ratio {ratio:.2f})"
                        ),
                        metric=Metric(
                            name="participation_rate_ratio",
                            value=round(ratio, 6),
                            threshold=params.min_rate_ratio,
                        ),
                        evidence=ev,
                    )
                )
            if label == "fm-access" and {"local", "shared-api"} <= set(wmeans):
                local, shared = wmeans["local"], wmeans["shared-api"]
                wratio = shared / local if local > 0 else 1.0
                out.metrics["fm-access:shared-api"]["weight_ratio_vs_local"] = round(wratio, 6)
                if wratio < params.min_weight_ratio:
                    out.findings.append(
                        FindingDraft(
                            subject="fm-access:shared-api",
                            key="weight-share",
                            message=(
                                f"clients on the quota-limited shared FM API hold {shared:.1%} of "
                                f"the aggregation weight each vs {local:.1%} for clients with a "
                                f"local FM copy (ratio {wratio:.2f})"
                            ),
                            metric=Metric(
                                name="weight_ratio_vs_local",
                                value=round(wratio, 6),
                                threshold=params.min_weight_ratio,
                            ),
                            evidence=ev,
                        )
                    )
        for cid in ids:
            if rate[cid] < params.min_client_rate:
                out.findings.append(
                    FindingDraft(
                        subject=f"client:{cid}",
                        key="participation-rate",
                        severity=Severity.LOW,
                        confidence=Confidence.HIGH,
                        message=(
                            f"client {cid} took part in {len(rounds_of.get(cid, ()))} of "
                            f"{n_rounds} rounds ({rate[cid]:.0%})"
                        ),
                        metric=Metric(
                            name="participation_rate",
                            value=round(rate[cid], 6),
                            threshold=params.min_client_rate,
                        ),
                        evidence=ev,
                    )
                )
        out.metrics["federation"] = {"rounds": n_rounds, "clients": len(ids)}
        return out
