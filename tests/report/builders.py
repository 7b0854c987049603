"""A fixed, realistic `AuditReport` for renderer tests, built through the real grading, waiver and
gate functions (with a fixed rubric and date, so the golden files never drift with the clock).

It covers every area, every outcome (passed, failed, skipped, errored), a waived finding, an expired
waiver, a critical finding that caps its area, file- and record-located evidence (JSONL line, CSV,
Parquet row, no location), metrics for FMFL-P01 / P06 / F03 / F06, and hostile strings that every
format must escape.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from fmfl_audit.gate import GatePolicy, evaluate_gate
from fmfl_audit.grading import area_scores, overall
from fmfl_audit.manifest.model import Waiver
from fmfl_audit.models import (
    Area,
    AuditReport,
    Confidence,
    DeploymentInfo,
    Evidence,
    Finding,
    InputIssue,
    InputStats,
    Metric,
    Outcome,
    RuleResult,
    Severity,
    ToolInfo,
    fingerprint,
)
from fmfl_audit.rulepacks.model import GradeBand, GradingPolicy
from fmfl_audit.waivers import apply_waivers

TODAY = dt.date(2026, 11, 24)
HOSTILE = '<script>alert("x")</script> & \x07bell'
"""Appears in a finding message and a subject: no renderer may let it through raw."""
HOSTILE_SUBJECT = 'client:<img src=x onerror="alert(1)">'

GRADING = GradingPolicy(
    severity_penalty={
        Severity.CRITICAL: 1.0,
        Severity.HIGH: 0.75,
        Severity.MEDIUM: 0.5,
        Severity.LOW: 0.25,
        Severity.INFO: 0.0,
    },
    bands=tuple(
        GradeBand(grade=g, min_score=s)
        for g, s in zip("ABCDF", (90, 80, 70, 60, 0), strict=True)  # type: ignore[arg-type]
    ),
)

_RULES: dict[str, tuple[str, Area, str, Severity]] = {
    "FMFL-R01": (
        "Ensure the FM checkpoint matches its pinned digest",
        Area.ROBUSTNESS,
        "model poisoning",
        Severity.CRITICAL,
    ),
    "FMFL-R02": (
        "Ensure client updates are not outliers",
        Area.ROBUSTNESS,
        "model poisoning",
        Severity.HIGH,
    ),
    "FMFL-R03": (
        "Ensure the system prompt is the approved one",
        Area.ROBUSTNESS,
        "prompt injection",
        Severity.HIGH,
    ),
    "FMFL-R04": (
        "Ensure the aggregator is robust",
        Area.ROBUSTNESS,
        "model poisoning",
        Severity.MEDIUM,
    ),
    "FMFL-P01": (
        "Ensure no PII in synthetic data",
        Area.PRIVACY,
        "top-down leakage",
        Severity.HIGH,
    ),
    "FMFL-P06": (
        "Ensure no cross-client leakage",
        Area.PRIVACY,
        "bottom-up propagation",
        Severity.HIGH,
    ),
    "FMFL-P08": (
        "Ensure privacy protections are configured",
        Area.PRIVACY,
        "protection limits",
        Severity.MEDIUM,
    ),
    "FMFL-F03": (
        "Ensure the FL model meets group-fairness thresholds",
        Area.FAIRNESS,
        "underrepresented attributes",
        Severity.HIGH,
    ),
    "FMFL-F06": (
        "Ensure no client or resource tier dominates aggregation",
        Area.FAIRNESS,
        "resource disparity",
        Severity.HIGH,
    ),
}
_REMEDIATION = {
    "FMFL-R01": "Re-download the foundation model from its publisher and pin the new digest.",
    "FMFL-P01": "Filter synthetic data through a PII anonymiser (fmfl-audit redact) before use.",
    "FMFL-P06": "Isolate per-client FM sessions and deduplicate synthetic data against prompts.",
    "FMFL-F03": "Reweight or post-process the model so that every group meets the four-fifths rule.",
    "FMFL-F06": "Cap per-client aggregation weight or reweight constrained clients.",
}


def _finding(
    rule_id: str,
    subject: str,
    key: str,
    message: str,
    *,
    severity: Severity | None = None,
    confidence: Confidence = Confidence.HIGH,
    metric: Metric | None = None,
    evidence: Sequence[Evidence] = (),
) -> Finding:
    _title, area, threat, default = _RULES[rule_id]
    return Finding(
        rule_id=rule_id,
        area=area,
        threat=threat,
        severity=severity or default,
        confidence=confidence,
        subject=subject,
        message=message,
        metric=metric,
        evidence=tuple(evidence),
        remediation=_REMEDIATION.get(rule_id, ""),
        fingerprint=fingerprint(rule_id, subject, key),
    )


def _result(rule_id: str, outcome: Outcome, **kw: Any) -> RuleResult:
    title, area, threat, sev = _RULES[rule_id]
    return RuleResult(
        id=rule_id,
        title=title,
        area=area,
        threat=threat,
        severity=sev,
        weight=1.0,
        outcome=outcome,
        duration_s=kw.pop("duration_s", 0.25),
        **kw,
    )


def findings() -> list[Finding]:
    """The findings of the sample scan, before waivers."""
    return [
        _finding(
            "FMFL-R01",
            "fm",
            "digest",
            "foundation model checkpoint digest differs from the pinned sha256",
            metric=Metric(name="digest_match", value=0.0, threshold=1.0),
        ),
        _finding(
            "FMFL-P01",
            "client:school-b",
            "EMAIL_ADDRESS",
            "37 EMAIL_ADDRESS value(s) in the synthetic data of client school-b "
            "(31 of 412 records contain PII)",
            metric=Metric(name="EMAIL_ADDRESS_count", value=37, threshold=0),
            evidence=(
                Evidence(
                    location="clients/b/synthetic.jsonl:12",
                    excerpt="write to <EMAIL_ADDRESS> for the results",
                ),
                Evidence(
                    location="clients/b/synthetic.jsonl:40", excerpt="contact <EMAIL_ADDRESS> today"
                ),
            ),
        ),
        _finding(
            "FMFL-P01",
            HOSTILE_SUBJECT,
            "PERSON",
            f"2 PERSON value(s) in the synthetic data: {HOSTILE}",
            severity=Severity.MEDIUM,
            confidence=Confidence.MEDIUM,
            metric=Metric(name="PERSON_count", value=2, threshold=0),
            evidence=(Evidence(location="clients/x/synthetic.csv:3", excerpt="<PERSON> said hi"),),
        ),
        _finding(
            "FMFL-P06",
            "client:school-c",
            "from:school-a",
            "synthetic data of client school-c contains 5 verbatim span(s) of client school-a's "
            "prompts",
            metric=Metric(name="leaked_spans", value=5, threshold=0),
            evidence=(Evidence(location="clients/c/synthetic.parquet#17"),),
        ),
        _finding(
            "FMFL-F03",
            "model:global-clf",
            "gender:dp-ratio",
            "model global-clf selects gender=female at 0.31 vs gender=male at 0.52: demographic "
            "parity ratio 0.60 fails the four-fifths rule",
            confidence=Confidence.MEDIUM,
            metric=Metric(name="demographic_parity_ratio", value=0.596154, threshold=0.8),
            evidence=(Evidence(location="models/predictions.csv"),),
        ),
        _finding(
            "FMFL-F06",
            "client:school-a",
            "top1",
            "client school-a holds 62% of the aggregation weight across 20 round(s)",
            metric=Metric(name="top1_share", value=0.62, threshold=0.5),
            evidence=(Evidence(location="federation/participation.csv"),),
        ),
    ]


def rule_results() -> list[RuleResult]:
    """Every rule's outcome and metrics (outcomes before waivers, as the engine produces them)."""
    return [
        _result("FMFL-R01", Outcome.FAILED, findings=1, metrics={"fm": {"digest_match": False}}),
        _result(
            "FMFL-R02",
            Outcome.SKIPPED,
            skip_reason="missing input: clients[].update",
            duration_s=0.0,
        ),
        _result(
            "FMFL-R03",
            Outcome.ERRORED,
            error="fm/system_prompt.txt: not UTF-8 from byte 12",
            duration_s=0.01,
        ),
        _result("FMFL-R04", Outcome.PASSED, metrics={"federation": {"aggregator": "krum"}}),
        _result(
            "FMFL-P01",
            Outcome.FAILED,
            findings=2,
            metrics={
                "client:school-a": {
                    "records_scanned": 300,
                    "records_with_pii": 0,
                    "pii_rate": 0.0,
                    "entities": {},
                },
                "client:school-b": {
                    "records_scanned": 412,
                    "records_with_pii": 31,
                    "pii_rate": 0.075243,
                    "entities": {"EMAIL_ADDRESS": 37, "PERSON": 12, "PHONE_NUMBER": 4},
                },
                HOSTILE_SUBJECT: {
                    "records_scanned": 10,
                    "records_with_pii": 2,
                    "pii_rate": 0.2,
                    "entities": {"PERSON": 2},
                },
            },
        ),
        _result(
            "FMFL-P06",
            Outcome.FAILED,
            findings=1,
            # The shape FMFL-P06 (checkers/privacy/leakage.py) writes: non-zero cells only.
            metrics={
                "federation": {
                    "sources_indexed": 900,
                    "distinct_shingles": 41250,
                    "k": 8,
                    "leakage_matrix": {
                        "school-a": {"school-c": 5},
                        "school-b": {"school-a": 1},
                        "server": {"school-b": 2},
                    },
                },
                "client:school-a": {
                    "synthetic_records_probed": 300,
                    "records_with_leaked_spans": 1,
                    "leaked_spans_from": {"school-b": 1},
                },
                "client:school-b": {
                    "synthetic_records_probed": 412,
                    "records_with_leaked_spans": 2,
                    "leaked_spans_from": {"server": 2},
                },
                "client:school-c": {
                    "synthetic_records_probed": 150,
                    "records_with_leaked_spans": 4,
                    "leaked_spans_from": {"school-a": 5},
                },
            },
        ),
        _result("FMFL-P08", Outcome.PASSED, metrics={"federation": {"epsilon": 8.0}}),
        _result(
            "FMFL-F03",
            Outcome.FAILED,
            findings=1,
            metrics={
                "model:global-clf": {
                    "records": 600,
                    "gender": {
                        "groups": {
                            "female": {"count": 290, "selection_rate": 0.31, "accuracy": 0.8},
                            "male": {"count": 300, "selection_rate": 0.52, "accuracy": 0.82},
                            "nonbinary": {"count": 10, "selection_rate": 0.2, "accuracy": 0.7},
                        },
                        "graded_groups": ["female", "male"],
                        "demographic_parity_ratio": 0.596154,
                    },
                }
            },
        ),
        _result(
            "FMFL-F06",
            Outcome.FAILED,
            findings=1,
            metrics={
                "client:school-a": {"weight_share": 0.62, "tier": "abundant"},
                "client:school-b": {"weight_share": 0.23, "tier": "constrained"},
                "client:school-c": {"weight_share": 0.15, "tier": "constrained"},
                "federation": {"clients": 3, "gini": 0.313333},
            },
        ),
    ]


