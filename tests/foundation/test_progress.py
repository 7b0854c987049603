"""Issue 16.13: progress a CI log can use, and bars that never show `0/None`."""

from __future__ import annotations

import io
import re
from pathlib import Path

from tests.foundation.builders import smoke_deployment
from typer.testing import CliRunner

from fmfl_audit.cli.main import app
from fmfl_audit.cli.progress import LineObserver, RichObserver
from fmfl_audit.models import Outcome

runner = CliRunner()


def test_without_a_terminal_each_rule_logs_its_start_and_finish(tmp_path: Path) -> None:
    manifest = smoke_deployment(tmp_path)
    args = ["scan", str(manifest), "--only", "FMFL-F06", "--only", "FMFL-P03", "--exit-zero"]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    lines = res.stderr.splitlines()
    assert lines[0] == "fmfl-audit: FMFL-P03 skipped"
    assert lines[1] == (
        "fmfl-audit: FMFL-F06 started: Ensure aggregation weight is not concentrated in a few "
        "clients"
    )
    assert re.fullmatch(r"fmfl-audit: FMFL-F06 (passed|failed) in \d+\.\ds", lines[2])
    res = runner.invoke(app, [*args, "--no-progress"])
    assert res.stderr == ""


def test_line_observer() -> None:
    out = io.StringIO()
    obs = LineObserver(out)
    obs.rule_started("FMFL-P01", "Ensure no PII")
    obs.rule_progress("FMFL-P01", 3, None)
    obs.rule_finished("FMFL-P01", Outcome.FAILED)
    obs.rule_finished("FMFL-R07", Outcome.SKIPPED)
    text = out.getvalue().splitlines()
    assert text[0] == "fmfl-audit: FMFL-P01 started: Ensure no PII"
    assert re.fullmatch(r"fmfl-audit: FMFL-P01 failed in \d+\.\ds", text[1])
    assert text[2] == "fmfl-audit: FMFL-R07 skipped"


def test_bars_show_counts_without_none() -> None:
    from rich.console import Console

    buf = io.StringIO()
    console = Console(file=buf, force_terminal=True, width=100)
    with RichObserver(console) as obs:
        obs.rule_started("FMFL-P01", "PII")
        obs._progress.refresh()
        obs.rule_progress("FMFL-P01", 5, None)
        obs._progress.refresh()
        obs.rule_progress("FMFL-P01", 5, 12)
        obs._progress.refresh()
        obs.rule_finished("FMFL-P01", Outcome.PASSED)
    text = buf.getvalue()
    assert "None" not in text
    assert "5/12" in text
    assert "FMFL-P01" in text and "passed" in text
