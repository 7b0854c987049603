"""FMFL-P01, F03 and F06: must-fire and must-not-fire cases with exact expectations."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.conftest import minimal_manifest, write_csv, write_jsonl, write_manifest
from tests.foundation.builders import (
    CLEAN_STORIES,
    smoke_deployment,
)

from fmfl_audit.checkers.fairness.contribution import gini
from fmfl_audit.engine.runner import Auditor
from fmfl_audit.manifest import load_manifest
from fmfl_audit.models import Outcome, Severity


def run(manifest: Path, *rules: str):
    return Auditor(load_manifest(manifest), only=rules).run()


# -- FMFL-P01 -----------------------------------------------------------------------------------


@pytest.mark.slow
def test_p01_fires_per_client_and_entity_with_severity_by_class(tmp_path: Path) -> None:
    rep = run(smoke_deployment(tmp_path), "FMFL-P01")
    got = sorted((f.subject, f.metric.name, f.metric.value, f.severity) for f in rep.findings)
    assert got == [
        ("client:school-b", "CREDIT_CARD_count", 1, Severity.CRITICAL),
        ("client:school-b", "EMAIL_ADDRESS_count", 1, Severity.HIGH),
        ("client:school-b", "PHONE_NUMBER_count", 1, Severity.HIGH),
    ]
    m = rep.rule("FMFL-P01").metrics
    assert m["client:school-a"] == {
        "records_scanned": 3,
        "records_with_pii": 0,
        "pii_rate": 0.0,
        "entities": {},
    }
    assert m["client:school-b"]["records_with_pii"] == 2
    assert m["client:school-b"]["entities"] == {
        "CREDIT_CARD": 1,
        "EMAIL_ADDRESS": 1,
        "PHONE_NUMBER": 1,
    }
    email = next(f for f in rep.findings if f.metric and f.metric.name == "EMAIL_ADDRESS_count")
    assert email.evidence[0].location == "clients/b/synthetic.jsonl:2"
    assert (
        email.evidence[0].excerpt
        == "Write to <EMAIL_ADDRESS> or call <PHONE_NUMBER> for the story."
    )
    assert rep.rule("FMFL-P01").notes[0].startswith("PII engine: Presidio ")


@pytest.mark.slow
def test_p01_silent_on_clean_stories_and_respects_max_count(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "s.jsonl", [{"text": t} for t in CLEAN_STORIES * 5])
    m = write_manifest(
        tmp_path, minimal_manifest(clients=[{"id": "a", "synthetic_data": "s.jsonl"}])
    )
    rep = run(m, "FMFL-P01")
    assert rep.findings == () and rep.rule("FMFL-P01").outcome is Outcome.PASSED
    assert rep.rule("FMFL-P01").metrics["client:a"]["records_scanned"] == 15


@pytest.mark.slow
def test_p01_custom_recognizer_from_pack(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "s.jsonl", [{"text": "The student id of Sam is STU-448812 today."}])
    pack = tmp_path / "p.yaml"
    pack.write_text(
        "pack: school\noverrides:\n  - id: FMFL-P01\n    params:\n      recognizers:\n"
        "        - {name: student-id, entity: STUDENT_ID, patterns: [{name: stu, regex: 'STU-\\d{6}', score: 0.9}]}\n"
        "      severity_by_entity: {STUDENT_ID: critical}\n"
    )
    m = write_manifest(
        tmp_path, minimal_manifest(clients=[{"id": "a", "synthetic_data": "s.jsonl"}])
    )
    rep = Auditor(load_manifest(m), only=("FMFL-P01",), extra_packs=(str(pack),)).run()
    assert [(f.metric.name, f.severity) for f in rep.findings] == [
        ("STUDENT_ID_count", Severity.CRITICAL)
    ]
    assert "STU-448812" not in rep.model_dump_json()


# -- FMFL-F06 -----------------------------------------------------------------------------------


def test_gini_table() -> None:
    assert gini([1, 1, 1, 1]) == 0.0
    assert gini([0, 0, 0, 1]) == pytest.approx(0.75)
    assert gini([]) == 0.0


def participation(tmp_path: Path, weights: dict[str, float], tiers: dict[str, str]) -> Path:
    rows = [
        {"round": r, "client_id": c, "num_samples": 10, "weight": w}
        for r in (1, 2)
        for c, w in weights.items()
    ]
    write_csv(tmp_path / "p.csv", rows)
    clients = [{"id": c, "resources": {"tier": tiers[c]}} for c in tiers]
    return write_manifest(
        tmp_path, minimal_manifest(clients=clients, federation={"participation_log": "p.csv"})
    )


def test_f06_fires_on_dominant_abundant_client(tmp_path: Path) -> None:
    m = participation(
        tmp_path,
        {"a": 0.7, "b": 0.1, "c": 0.1, "d": 0.1},
        {"a": "abundant", "b": "constrained", "c": "constrained", "d": "constrained"},
    )
    rep = run(m, "FMFL-F06")
    assert sorted((f.subject, f.metric.name, f.metric.value) for f in rep.findings) == [
        ("client:a", "top1_share", 0.7),
        ("federation", "gini", 0.45),
        ("tier:abundant", "abundant_overweight", 2.8),
    ]
    fed = rep.rule("FMFL-F06").metrics["federation"]
    assert fed["hhi"] == pytest.approx(0.52) and fed["effective_clients"] == pytest.approx(1.9231)
    assert fed["rounds"] == 2 and fed["top1_client"] == "a"


def test_f06_silent_on_balanced_log_and_counts_absent_clients(tmp_path: Path) -> None:
    m = participation(
        tmp_path,
        {"a": 1, "b": 1, "c": 1},
        {"a": "abundant", "b": "constrained", "c": "constrained"},
    )
    rep = run(m, "FMFL-F06")
    assert rep.findings == ()
    assert rep.rule("FMFL-F06").metrics["client:a"] == {
        "weight_share": pytest.approx(1 / 3, abs=1e-6),
        "tier": "abundant",
    }
    # A declared client that never took part holds weight 0 and makes the log unequal.
    m2 = participation(
        tmp_path, {"a": 1, "b": 1}, {"a": "constrained", "b": "constrained", "z": "constrained"}
    )
    rep2 = run(m2, "FMFL-F06")
    assert rep2.rule("FMFL-F06").metrics["client:z"]["weight_share"] == 0.0


# -- FMFL-F03 -----------------------------------------------------------------------------------


def predictions(tmp_path: Path, rate_f: float, rate_m: float, n: int = 100) -> Path:
    rows = []
    for g, rate in (("f", rate_f), ("m", rate_m)):
        for i in range(n):
            yp = int(i < rate * n)
            rows.append({"y_true": int(i % 2 == 0), "y_pred": yp, "gender": g})
    write_csv(tmp_path / "pred.csv", rows)
    models = [
        {
            "name": "clf",
            "kind": "predictions",
            "predictions": {"path": "pred.csv", "sensitive_features": ["gender"]},
        }
    ]
    return write_manifest(tmp_path, minimal_manifest(models=models))


def test_f03_fires_on_four_fifths_violation(tmp_path: Path) -> None:
    rep = run(predictions(tmp_path, 0.3, 0.6), "FMFL-F03")
    dp = [f for f in rep.findings if f.metric.name == "demographic_parity_ratio"]
    assert len(dp) == 1 and dp[0].metric.value == 0.5 and dp[0].subject == "model:clf"
    assert "gender=f at 0.30 vs gender=m at 0.60" in dp[0].message
    figs = rep.rule("FMFL-F03").metrics["model:clf"]["gender"]
    assert figs["demographic_parity_difference"] == pytest.approx(0.3)
    assert figs["groups"]["f"]["count"] == 100 and figs["groups"]["m"]["selection_rate"] == 0.6


def test_f03_silent_when_rates_are_close_and_small_groups_not_graded(tmp_path: Path) -> None:
    rep = run(predictions(tmp_path, 0.5, 0.55), "FMFL-F03")
    assert rep.findings == ()
    rep = run(predictions(tmp_path, 0.1, 0.9, n=20), "FMFL-F03")  # groups of 20 < min 30
    assert rep.findings == ()
    assert rep.rule("FMFL-F03").metrics["model:clf"]["gender"]["graded_groups"] == []
