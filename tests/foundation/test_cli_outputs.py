"""Issue 16.1: every format goes to the file it names, never to another format's file."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pytest
from tests.foundation.builders import smoke_deployment
from typer.testing import CliRunner

from fmfl_audit.cli.main import app
from fmfl_audit.cli.outputs import AMBIGUOUS_OUTPUT, OutputTarget, parse_targets
from fmfl_audit.errors import UsageError
from fmfl_audit.report.formats import OutputFormat

runner = CliRunner()
FORMATS = [f.value for f in OutputFormat]


def _sniff(text: str) -> str:
    """Which format a rendered report is, from its content alone."""
    if text.startswith("<!DOCTYPE html>"):
        return "html"
    if text.startswith("<?xml") and "<testsuites" in text:
        return "junit"
    if text.lstrip().startswith("{"):
        return "sarif" if '"$schema"' in text and '"runs"' in text else "json"
    if text.startswith("# fmfl-audit report"):
        return "markdown"
    if "overall grade" in text:
        return "terminal"
    return "unknown"


@pytest.mark.parametrize("n", [1, 2, 3])
def test_every_ordering_maps_each_format_to_its_own_file(n: int, tmp_path: Path) -> None:
    for combo in itertools.permutations(FORMATS, n):
        specs = [f"{f}:{tmp_path / f}.out" for f in combo]
        targets = parse_targets(specs, [])
        assert targets == [OutputTarget(OutputFormat(f), tmp_path / f"{f}.out") for f in combo], (
            combo
        )


def test_output_is_only_accepted_for_a_single_format(tmp_path: Path) -> None:
    out = str(tmp_path / "r.json")
    assert parse_targets(["json"], [out]) == [OutputTarget(OutputFormat.JSON, Path(out))]
    assert parse_targets([], [out]) == [OutputTarget(OutputFormat.TERMINAL, Path(out))]
    assert parse_targets(["json"], ["-"]) == [OutputTarget(OutputFormat.JSON, None)]
    # The reported bug: pairing by position sent terminal text into c.json.
    for formats in (
        ["terminal", "json", "markdown"],
        ["json", "terminal"],
        ["json", "markdown"],
    ):
        with pytest.raises(UsageError) as err:
            parse_targets(formats, [out])
        assert str(err.value) == AMBIGUOUS_OUTPUT
    with pytest.raises(UsageError, match="ambiguous"):
        parse_targets(["json"], [out, str(tmp_path / "x")])
    with pytest.raises(UsageError, match="already names its file"):
        parse_targets([f"json:{out}"], [out])


@pytest.mark.parametrize(
    ("formats", "message"),
    [
        (["json", "markdown"], "only one format can go to stdout"),
        (["json:-", "sarif"], "only one format can go to stdout"),
        (["pdf"], "unknown format 'pdf'"),
        (["json:a.out", "sarif:a.out"], "named for both json and sarif"),
    ],
)
def test_bad_combinations_are_usage_errors(formats: list[str], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse_targets(formats, [])


def test_unwritable_targets_are_refused_before_the_scan(tmp_path: Path) -> None:
    (tmp_path / "adir").mkdir()
    (tmp_path / "afile").write_text("x")
    with pytest.raises(UsageError, match="is a folder"):
        parse_targets([f"json:{tmp_path / 'adir'}"], [])
    with pytest.raises(UsageError, match="is a file"):
        parse_targets([f"json:{tmp_path / 'afile' / 'r.json'}"], [])


def _scan(*args: str) -> Any:
    return runner.invoke(app, ["scan", *args, "--no-progress", "--no-color", "--exit-zero"])


@pytest.mark.parametrize("order", [FORMATS, list(reversed(FORMATS))])
def test_cli_writes_every_format_to_its_named_file(order: list[str], tmp_path: Path) -> None:
    manifest = smoke_deployment(tmp_path / "d")
    out = tmp_path / "out"
    specs: list[str] = []
    for f in order:
        # terminal goes to stdout, every other format to a file named after it
        specs += ["-f", f if f == "terminal" else f"{f}:{out / f}.out"]
    res = _scan(str(manifest), "--only", "FMFL-P01", *specs)
    assert res.exit_code == 0, res.output
    assert _sniff(res.stdout) == "terminal"
    for f in order:
        if f != "terminal":
            assert _sniff((out / f"{f}.out").read_text()) == f
    assert json.loads((out / "json.out").read_text())["deployment"]["name"] == "smoke"


def test_cli_refuses_the_ambiguous_form_and_a_folder_before_scanning(tmp_path: Path) -> None:
    manifest = smoke_deployment(tmp_path / "d")
    c_json = tmp_path / "c.json"
    res = _scan(str(manifest), "-f", "terminal", "-f", "json", "-o", str(c_json))
    assert res.exit_code == 2 and AMBIGUOUS_OUTPUT in res.stderr
    assert not c_json.exists()
    res = _scan(str(manifest), "-f", f"json:{tmp_path}")
    assert res.exit_code == 2 and "is a folder" in res.stderr
    assert "Traceback" not in res.output
    # A single format with -o keeps working.
    res = _scan(str(manifest), "--only", "FMFL-F06", "-f", "json", "-o", str(c_json))
    assert res.exit_code == 0 and _sniff(c_json.read_text()) == "json"
