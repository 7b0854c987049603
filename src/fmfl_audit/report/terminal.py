"""Terminal: a Rich rendering for people at a console (grades, findings, what did not run)."""

from __future__ import annotations

import io

from fmfl_audit.models import AuditReport, Grade, Severity
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
        from rich.text import Text

        buf = io.StringIO()
        con = Console(
            file=buf,
            force_terminal=self.color,
            no_color=not self.color,
            width=self.width,
            highlight=False,
            emoji=False,  # `client:a:` must not become an emoji
        )

        def say(markup: str, indent: int = 0, style: str = "") -> None:
            # Wrapped lines keep their indent (a plain print wraps to column 0).
            text = Text.from_markup(markup, style=style)
            for line in text.wrap(con, self.width - indent):
                line.rstrip()
                con.print(Text(" " * indent) + line, soft_wrap=True)

        verdict = "[bold green]PASSED[/]" if report.gate.passed else "[bold red]FAILED[/]"
        gs = _GRADE_STYLE[report.grade] if report.grade else "dim"
        say(
            f"[bold]fmfl-audit[/] {escape(report.deployment.name)}: overall grade "
            f"[{gs}]{escape(overall_text(report))}[/], gate {verdict}"
        )
        for reason in report.gate.reasons:
            say(f"gate: {escape(reason)}", 2)
        engine = pii_engine(report)
        if engine:
            say(f"PII engine: {escape(engine)}", 2, "dim")
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
            say("[green]No unwaived findings.[/]")
        for sev, items in groups:
            con.print()
            say(f"[{_SEV_STYLE[sev]}]{sev.value.upper()}[/] ({len(items)})")
            for f in items:
                say(f"[bold]{f.rule_id}[/] {escape(f.subject)}: {escape(f.message)}", 2)
                if f.metric:
                    say(escape(metric_text(f)), 4, "dim")
                for e in f.evidence:
                    loc = escape(e.location or "")
                    ex = f"  {escape(e.excerpt)}" if e.excerpt else ""
                    say(f"at {loc}{ex}", 4, "dim")
        waived = [f for f in report.findings if f.waived]
        if report.waivers:
            con.print()
            say(f"Waivers ({len(waived)} finding(s) waived)")
            for w in report.waivers:
                state = "[red]expired[/]" if w.expired else f"until {w.expires.isoformat()}"
                say(f"{w.rule} {escape(w.subject)} {state}: {escape(w.reason)}", 2)
        not_run = skipped(report)
        if not_run:
            con.print()
            say(f"Not run ({len(not_run)})")
            for r in not_run:
                why = r.skip_reason or r.error or ""
                say(f"{r.id} {r.outcome.value}: {escape(why)}", 2, "dim")
        notes = method_notes(report)
        if notes:
            con.print()
            say("Method notes")
            for rule_id, note in notes:
                say(f"{rule_id}: {escape(note)}", 2, "dim")
        for warning in report.warnings:
            say(f"[yellow]warning:[/] {escape(warning)}")
        return buf.getvalue()
