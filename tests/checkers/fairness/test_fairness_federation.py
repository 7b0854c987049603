"""FMFL-F06 (per-tier weight over rounds) and FMFL-F07 (participation disparity)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import minimal_manifest

from fmfl_audit.checkers.base import CheckContext, Checker, CheckOutput
from fmfl_audit.checkers.fairness.contribution import ContributionChecker, slope
from fmfl_audit.checkers.fairness.participation import ParticipationChecker
from fmfl_audit.manifest import load_manifest

CLIENTS = [
    {"id": "a", "resources": {"tier": "abundant", "fm_access": "local"}},
    {"id": "b", "resources": {"tier": "abundant", "fm_access": "local"}},
    {"id": "c", "resources": {"tier": "constrained", "fm_access": "shared-api"}},
    {"id": "d", "resources": {"tier": "constrained", "fm_access": "shared-api"}},
]


def check(checker: type[Checker], manifest: Path, **params: Any) -> CheckOutput:
    ctx = CheckContext(deployment=load_manifest(manifest), rule_id=checker.id)
    return checker().run(ctx, checker.Params(**params))


def found(out: CheckOutput) -> set[tuple[str, str]]:
    return {(f.subject, f.key) for f in out.findings}


def federation(
    make: Callable[..., Path], log: list[dict[str, Any]], rounds: int | None = None
) -> Path:
    fed: dict[str, Any] = {"participation_log": "fed/log.csv"}
    if rounds is not None:
        fed["rounds"] = rounds
    return make(minimal_manifest(clients=CLIENTS, federation=fed), {"fed/log.csv": log})


def row(rnd: int, cid: str, weight: float, samples: int = 10) -> dict[str, Any]:
    return {"round": rnd, "client_id": cid, "num_samples": samples, "weight": weight}


# -- FMFL-F06: per-tier view over rounds ---------------------------------------------------------


def test_slope() -> None:
    assert slope([0.5, 0.6, 0.7, 0.8]) == pytest.approx(0.1)
    assert slope([0.3]) == 0.0


def test_f06_abundant_share_growing_over_rounds(make_deployment: Callable[..., Path]) -> None:
    log = []
    for rnd, ab in enumerate((0.5, 0.6, 0.7, 0.8), start=1):
        for cid in ("a", "b"):
            log.append(row(rnd, cid, ab / 2))
        for cid in ("c", "d"):
            log.append(row(rnd, cid, (1 - ab) / 2))
    out = check(ContributionChecker, federation(make_deployment, log))
    assert ("tier:abundant", "abundant-share-trend") in found(out)
    tier = out.metrics["tier:abundant"]
    assert tier["share_by_round"] == pytest.approx([0.5, 0.6, 0.7, 0.8])
    assert tier["share_trend_per_round"] == pytest.approx(0.1)
    assert tier["mean_round_share"] == pytest.approx(0.65)
    assert out.metrics["tier:constrained"]["share_trend_per_round"] == pytest.approx(-0.1)
    trend = next(f for f in out.findings if f.key == "abundant-share-trend")
    assert trend.metric is not None and trend.metric.threshold == 0.02


def test_f06_steady_tiers_do_not_fire(make_deployment: Callable[..., Path]) -> None:
    log = [row(r, c, 0.25) for r in (1, 2, 3, 4) for c in ("a", "b", "c", "d")]
    out = check(ContributionChecker, federation(make_deployment, log))
    assert out.findings == []
    assert out.metrics["tier:abundant"]["share_by_round"] == [0.5, 0.5, 0.5, 0.5]
    assert out.metrics["tier:abundant"]["share_trend_per_round"] == 0.0


def test_f06_rounds_sort_numerically(make_deployment: Callable[..., Path]) -> None:
    # Round 10 after round 9, not after round 1.
    log = [row(r, "a", r) for r in range(1, 11)] + [row(r, "c", 11 - r) for r in range(1, 11)]
    out = check(ContributionChecker, federation(make_deployment, log))
    shares = out.metrics["tier:abundant"]["share_by_round"]
    assert shares == pytest.approx([r / 11 for r in range(1, 11)], abs=1e-6)


# -- FMFL-F07 ------------------------------------------------------------------------------------


def test_f07_constrained_shared_api_clients_miss_rounds(
    make_deployment: Callable[..., Path],
) -> None:
    log = [row(r, c, 0.4) for r in range(1, 11) for c in ("a", "b")]
    log += [row(r, "c", 0.1) for r in range(1, 5)]  # c: 4 of 10 rounds
    log += [row(r, "d", 0.1) for r in range(1, 9)]  # d: 8 of 10 rounds
    out = check(ParticipationChecker, federation(make_deployment, log))
    assert found(out) == {
        ("tier:constrained", "participation-rate"),
        ("fm-access:shared-api", "participation-rate"),
        ("fm-access:shared-api", "weight-share"),
        ("client:c", "participation-rate"),
    }
    assert out.metrics["client:c"]["participation_rate"] == pytest.approx(0.4)
    assert out.metrics["client:d"]["participation_rate"] == pytest.approx(0.8)
    assert out.metrics["tier:constrained"]["mean_participation_rate"] == pytest.approx(0.6)
    assert out.metrics["tier:abundant"]["mean_participation_rate"] == 1.0
    total = 8 + 0.4 + 0.8
    assert out.metrics["fm-access:shared-api"]["weight_ratio_vs_local"] == pytest.approx(
        (1.2 / total / 2) / (8 / total / 2)
    )
    by_key = {(f.subject, f.key): f for f in out.findings}
    tier = by_key[("tier:constrained", "participation-rate")]
    assert tier.metric is not None and tier.metric.value == pytest.approx(0.6)


def test_f07_declared_rounds_count_and_absent_clients(
    make_deployment: Callable[..., Path],
) -> None:
    # Everyone in the log took part in every logged round, but 4 rounds were held and d never
    # appears: d's rate is 0 and the others' 0.75.
    log = [row(r, c, 1.0) for r in (1, 2, 3) for c in ("a", "b", "c")]
    out = check(ParticipationChecker, federation(make_deployment, log, rounds=4))
    assert out.metrics["federation"] == {"rounds": 4, "clients": 4}
    assert out.metrics["client:a"]["participation_rate"] == 0.75
    assert out.metrics["client:d"]["participation_rate"] == 0.0
    assert ("client:d", "participation-rate") in found(out)
    assert ("client:a", "participation-rate") not in found(out)


def test_f07_equal_participation_passes(make_deployment: Callable[..., Path]) -> None:
    log = [row(r, c, 0.25) for r in range(1, 6) for c in ("a", "b", "c", "d")]
    # A row with zero samples is not participation.
    log.append(row(6, "a", 0.0, samples=0))
    out = check(ParticipationChecker, federation(make_deployment, log))
    assert out.metrics["federation"]["rounds"] == 6
    assert out.findings == []
    assert out.metrics["fm-access:shared-api"]["weight_ratio_vs_local"] == 1.0
    assert out.metrics["tier:abundant"]["mean_participation_rate"] == pytest.approx(5 / 6)
