"""Markdown: for pull-request comments and compliance records."""

from __future__ import annotations

import html
import re

from fmfl_audit.models import AuditReport
from fmfl_audit.report._common import (
    findings_by_severity,
    grade_text,
    method_notes,
    metric_text,
    overall_text,
    pii_engine,
    skipped,
)
from fmfl_audit.report.interface import Renderer

_MARKDOWN_SPECIAL = re.compile(
    r"[\\`*|~\[\]]"  # code spans, emphasis, tables, strikethrough, link and image brackets
    r"|(?<=\])\("  # `](`: already inert once `]` is escaped, escaped too so no `](` is left
    r"|!(?=\[)"  # `![`: the image marker
    r"|(?<![^\W_])_|_(?![^\W_])"  # `_` that can open or close emphasis (not `EMAIL_ADDRESS`)
)
"""Markdown syntax inside a line; `<`, `>` and `&` are HTML-escaped. A cell never starts a line,
so line-start syntax (`#`, `-`, `1.`) is left alone; `value(s)` and `EMAIL_ADDRESS` stay as
written."""


def _cell(text: str) -> str:
    """Data-derived text as inert Markdown: report text can hold hostile strings from the audited
    data (`![t](https://evil.example/x.png)`, `[click](javascript:...)`, raw HTML), so HTML is
    escaped and Markdown syntax is backslash-escaped (rendered as itself, never as a link, image,
    emphasis or table break); one line."""
    text = _MARKDOWN_SPECIAL.sub(lambda m: "\\" + m.group(), html.escape(text, quote=False))
    return text.replace("\n", " ").replace("\r", " ")


def _code(text: str, *, table: bool = False) -> str:
    """Data-derived text (a subject, a location) as a code span that it cannot close: the fence is
    one backtick longer than any run of backticks inside. In a table `|` is escaped (GFM removes
    the backslash in a cell's code span; elsewhere it would be shown)."""
    text = text.replace("\n", " ").replace("\r", " ")
    if table:
        text = text.replace("|", "\\|")
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if longest else ""
    return f"{fence}{pad}{text}{pad}{fence}"


class MarkdownRenderer(Renderer):
    """A GitHub-flavoured Markdown report."""

    def render(self, report: AuditReport) -> str:
        lines = [
            f"# fmfl-audit report: {_cell(report.deployment.name)}",
            "",
            f"**Overall grade {overall_text(report)}** — gate "
            f"**{'passed' if report.gate.passed else 'FAILED'}**",
            "",
        ]
        for reason in report.gate.reasons:
            lines.append(f"- gate: {_cell(reason)}")
        if report.gate.reasons:
            lines.append("")
        engine = pii_engine(report)
        if engine:
            lines += [f"PII engine: {_cell(engine)}", ""]
        lines += ["| Area | Grade | Coverage | Rules run |", "|---|---|---|---|"]
        for a in report.areas:
            capped = " (capped: critical finding)" if a.capped else ""
            lines.append(
                f"| {a.name.value} | {grade_text(a)}{capped} | {a.coverage:.0%} | "
                f"{a.rules_run}/{a.rules_total} |"
            )
        lines += ["", "## Findings", ""]
        groups = findings_by_severity(report)
        if not groups:
            lines.append("No unwaived findings.")
        for sev, items in groups:
            lines += [f"### {sev.value.capitalize()} ({len(items)})", ""]
            for f in items:
                lines.append(f"- **{f.rule_id}** {_code(f.subject)}: {_cell(f.message)}")
                if f.metric:
                    lines.append(f"  - {_cell(metric_text(f))}")
                for e in f.evidence:
                    where = _code(e.location) if e.location else ""
                    excerpt = f" — {_cell(e.excerpt)}" if e.excerpt else ""
                    lines.append(f"  - evidence: {where}{excerpt}")
                lines.append(f"  - remediation: {_cell(f.remediation)}")
            lines.append("")
        waived = [f for f in report.findings if f.waived]
        if report.waivers:
            lines += [
                "## Waivers",
                "",
                "| Rule | Subject | Expires | Matched | Reason |",
                "|---|---|---|---|---|",
            ]
            for w in report.waivers:
                state = " (expired)" if w.expired else ""
                lines.append(
                    f"| {_cell(w.rule)} | {_code(w.subject, table=True)} | "
                    f"{w.expires.isoformat()}{state} | {w.matched} | "
                    f"{_cell(w.reason)} |"
                )
            lines.append("")
        if waived:
            lines.append(f"{len(waived)} finding(s) waived.")
            lines.append("")
        not_run = skipped(report)
        if not_run:
            lines += ["## Rules not run", "", "| Rule | Outcome | Reason |", "|---|---|---|"]
            for r in not_run:
                lines.append(
                    f"| {_cell(r.id)} | {r.outcome.value} | "
                    f"{_cell(r.skip_reason or r.error or '')} |"
                )
            lines.append("")
        notes = method_notes(report)
        if notes:
            lines += ["## Method notes", ""]
            lines += [f"- {_cell(rid)}: {_cell(n)}" for rid, n in notes] + [""]
        if report.warnings:
            lines += ["## Warnings", ""] + [f"- {_cell(w)}" for w in report.warnings] + [""]
        lines.append(
            f"_{report.tool.name} {report.tool.version}, packs: {_cell(', '.join(report.packs))}, "
            f"manifest sha256 `{report.manifest_sha256[:12]}`_"
        )
        return "\n".join(lines) + "\n"
