"""SARIF 2.1.0: valid against the official OASIS schema and shaped as GitHub code scanning needs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft4Validator

from fmfl_audit.models import Confidence, Severity
from fmfl_audit.report.rule_docs import documented_rules, rule_doc_url
from fmfl_audit.report.sarif import (
    FINGERPRINT_KEY,
    LEVEL,
    SarifRenderer,
    artifact_uri,
    parse_location,
    uri_prefix_for,
)

from .builders import HOSTILE_SUBJECT, findings, sample_report

REPO = Path(__file__).parents[2]
SCHEMA_PATH = Path(__file__).parents[1] / "data" / "sarif" / "sarif-schema-2.1.0.json"


@pytest.fixture(scope="module")
def validator() -> Draft4Validator:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    assert schema["id"].endswith("/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json")
    return Draft4Validator(schema)


def _doc(**kw: Any) -> dict[str, Any]:
    return json.loads(SarifRenderer(**kw).render(sample_report()))


def _results_by_rule(doc: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(r["ruleId"], r["properties"]["subject"]): r for r in doc["runs"][0]["results"]}


def test_valid_against_official_schema(validator: Draft4Validator) -> None:
    errors = sorted(validator.iter_errors(_doc()), key=lambda e: list(e.absolute_path))
    assert not errors, [f"{list(e.absolute_path)}: {e.message}" for e in errors]


def test_empty_report_is_valid(validator: Draft4Validator) -> None:
    doc = json.loads(SarifRenderer().render(sample_report(findings_override=[])))
    assert not list(validator.iter_errors(doc))
    assert doc["runs"][0]["results"] == []


def test_schema_rejects_a_broken_log(validator: Draft4Validator) -> None:
    doc = _doc()
    doc["runs"][0]["results"][0]["level"] = "fatal"
    assert list(validator.iter_errors(doc))


def test_github_upload_requirements() -> None:
    doc = _doc()
    assert doc["version"] == "2.1.0" and len(doc["runs"]) == 1
    run = doc["runs"][0]
    driver = run["tool"]["driver"]
    assert driver["name"] == "fmfl-audit"
    ids = [r["id"] for r in driver["rules"]]
    assert len(ids) == len(set(ids)) == 9  # each rule declared once
    for result in run["results"]:
        assert result["ruleId"] in ids
        assert driver["rules"][result["ruleIndex"]]["id"] == result["ruleId"]
        assert result["message"]["text"]
        assert result["locations"], "GitHub rejects results without a location"
        uri = result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        assert uri and not uri.startswith("/")
        sev = float(result["properties"]["security-severity"])
        assert 0.0 <= sev <= 10.0


def test_rule_metadata() -> None:
    rules = {r["id"]: r for r in _doc()["runs"][0]["tool"]["driver"]["rules"]}
    p01 = rules["FMFL-P01"]
    assert p01["helpUri"] == (
        "https://github.com/fmfl-audit/fmfl-audit/blob/main/docs/rules/FMFL-P01.md"
    )
    assert p01["helpUri"] == rule_doc_url("FMFL-P01")
    assert p01["name"] == "EnsureNoPiiInSyntheticData"
    assert p01["shortDescription"]["text"] == "Ensure no PII in synthetic data"
    assert "top-down leakage" in p01["fullDescription"]["text"]
    assert p01["properties"]["tags"] == ["security", "privacy", "top-down leakage"]
    assert p01["properties"]["security-severity"] == "8.0"
    assert p01["defaultConfiguration"]["level"] == "error"
    driver = _doc()["runs"][0]["tool"]["driver"]
    assert driver["informationUri"] == "https://github.com/fmfl-audit/fmfl-audit"


def test_rule_help_is_the_whole_page_offline() -> None:
    rules = {r["id"]: r for r in _doc()["runs"][0]["tool"]["driver"]["rules"]}
    spec = documented_rules()["FMFL-R04"]
    r04 = rules["FMFL-R04"]["help"]
    # A rule without findings still carries its full page (the committed docs/rules/ page less
    # its generated-file comment), so code scanning shows it without following a link.
    page = (REPO / "docs" / "rules" / "FMFL-R04.md").read_text(encoding="utf-8")
    assert r04["markdown"] == page.split("\n", 2)[2]
    assert r04["markdown"].startswith(f"# FMFL-R04: {spec.title}\n")
    for section in ("## What it measures", "## Inputs", "## Parameters", "## Remediation"):
        assert section in r04["markdown"]
    assert "| `require_pins` |" in r04["markdown"]
    assert r04["text"].startswith(f"FMFL-R04: {spec.title}. Area: robustness;")
    assert "Remediation: " + " ".join(spec.remediation.split()) in r04["text"]
    # The scan's own remediation (a pack may change it) replaces the default pack's.
    p01 = rules["FMFL-P01"]["help"]
    assert "Filter synthetic data through a PII anonymiser (fmfl-audit redact)" in p01["markdown"]
    assert " ".join(documented_rules()["FMFL-P01"].remediation.split()) not in p01["markdown"]


def test_rule_outside_the_default_pack_has_no_link(validator: Draft4Validator) -> None:
    report = sample_report()
    custom = report.rules[0].model_copy(update={"id": "ACME-P01", "title": "Ensure no ids"})
    report = report.model_copy(update={"rules": (custom, *report.rules[1:]), "findings": ()})
    doc = json.loads(SarifRenderer().render(report))
    rule = doc["runs"][0]["tool"]["driver"]["rules"][0]
    assert rule["id"] == "ACME-P01"
    assert "helpUri" not in rule  # no page exists: no link that leads nowhere
    assert rule["help"] == {
        "text": "Ensure no ids (area: robustness).",
        "markdown": "Ensure no ids (area: robustness).",
    }
    assert not list(validator.iter_errors(doc))


def test_docs_url_base_is_configurable(monkeypatch: pytest.MonkeyPatch) -> None:
    def uri(**kw: Any) -> str:
        rules = _doc(**kw)["runs"][0]["tool"]["driver"]["rules"]
        return str(next(r["helpUri"] for r in rules if r["id"] == "FMFL-P06"))

    assert (
        uri(docs_url="https://docs.example.org/fmfl") == "https://docs.example.org/fmfl/FMFL-P06.md"
    )
    monkeypatch.setenv("FMFL_AUDIT_DOCS_URL", "https://mirror.example.org/rules/")
    assert uri() == "https://mirror.example.org/rules/FMFL-P06.md"


def test_no_link_to_the_dead_domain() -> None:
    text = SarifRenderer().render(sample_report())
    assert "fmfl-audit.dev" not in text


@pytest.mark.parametrize(
    ("severity", "level"),
    [
        (Severity.CRITICAL, "error"),
        (Severity.HIGH, "error"),
        (Severity.MEDIUM, "warning"),
        (Severity.LOW, "note"),
        (Severity.INFO, "note"),
    ],
)
def test_level_mapping(severity: Severity, level: str) -> None:
    assert LEVEL[severity] == level


def test_results_levels_precision_fingerprints() -> None:
    doc = _doc()
    results = _results_by_rule(doc)
    r01 = results[("FMFL-R01", "fm")]
    assert r01["level"] == "error" and r01["properties"]["security-severity"] == "9.5"
    person = results[("FMFL-P01", HOSTILE_SUBJECT)]
    assert person["level"] == "warning"
    assert person["properties"]["precision"] == "medium"
    assert person["properties"]["security-severity"] == "5.5"
    email = results[("FMFL-P01", "client:school-b")]
    assert email["properties"]["precision"] == "high"
    fps = {f.rule_id + f.subject: f.fingerprint for f in findings()}
    assert email["partialFingerprints"] == {FINGERPRINT_KEY: fps["FMFL-P01client:school-b"]}
    assert email["properties"]["metric"] == {
        "name": "EMAIL_ADDRESS_count",
        "value": 37.0,
        "threshold": 0.0,
    }
    assert "<EMAIL_ADDRESS>" in email["message"]["text"]  # the redacted excerpt


def test_precision_covers_every_confidence() -> None:
    from fmfl_audit.report.sarif import PRECISION

    assert set(PRECISION) == set(Confidence)
    assert set(PRECISION.values()) <= {"very-high", "high", "medium", "low"}


def test_locations() -> None:
    results = _results_by_rule(_doc())
    email = results[("FMFL-P01", "client:school-b")]
    loc = email["locations"][0]["physicalLocation"]
    assert loc == {
        "artifactLocation": {"uri": "clients/b/synthetic.jsonl"},
        "region": {"startLine": 12},
    }
    related = email["relatedLocations"]
    assert related[0]["physicalLocation"]["region"] == {"startLine": 40}
    assert related[0]["message"]["text"] == "contact <EMAIL_ADDRESS> today"
    parquet = results[("FMFL-P06", "client:school-c")]["locations"][0]["physicalLocation"]
    assert parquet == {"artifactLocation": {"uri": "clients/c/synthetic.parquet"}}
    # No file-based evidence: the manifest stands in, line 1.
    fm = results[("FMFL-R01", "fm")]["locations"][0]["physicalLocation"]
    assert fm == {"artifactLocation": {"uri": "manifest.yaml"}, "region": {"startLine": 1}}


def test_uri_prefix() -> None:
    results = _results_by_rule(_doc(uri_prefix="deploy/"))
    fm = results[("FMFL-R01", "fm")]["locations"][0]["physicalLocation"]["artifactLocation"]
    assert fm["uri"] == "deploy/manifest.yaml"
    csv = results[("FMFL-F03", "model:global-clf")]["locations"][0]["physicalLocation"]
    assert csv["artifactLocation"]["uri"] == "deploy/models/predictions.csv"


def test_uri_prefix_for(tmp_path: Path) -> None:
    (tmp_path / "deploy").mkdir()
    assert uri_prefix_for(tmp_path / "deploy" / "m.yaml", tmp_path) == "deploy/"
    assert uri_prefix_for(tmp_path / "m.yaml", tmp_path) == ""
    assert uri_prefix_for(tmp_path / "m.yaml", tmp_path / "deploy") == ""


def test_waived_finding_is_suppressed() -> None:
    results = _results_by_rule(_doc())
    waived = results[("FMFL-F06", "client:school-a")]
    assert waived["suppressions"] == [
        {
            "kind": "external",
            "status": "accepted",
            "justification": "pilot school hosts the GPU cluster until the spring term",
        }
    ]
    assert all("suppressions" not in r for k, r in results.items() if k[0] != "FMFL-F06")


def test_invocation_notifications_and_waivers() -> None:
    run = _doc()["runs"][0]
    inv = run["invocations"][0]
    assert inv["executionSuccessful"] is False  # FMFL-R03 errored
    assert inv["exitCode"] == 1
    notes = {
        (n["level"], n.get("descriptor", {}).get("id")): n
        for n in inv["toolExecutionNotifications"]
    }
    assert "not UTF-8" in notes[("error", "FMFL-R03")]["message"]["text"]
    assert "missing input" in notes[("note", "FMFL-R02")]["message"]["text"]
    assert "expired on 2026-10-01" in notes[("warning", None)]["message"]["text"]
    assert [w["expired"] for w in run["properties"]["waivers"]] == [False, True]
    assert run["properties"]["grade"] == "F"


@pytest.mark.parametrize(
    ("location", "expected"),
    [
        ("clients/a/p.jsonl:12", ("clients/a/p.jsonl", 12)),
        ("data.csv:3", ("data.csv", 3)),
        ("clients/a/p.parquet#0", ("clients/a/p.parquet", None)),
        ("federation/participation.csv", ("federation/participation.csv", None)),
        ("report.json", ("report.json", None)),
        ("rec-00042", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_location(location: str | None, expected: tuple[str, int | None] | None) -> None:
    assert parse_location(location) == expected


@pytest.mark.parametrize(
    ("path", "uri"),
    [
        ("clients/a b/p.jsonl", "clients/a%20b/p.jsonl"),
        ("/abs/data.csv", "file:///abs/data.csv"),
        ("C:\\data\\x.csv", "file:///C:/data/x.csv"),
    ],
)
def test_artifact_uri(path: str, uri: str) -> None:
    assert artifact_uri(path) == uri


def test_renderer_for_passes_the_uri_prefix() -> None:
    from fmfl_audit.report.formats import OutputFormat, renderer_for

    doc = json.loads(
        renderer_for(OutputFormat.SARIF, sarif_uri_prefix="deploy/").render(sample_report())
    )
    uris = {
        r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        for r in doc["runs"][0]["results"]
    }
    assert uris and all(u.startswith("deploy/") for u in uris)
