"""The pass/fail gate a CI pipeline keys on."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from fmfl_audit.models import Finding, GateResult, Grade, Outcome, RuleResult, Severity


@dataclass(frozen=True)
class GatePolicy:
    """What fails a scan. None disables a criterion."""

    fail_on: Severity | None = Severity.HIGH
    fail_under: Grade | None = Grade.C
    min_coverage: float | None = None
    fail_on_error: bool = True
    fail_on_unreadable_inputs: bool = True
    fail_on_rules_not_rerun: bool = True


def evaluate_gate(
    *,
    policy: GatePolicy,
    findings: Sequence[Finding],
    rules: Sequence[RuleResult],
    grade: Grade | None,
    coverage: float,
    baseline_fingerprints: Collection[str] | None = None,
    baseline_name: str | None = None,
    rules_not_rerun: Sequence[str] = (),
) -> GateResult:
    """Reasons to fail, in a fixed order; passed when there are none.

    With a baseline, only findings whose fingerprint is new (or worse than in the baseline, which
    the caller expresses by leaving it out of `baseline_fingerprints`) count for `fail_on`, and the
    grade criterion is not applied: the baseline already accepted the grade it had. A rule that ran
    in the baseline and not now (`rules_not_rerun`) fails the gate unless the policy allows it: its
    baseline findings were not checked, so they cannot count as fixed.
    """
    reasons: list[str] = []
    live = [f for f in findings if not f.waived]
    if baseline_fingerprints is not None:
        live = [f for f in live if f.fingerprint not in baseline_fingerprints]
    if policy.fail_on is not None:
        assert policy.fail_on is not None
        hits = [f for f in live if f.severity >= policy.fail_on]
        if hits:
            qualifier = "new " if baseline_fingerprints is not None else ""
            reasons.append(
                f"{len(hits)} {qualifier}unwaived finding(s) at or above {policy.fail_on.value}"
            )
    if policy.fail_under is not None and baseline_fingerprints is None:
        if grade is None:
            reasons.append(f"no grade (no rule ran) where {policy.fail_under.value} is required")
        elif grade.worse_than(policy.fail_under):
            reasons.append(f"overall grade {grade.value} is below {policy.fail_under.value}")
    if policy.min_coverage is not None and coverage < policy.min_coverage:
        reasons.append(f"coverage {coverage:.0%} is below {policy.min_coverage:.0%}")
    if policy.fail_on_error:
        errored = [r.id for r in rules if r.outcome is Outcome.ERRORED]
        if errored:
            reasons.append(f"rule(s) errored: {', '.join(errored)}")
    if policy.fail_on_unreadable_inputs:
        unreadable = sorted({p.partition(": ")[0] for r in rules for p in r.unreadable_inputs})
        if unreadable:
            ids = [r.id for r in rules if r.unreadable_inputs]
            reasons.append(
                f"unreadable input(s) {', '.join(unreadable)} (rules {', '.join(ids)}); see "
                "policy.max_malformed_share"
            )
    if policy.fail_on_rules_not_rerun and rules_not_rerun:
        reasons.append(
            f"rule(s) that ran in the baseline did not run: {', '.join(rules_not_rerun)} "
            "(their baseline findings were not checked; see policy.fail_on_rules_not_rerun)"
        )
    return GateResult(
        passed=not reasons,
        reasons=tuple(reasons),
        fail_on=policy.fail_on,
        fail_under=policy.fail_under,
        min_coverage=policy.min_coverage,
        fail_on_error=policy.fail_on_error,
        fail_on_unreadable_inputs=policy.fail_on_unreadable_inputs,
        fail_on_rules_not_rerun=policy.fail_on_rules_not_rerun,
        baseline=baseline_name,
    )
