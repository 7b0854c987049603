"""The committed example twins against their ground truth (EXPECTED.yaml).

Compromised twin: every non-pending entry must have a finding with that rule and subject.
Clean twin: no non-pending listed rule may have a high or critical finding.
`pending` must match the registry exactly, so the marks cannot go stale when a checker lands.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from fmfl_audit.checkers.registry import checker_map
from fmfl_audit.engine.runner import Auditor
from fmfl_audit.manifest import load_manifest
from fmfl_audit.models import AuditReport, Outcome, Severity

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "reading-tutor"
TWINS = ("clean", "compromised")
HIGH = {Severity.HIGH, Severity.CRITICAL}


def expected(twin: str) -> list[dict[str, Any]]:
    data = yaml.safe_load((EXAMPLE / twin / "EXPECTED.yaml").read_text(encoding="utf-8"))
    assert data["twin"] == twin
    return list(data["entries"])


@pytest.fixture(scope="module")
def reports() -> dict[str, AuditReport]:
    return {t: Auditor(load_manifest(EXAMPLE / t / "manifest.yaml")).run() for t in TWINS}


@pytest.mark.parametrize("twin", TWINS)
def test_pending_marks_match_the_registry(twin: str) -> None:
    implemented = set(checker_map())
    stale = [
        f"{e['rule']} {e['subject']}: pending={e['pending']} but the rule is "
        f"{'implemented' if e['rule'] in implemented else 'not implemented'}"
        for e in expected(twin)
        if bool(e["pending"]) == (e["rule"] in implemented)
    ]
    assert not stale, "flip these `pending` marks in EXPECTED.yaml:\n" + "\n".join(stale)


def test_ground_truth_covers_every_threat_family() -> None:
    rules = {e["rule"] for e in expected("compromised")}
    # THREATS.md's families, each answered by at least one planted threat.
    families = {
        "universal evasion": {"FMFL-R01", "FMFL-R02"},
        "external poisoning": {"FMFL-R03", "FMFL-R04", "FMFL-R05", "FMFL-R06", "FMFL-R07"},
        "OOD amplification": {"FMFL-R08", "FMFL-R09", "FMFL-R10"},
        "defense limits": {"FMFL-R11", "FMFL-R12"},
        "top-down disclosure": {"FMFL-P01", "FMFL-P02", "FMFL-P03", "FMFL-P04", "FMFL-P05"},
        "bottom-up propagation": {"FMFL-P06", "FMFL-P07"},
        "protection limits": {"FMFL-P08"},
        "underrepresented attributes": {"FMFL-F01", "FMFL-F02", "FMFL-F03", "FMFL-F04"},
        "resource disparity": {"FMFL-F06", "FMFL-F07", "FMFL-F08"},
    }
    missing = [f for f, ids in families.items() if not rules & ids]
    assert not missing


@pytest.mark.slow
def test_compromised_twin_findings(reports: dict[str, AuditReport]) -> None:
    found = {(f.rule_id, f.subject) for f in reports["compromised"].findings}
    missed = [
        f"{e['rule']} on {e['subject']}: {e['note']}"
        for e in expected("compromised")
        if not e["pending"] and (e["rule"], e["subject"]) not in found
    ]
    assert not missed, "planted threats not found:\n" + "\n".join(missed)


@pytest.mark.slow
def test_clean_twin_has_no_high_findings(reports: dict[str, AuditReport]) -> None:
    listed = {e["rule"]: e["subject"] for e in expected("clean") if not e["pending"]}
    bad = [
        f"{f.rule_id} {f.severity.value} on {f.subject}: {f.message}"
        for f in reports["clean"].findings
        if f.rule_id in listed and f.severity in HIGH and listed[f.rule_id] in ("*", f.subject)
    ]
    assert not bad, "the clean twin must not raise these:\n" + "\n".join(bad)


@pytest.mark.slow
@pytest.mark.parametrize("twin", TWINS)
def test_no_rule_errors_on_the_examples(reports: dict[str, AuditReport], twin: str) -> None:
    errored = [f"{r.id}: {r.error}" for r in reports[twin].rules if r.outcome == Outcome.ERRORED]
    assert not errored, "\n".join(errored)


@pytest.mark.slow
def test_bias_chain_runs_on_both_twins_and_fires_only_on_the_compromised(
    reports: dict[str, AuditReport],
) -> None:
    for twin in TWINS:
        for rule in ("FMFL-F02", "FMFL-F05"):
            assert reports[twin].rule(rule).outcome in (Outcome.PASSED, Outcome.FAILED), (
                twin,
                rule,
            )
    clean = [f for f in reports["clean"].findings if f.rule_id in ("FMFL-F02", "FMFL-F05")]
    assert not clean, [f.message for f in clean]
    f05 = reports["compromised"].rule("FMFL-F05")
    chain = f05.metrics["chain"]
    assert chain["fm_preference"]["gender_and_sex"] > 0
    rates = chain["synthetic_stereotype_rate"]["gender_and_sex"]
    assert rates > chain["real_stereotype_rate"]["gender_and_sex"]
    # The FL model's findings name the upstream links of the chain.
    model = [f for f in reports["compromised"].findings if f.rule_id == "FMFL-F05"]
    assert model and all("upstream:" in f.message for f in model)
