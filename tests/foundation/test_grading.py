"""Grading tables: rule outcomes and findings -> area scores, letters, coverage, caps and overall."""

from __future__ import annotations

import pytest

from fmfl_audit.grading import area_scores, overall
from fmfl_audit.models import Area, Confidence, Finding, Grade, Outcome, RuleResult, Severity
from fmfl_audit.rulepacks.loader import load_ruleset

POLICY = load_ruleset(["default"]).grading


def rule(rid: str, area: Area, outcome: Outcome, weight: float = 1.0) -> RuleResult:
    return RuleResult(
        id=rid,
        title="Ensure x",
        area=area,
        threat="t",
        severity=Severity.HIGH,
        weight=weight,
        outcome=outcome,
    )


def finding(rid: str, area: Area, sev: Severity, waived: bool = False) -> Finding:
    return Finding(
        rule_id=rid,
        area=area,
        threat="t",
        severity=sev,
        confidence=Confidence.HIGH,
        subject="s",
        message="m",
        fingerprint=rid + sev.value,
        waived=waived,
    )


R, P, F = Area.ROBUSTNESS, Area.PRIVACY, Area.FAIRNESS


@pytest.mark.parametrize(
    ("outcomes", "findings", "score", "grade", "coverage"),
    [
        # all passed
        ([("A", Outcome.PASSED, 1), ("B", Outcome.PASSED, 1)], [], 100.0, Grade.A, 1.0),
        # one of two equal-weight rules failed high: (1 + 0.25) / 2
        (
            [("A", Outcome.PASSED, 1), ("B", Outcome.FAILED, 1)],
            [("B", Severity.HIGH)],
            62.5,
            Grade.D,
            1.0,
        ),
        # weights matter: (3*1 + 1*0.5) / 4
        (
            [("A", Outcome.PASSED, 3), ("B", Outcome.FAILED, 1)],
            [("B", Severity.MEDIUM)],
            87.5,
            Grade.B,
            1.0,
        ),
        # the worst finding of a rule decides its penalty
        (
            [("A", Outcome.PASSED, 1), ("B", Outcome.FAILED, 1)],
            [("B", Severity.LOW), ("B", Severity.MEDIUM)],
            75.0,
            Grade.C,
            1.0,
        ),
        # skipped and errored rules lower coverage, not the score
        (
            [
                ("A", Outcome.PASSED, 1),
                ("B", Outcome.SKIPPED, 1),
                ("C", Outcome.ERRORED, 1),
                ("D", Outcome.SKIPPED, 1),
            ],
            [],
            100.0,
            Grade.A,
            0.25,
        ),
        # a critical finding caps the area at F even when the score is high
        (
            [("A", Outcome.PASSED, 9), ("B", Outcome.FAILED, 1)],
            [("B", Severity.CRITICAL)],
            90.0,
            Grade.F,
            1.0,
        ),
        # info findings cost nothing
        ([("A", Outcome.FAILED, 1)], [("A", Severity.INFO)], 100.0, Grade.A, 1.0),
    ],
)
def test_area_score_table(outcomes, findings, score, grade, coverage) -> None:
    results = [rule(rid, P, out, w) for rid, out, w in outcomes]
    fs = [finding(rid, P, sev) for rid, sev in findings]
    privacy = {a.name: a for a in area_scores(results, fs, POLICY)}[P]
    assert (privacy.score, privacy.grade, privacy.coverage) == (score, grade, coverage)


def test_waived_findings_do_not_count() -> None:
    results = [rule("A", F, Outcome.FAILED)]
    fs = [finding("A", F, Severity.CRITICAL, waived=True)]
    fairness = {a.name: a for a in area_scores(results, fs, POLICY)}[F]
    assert (fairness.score, fairness.grade, fairness.capped) == (100.0, Grade.A, False)


def test_area_without_runs_has_no_grade_and_overall_is_worst() -> None:
    results = [
        rule("A", R, Outcome.SKIPPED),
        rule("B", P, Outcome.PASSED),
        rule("C", F, Outcome.FAILED),
    ]
    areas = area_scores(results, [finding("C", F, Severity.MEDIUM)], POLICY)
    by = {a.name: a for a in areas}
    assert by[R].grade is None and by[R].score is None and by[R].coverage == 0.0
    assert by[F].grade is Grade.F and by[F].score == 50.0
    assert overall(areas) == (Grade.F, 50.0, round(2 / 3, 4))


def test_nothing_ran_has_no_grade() -> None:
    # Issue 16.5: an F would claim a measurement that was never made.
    areas = area_scores([rule("A", R, Outcome.SKIPPED)], [], POLICY)
    assert overall(areas) == (None, None, 0.0)
    areas = area_scores([rule("A", R, Outcome.ERRORED)], [], POLICY)
    assert all(a.grade is None for a in areas)
    assert overall(areas) == (None, None, 0.0)
