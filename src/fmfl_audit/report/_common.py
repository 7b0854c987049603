"""Small helpers shared by the human-readable renderers."""

from __future__ import annotations

from fmfl_audit.models import AreaScore, AuditReport, Finding, Outcome, RuleResult, Severity


def grade_text(area: AreaScore) -> str:
    """`B (82.5)` or `n/a`."""
    if area.grade is None or area.score is None:
        return "n/a"
    return f"{area.grade.value} ({area.score:.1f})"


def findings_by_severity(report: AuditReport) -> list[tuple[Severity, list[Finding]]]:
    """Unwaived findings grouped by severity, most severe first (empty groups left out)."""
    groups = []
    for sev in sorted(Severity, key=lambda s: s.rank, reverse=True):
        items = [f for f in report.findings if f.severity is sev and not f.waived]
        if items:
            groups.append((sev, items))
    return groups


def skipped(report: AuditReport) -> list[RuleResult]:
    """Rules that did not run (skipped or errored)."""
    return [r for r in report.rules if r.outcome in (Outcome.SKIPPED, Outcome.ERRORED)]


def metric_text(f: Finding) -> str:
    """`flagged_rate 0.09 > 0.05` style text."""
    if f.metric is None:
        return ""
    m = f.metric
    value = f"{m.value:.4g}"
    if m.threshold is None:
        return f"{m.name} = {value}"
    return f"{m.name} = {value} (threshold {m.threshold:.4g})"
