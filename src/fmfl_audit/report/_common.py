"""Small helpers shared by the human-readable renderers."""

from __future__ import annotations

from fmfl_audit.models import AreaScore, AuditReport, Finding, Outcome, RuleResult, Severity


def grade_text(area: AreaScore) -> str:
    """`B (82.5)` or `n/a`."""
    if area.grade is None or area.score is None:
        return "n/a"
    return f"{area.grade.value} ({area.score:.1f})"


def overall_text(report: AuditReport) -> str:
    """`B (score 82.5, coverage 90%)`, or `n/a (no rule ran, coverage 0%)`."""
    if report.grade is None or report.score is None:
        return f"n/a (no rule ran, coverage {report.coverage:.0%})"
    return f"{report.grade.value} (score {report.score:.1f}, coverage {report.coverage:.0%})"


_ENGINE_PREFIXES = ("PII engine:", "NLP engine:")
NER_HINT = (
    "names, places and other NER entities (PERSON, LOCATION, NRP) need a spaCy model with NER "
    "(e.g. `python -m spacy download en_core_web_lg`); only pattern entities were checked"
)


def pii_engine(report: AuditReport) -> str | None:
    """Which PII engine the privacy rules ran, with a hint when it has no NER, or None when no
    rule that uses it ran."""
    for r in report.rules:
        for note in r.notes:
            if note.startswith(_ENGINE_PREFIXES):
                engine = note.split(":", 1)[1].strip()
                # The rules' note already says when names and places were not looked for; an
                # older or custom note may not.
                if "pattern recognizers only" in engine and "NER model" not in engine:
                    return f"{engine}; {NER_HINT}"
                return engine
    return None


def method_notes(report: AuditReport) -> list[tuple[str, str]]:
    """(rule id, note) for every rule that ran, in report order, engine notes left out."""
    return [
        (r.id, note)
        for r in report.rules
        if r.outcome in (Outcome.PASSED, Outcome.FAILED)
        for note in r.notes
        if not note.startswith(_ENGINE_PREFIXES)
    ]


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
