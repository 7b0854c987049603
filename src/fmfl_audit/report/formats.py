"""The output formats and their renderers (one file each)."""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING

from typing_extensions import assert_never

if TYPE_CHECKING:  # the CLI imports this module for --help; keep pydantic models out of it
    from fmfl_audit.report.interface import Renderer


class OutputFormat(str, enum.Enum):
    """Formats `scan --format` accepts."""

    TERMINAL = "terminal"
    JSON = "json"
    MARKDOWN = "markdown"
    HTML = "html"
    SARIF = "sarif"
    JUNIT = "junit"


def renderer_for(fmt: OutputFormat, *, color: bool = True, sarif_uri_prefix: str = "") -> Renderer:
    """The renderer of a format.

    `sarif_uri_prefix` is the manifest folder's path from the repository root (see
    `fmfl_audit.report.sarif.uri_prefix_for`), so SARIF locations resolve in code scanning.
    """
    if fmt is OutputFormat.TERMINAL:
        from fmfl_audit.report.terminal import TerminalRenderer

        return TerminalRenderer(color=color)
    if fmt is OutputFormat.JSON:
        from fmfl_audit.report.json_format import JsonRenderer

        return JsonRenderer()
    if fmt is OutputFormat.MARKDOWN:
        from fmfl_audit.report.markdown import MarkdownRenderer

        return MarkdownRenderer()
    if fmt is OutputFormat.HTML:
        from fmfl_audit.report.html import HtmlRenderer

        return HtmlRenderer()
    if fmt is OutputFormat.SARIF:
        from fmfl_audit.report.sarif import SarifRenderer

        return SarifRenderer(uri_prefix=sarif_uri_prefix)
    if fmt is OutputFormat.JUNIT:
        from fmfl_audit.report.junit import JunitRenderer

        return JunitRenderer()
    assert_never(fmt)
