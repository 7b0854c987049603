"""The output formats and their renderers (one file each)."""

from __future__ import annotations

import enum
from typing_extensions import assert_never

from fmfl_audit.report.interface import Renderer


class OutputFormat(str, enum.Enum):
    """Formats `scan --format` accepts."""

    TERMINAL = "terminal"
    JSON = "json"
    MARKDOWN = "markdown"


def renderer_for(fmt: OutputFormat, *, color: bool = True) -> Renderer:
    """The renderer of a format."""
    if fmt is OutputFormat.TERMINAL:
        from fmfl_audit.report.terminal import TerminalRenderer

        return TerminalRenderer(color=color)
    if fmt is OutputFormat.JSON:
        from fmfl_audit.report.json_format import JsonRenderer

        return JsonRenderer()
    if fmt is OutputFormat.MARKDOWN:
        from fmfl_audit.report.markdown import MarkdownRenderer

        return MarkdownRenderer()
    assert_never(fmt)
