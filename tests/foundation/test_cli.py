"""Gate and exit codes through Typer's CliRunner; engine isolation; the library API."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import pytest
from tests.foundation.builders import smoke_deployment
from typer.testing import CliRunner

from fmfl_audit.checkers.base import CheckContext, Checker, CheckOutput
from fmfl_audit.checkers.fairness.contribution import ContributionParams
from fmfl_audit.checkers.registry import checker_map
from fmfl_audit.cli.main import app
from fmfl_audit.engine.runner import Auditor
from fmfl_audit.manifest import load_manifest
from fmfl_audit.models import Area, Outcome

runner = CliRunner()


@pytest.fixture
def manifest(tmp_path: Path) -> Path:
    return smoke_deployment(tmp_path)


def scan(*args: str) -> Any:
    return runner.invoke(app, ["scan", *args, "--no-progress", "--no-color"])


def test_gate_fails_with_exit_1_on_high_findings(manifest: Path) -> None:
    res = scan(str(manifest), "--only", "FMFL-P01", "-f", "json")
    assert res.exit_code == 1, res.output
    report = json.loads(res.stdout)
    assert report["gate"]["passed"] is False
    assert report["gate"]["reasons"][0] == "3 unwaived finding(s) at or above high"


def test_exit_zero_and_gate_overrides(manifest: Path) -> None:
    assert scan(str(manifest), "--only", "FMFL-P01", "--exit-zero").exit_code == 0
    res = scan(str(manifest), "--only", "FMFL-P01", "--fail-on", "none", "--fail-under", "none")
    assert res.exit_code == 0, res.output
    res = scan(str(manifest), "--only", "FMFL-F06", "--fail-on", "critical")
    assert res.exit_code == 0, res.output


def test_passing_scan_exits_0(manifest: Path) -> None:
    res = scan(str(manifest), "--only", "FMFL-F06", "--only", "FMFL-F03", "-f", "json")
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    assert [r["outcome"] for r in report["rules"]] == ["passed", "passed"]
    assert report["grade"] == "A"


def test_min_coverage_gate(manifest: Path) -> None:
    # F06 runs; P03 has no canaries in this deployment, so coverage is 50%.
    args = ("--only", "FMFL-F06", "--only", "FMFL-P03", "--fail-on", "none", "--fail-under", "none")
    res = scan(str(manifest), *args, "--min-coverage", "0.99", "-f", "json")
    assert res.exit_code == 1
    report = json.loads(res.stdout)
    assert report["coverage"] == 0.5
    assert report["gate"]["reasons"] == ["coverage 50% is below 99%"]
    assert scan(str(manifest), *args, "--min-coverage", "0.5").exit_code == 0


def test_manifest_error_exits_2_without_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "m.yaml"
    bad.write_text("version: 1\ndeployment: {name: x}\nclients:\n  - id: a\n    bogus_key: 1\n")
    res = scan(str(bad))
    assert res.exit_code == 2
    assert res.stderr.strip() == f"error: {bad}:5:5: clients[0].bogus_key: unknown key"
    assert "Traceback" not in res.output


def test_unknown_rule_in_only_exits_2(manifest: Path) -> None:
    res = scan(str(manifest), "--only", "FMFL-P1")
    assert res.exit_code == 2
    assert (
        "--only/--skip: 'FMFL-P1' is neither a rule id nor an area; did you mean 'FMFL-P01'?"
        in res.stderr
    )


def test_bad_rule_pack_params_exit_2(manifest: Path, tmp_path: Path) -> None:
    pack = tmp_path / "p.yaml"
    pack.write_text("pack: p\noverrides:\n  - {id: FMFL-F06, params: {max_top1_shar: 0.2}}\n")
    res = scan(str(manifest), "--rules", str(pack))
    assert res.exit_code == 2
    assert "rule FMFL-F06: params.max_top1_shar: Extra inputs are not permitted" in res.stderr


def test_internal_error_exits_3(manifest: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(self: Auditor) -> None:
        raise ZeroDivisionError("oops")

    monkeypatch.setattr(Auditor, "run", boom)
    res = scan(str(manifest))
    assert res.exit_code == 3
    assert "internal error: ZeroDivisionError: oops" in res.stderr
    assert "Traceback" not in res.output


def test_formats_and_outputs(manifest: Path, tmp_path: Path) -> None:
    out_json, out_md = tmp_path / "r.json", tmp_path / "r.md"
    res = scan(
        str(manifest),
        "-f",
        f"json:{out_json}",
        "-f",
        f"markdown:{out_md}",
        "-f",
        "terminal",
    )
    assert res.exit_code == 1
    assert json.loads(out_json.read_text())["deployment"]["name"] == "smoke"
    assert out_md.read_text().startswith("# fmfl-audit report: smoke")
    assert "overall grade" in res.stdout
    res = scan(str(manifest), "-f", "json", "-f", "markdown")
    assert res.exit_code == 2 and "only one format can go to stdout" in res.stderr


def test_validate_rules_and_schema_commands(manifest: Path) -> None:
    res = runner.invoke(app, ["validate", str(manifest)])
    assert res.exit_code == 0
    assert "valid manifest for 'smoke'" in res.stdout
    res = runner.invoke(app, ["rules", "show", "FMFL-P01"])
    assert res.exit_code == 0 and "threat:      top-down disclosure" in res.stdout
    assert "min_score: 0.4" in res.stdout
    res = runner.invoke(app, ["rules", "show", "FMFL-P99"])
    assert res.exit_code == 2 and "unknown rule 'FMFL-P99'" in res.stderr
    rows = json.loads(runner.invoke(app, ["rules", "list", "--json"]).stdout)
    assert len(rows) == 29
    assert {r["id"] for r in rows if r["implemented"]} == set(checker_map())
    for which in ("manifest", "report"):
        doc = json.loads(runner.invoke(app, ["schema", which]).stdout)
        assert doc["type"] == "object" and doc["$schema"].endswith("2020-12/schema")


class _Broken(Checker):
    """A checker that always raises, to prove isolation."""

    id: ClassVar[str] = "FMFL-F06"
    title: ClassVar[str] = "Ensure broken"
    area: ClassVar[Area] = Area.FAIRNESS
    threat: ClassVar[str] = "resource disparity"
    inputs: ClassVar[tuple[str, ...]] = ("nothing",)
    Params = ContributionParams

    def missing_inputs(self, deployment: Any) -> list[str]:
        return []

    def run(self, ctx: CheckContext, params: Any) -> CheckOutput:
        raise KeyError("kaput")


def test_one_broken_checker_does_not_sink_the_scan(manifest: Path) -> None:
    registry = {**checker_map(), "FMFL-F06": _Broken}
    report = Auditor(
        load_manifest(manifest), registry=registry, only=("FMFL-F06", "FMFL-P01")
    ).run()
    assert report.rule("FMFL-F06").outcome is Outcome.ERRORED
    assert report.rule("FMFL-F06").error == "internal error: KeyError: 'kaput'"
    assert report.rule("FMFL-P01").outcome is Outcome.FAILED
    assert "rule(s) errored: FMFL-F06" in report.gate.reasons


def test_missing_inputs_skip_with_the_input_named(tmp_path: Path) -> None:
    from tests.conftest import minimal_manifest, write_manifest

    m = write_manifest(tmp_path, minimal_manifest())
    report = Auditor(load_manifest(m)).run()
    assert report.rule("FMFL-P01").skip_reason == "missing input: clients[].synthetic_data"
    assert report.rule("FMFL-F06").skip_reason == "missing input: federation.participation_log"
    assert report.rule("FMFL-F03").outcome is Outcome.SKIPPED


def test_waivers_in_force_and_expired(tmp_path: Path) -> None:
    waiver = {"rule": "FMFL-P01", "subject": "client:school-b", "reason": "accepted for the pilot"}
    m = smoke_deployment(tmp_path, waivers=[{**waiver, "expires": "2026-12-31"}])
    rep = Auditor(
        load_manifest(m), only=("FMFL-P01",), today=__import__("datetime").date(2026, 11, 24)
    ).run()
    assert all(f.waived for f in rep.findings) and rep.gate.passed
    assert rep.rule("FMFL-P01").outcome is Outcome.PASSED
    assert rep.waivers[0].matched == 3 and not rep.waivers[0].expired
    rep = Auditor(
        load_manifest(m), only=("FMFL-P01",), today=__import__("datetime").date(2027, 1, 1)
    ).run()
    assert not any(f.waived for f in rep.findings) and not rep.gate.passed
    assert rep.waivers[0].expired
    assert (
        rep.warnings[0]
        == "waiver for FMFL-P01 on client:school-b expired on 2026-12-31; its 3 finding(s) count again"
    )


def test_disabled_rule_via_manifest_is_not_planned(tmp_path: Path) -> None:
    m = smoke_deployment(tmp_path, rules={"FMFL-P01": {"enabled": False}})
    plan = Auditor(load_manifest(m)).plan()
    assert "FMFL-P01" not in [p.rule.id for p in plan]
    assert len(plan) == 28


def test_help_does_not_import_heavy_libraries() -> None:
    import subprocess
    import sys

    code = (
        "import sys; sys.argv=['fmfl-audit','--help'];"
        "from fmfl_audit.cli.main import app\n"
        "try: app()\nexcept SystemExit: pass\n"
        "print([m for m in ('torch','transformers','presidio_analyzer','pydantic','sklearn') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"


class _Unusable(_Broken):
    """A checker that finds its input unusable only at run time."""

    def run(self, ctx: CheckContext, params: Any) -> CheckOutput:
        from fmfl_audit.errors import RuleSkipped

        raise RuleSkipped("participation log has no weight column")


def test_rule_skipped_at_run_time_is_skipped_not_errored(manifest: Path) -> None:
    registry = {**checker_map(), "FMFL-F06": _Unusable}
    report = Auditor(load_manifest(manifest), registry=registry, only=("FMFL-F06",)).run()
    assert report.rule("FMFL-F06").outcome is Outcome.SKIPPED
    assert report.rule("FMFL-F06").skip_reason == "participation log has no weight column"
    # Nothing ran: no grade (not an F), and no error reason.
    assert report.grade is None and report.score is None
    assert report.gate.reasons == ("no grade (no rule ran) where C is required",)


@pytest.mark.parametrize("command", ["scan", "validate", "redact", "probe"])
def test_help_shows_argument_help_once(command: str) -> None:
    # typer < 0.21 (pinned by the flower extra) lost argument help on click >= 8.5 and printed
    # `\[required]`; cli/_typer_compat.py restores both on every typer version.
    res = runner.invoke(app, [command, "--help"])
    assert res.exit_code == 0
    assert res.stdout.count("Deployment manifest") == 1 or "MANIFEST" in res.stdout
    assert "\\[" not in res.stdout
    assert "Positional arguments" not in res.stdout
