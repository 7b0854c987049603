"""The CI examples and the pre-commit hook: their YAML parses, and every `fmfl-audit` command line
in them parses against the real Typer app (commands, options and option values exist)."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml
from typer.core import TyperGroup
from typer.main import get_command
from typer.testing import CliRunner

from fmfl_audit.cli.diff import register
from fmfl_audit.report.formats import OutputFormat

REPO = Path(__file__).resolve().parents[2]
GITHUB = REPO / "examples" / "ci" / "github-actions.yml"
GITLAB = REPO / "examples" / "ci" / "gitlab-ci.yml"
HOOKS = REPO / ".pre-commit-hooks.yaml"


def _diff_app() -> typer.Typer:
    local = typer.Typer()

    @local.callback()
    def _root() -> None:
        """Keeps `diff` a subcommand."""

    register(local)
    return local


def _app_with(name: str) -> typer.Typer:
    """The real app, or for `diff` while cli/main.py does not register it, an app that has it."""
    from fmfl_audit.cli.main import app

    if name == "diff" and not any(c.name == "diff" for c in app.registered_commands):
        return _diff_app()
    return app


def _cli() -> TyperGroup:
    """The real CLI as a click group, with `diff` added if cli/main.py does not register it yet."""
    from fmfl_audit.cli.main import app

    group = get_command(app)
    assert isinstance(group, TyperGroup)
    if "diff" not in group.commands:
        sub = get_command(_diff_app())
        assert isinstance(sub, TyperGroup)
        group.add_command(sub.commands["diff"], "diff")
    return group


def _command_lines(script: str) -> list[str]:
    """`fmfl-audit ...` lines of a shell script, with backslash continuations joined."""
    joined = script.replace("\\\n", " ")
    return [
        " ".join(ln.split()) for ln in joined.splitlines() if ln.strip().startswith("fmfl-audit ")
    ]


def _parse(line: str) -> tuple[str, dict[str, Any], list[str]]:
    """Parse a command line like the CLI would; click raises on unknown options or bad values."""
    args = shlex.split(line)
    assert args[0] == "fmfl-audit"
    cmd: Any = _cli()
    path: list[str] = []
    rest = args[1:]
    while isinstance(cmd, TyperGroup):
        name, rest = rest[0], rest[1:]
        sub = cmd.commands.get(name)
        assert sub is not None, f"{line!r}: no command {name!r}"
        cmd, path = sub, [*path, name]
    # make_context parses like a real invocation: unknown options and bad values raise.
    ctx = cmd.make_context(" ".join(["fmfl-audit", *path]), list(rest))
    return " ".join(path), ctx.params, rest


def _github() -> dict[str, Any]:
    return yaml.safe_load(GITHUB.read_text(encoding="utf-8"))


def _gitlab() -> dict[str, Any]:
    return yaml.safe_load(GITLAB.read_text(encoding="utf-8"))


def _hooks() -> list[dict[str, Any]]:
    return yaml.safe_load(HOOKS.read_text(encoding="utf-8"))


def _github_lines() -> list[str]:
    steps = _github()["jobs"]["audit"]["steps"]
    return [ln for s in steps if "run" in s for ln in _command_lines(s["run"])]


def _gitlab_lines() -> list[str]:
    return [ln for item in _gitlab()["fmfl-audit"]["script"] for ln in _command_lines(item)]


def _hook_lines() -> list[str]:
    return [" ".join([h["entry"], *map(shlex.quote, h.get("args", []))]) for h in _hooks()]


def _outputs(params: dict[str, Any]) -> dict[str, str]:
    # typer < 0.21 (pinned by Flower) leaves choices as strings until the callback runs.
    formats = [OutputFormat(f).value for f in params["fmt"]]
    return {f: str(o) for f, o in zip(formats, params["output"], strict=True)}


ALL_LINES = [
    pytest.param(line, id=f"{src}:{line.split()[1]}")
    for src, lines in (
        ("github", _github_lines()),
        ("gitlab", _gitlab_lines()),
        ("pre-commit", _hook_lines()),
    )
    for line in lines
]


def test_examples_use_the_cli() -> None:
    assert len(_github_lines()) == 3
    assert len(_gitlab_lines()) == 2
    assert len(_hook_lines()) == 1


@pytest.mark.parametrize("line", ALL_LINES)
def test_command_lines_parse(line: str) -> None:
    name, params, _ = _parse(line)
    assert name in {"scan", "validate", "diff"}
    assert params.get("manifest") or params.get("old")  # the positional argument was taken


@pytest.mark.parametrize("line", ALL_LINES)
def test_command_has_help(line: str) -> None:
    name = shlex.split(line)[1]
    result = CliRunner().invoke(_app_with(name), [name, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output


def test_parser_rejects_unknown_options() -> None:
    with pytest.raises(Exception, match="No such option"):
        _parse("fmfl-audit scan m.yaml --no-such-option")
    with pytest.raises(typer.BadParameter, match="pdf"):
        _parse("fmfl-audit scan m.yaml --format pdf")
    with pytest.raises(AssertionError, match="no command"):
        _parse("fmfl-audit scna m.yaml")


def test_github_workflow_uploads_the_sarif_it_writes() -> None:
    wf = _github()
    job = wf["jobs"]["audit"]
    assert job["permissions"]["security-events"] == "write"
    triggers = wf.get("on", wf.get(True))  # YAML 1.1 reads a bare `on` as true
    assert "pull_request" in triggers
    scan = next(ln for ln in _github_lines() if ln.startswith("fmfl-audit scan"))
    _, params, _ = _parse(scan)
    outputs = _outputs(params)
    upload = next(
        s
        for s in job["steps"]
        if str(s.get("uses", "")).startswith("github/codeql-action/upload-sarif@")
    )
    assert upload["with"]["sarif_file"] == outputs["sarif"]
    assert upload["if"].startswith("always()")
    gate = job["steps"][-1]
    assert gate["name"] == "Gate" and "exit_code" in gate["if"]


def test_gitlab_junit_report_is_the_scan_output() -> None:
    job = _gitlab()["fmfl-audit"]
    scan = next(ln for ln in _gitlab_lines() if ln.startswith("fmfl-audit scan"))
    _, params, _ = _parse(scan)
    outputs = _outputs(params)
    assert job["artifacts"]["reports"]["junit"] == outputs["junit"]
    assert job["artifacts"]["when"] == "always"
    assert set(job["artifacts"]["paths"]) == {outputs["json"], outputs["html"]}


def test_pre_commit_hook() -> None:
    (hook,) = _hooks()
    assert hook["id"] == "fmfl-audit-validate"
    assert hook["language"] == "python"
    assert hook["entry"] == "fmfl-audit validate"
    # `validate` takes exactly one manifest, so file names must not be appended.
    assert hook["pass_filenames"] is False
    name, params, _ = _parse(_hook_lines()[0])
    assert name == "validate" and str(params["manifest"]) == "manifest.yaml"
