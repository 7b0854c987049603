"""Markdown: for pull-request comments and compliance records."""

from __future__ import annotations

import html

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


def _cell(text: str) -> str:
    # Report text can hold hostile strings from the audited data: no raw HTML, no table breaks.
    text = html.escape(text, quote=False)
    return text.replace("|", "\\|").replace("\n", " ").replace("\r", " ")


class MarkdownRenderer(Renderer):
    """A GitHub-flavoured Markdown report."""

    def render(self, report: AuditReport) -> str:
        lines = [
            f"# fmfl-audit report: {report.deployment.name}",
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
                lines.append(f"- **{f.rule_id}** `{f.subject}`: {_cell(f.message)}")
                if f.metric:
                    lines.append(f"  - {metric_text(f)}")
                for e in f.evidence:
                    where = f"`{e.location}`" if e.location else ""
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
                    f"| {w.rule} | `{w.subject}` | {w.expires.isoformat()}{state} | {w.matched} | "
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
                    f"| {r.id} | {r.outcome.value} | {_cell(r.skip_reason or r.error or '')} |"
                )
            lines.append("")
        notes = method_notes(report)
        if notes:
            lines += ["## Method notes", ""] + [f"- {rid}: {_cell(n)}" for rid, n in notes] + [""]
        if report.warnings:
            lines += ["## Warnings", ""] + [f"- {_cell(w)}" for w in report.warnings] + [""]
        lines.append(
            f"_{report.tool.name} {report.tool.version}, packs: {', '.join(report.packs)}, "
            f"manifest sha256 `{report.manifest_sha256[:12]}`_"
        )
        return "\n".join(lines) + "\n"
