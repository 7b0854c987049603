"""FMFL-F06: contribution concentration from the participation log.

Weight share per client (sum of aggregation weights over rounds, or of sample counts when no weight
column), Gini coefficient, Herfindahl-Hirschman index, effective number of clients (1/HHI), top-1
share, and the share held by resource-abundant clients against their head-count share.

Per-tier view over rounds: the weight share of each resource tier in each round (rounds in numeric
order when they are numbers), its mean, and its trend (least-squares slope per round). A finding
fires when the abundant tier's share grows faster than `max_tier_share_trend` per round over at
least `min_trend_rounds` rounds: constrained clients are being crowded out as training goes on.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, ClassVar

from pydantic import Field

from fmfl_audit.checkers.base import CheckContext, Checker, CheckerParams, CheckOutput
from fmfl_audit.errors import CheckerError
from fmfl_audit.manifest.loader import Deployment
from fmfl_audit.models import Area, Evidence, FindingDraft, Metric, Severity


class ContributionParams(CheckerParams):
    """Settings of FMFL-F06."""

    max_top1_share: float = Field(default=0.5, gt=0, le=1, description="Top client's share cap.")
    max_gini: float = Field(default=0.4, ge=0, le=1, description="Gini of weight shares cap.")
    min_effective_ratio: float = Field(
        default=0.5, ge=0, le=1, description="Effective clients / clients floor."
    )
    max_abundant_overweight: float = Field(
        default=1.5, ge=1, description="Abundant clients' weight share / head-count share cap."
    )
    max_tier_share_trend: float = Field(
        default=0.02, ge=0, le=1, description="Cap on the abundant tier's share slope per round."
    )
    min_trend_rounds: int = Field(default=3, ge=2, description="Rounds needed to grade a trend.")
    weight_column: str = "weight"
    samples_column: str = "num_samples"
    client_column: str = "client_id"
    round_column: str = "round"


def gini(values: list[float]) -> float:
    """Gini coefficient of non-negative values (0 = equal, ->1 = one holds all)."""
    n = len(values)
    total = sum(values)
    if n == 0 or total <= 0:
        return 0.0
    xs = sorted(values)
    cum = sum((i + 1) * x for i, x in enumerate(xs))
    return (2 * cum) / (n * total) - (n + 1) / n


def slope(values: list[float]) -> float:
    """Least-squares slope of `values` against 0, 1, 2, ... (0 for fewer than two points)."""
    n = len(values)
    if n < 2:
        return 0.0
    mx = (n - 1) / 2
    my = sum(values) / n
    num = sum((i - mx) * (v - my) for i, v in enumerate(values))
    den = sum((i - mx) ** 2 for i in range(n))
    return num / den


def _round_order(key: str) -> tuple[int, float, str]:
    try:
        return (0, float(key), key)
    except ValueError:
        return (1, 0.0, key)


class ContributionChecker(Checker):
    """Ensure no client or resource tier dominates aggregation."""

    id: ClassVar[str] = "FMFL-F06"
    title: ClassVar[str] = "Ensure aggregation weight is not concentrated in a few clients"
    area: ClassVar[Area] = Area.FAIRNESS
    threat: ClassVar[str] = "resource disparity"
    inputs: ClassVar[tuple[str, ...]] = ("federation.participation_log",)
    Params = ContributionParams

    def missing_inputs(self, deployment: Deployment) -> list[str]:
        fed = deployment.manifest.federation
        return [] if fed and fed.participation_log else ["federation.participation_log"]

    def run(self, ctx: CheckContext, params: Any) -> CheckOutput:
        assert isinstance(params, ContributionParams)
        fed = ctx.deployment.manifest.federation
        assert fed is not None and fed.participation_log is not None
        source = fed.participation_log
        weights: dict[str, float] = defaultdict(float)
        by_round: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        bad_values = 0
        first_bad: str | None = None
        use_weight: bool | None = None
        for batch in ctx.records(
            source,
            require_text=False,
            required=(params.client_column,),
            numeric=(params.weight_column, params.samples_column),
        ):
            for rec in batch:
                if use_weight is None:
                    use_weight = params.weight_column in rec.data
                col = params.weight_column if use_weight else params.samples_column
                try:
                    w = float(rec.data[col])
                    if w < 0 or w != w:
                        raise ValueError
                except (KeyError, TypeError, ValueError):
                    bad_values += 1
                    first_bad = first_bad or rec.location
                    continue
                cid = str(rec.data[params.client_column])
                weights[cid] += w
                by_round[str(rec.data.get(params.round_column))][cid] += w
        display = ctx.display(source.path)
        if not weights:
            raise CheckerError(f"{display}: no usable participation rows")
        out = self._assess(
            ctx, params, dict(weights), len(by_round), display, bad_values, first_bad
        )
        self._tiers_over_rounds(ctx, params, by_round, display, out)
        return out

    def _tiers_over_rounds(
        self,
        ctx: CheckContext,
        params: ContributionParams,
        by_round: dict[str, dict[str, float]],
        display: str,
        out: CheckOutput,
    ) -> None:
        tiers = {c.id: c.resources.tier for c in ctx.deployment.manifest.clients}
        names = sorted(
            {*tiers.values(), *(tiers.get(c, "undeclared") for r in by_round.values() for c in r)}
        )
        order = sorted(by_round, key=_round_order)
        series: dict[str, list[float]] = {t: [] for t in names}
        for rnd in order:
            total = sum(by_round[rnd].values())
            for t in names:
                w = sum(v for c, v in by_round[rnd].items() if tiers.get(c, "undeclared") == t)
                series[t].append(w / total if total > 0 else 0.0)
        for t in names:
            values = series[t]
            out.metrics[f"tier:{t}"] = {
                "clients": sum(1 for v in tiers.values() if v == t),
                "share_by_round": [round(v, 6) for v in values],
                "mean_round_share": round(sum(values) / len(values), 6) if values else 0.0,
                "share_trend_per_round": round(slope(values), 6),
            }
        ab = series.get("abundant", [])
        if len(ab) < params.min_trend_rounds or len(names) < 2:
            return
        trend = slope(ab)
        if trend > params.max_tier_share_trend:
            out.findings.append(
                FindingDraft(
                    subject="tier:abundant",
                    key="abundant-share-trend",
                    severity=Severity.LOW,
                    message=(
                        f"resource-abundant clients' share of the aggregation weight grows by "
                        f"{trend:.1%} per round (from {ab[0]:.0%} in round {order[0]} to "
                        f"{ab[-1]:.0%} in round {order[-1]})"
                    ),
                    metric=Metric(
                        name="abundant_share_trend_per_round",
                        value=round(trend, 6),
                        threshold=params.max_tier_share_trend,
                    ),
                    evidence=(Evidence(location=display),),
                )
            )

    def _assess(
        self,
        ctx: CheckContext,
        params: ContributionParams,
        weights: dict[str, float],
        n_rounds: int,
        display: str,
        bad_values: int,
        first_bad: str | None,
    ) -> CheckOutput:
        manifest = ctx.deployment.manifest
        # Clients declared but absent from the log contributed nothing: they count with weight 0.
        for c in manifest.clients:
            weights.setdefault(c.id, 0.0)
        total = sum(weights.values())
        if total <= 0:
            raise CheckerError(f"{display}: every aggregation weight is zero")
        shares = {k: v / total for k, v in sorted(weights.items())}
        hhi = sum(s * s for s in shares.values())
        n = len(shares)
        eff = 1.0 / hhi
        g = gini(list(shares.values()))
        top_client, top_share = max(shares.items(), key=lambda kv: (kv[1], kv[0]))
        tiers = {c.id: c.resources.tier for c in manifest.clients}
        abundant = [k for k in shares if tiers.get(k) == "abundant"]
        ab_share = sum(shares[k] for k in abundant)
        ab_head = len(abundant) / n
        overweight = ab_share / ab_head if ab_head else None
        out = CheckOutput()
        if bad_values:
            out.notes.append(f"{bad_values} row(s) with an unusable weight, first at {first_bad}")
        for cid, share in shares.items():
            out.metrics[f"client:{cid}"] = {
                "weight_share": round(share, 6),
                "tier": tiers.get(cid, "undeclared"),
            }
        out.metrics["federation"] = {
            "clients": n,
            "rounds": n_rounds,
            "gini": round(g, 6),
            "hhi": round(hhi, 6),
            "effective_clients": round(eff, 4),
            "top1_client": top_client,
            "top1_share": round(top_share, 6),
            "abundant_share": round(ab_share, 6),
            "abundant_headcount_share": round(ab_head, 6),
            "abundant_overweight": None if overweight is None else round(overweight, 4),
        }
        ev = (Evidence(location=display),)
        if top_share > params.max_top1_share:
            out.findings.append(
                FindingDraft(
                    subject=f"client:{top_client}",
                    key="top1",
                    message=(
                        f"client {top_client} holds {top_share:.0%} of the aggregation weight "
                        f"across {n_rounds} round(s)"
                    ),
                    metric=Metric(
                        name="top1_share",
                        value=round(top_share, 6),
                        threshold=params.max_top1_share,
                    ),
                    evidence=ev,
                )
            )
        if g > params.max_gini or eff / n < params.min_effective_ratio:
            out.findings.append(
                FindingDraft(
                    subject="federation",
                    key="concentration",
                    severity=Severity.MEDIUM,
                    message=(
                        f"aggregation weight is concentrated: Gini {g:.2f}, "
                        f"{eff:.1f} effective of {n} clients"
                    ),
                    metric=Metric(name="gini", value=round(g, 6), threshold=params.max_gini),
                    evidence=ev,
                )
            )
        if overweight is not None and overweight > params.max_abundant_overweight:
            out.findings.append(
                FindingDraft(
                    subject="tier:abundant",
                    key="abundant-overweight",
                    severity=Severity.MEDIUM,
                    message=(
                        f"resource-abundant clients hold {ab_share:.0%} of the weight but are "
                        f"{ab_head:.0%} of clients ({overweight:.2f}x their head-count share)"
                    ),
                    metric=Metric(
                        name="abundant_overweight",
                        value=round(overweight, 6),
                        threshold=params.max_abundant_overweight,
                    ),
                    evidence=ev,
                )
            )
        return out
