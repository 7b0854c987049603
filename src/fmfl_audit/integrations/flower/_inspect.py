"""What the recorder can tell from the strategy object: aggregation rule, weights, DP settings.

Strategies are recognised by class name along the MRO (not by importing each class), so a Flower
release that lacks one of them, or a user subclass, still resolves. Flower's DP strategies wrap
another strategy in `.strategy`; `chain` walks those wrappers down to the aggregating strategy.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

# Aggregating strategy -> manifest aggregator and a note; first match along the MRO wins.
AGGREGATORS: dict[str, tuple[str | None, str | None]] = {
    "Krum": ("krum", None),
    "MultiKrum": ("multi-krum", None),
    "Bulyan": ("multi-krum", "Bulyan: Multi-Krum selection, then a coordinate-wise trimmed mean"),
    "FedTrimmedAvg": ("trimmed-mean", None),
    "FedMedian": ("median", None),
    "FedProx": ("fedprox", None),
    "QFedAvg": ("fedavg", "q-FedAvg: loss-reweighted FedAvg"),
    "FedAdam": ("fedavg", "FedAdam: FedAvg with a server-side Adam step"),
    "FedYogi": ("fedavg", "FedYogi: FedAvg with a server-side Yogi step"),
    "FedAdagrad": ("fedavg", "FedAdagrad: FedAvg with a server-side Adagrad step"),
    "FedAvgM": ("fedavg", "FedAvgM: FedAvg with server momentum"),
    "FedXgbBagging": (None, "FedXgbBagging (tree bagging) has no model-averaging counterpart"),
    "FedXgbCyclic": (
        None,
        "FedXgbCyclic (cyclic tree training) has no model-averaging counterpart",
    ),
    "FedAvg": ("fedavg", None),
}
# Strategies whose aggregate is not a per-client linear combination of the replies.
NO_LINEAR_WEIGHT = frozenset(
    {"FedMedian", "FedTrimmedAvg", "Bulyan", "QFedAvg", "FedXgbBagging", "FedXgbCyclic"}
)
DP_WRAPPERS = (
    "DifferentialPrivacyServerSideFixedClipping",
    "DifferentialPrivacyClientSideFixedClipping",
    "DifferentialPrivacyServerSideAdaptiveClipping",
    "DifferentialPrivacyClientSideAdaptiveClipping",
)


def names(obj: Any) -> list[str]:
    """Class names along the MRO of `obj`'s type."""
    return [c.__name__ for c in type(obj).__mro__]


def chain(strategy: Any) -> list[Any]:
    """The strategy and every strategy it wraps (`.strategy`), outermost first."""
    out = [strategy]
    seen = {id(strategy)}
    while (inner := getattr(out[-1], "strategy", None)) is not None and id(inner) not in seen:
        if not callable(getattr(inner, "aggregate_train", None)):
            break
        out.append(inner)
        seen.add(id(inner))
    return out


def aggregator(strategy: Any) -> tuple[str | None, str]:
    """(manifest aggregator or None, a note naming the Flower strategies)."""
    strategies = chain(strategy)
    base = strategies[-1]
    found: tuple[str | None, str | None] = (None, None)
    for n in names(base):
        if n in AGGREGATORS:
            found = AGGREGATORS[n]
            break
    described = " wrapping ".join(type(s).__name__ for s in strategies)
    agg, note = found
    if found == (None, None):
        note = f"{type(base).__name__} is not a strategy fmfl-audit recognises"
    clipping = [s for s in strategies[:-1] if any(n in DP_WRAPPERS for n in names(s))]
    if agg == "fedavg" and clipping:
        agg = "norm-clipping"
        note = f"{note + '; ' if note else ''}FedAvg of updates clipped by Flower's DP wrapper"
    return agg, f"Flower {described}" + (f" ({note})" if note else "")


def weighted_by_key(strategy: Any) -> str:
    """The MetricRecord key the aggregating strategy weights by."""
    return str(getattr(chain(strategy)[-1], "weighted_by_key", "num-examples"))


def aggregation_weights(
    strategy: Any, contents: Sequence[Any], num_examples: Sequence[float]
) -> tuple[list[float] | None, str]:
    """Each valid reply's weight in the aggregate, as Flower computes it, and how it was derived.

    None when the strategy's aggregate is no per-client linear combination (median, trimmed mean,
    Bulyan, q-FedAvg, XGBoost) or the strategy is unknown.
    """
    strategies = chain(strategy)
    base = strategies[-1]
    kinds = names(base)
    if any(n in NO_LINEAR_WEIGHT for n in kinds):
        return None, f"{type(base).__name__} has no per-client linear weight"
    total = float(sum(num_examples))
    if "MultiKrum" in kinds:
        server_clip = any(
            n.startswith("DifferentialPrivacyServerSide") for s in strategies[:-1] for n in names(s)
        )
        if server_clip:
            return None, "Krum selects among server-clipped updates, which are not recorded"
        from flwr.serverapp.strategy.multikrum import select_multikrum

        chosen = {
            id(c)
            for c in select_multikrum(
                list(contents),
                num_malicious_nodes=base.num_malicious_nodes,
                num_nodes_to_select=base.num_nodes_to_select,
            )
        }
        total = sum(n for c, n in zip(contents, num_examples, strict=True) if id(c) in chosen)
        if total <= 0:
            return None, "the selected replies report no examples"
        weights = [
            (n / total if id(c) in chosen else 0.0)
            for c, n in zip(contents, num_examples, strict=True)
        ]
        return weights, "Multi-Krum selection (flwr's select_multikrum), then example counts"
    if "FedAvg" in kinds:
        if total <= 0:
            return None, "the replies report no examples"
        return [n / total for n in num_examples], "share of the round's examples (FedAvg)"
    return None, f"{type(base).__name__} is not a strategy fmfl-audit recognises"


def dp_wrappers(strategy: Any) -> list[dict[str, Any]]:
    """Settings of each Flower DP wrapper in the chain."""
    out = []
    for s in chain(strategy):
        kind = next((n for n in names(s) if n in DP_WRAPPERS), None)
        if kind is None:
            continue
        info: dict[str, Any] = {"wrapper": type(s).__name__, "kind": kind}
        for attr in (
            "noise_multiplier",
            "clipping_norm",
            "num_sampled_clients",
            "target_clipped_quantile",
            "clip_norm_lr",
            "clipped_count_stddev",
        ):
            value = getattr(s, attr, None)
            if isinstance(value, (int, float)):
                info[attr] = float(value)
        info["accountant"] = getattr(s, "accountant", None) is not None
        out.append(info)
    return out


def privacy_spent(strategy: Any) -> dict[str, Any] | None:
    """(epsilon, delta) from a DP wrapper's accountant (Flower >= 1.42), if one is set."""
    for s in chain(strategy):
        spent_fn = getattr(s, "privacy_spent", None)
        if not callable(spent_fn):
            continue
        spent = spent_fn()
        if spent is None:
            continue
        return {
            "epsilon": float(spent.epsilon),
            "delta": float(spent.delta),
            "releases": int(getattr(spent, "num_releases", 0)),
            "method": str(getattr(spent, "accounting_method", "")),
            "wrapper": type(s).__name__,
        }
    return None
