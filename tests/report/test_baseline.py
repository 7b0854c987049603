"""Baselines: loading reports, classifying findings between two reports, gating on what got worse."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fmfl_audit.errors import ReportError
from fmfl_audit.models import AuditReport, Finding, Metric, Outcome, Severity
from fmfl_audit.report.baseline import (
    apply_baseline,
    diff_findings,
    diff_reports,
    gate_fingerprints,
    is_worse,
    load_report,
)
from fmfl_audit.report.json_format import JsonRenderer

from .builders import _finding, findings, sample_report


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _by_key(items: list[Finding], rule: str, subject: str) -> Finding:
    return next(f for f in items if f.rule_id == rule and f.subject == subject)


def _with_metric(f: Finding, value: float, severity: Severity | None = None) -> Finding:
    assert f.metric is not None
    update: dict[str, object] = {"metric": f.metric.model_copy(update={"value": value})}
    if severity is not None:
        update["severity"] = severity
    return f.model_copy(update=update)


def test_load_round_trip(tmp_path: Path) -> None:
    report = sample_report()
    path = _write(tmp_path, "r.json", JsonRenderer().render(report))
    assert load_report(path) == report


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no such report file"),
        ("{not json", "r.json:1:2: not JSON"),
        ("[1, 2]", "expected a JSON object"),
        ('{"schema_version": "1.0", "tool": {}}', "not an fmfl-audit JSON report"),
        ('{"schema_version": "9.0"}', "report schema version 9.0 is not readable"),
    ],
)
def test_load_errors_name_the_file(tmp_path: Path, content: str | None, message: str) -> None:
    path = tmp_path / "r.json"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(ReportError, match=r"r\.json") as err:
        load_report(path)
    assert message in str(err.value)
    assert err.value.exit_code == 2


def test_load_rejects_binary(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ReportError, match="cannot read the report"):
        load_report(path)


def test_identical_reports_have_no_changes() -> None:
    d = diff_reports(sample_report(), sample_report())
    assert (d.new, d.fixed, d.worsened) == ((), (), ())
    assert len(d.unchanged) == 6
    assert not d.regressed


def test_new_fixed_worsened() -> None:
    old = findings()
    new = list(old)
    email = _by_key(old, "FMFL-P01", "client:school-b")
    ratio = _by_key(old, "FMFL-F03", "model:global-clf")
    fm = _by_key(old, "FMFL-R01", "fm")
    leak = _by_key(old, "FMFL-P06", "client:school-c")
    new.remove(fm)  # fixed
    new[new.index(email)] = _with_metric(email, 50)  # count further above its threshold
    new[new.index(ratio)] = _with_metric(ratio, 0.7)  # ratio closer to 0.8: better
    new[new.index(leak)] = leak.model_copy(update={"severity": Severity.CRITICAL})
    added = _finding(
        "FMFL-P01",
        "client:school-d",
        "PHONE_NUMBER",
        "3 PHONE_NUMBER value(s)",
        metric=Metric(name="PHONE_NUMBER_count", value=3, threshold=0),
    )
    new.append(added)
    d = diff_findings(old, new)
    assert [f.fingerprint for f in d.new] == [added.fingerprint]
    assert [f.fingerprint for f in d.fixed] == [fm.fingerprint]
    assert {c.new.fingerprint for c in d.worsened} == {email.fingerprint, leak.fingerprint}
    assert ratio.fingerprint in {c.new.fingerprint for c in d.unchanged}
    assert d.regressed


@pytest.mark.parametrize(
    ("old_value", "new_value", "threshold", "worse"),
    [
        (0.6, 0.5, 0.8, True),  # a ratio that fails downwards, lower now
        (0.6, 0.7, 0.8, False),
        (0.6, 0.6, 0.8, False),
        (0.55, 0.6, 0.5, True),  # a share that fails upwards, higher now
        (0.62, 0.55, 0.5, False),
        (3, 3.0000000001, 0, False),  # rounding noise
    ],
)
def test_metric_direction(
    old_value: float, new_value: float, threshold: float, worse: bool
) -> None:
    base = _finding(
        "FMFL-F06",
        "client:school-a",
        "top1",
        "m",
        metric=Metric(name="x", value=old_value, threshold=threshold),
    )
    after = _with_metric(base, new_value)
    assert is_worse(base, after) is worse


def test_severity_decides_before_metric() -> None:
    base = _by_key(findings(), "FMFL-P01", "client:school-b")
    assert is_worse(base, _with_metric(base, 1, Severity.CRITICAL))
    assert not is_worse(base, _with_metric(base, 500, Severity.MEDIUM))


def test_metric_without_threshold_or_renamed_is_not_worse() -> None:
    base = _finding("FMFL-R01", "fm", "k", "m", metric=Metric(name="a", value=1))
    assert not is_worse(base, _with_metric(base, 5))
    renamed = base.model_copy(update={"metric": Metric(name="b", value=9, threshold=0)})
    assert not is_worse(
        base.model_copy(update={"metric": Metric(name="a", value=1, threshold=0)}), renamed
    )


def test_waived_regression_does_not_count() -> None:
    old = [f for f in findings() if f.rule_id != "FMFL-F06"]
    d = diff_findings(
        old,
        [
            *old,
            *(f.model_copy(update={"waived": True}) for f in findings() if f.rule_id == "FMFL-F06"),
        ],
    )
    assert len(d.new) == 1 and not d.regressed


def test_gate_fingerprints() -> None:
    old = sample_report()
    new = list(old.findings)
    email = _by_key(new, "FMFL-P01", "client:school-b")
    new[new.index(email)] = _with_metric(email, 99)
    accepted = gate_fingerprints(old, new)
    assert email.fingerprint not in accepted
    assert accepted == {f.fingerprint for f in old.findings} - {email.fingerprint}


def test_apply_baseline_passes_when_nothing_is_new() -> None:
    report = sample_report()
    assert not report.gate.passed
    no_error_gate = report.gate.model_copy(update={"fail_on_error": False})
    report = report.model_copy(update={"gate": no_error_gate})
    gated = apply_baseline(report, report, baseline_name="main.json")
    assert gated.gate.passed, gated.gate.reasons
    assert gated.gate.baseline == "main.json"
    assert gated.findings == report.findings  # only the gate changes


def test_apply_baseline_fails_on_new_high_and_errors() -> None:
    old = sample_report(findings_override=[f for f in findings() if f.rule_id != "FMFL-P06"])
    report = sample_report()
    gated = apply_baseline(report, old, baseline_name="main.json")
    assert not gated.gate.passed
    assert gated.gate.reasons == (
        "1 new unwaived finding(s) at or above high",
        "rule(s) errored: FMFL-R03",
    )


def test_loaded_baseline_gates_like_the_object(tmp_path: Path) -> None:
    report = sample_report()
    path = _write(tmp_path, "base.json", JsonRenderer().render(report))
    base = load_report(path)
    assert gate_fingerprints(base, report.findings) == gate_fingerprints(report, report.findings)
    assert json.loads(path.read_text())["findings"][0]["fingerprint"] in gate_fingerprints(
        base, report.findings
    )


def _not_run(report: AuditReport, rule_id: str, outcome: Outcome = Outcome.SKIPPED) -> AuditReport:
    """`report` as if `rule_id` had been skipped (or errored): its findings gone with it."""
    rules = tuple(
        r.model_copy(update={"outcome": outcome, "findings": 0, "metrics": {}})
        if r.id == rule_id
        else r
        for r in report.rules
    )
    kept = tuple(f for f in report.findings if f.rule_id != rule_id)
    return report.model_copy(update={"rules": rules, "findings": kept})


@pytest.mark.parametrize("outcome", [Outcome.SKIPPED, Outcome.ERRORED])
def test_findings_of_a_rule_that_no_longer_runs_are_not_checked(outcome: Outcome) -> None:
    old = sample_report()
    new = _not_run(old, "FMFL-P01", outcome)
    d = diff_reports(old, new)
    p01 = [f.fingerprint for f in old.findings if f.rule_id == "FMFL-P01"]
    assert len(p01) == 2
    assert d.fixed == ()
    assert [f.fingerprint for f in d.not_checked] == p01
    assert d.rules_not_rerun == ("FMFL-P01",)
    assert not d.regressed


def test_a_rule_left_out_of_the_plan_is_not_rerun() -> None:
    old = sample_report()
    new = _not_run(old, "FMFL-R01")
    new = new.model_copy(update={"rules": tuple(r for r in new.rules if r.id != "FMFL-R01")})
    d = diff_reports(old, new)
    assert d.fixed == ()
    assert [f.rule_id for f in d.not_checked] == ["FMFL-R01"]
    assert d.rules_not_rerun == ("FMFL-R01",)


def test_a_rule_that_ran_and_lost_its_finding_is_fixed() -> None:
    old = sample_report()
    new = old.model_copy(
        update={"findings": tuple(f for f in old.findings if f.rule_id != "FMFL-R01")}
    )
    d = diff_reports(old, new)
    assert [f.rule_id for f in d.fixed] == ["FMFL-R01"]
    assert d.not_checked == () and d.rules_not_rerun == ()


def test_apply_baseline_fails_when_a_rule_no_longer_runs() -> None:
    base = sample_report()
    base = base.model_copy(update={"gate": base.gate.model_copy(update={"fail_on_error": False})})
    report = _not_run(base, "FMFL-P01")
    gated = apply_baseline(report, base, baseline_name="main.json")
    assert not gated.gate.passed
    assert gated.gate.reasons == (
        "rule(s) that ran in the baseline did not run: FMFL-P01 (their baseline findings were "
        "not checked; see policy.fail_on_rules_not_rerun)",
    )
    allowed = report.gate.model_copy(update={"fail_on_rules_not_rerun": False})
    gated = apply_baseline(
        report.model_copy(update={"gate": allowed}), base, baseline_name="main.json"
    )
    assert gated.gate.passed, gated.gate.reasons
    assert gated.gate.fail_on_rules_not_rerun is False
