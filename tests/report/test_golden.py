"""Golden snapshots of every output format for one fixed report.

Regenerate after an intended change with `FMFL_UPDATE_GOLDEN=1 pytest tests/report` and review the
diff of tests/report/golden/ like code.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from fmfl_audit.report.formats import OutputFormat, renderer_for
from fmfl_audit.report.interface import Renderer

from .builders import sample_report

GOLDEN = Path(__file__).parent / "golden"
SUFFIX = {
    OutputFormat.TERMINAL: "txt",
    OutputFormat.JSON: "json",
    OutputFormat.MARKDOWN: "md",
    OutputFormat.HTML: "html",
    OutputFormat.SARIF: "sarif",
    OutputFormat.JUNIT: "xml",
}
UPDATE = os.environ.get("FMFL_UPDATE_GOLDEN") == "1"


def test_every_format_has_a_golden_suffix() -> None:
    assert set(SUFFIX) == set(OutputFormat)


@pytest.mark.parametrize("fmt", list(OutputFormat), ids=lambda f: f.value)
def test_every_format_has_a_renderer(fmt: OutputFormat) -> None:
    renderer = renderer_for(fmt, color=False)
    assert isinstance(renderer, Renderer)
    text = renderer.render(sample_report())
    assert text.endswith("\n")
    assert "reading-tutor" in text


@pytest.mark.parametrize("fmt", list(OutputFormat), ids=lambda f: f.value)
def test_matches_golden(fmt: OutputFormat) -> None:
    text = renderer_for(fmt, color=False).render(sample_report())
    path = GOLDEN / f"sample.{SUFFIX[fmt]}"
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8", newline="")
    assert path.is_file(), f"{path} is missing: run with FMFL_UPDATE_GOLDEN=1 to create it"
    expected = path.read_text(encoding="utf-8")
    assert text == expected, f"{fmt.value} output changed; FMFL_UPDATE_GOLDEN=1 regenerates {path}"


def test_rendering_is_deterministic() -> None:
    for fmt in OutputFormat:
        r = renderer_for(fmt, color=False)
        assert r.render(sample_report()) == r.render(sample_report())


def test_no_stale_golden_files() -> None:
    expected = {f"sample.{s}" for s in SUFFIX.values()}
    assert {p.name for p in GOLDEN.iterdir()} == expected


@pytest.mark.parametrize("fmt", list(OutputFormat), ids=lambda f: f.value)
def test_every_format_lists_waivers_and_flags_expired(fmt: OutputFormat) -> None:
    text = renderer_for(fmt, color=False).render(sample_report())
    assert "pilot school hosts the GPU cluster" in text  # the waiver in force
    assert "DP budget review pending" in text  # the expired one
    assert "expired" in text.lower()


def test_terminal_wrapped_lines_keep_their_indent() -> None:
    # Issue 16.17: a long finding message wraps under itself, not at column 0.
    text = renderer_for(OutputFormat.TERMINAL, color=False).render(sample_report())
    lines = text.splitlines()
    start = next(i for i, ln in enumerate(lines) if "FMFL-P06 client:school-c:" in ln)
    assert lines[start].startswith("  FMFL-P06") and len(lines[start]) <= 110
    assert lines[start + 1] == "  prompts"
    assert lines[start] == lines[start].rstrip()  # no padding to the full width
