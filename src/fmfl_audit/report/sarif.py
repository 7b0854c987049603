"""SARIF 2.1.0: for GitHub code scanning and other static-analysis dashboards.

Each rule of the scan is declared once under `tool.driver.rules`: a rule of the default pack
carries its whole documentation page as `help.markdown` (and a plain-text version as
`help.text`), so code scanning shows it offline, and links to that page (`helpUri`, see
`report.rule_docs.docs_base_url`); any other rule carries its remediation and no link. Each
finding becomes a result whose level, `precision` and `security-severity` come from its severity
and confidence. GitHub requires a location on every result, so a finding without file-based
evidence points at the manifest (line 1). Waived findings stay in the log with an external
suppression, so a dashboard shows them as dismissed rather than losing them.
"""

from __future__ import annotations

import json
import re
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any
from urllib.parse import quote

from fmfl_audit.models import AuditReport, Confidence, Finding, Outcome, RuleResult, Severity
from fmfl_audit.report.interface import Renderer
from fmfl_audit.report.rule_docs import PROJECT_URL, rule_doc_url, rule_help

SARIF_VERSION = "2.1.0"
SARIF_SCHEMA_URI = (
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
)
INFORMATION_URI = PROJECT_URL
FINGERPRINT_KEY = "fmflFingerprint/v1"
"""Name of our fingerprint in `partialFingerprints` (versioned, as SARIF recommends)."""

LEVEL: dict[Severity, str] = {
    Severity.CRITICAL: "error",
    Severity.HIGH: "error",
    Severity.MEDIUM: "warning",
    Severity.LOW: "note",
    Severity.INFO: "note",
}
# GitHub buckets security-severity as critical > 9.0, high 7.0-8.9, medium 4.0-6.9, low 0.1-3.9;
# info sits at 0.0 so it never reads as a security problem.
SECURITY_SEVERITY: dict[Severity, str] = {
    Severity.CRITICAL: "9.5",
    Severity.HIGH: "8.0",
    Severity.MEDIUM: "5.5",
    Severity.LOW: "3.0",
    Severity.INFO: "0.0",
}
PRECISION: dict[Confidence, str] = {
    Confidence.HIGH: "high",
    Confidence.MEDIUM: "medium",
    Confidence.LOW: "low",
}
MAX_RELATED = 20
"""Evidence beyond the first location kept as related locations (the rest is in the JSON report)."""

_LINE_LOC = re.compile(r"^(?P<path>.+):(?P<line>[0-9]+)$")
_ROW_LOC = re.compile(r"^(?P<path>.+)#(?P<row>[0-9]+)$")
_FILE_SUFFIXES = (
    ".jsonl",
    ".json",
    ".csv",
    ".parquet",
    ".txt",
    ".yaml",
    ".yml",
    ".safetensors",
    ".bin",
    ".pt",
    ".pth",
    ".ckpt",
    ".pkl",
    ".md",
)


def artifact_uri(path: str) -> str:
    """A `uri-reference` for a report path; relative paths stay relative to the manifest folder."""
    if PureWindowsPath(path).drive or path.startswith("/"):
        posix = path.replace("\\", "/")
        return "file://" + quote(posix if posix.startswith("/") else "/" + posix, safe="/:")
    return quote(path.replace("\\", "/"), safe="/")


def uri_prefix_for(manifest: Path, root: Path) -> str:
    """The manifest folder relative to `root` (e.g. the repository checkout) as a URI prefix.

    Evidence paths are relative to the manifest folder; code scanning resolves them from the
    repository root. Empty when the manifest sits at `root` or outside it.
    """
    try:
        rel = manifest.resolve().parent.relative_to(root.resolve())
    except ValueError:
        return ""
    text = rel.as_posix()
    return "" if text == "." else text + "/"


def parse_location(location: str | None) -> tuple[str, int | None] | None:
    """(path, line) of a file-based evidence location, None for a record id or nothing.

    `path:12` gives a line, `path#12` (a Parquet row) gives only the file, a bare path that looks
    like a file gives the file.
    """
    if not location:
        return None
    m = _LINE_LOC.match(location)
    if m:
        return m["path"], int(m["line"])
    m = _ROW_LOC.match(location)
    if m:
        return m["path"], None
    name = PurePosixPath(location.replace("\\", "/"))
    if "/" in location or name.suffix.lower() in _FILE_SUFFIXES:
        return location, None
    return None


