"""Issue 16.2 and 16.5: a rule that could read none (or too few) of its records has not passed,
and a scan in which nothing ran has no grade."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.conftest import minimal_manifest, write_jsonl, write_manifest
from tests.foundation.builders import PII_EMAIL

from fmfl_audit.engine.runner import Auditor
from fmfl_audit.manifest import load_manifest
from fmfl_audit.models import Outcome

CLEAN = "Once upon a time a small dog found a red ball in the park and played all day."


def _deployment(tmp_path: Path, rows: list[dict[str, Any]], **policy: Any) -> Path:
    write_jsonl(tmp_path / "syn.jsonl", rows)
    manifest = minimal_manifest(
        clients=[{"id": "school-a", "synthetic_data": {"path": "syn.jsonl", "text_field": "story"}}]
    )
    if policy:
        manifest["policy"] = policy
    return write_manifest(tmp_path, manifest)


def _scan(path: Path, *rules: str) -> Any:
    return Auditor(load_manifest(path), only=rules).run()


def test_a_wrong_text_field_is_not_a_pass(tmp_path: Path) -> None:
    # Every record has `text`, the manifest says `story`: nothing can be checked.
    path = _deployment(tmp_path, [{"text": CLEAN}] * 30)
    report = _scan(path, "FMFL-P01", "FMFL-P02", "FMFL-R09")
    for rule_id in ("FMFL-P01", "FMFL-P02", "FMFL-R09"):
        r = report.rule(rule_id)
        assert r.outcome is Outcome.SKIPPED, rule_id
        assert r.skip_reason == (
            "unreadable input: syn.jsonl: 30 of 30 record(s) malformed; "
            "first: syn.jsonl:1: missing text field 'story'"
        )
        assert r.unreadable_inputs == (
            "syn.jsonl: 30 of 30 record(s) malformed; first: syn.jsonl:1: missing text field "
            "'story'",
        )
    assert report.coverage == 0.0 and report.grade is None
    assert not report.gate.passed
    assert report.gate.reasons[-1] == (
        "unreadable input(s) syn.jsonl (rules FMFL-R09, FMFL-P01, FMFL-P02); see "
        "policy.max_malformed_share"
    )


def test_the_malformed_share_threshold(tmp_path: Path) -> None:
    good = [{"story": CLEAN}] * 18
    # 2 of 20 malformed (10%) is within the default threshold of 10%: the rule passes.
    report = _scan(_deployment(tmp_path / "a", [*good, {"text": CLEAN}, {"x": 1}]), "FMFL-P01")
    assert report.rule("FMFL-P01").outcome is Outcome.PASSED
    assert report.rule("FMFL-P01").unreadable_inputs == ()
    assert report.gate.passed
    # 3 of 21 (14%) is over it.
    rows = [*good, {"text": CLEAN}, {"x": 1}, "not json"]
    (tmp_path / "b").mkdir()
    report = _scan(_deployment(tmp_path / "b", rows), "FMFL-P01")
    assert report.rule("FMFL-P01").outcome is Outcome.SKIPPED
    assert not report.gate.passed
    # The user may accept more malformed records, or keep the skip without failing the gate.
    (tmp_path / "c").mkdir()
    report = _scan(_deployment(tmp_path / "c", rows, max_malformed_share=0.2), "FMFL-P01")
    assert report.rule("FMFL-P01").outcome is Outcome.PASSED and report.gate.passed
    (tmp_path / "d").mkdir()
    report = _scan(
        _deployment(tmp_path / "d", rows, fail_on_unreadable_inputs=False, fail_under=None),
        "FMFL-P01",
    )
    assert report.rule("FMFL-P01").outcome is Outcome.SKIPPED
    assert report.gate.passed, report.gate.reasons


def test_findings_on_what_was_readable_stay_but_the_gate_fails(tmp_path: Path) -> None:
    rows = [{"story": f"Write to {PII_EMAIL} today."}] + [{"text": CLEAN}] * 9
    report = _scan(_deployment(tmp_path, rows, fail_on=None, fail_under=None), "FMFL-P01")
    r = report.rule("FMFL-P01")
    assert r.outcome is Outcome.FAILED and r.findings == 1
    assert r.unreadable_inputs[0].startswith("syn.jsonl: 9 of 10 record(s) malformed")
    assert report.gate.reasons == (
        "unreadable input(s) syn.jsonl (rules FMFL-P01); see policy.max_malformed_share",
    )


def test_nothing_ran_means_no_grade_not_an_f(tmp_path: Path) -> None:
    path = _deployment(tmp_path, [{"text": CLEAN}] * 3, fail_under=None)
    report = _scan(path, "FMFL-R09")
    assert report.grade is None and report.score is None
    assert all(a.grade is None for a in report.areas)
    from fmfl_audit.report.formats import OutputFormat, renderer_for

    for fmt in OutputFormat:
        text = renderer_for(fmt, color=False).render(report)
        assert "overall grade F" not in text.lower().replace("**", "")
    md = renderer_for(OutputFormat.MARKDOWN).render(report)
    assert "**Overall grade n/a (no rule ran, coverage 0%)**" in md


def test_an_empty_data_file_is_not_a_pass(tmp_path: Path) -> None:
    # Zero records and zero malformed ones: the rules checked nothing (review finding: grade A).
    (tmp_path / "syn.jsonl").write_text("")
    manifest = minimal_manifest(clients=[{"id": "school-a", "synthetic_data": "syn.jsonl"}])
    report = _scan(write_manifest(tmp_path, manifest), "FMFL-P01", "FMFL-R02", "FMFL-F01")
    for rule_id in ("FMFL-P01", "FMFL-R02", "FMFL-F01"):
        r = report.rule(rule_id)
        assert r.outcome is Outcome.SKIPPED, rule_id
        assert r.unreadable_inputs == ("syn.jsonl: no records (the file is empty)",), rule_id
    assert report.grade is None and not report.gate.passed
    # One empty client among readable ones still fails the gate for that file.
    write_jsonl(tmp_path / "other.jsonl", [{"text": CLEAN}] * 5)
    manifest = minimal_manifest(
        clients=[
            {"id": "school-a", "synthetic_data": "syn.jsonl"},
            {"id": "school-b", "synthetic_data": "other.jsonl"},
        ]
    )
    report = _scan(write_manifest(tmp_path, manifest), "FMFL-P01")
    assert report.rule("FMFL-P01").unreadable_inputs == (
        "syn.jsonl: no records (the file is empty)",
    )
    assert not report.gate.passed


def test_one_unopenable_file_does_not_hide_the_other_clients(tmp_path: Path) -> None:
    # A corrupt Parquet file for one client made P01 and P02 error for every client (review
    # finding): the file is now an unreadable input and the other clients are still checked.
    (tmp_path / "broken.parquet").write_bytes(b"PAR1" + bytes(range(256)) * 4)
    write_jsonl(tmp_path / "ok.jsonl", [{"text": CLEAN}] * 9 + [{"text": PII_EMAIL}])
    manifest = minimal_manifest(
        clients=[
            {"id": "school-a", "synthetic_data": "broken.parquet"},
            {"id": "school-b", "synthetic_data": "ok.jsonl"},
        ]
    )
    report = _scan(write_manifest(tmp_path, manifest), "FMFL-P01", "FMFL-P02")
    p01, p02 = report.rule("FMFL-P01"), report.rule("FMFL-P02")
    assert p01.error is None and p02.error is None
    assert p01.outcome is Outcome.FAILED  # school-b's e-mail address is still found
    assert {f.subject for f in report.findings if f.rule_id == "FMFL-P01"} == {"client:school-b"}
    assert p02.outcome is Outcome.SKIPPED
    for r in (p01, p02):
        (reason,) = r.unreadable_inputs
        assert reason.startswith("broken.parquet: not a readable Parquet file (")
    assert not report.gate.passed
