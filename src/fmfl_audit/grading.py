"""Area scores, letters, coverage and the overall grade (the rubric is data in the rule pack).

- A rule that ran and passed scores 1. A failed rule scores 1 minus the pack's `severity_penalty` of
  its worst unwaived finding. An area's score is the weight-averaged rule score times 100.
- Coverage is the share of the area's enabled rules that ran (skipped and errored rules did not).
- An unwaived critical finding caps its area at `critical_cap` (F by default).
- The overall grade is the worst area grade; the overall score is the lowest area score. Where
  no rule ran there is neither.
"""

from __future__ import annotations

from collections.abc import Sequence

from fmfl_audit.models import Area, AreaScore, Finding, Grade, Outcome, RuleResult, Severity
from fmfl_audit.rulepacks.model import GradingPolicy


def rule_score(result: RuleResult, findings: Sequence[Finding], policy: GradingPolicy) -> float:
    """1.0 for a pass, 1 - penalty(worst unwaived severity) for a failure."""
    live = [f for f in findings if f.rule_id == result.id and not f.waived]
    if result.outcome is not Outcome.FAILED or not live:
        return 1.0
    worst = max(f.severity.rank for f in live)
    return 1.0 - policy.severity_penalty[list(Severity)[worst]]


def area_scores(
    results: Sequence[RuleResult], findings: Sequence[Finding], policy: GradingPolicy
) -> tuple[AreaScore, ...]:
    """One `AreaScore` per area, in `Area` order."""
    out = []
    for area in Area:
        rules = [r for r in results if r.area is area]
        ran = [r for r in rules if r.outcome in (Outcome.PASSED, Outcome.FAILED)]
        coverage = len(ran) / len(rules) if rules else 0.0
        total_w = sum(r.weight for r in ran)
        if not ran:
            out.append(
                AreaScore(
                    name=area,
                    grade=None,
                    score=None,
                    coverage=round(coverage, 4),
                    rules_total=len(rules),
                    rules_run=0,
                )
            )
            continue
        if total_w > 0:
            score = 100.0 * sum(r.weight * rule_score(r, findings, policy) for r in ran) / total_w
        else:
            score = 100.0 * min(rule_score(r, findings, policy) for r in ran)
        grade = policy.letter(score)
        capped = any(
            f.area is area and f.severity is Severity.CRITICAL and not f.waived for f in findings
        )
        if capped and grade.rank < policy.critical_cap.rank:
            grade = policy.critical_cap
        out.append(
            AreaScore(
                name=area,
                grade=grade,
                score=round(score, 2),
                coverage=round(coverage, 4),
                rules_total=len(rules),
                rules_run=len(ran),
                capped=capped,
            )
        )
    return tuple(out)


def overall(areas: Sequence[AreaScore]) -> tuple[Grade | None, float | None, float]:
    """(grade, score, coverage) over all areas; no grade and no score when no rule ran (an F
    would claim a measurement that was never made)."""
    graded = [a for a in areas if a.grade is not None and a.score is not None]
    total = sum(a.rules_total for a in areas)
    coverage = sum(a.rules_run for a in areas) / total if total else 0.0
    if not graded:
        return None, None, round(coverage, 4)
    grade = max((a.grade for a in graded if a.grade is not None), key=lambda g: g.rank)
    score = min(a.score for a in graded if a.score is not None)
    return grade, round(score, 2), round(coverage, 4)
