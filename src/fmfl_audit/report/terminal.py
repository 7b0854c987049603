"""Terminal: a Rich rendering for people at a console (grades, findings, what did not run)."""

from __future__ import annotations

import io

from fmfl_audit.models import AuditReport, Grade, Severity
from fmfl_audit.report._common import findings_by_severity, grade_text, metric_text, skipped
from fmfl_audit.report.interface import Renderer

_SEV_STYLE = {
    Severity.CRITICAL: "bold white on red",
    Severity.HIGH: "bold red",
    Severity.MEDIUM: "yellow",
    Severity.LOW: "cyan",
    Severity.INFO: "dim",
}
_GRADE_STYLE = {
    Grade.A: "bold green",
    Grade.B: "green",
    Grade.C: "yellow",
    Grade.D: "red",
    Grade.F: "bold red",
}


class TerminalRenderer(Renderer):
    """Rich tables and panels; `color=False` gives plain text (for files and tests)."""

    def __init__(self, *, color: bool = True, width: int = 110) -> None:
        self.color = color
        self.width = width

    def render(self, report: AuditReport) -> str:
        from rich.console import Console
        from rich.markup import escape
        from rich.table import Table

        buf = io.StringIO()
        con = Console(
            file=buf,
            force_terminal=self.color,
            no_color=not self.color,
            width=self.width,
            highlight=False,
            emoji=False,  # `client:a:` must not become an emoji
        )
        verdict = "[bold green]PASSED[/]" if report.gate.passed else "[bold red]FAILED[/]"
        gs = _GRADE_STYLE[report.grade]
        con.print(
            f"[bold]fmfl-audit[/] {escape(report.deployment.name)}: overall grade "
            f"[{gs}]{report.grade.value}[/] (score {report.score:.1f}, coverage "
            f"{report.coverage:.0%}), gate {verdict}"
        )
        for reason in report.gate.reasons:
            con.print(f"  gate: {escape(reason)}")
        table = Table(title="Areas", title_justify="left")
        for col in ("area", "grade", "coverage", "rules run"):
            table.add_column(col)
        for a in report.areas:
            style = _GRADE_STYLE[a.grade] if a.grade else "dim"
            capped = " capped" if a.capped else ""
            table.add_row(
                a.name.value,
                f"[{style}]{grade_text(a)}{capped}[/]",
                f"{a.coverage:.0%}",
                f"{a.rules_run}/{a.rules_total}",
            )
        con.print(table)
        groups = findings_by_severity(report)
        if not groups:
            con.print("[green]No unwaived findings.[/]")
        for sev, items in groups:
            con.print(f"\n[{_SEV_STYLE[sev]}]{sev.value.upper()}[/] ({len(items)})")
            for f in items:
                con.print(f"  [bold]{f.rule_id}[/] {escape(f.subject)}: {escape(f.message)}")
                if f.metric:
                    con.print(f"    {escape(metric_text(f))}", style="dim")
                for e in f.evidence:
                    loc = escape(e.location or "")
                    ex = f"  {escape(e.excerpt)}" if e.excerpt else ""
                    con.print(f"    at {loc}{ex}", style="dim")
        waived = [f for f in report.findings if f.waived]
        if report.waivers:
            con.print(f"\nWaivers ({len(waived)} finding(s) waived)")
            for w in report.waivers:
                state = "[red]expired[/]" if w.expired else f"until {w.expires.isoformat()}"
                con.print(f"  {w.rule} {escape(w.subject)} {state}: {escape(w.reason)}")
        not_run = skipped(report)
        if not_run:
            con.print(f"\nNot run ({len(not_run)})")
            for r in not_run:
                why = r.skip_reason or r.error or ""
                con.print(f"  {r.id} {r.outcome.value}: {escape(why)}", style="dim")
        for warning in report.warnings:
            con.print(f"[yellow]warning:[/] {escape(warning)}")
        return buf.getvalue()