def _physical(path: str, line: int | None) -> dict[str, Any]:
    loc: dict[str, Any] = {"artifactLocation": {"uri": artifact_uri(path)}}
    if line is not None and line >= 1:
        loc["region"] = {"startLine": line}
    return {"physicalLocation": loc}


def _rule_name(title: str) -> str:
    """`Ensure no PII in synthetic data` -> `EnsureNoPiiInSyntheticData` (an identifier)."""
    words = re.findall(r"[A-Za-z0-9]+", title)
    return "".join(w[:1].upper() + w[1:].lower() for w in words) or "Rule"


class SarifRenderer(Renderer):
    """A SARIF 2.1.0 log with one run.

    `uri_prefix` is prepended to relative artifact paths (which are relative to the manifest
    folder): set it to the manifest folder's path from the repository root (e.g. `deploy/`) when the
    manifest does not sit at the root, so code scanning links to the right files. `docs_url` is
    the base URL of the rule pages (default: `$FMFL_AUDIT_DOCS_URL`, else the repository's
    `docs/rules/`).
    """

    def __init__(self, *, uri_prefix: str = "", docs_url: str | None = None) -> None:
        self.uri_prefix = uri_prefix
        self.docs_url = docs_url

    def render(self, report: AuditReport) -> str:
        return json.dumps(self.document(report), indent=2, ensure_ascii=False) + "\n"

    def document(self, report: AuditReport) -> dict[str, Any]:
        """The SARIF log as a JSON-ready dict."""
        index = {r.id: i for i, r in enumerate(report.rules)}
        rules = [self._rule(r, report) for r in report.rules]
        results = [self._result(f, index, report) for f in report.findings]
        run: dict[str, Any] = {
            "tool": {
                "driver": {
                    "name": report.tool.name,
                    "version": report.tool.version,
                    "semanticVersion": report.tool.version,
                    "informationUri": INFORMATION_URI,
                    "rules": rules,
                }
            },
            "automationDetails": {"id": f"fmfl-audit/{report.deployment.name}/"},
            "invocations": [self._invocation(report)],
            "results": results,
            "properties": self._run_properties(report),
        }
        return {"$schema": SARIF_SCHEMA_URI, "version": SARIF_VERSION, "runs": [run]}

    def _rule(self, r: RuleResult, report: AuditReport) -> dict[str, Any]:
        # RuleResult has no remediation field (yet): take it from the rule's findings.
        remediation = str(getattr(r, "remediation", "") or "") or next(
            (f.remediation for f in report.findings if f.rule_id == r.id), ""
        )
        documented = rule_help(r.id, remediation=remediation or None)
        if documented is not None:
            help_text, help_md = documented
        else:
            help_text = " ".join(remediation.split()) or f"{r.title} (area: {r.area.value})."
            help_md = help_text
        rule: dict[str, Any] = {
            "id": r.id,
            "name": _rule_name(r.title),
            "shortDescription": {"text": r.title},
            "fullDescription": {"text": f"{r.title} (area: {r.area.value}; threat: {r.threat})."},
            "help": {"text": help_text, "markdown": help_md},
        }
        uri = rule_doc_url(r.id, base=self.docs_url)
        if uri is not None:
            rule["helpUri"] = uri
        return {
            **rule,
            "defaultConfiguration": {"level": LEVEL[r.severity]},
            "properties": {
                "tags": ["security", r.area.value, r.threat],
                "security-severity": SECURITY_SEVERITY[r.severity],
                "area": r.area.value,
                "threat": r.threat,
            },
        }

    def _locations(self, f: Finding, report: AuditReport) -> tuple[list[Any], list[Any]]:
        files: list[tuple[str, int | None, str | None]] = []
        for e in f.evidence:
            parsed = parse_location(e.location)
            if parsed is not None:
                files.append((self._prefixed(parsed[0]), parsed[1], e.excerpt))
        if not files:
            # GitHub rejects results without a location: the manifest stands for non-file findings.
            manifest = _physical(self._prefixed(report.manifest_path), 1)
            manifest["message"] = {"text": f"{f.subject} (declared in the manifest)"}
            return [manifest], []
        primary = _physical(files[0][0], files[0][1])
        related = []
        for i, (path, line, excerpt) in enumerate(files[1 : MAX_RELATED + 1], start=1):
            loc = _physical(path, line)
            loc["id"] = i
            if excerpt:
                loc["message"] = {"text": excerpt}
            related.append(loc)
        return [primary], related

    def _prefixed(self, path: str) -> str:
        if not self.uri_prefix or path.startswith("/") or PureWindowsPath(path).drive:
            return path
        return self.uri_prefix.rstrip("/") + "/" + path

    def _result(self, f: Finding, index: dict[str, int], report: AuditReport) -> dict[str, Any]:
        locations, related = self._locations(f, report)
        text = f.message
        excerpt = next((e.excerpt for e in f.evidence if e.excerpt), None)
        if excerpt:
            text += f" Evidence (redacted): {excerpt}"
        props: dict[str, Any] = {
            "severity": f.severity.value,
            "security-severity": SECURITY_SEVERITY[f.severity],
            "precision": PRECISION[f.confidence],
            "confidence": f.confidence.value,
            "subject": f.subject,
            "area": f.area.value,
            "threat": f.threat,
        }
        if f.metric is not None:
            props["metric"] = f.metric.model_dump(mode="json")
        result: dict[str, Any] = {
            "ruleId": f.rule_id,
            "level": LEVEL[f.severity],
            "message": {"text": text},
            "locations": locations,
            "partialFingerprints": {FINGERPRINT_KEY: f.fingerprint},
            "properties": props,
        }
        if f.rule_id in index:
            result["ruleIndex"] = index[f.rule_id]
        if related:
            result["relatedLocations"] = related
        if f.waived:
            result["suppressions"] = [
                {
                    "kind": "external",
                    "status": "accepted",
                    "justification": f.waiver_reason or "waived in the manifest policy",
                }
            ]
        return result

    def _invocation(self, report: AuditReport) -> dict[str, Any]:
        notes = []
        for r in report.rules:
            if r.outcome is Outcome.ERRORED:
                notes.append(
                    {
                        "level": "error",
                        "message": {"text": f"{r.id} errored: {r.error or 'unknown error'}"},
                        "descriptor": {"id": r.id},
                    }
                )
            elif r.outcome is Outcome.SKIPPED:
                notes.append(
                    {
                        "level": "note",
                        "message": {"text": f"{r.id} skipped: {r.skip_reason or 'no reason'}"},
                        "descriptor": {"id": r.id},
                    }
                )
        for w in report.waivers:
            if w.expired:
                notes.append(
                    {
                        "level": "warning",
                        "message": {
                            "text": f"waiver for {w.rule} on {w.subject} expired on "
                            f"{w.expires.isoformat()}"
                        },
                    }
                )
        inv: dict[str, Any] = {
            "executionSuccessful": not any(r.outcome is Outcome.ERRORED for r in report.rules),
            "exitCode": 0 if report.gate.passed else 1,
        }
        if report.started_at is not None:
            inv["startTimeUtc"] = report.started_at.isoformat().replace("+00:00", "Z")
        if notes:
            inv["toolExecutionNotifications"] = notes
        return inv

    def _run_properties(self, report: AuditReport) -> dict[str, Any]:
        return {
            "deployment": report.deployment.name,
            "manifest": report.manifest_path,
            "manifestSha256": report.manifest_sha256,
            "grade": report.grade.value if report.grade else None,
            "score": report.score,
            "coverage": report.coverage,
            "gate": report.gate.model_dump(mode="json"),
            "areas": [a.model_dump(mode="json") for a in report.areas],
            "waivers": [w.model_dump(mode="json") for w in report.waivers],
            "warnings": list(report.warnings),
        }