WAIVERS = (
    Waiver(
        rule="FMFL-F06",
        subject="client:school-a",
        reason="pilot school hosts the GPU cluster until the spring term",
        expires=dt.date(2027, 3, 31),
    ),
    Waiver(
        rule="FMFL-P08",
        subject="*",
        reason="DP budget review pending",
        expires=dt.date(2026, 10, 1),
    ),
)


def sample_report(*, findings_override: Sequence[Finding] | None = None) -> AuditReport:
    """The sample scan's report, graded, waived and gated by the library's own functions."""
    raw = list(findings() if findings_override is None else findings_override)
    waived, records, warnings = apply_waivers(raw, WAIVERS, today=TODAY)
    results = []
    for r in rule_results():
        if r.outcome is Outcome.FAILED and not any(
            f.rule_id == r.id and not f.waived for f in waived
        ):
            r = r.model_copy(update={"outcome": Outcome.PASSED})
        results.append(r)
    areas = area_scores(results, waived, GRADING)
    grade, score, coverage = overall(areas)
    gate = evaluate_gate(
        policy=GatePolicy(), findings=waived, rules=results, grade=grade, coverage=coverage
    )
    return AuditReport(
        tool=ToolInfo(version="0.1.0"),
        deployment=DeploymentInfo(name="reading-tutor", task="text-classification"),
        manifest_path="manifest.yaml",
        manifest_sha256="3f" * 32,
        packs=("default",),
        seed=0,
        started_at=dt.datetime(2026, 11, 24, 12, 0, tzinfo=dt.timezone.utc),
        duration_s=1.5,
        grade=grade,
        score=score,
        coverage=coverage,
        gate=gate,
        areas=areas,
        rules=tuple(results),
        findings=tuple(waived),
        waivers=tuple(records),
        inputs=(
            InputStats(path="clients/b/synthetic.jsonl", records=412, malformed=0),
            InputStats(
                path="clients/x/synthetic.csv",
                records=10,
                malformed=1,
                issues=(InputIssue(location="clients/x/synthetic.csv:7", reason="short row"),),
            ),
        ),
        warnings=(*warnings, "clients/x/synthetic.csv: 1 malformed record(s) were not checked"),
    )
