"""`fmfl-audit diff OLD NEW`: listing and exit codes (0 nothing worse, 1 new or worse, 2 bad input)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from fmfl_audit.cli.diff import register
from fmfl_audit.models import Metric, Outcome, Severity
from fmfl_audit.report.json_format import JsonRenderer

from .builders import _finding, findings, sample_report


@pytest.fixture
def app() -> typer.Typer:
    """The real CLI if it already has `diff`, else a Typer app with just `diff` registered."""
    from fmfl_audit.cli.main import app as main_app

    if any(c.name == "diff" for c in main_app.registered_commands):
        return main_app
    local = typer.Typer()

    @local.callback()
    def _root() -> None:
        """Keeps `diff` a subcommand."""

    register(local)
    return local


def _report(tmp_path: Path, name: str, extra: list | None = None, drop: str | None = None) -> Path:
    items = [f for f in findings() if f.rule_id != drop] + list(extra or [])
    path = tmp_path / name
    path.write_text(JsonRenderer().render(sample_report(findings_override=items)), encoding="utf-8")
    return path


def _invoke(app: typer.Typer, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["diff", *map(str, args)])
    return result.exit_code, result.stdout, result.stderr


def test_identical_reports_exit_0(app: typer.Typer, tmp_path: Path) -> None:
    a = _report(tmp_path, "a.json")
    code, out, _ = _invoke(app, a, a)
    assert code == 0
    assert "0 new, 0 worsened, 0 fixed, 6 unchanged, 0 not checked\n" in out


def test_new_finding_exits_1_and_is_listed(app: typer.Typer, tmp_path: Path) -> None:
    old = _report(tmp_path, "old.json", drop="FMFL-R01")
    new = _report(tmp_path, "new.json")
    code, out, _ = _invoke(app, old, new)
    assert code == 1
    assert "New (1):" in out and "FMFL-R01 critical" in out
    code, out, _ = _invoke(app, new, old)  # the other way round it is a fix
    assert code == 0
    assert "Fixed (1):" in out


def test_worsened_metric_is_listed(app: typer.Typer, tmp_path: Path) -> None:
    worse = _finding(
        "FMFL-P01",
        "client:school-b",
        "EMAIL_ADDRESS",
        "80 EMAIL_ADDRESS value(s)",
        metric=Metric(name="EMAIL_ADDRESS_count", value=80, threshold=0),
    )
    old = _report(tmp_path, "old.json")
    items = [f for f in findings() if f.fingerprint != worse.fingerprint] + [worse]
    new = tmp_path / "new.json"
    new.write_text(JsonRenderer().render(sample_report(findings_override=items)))
    code, out, _ = _invoke(app, old, new)
    assert code == 1
    assert "Worsened (1):" in out
    assert "EMAIL_ADDRESS_count 37 -> 80" in out


def test_fail_on_threshold(app: typer.Typer, tmp_path: Path) -> None:
    medium = _finding(
        "FMFL-P01", "client:school-z", "PERSON", "1 PERSON value(s)", severity=Severity.MEDIUM
    )
    old = _report(tmp_path, "old.json")
    new = _report(tmp_path, "new.json", extra=[medium])
    assert _invoke(app, old, new)[0] == 1
    assert _invoke(app, old, new, "--fail-on", "high")[0] == 0


def test_json_output(app: typer.Typer, tmp_path: Path) -> None:
    old = _report(tmp_path, "old.json", drop="FMFL-F03")
    new = _report(tmp_path, "new.json")
    code, out, _ = _invoke(app, old, new, "--json")
    assert code == 1
    doc = json.loads(out)
    assert [f["rule_id"] for f in doc["new"]] == ["FMFL-F03"]
    assert doc["fixed"] == [] and doc["worsened"] == []
    assert len(doc["unchanged"]) == 5


@pytest.mark.parametrize("content", [None, "not json", '{"schema_version": "1.0"}'])
def test_bad_input_exits_2(app: typer.Typer, tmp_path: Path, content: str | None) -> None:
    good = _report(tmp_path, "good.json")
    bad = tmp_path / "bad.json"
    if content is not None:
        bad.write_text(content)
    code, out, err = _invoke(app, good, bad)
    assert code == 2
    assert "bad.json" in err and "error:" in err
    assert "Traceback" not in out + err


def _skipped_p01(tmp_path: Path) -> Path:
    report = sample_report()
    rules = tuple(
        r.model_copy(update={"outcome": Outcome.SKIPPED, "findings": 0, "metrics": {}})
        if r.id == "FMFL-P01"
        else r
        for r in report.rules
    )
    kept = tuple(f for f in report.findings if f.rule_id != "FMFL-P01")
    path = tmp_path / "new.json"
    path.write_text(
        JsonRenderer().render(report.model_copy(update={"rules": rules, "findings": kept}))
    )
    return path


def test_findings_of_a_skipped_rule_are_not_checked(app: typer.Typer, tmp_path: Path) -> None:
    old = _report(tmp_path, "old.json")
    new = _skipped_p01(tmp_path)
    code, out, _ = _invoke(app, old, new)
    assert code == 1
    assert "0 new, 0 worsened, 0 fixed, 4 unchanged, 2 not checked" in out
    assert "Fixed" not in out
    assert "Rules that ran in the old report but not in the new one: FMFL-P01" in out
    assert "Not checked (rule did not run in the new report) (2):" in out
    assert _invoke(app, old, new, "--no-fail-on-rules-not-rerun")[0] == 0
    code, out, _ = _invoke(app, old, new, "--json")
    doc = json.loads(out)
    assert doc["fixed"] == []
    assert [f["rule_id"] for f in doc["not_checked"]] == ["FMFL-P01", "FMFL-P01"]
    assert doc["rules_not_rerun"] == ["FMFL-P01"]
