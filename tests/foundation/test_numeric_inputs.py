"""Issue 16.4: NaN, infinite and negative numbers in participation logs and client updates are
malformed inputs, counted and located, never folded into the figures (F06 passed on NaN)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from safetensors.numpy import save_file
from tests.conftest import minimal_manifest, write_csv, write_manifest

from fmfl_audit.engine.runner import Auditor
from fmfl_audit.manifest import load_manifest
from fmfl_audit.models import Outcome

CLIENTS = ["school-a", "school-b", "school-c", "school-d"]


def _log(tmp_path: Path, bad: dict[str, Any], *, rounds: int = 10) -> Path:
    rows = []
    for rnd in range(1, rounds + 1):
        for cid in CLIENTS:
            rows.append({"round": rnd, "client_id": cid, "num_samples": 50, "weight": 0.25})
    rows[0] = {**rows[0], **bad}
    write_csv(tmp_path / "participation.csv", rows)
    manifest = minimal_manifest(
        federation={"participation_log": "participation.csv"},
        clients=[{"id": c} for c in CLIENTS],
    )
    return write_manifest(tmp_path, manifest)


def _all_finite(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(_all_finite(v) for v in value.values())
    if isinstance(value, list):
        return all(_all_finite(v) for v in value)
    return True


@pytest.mark.parametrize(
    "bad",
    [{"weight": "inf"}, {"weight": "nan"}, {"weight": "-0.5"}, {"num_samples": "-3"}],
    ids=["inf", "nan", "negative-weight", "negative-samples"],
)
@pytest.mark.parametrize("rule", ["FMFL-F06", "FMFL-F07"])
def test_bad_numbers_in_the_participation_log_are_malformed_records(
    tmp_path: Path, bad: dict[str, Any], rule: str
) -> None:
    report = Auditor(load_manifest(_log(tmp_path, bad)), only=(rule,)).run()
    result = report.rule(rule)
    assert result.outcome is Outcome.PASSED  # 1 of 40 rows is under the malformed threshold
    assert _all_finite(result.metrics), result.metrics
    (stats,) = report.inputs
    assert (stats.records, stats.malformed) == (39, 1)
    field = next(iter(bad))
    assert stats.issues[0].location == "participation.csv:2"
    assert stats.issues[0].reason == f"field {field!r} is not a finite non-negative number"
    assert "participation.csv: 1 malformed record(s) were not checked" in report.warnings


def test_an_infinite_weight_no_longer_gives_nan_shares(tmp_path: Path) -> None:
    report = Auditor(load_manifest(_log(tmp_path, {"weight": "inf"})), only=("FMFL-F06",)).run()
    shares = [
        m["weight_share"]
        for s, m in report.rule("FMFL-F06").metrics.items()
        if s.startswith("client:")
    ]
    assert sum(shares) == pytest.approx(1.0)


def _updates(tmp_path: Path, poison: dict[str, float]) -> Path:
    rng = np.random.default_rng(0)
    clients = []
    for i, cid in enumerate([*CLIENTS, "school-e"]):
        arr = rng.normal(size=(8, 4)).astype(np.float32)
        if cid in poison:
            arr[0, 0] = poison[cid]
        save_file({"w": arr, "b": np.ones(3, dtype=np.float32) * i}, tmp_path / f"{cid}.st")
        clients.append({"id": cid, "update": f"{cid}.st"})
    return write_manifest(tmp_path, minimal_manifest(clients=clients))


def test_non_finite_updates_are_malformed_and_left_out_of_the_statistics(tmp_path: Path) -> None:
    path = _updates(tmp_path, {"school-b": float("nan"), "school-d": float("inf")})
    report = Auditor(load_manifest(path), only=("FMFL-R12",)).run()
    r = report.rule("FMFL-R12")
    assert r.metrics["client:school-b"] == {"usable": False}
    assert r.metrics["client:school-d"] == {"usable": False}
    assert r.metrics["federation"]["updates"] == 3
    assert _all_finite(r.metrics)
    bad = {s.path: s for s in report.inputs if s.malformed}
    assert set(bad) == {"school-b.st", "school-d.st"}
    assert bad["school-b.st"].issues[0].reason == "1 non-finite value(s) (NaN/inf) in tensor(s) w"
    # The rule could not read two of its five updates: not a pass, and the gate says why.
    assert r.outcome is Outcome.SKIPPED
    assert any(
        reason.startswith("unreadable input(s) school-b.st, school-d.st")
        for reason in report.gate.reasons
    )


def test_finite_updates_are_all_used(tmp_path: Path) -> None:
    report = Auditor(load_manifest(_updates(tmp_path, {})), only=("FMFL-R12",)).run()
    r = report.rule("FMFL-R12")
    assert r.metrics["federation"]["updates"] == 5
    assert r.unreadable_inputs == () and not any(s.malformed for s in report.inputs)
