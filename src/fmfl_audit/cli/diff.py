"""`fmfl-audit diff OLD.json NEW.json`: new, fixed and worsened findings between two JSON reports.

An old finding whose rule did not run in the new report is listed as *not checked*, never fixed.
Exit 0 when nothing unwaived is new or worse (at or above `--fail-on`) and every rule that ran in
the old report ran in the new one, 1 otherwise, 2 when a report cannot be read.
"""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:  # the CLI module graph stays free of pydantic models until a command runs
    from fmfl_audit.models import Finding, Severity
    from fmfl_audit.report.baseline import Change, ReportDiff


class FailOnChoice(str, Enum):
    """`diff --fail-on` values."""

    info = "info"
    low = "low"
    medium = "medium"
    high = "high"
    critical = "critical"


def _line(f: Finding) -> str:
    metric = ""
    if f.metric is not None:
        thr = "" if f.metric.threshold is None else f" (threshold {f.metric.threshold:.4g})"
        metric = f" [{f.metric.name} = {f.metric.value:.4g}{thr}]"
    waived = " (waived)" if f.waived else ""
    return f"  {f.rule_id} {f.severity.value:<8} {f.subject}: {f.message}{metric}{waived}"


def _change_line(c: Change) -> str:
    what = []
    if c.new.severity.rank != c.old.severity.rank:
        what.append(f"severity {c.old.severity.value} -> {c.new.severity.value}")
    if c.old.metric is not None and c.new.metric is not None:
        what.append(f"{c.new.metric.name} {c.old.metric.value:.4g} -> {c.new.metric.value:.4g}")
    return _line(c.new) + (f"\n      {'; '.join(what)}" if what else "")


def render_text(d: ReportDiff, old: Path, new: Path) -> str:
    """The human-readable diff."""
    lines = [
        f"fmfl-audit diff {old} -> {new}: {len(d.new)} new, {len(d.worsened)} worsened, "
        f"{len(d.fixed)} fixed, {len(d.unchanged)} unchanged, {len(d.not_checked)} not checked"
    ]
    for title, items in (("New", d.new), ("Fixed", d.fixed)):
        if items:
            lines.append(f"\n{title} ({len(items)}):")
            lines += [_line(f) for f in items]
    if d.worsened:
        lines.append(f"\nWorsened ({len(d.worsened)}):")
        lines += [_change_line(c) for c in d.worsened]
    if d.rules_not_rerun:
        lines.append(
            f"\nRules that ran in the old report but not in the new one: "
            f"{', '.join(d.rules_not_rerun)}"
        )
    if d.not_checked:
        lines.append(f"\nNot checked (rule did not run in the new report) ({len(d.not_checked)}):")
        lines += [_line(f) for f in d.not_checked]
    return "\n".join(lines) + "\n"


def render_json(d: ReportDiff) -> str:
    """The machine-readable diff: findings as in the JSON report."""

    def dump(f: Finding) -> Any:
        return f.model_dump(mode="json")

    doc = {
        "new": [dump(f) for f in d.new],
        "fixed": [dump(f) for f in d.fixed],
        "worsened": [{"old": dump(c.old), "new": dump(c.new)} for c in d.worsened],
        "unchanged": [c.new.fingerprint for c in d.unchanged],
        "not_checked": [dump(f) for f in d.not_checked],
        "rules_not_rerun": list(d.rules_not_rerun),
    }
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def regressions(d: ReportDiff, fail_on: Severity) -> int:
    """Unwaived new or worsened findings at or above `fail_on`."""
    hits = [f for f in d.new if not f.waived and f.severity >= fail_on]
    hits += [c.new for c in d.worsened if not c.new.waived and c.new.severity >= fail_on]
    return len(hits)


def register(app: typer.Typer) -> None:
    """Add the `diff` command to `app`."""
    from fmfl_audit.cli.main import EXIT_GATE_FAILED, EXIT_PASSED, guarded

    @app.command("diff")
    @guarded
    def diff(
        old: Annotated[Path, typer.Argument(help="Baseline JSON report (scan --format json).")],
        new: Annotated[Path, typer.Argument(help="New JSON report.")],
        fail_on: Annotated[
            FailOnChoice,
            typer.Option(help="Exit 1 only for new or worsened findings at or above this."),
        ] = FailOnChoice.info,
        as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
        fail_on_rules_not_rerun: Annotated[
            bool,
            typer.Option(
                help="Exit 1 when a rule that ran in OLD did not run in NEW (its old findings "
                "are not checked)."
            ),
        ] = True,
    ) -> None:
        """List new, fixed, worsened and not-checked findings; exit 1 when anything unwaived is
        new or worse, or a rule that ran in OLD did not run in NEW."""
        from fmfl_audit.models import Severity
        from fmfl_audit.report.baseline import diff_reports, load_report

        d = diff_reports(load_report(old), load_report(new))
        typer.echo(render_json(d) if as_json else render_text(d, old, new), nl=False)
        failed = regressions(d, Severity(fail_on.value))
        failed += len(d.rules_not_rerun) if fail_on_rules_not_rerun else 0
        raise typer.Exit(EXIT_GATE_FAILED if failed else EXIT_PASSED)
