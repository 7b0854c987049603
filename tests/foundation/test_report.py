"""The report: schema-valid JSON, every format free of raw PII, inputs untouched, deterministic."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import jsonschema
import pytest
from tests.foundation.builders import PII_CARD, PII_EMAIL, PII_PHONE, smoke_deployment

from fmfl_audit.engine.runner import Auditor
from fmfl_audit.manifest import load_manifest
from fmfl_audit.models import AuditReport
from fmfl_audit.report.formats import OutputFormat, renderer_for
from fmfl_audit.report.json_format import report_schema


@pytest.fixture(scope="module")
def scanned(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, AuditReport, dict[str, str]]:
    root = tmp_path_factory.mktemp("dep")
    manifest = smoke_deployment(root)
    before = {
        str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*") if p.is_file()
    }
    report = Auditor(load_manifest(manifest)).run()
    return root, report, before


def test_json_report_validates_against_its_schema(scanned) -> None:
    _, report, _ = scanned
    doc = json.loads(renderer_for(OutputFormat.JSON).render(report))
    jsonschema.validate(doc, report_schema())
    for key in (
        "schema_version",
        "tool",
        "deployment",
        "manifest_sha256",
        "grade",
        "score",
        "coverage",
        "gate",
        "areas",
        "rules",
        "findings",
    ):
        assert key in doc
    p01 = next(r for r in doc["rules"] if r["id"] == "FMFL-P01")
    assert set(p01["metrics"]) == {"client:school-a", "client:school-b"}
    assert AuditReport.model_validate(doc) == report


@pytest.mark.parametrize("fmt", list(OutputFormat))
def test_no_raw_pii_in_any_format(scanned, fmt: OutputFormat) -> None:
    _, report, _ = scanned
    assert report.findings, "the fixture must produce PII findings for this test to mean anything"
    text = renderer_for(fmt, color=False).render(report)
    for value in (PII_EMAIL, PII_CARD, PII_PHONE, "maria.gonzalez", "1111 1111", "555-0187"):
        assert value not in text


def test_inputs_are_byte_identical_after_a_scan(scanned) -> None:
    root, _, before = scanned
    after = {
        str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*") if p.is_file()
    }
    assert after == before


def test_scans_are_deterministic(scanned) -> None:
    root, report, _ = scanned
    again = Auditor(load_manifest(root / "manifest.yaml")).run()
    strip = {"started_at", "duration_s"}
    a = report.model_dump(mode="json", exclude=strip)
    b = again.model_dump(mode="json", exclude=strip)
    for doc in (a, b):
        for r in doc["rules"]:
            r.pop("duration_s")
    assert a == b


def test_terminal_and_markdown_content(scanned) -> None:
    _, report, _ = scanned
    term = renderer_for(OutputFormat.TERMINAL, color=False).render(report)
    assert "overall grade F" in term and "CRITICAL (" in term
    assert "FMFL-P03 skipped: missing input" in term
    md = renderer_for(OutputFormat.MARKDOWN).render(report)
    privacy = next(a for a in report.areas if a.name.value == "privacy")
    assert f"| privacy | F ({privacy.score:.1f}) (capped: critical finding) |" in md
    assert "## Rules not run" in md


@pytest.mark.filterwarnings("ignore:A test tried to use socket")
def test_network_is_disabled_during_tests() -> None:
    import socket

    with pytest.raises(Exception, match="socket"):
        socket.create_connection(("127.0.0.1", 9), timeout=0.1)
