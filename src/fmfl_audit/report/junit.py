"""JUnit XML: one test case per rule, one test suite per area, for CI test-report views.

A failed rule is a `<failure>` listing its unwaived findings, an errored rule an `<error>`, a
skipped rule `<skipped message=reason>`. GitLab (`artifacts:reports:junit`), Jenkins and Azure
read this shape. Waivers in force (and expired ones) are listed as properties of their area's suite.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from fmfl_audit.models import Area, AuditReport, Finding, Outcome, RuleResult, WaiverRecord
from fmfl_audit.report._common import metric_text
from fmfl_audit.report.interface import Renderer

# XML 1.0 forbids most control characters; report text may carry them from audited data.
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def xml_safe(text: str) -> str:
    """Text with the characters XML 1.0 cannot carry replaced by U+FFFD."""
    return _XML_ILLEGAL.sub("\ufffd", text)


def _finding_text(f: Finding) -> str:
    lines = [f"[{f.severity.value}] {f.subject}: {f.message}"]
    if f.metric is not None:
        lines.append(f"  {metric_text(f)}")
    for e in f.evidence:
        where = e.location or ""
        excerpt = f"  {e.excerpt}" if e.excerpt else ""
        lines.append(f"  at {where}{excerpt}")
    if f.remediation:
        lines.append(f"  remediation: {' '.join(f.remediation.split())}")
    lines.append(f"  fingerprint: {f.fingerprint}")
    return "\n".join(lines)


def _waiver_text(w: WaiverRecord) -> str:
    state = f"EXPIRED on {w.expires.isoformat()}" if w.expired else f"until {w.expires.isoformat()}"
    return f"{w.rule} {w.subject} {state}, matched {w.matched}: {w.reason}"


class JunitRenderer(Renderer):
    """`<testsuites>` with one `<testsuite>` per area (in `Area` order)."""

    def render(self, report: AuditReport) -> str:
        root = ET.Element("testsuites", name=xml_safe(f"fmfl-audit: {report.deployment.name}"))
        totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
        time_total = 0.0
        area_of_rule = {r.id: r.area for r in report.rules}
        for area in Area:
            rules = [r for r in report.rules if r.area is area]
            if not rules:
                continue
            waivers = [w for w in report.waivers if area_of_rule.get(w.rule) is area]
            suite, counts, elapsed = self._suite(area, rules, report, waivers)
            root.append(suite)
            for k in totals:
                totals[k] += counts[k]
            time_total += elapsed
        orphans = [w for w in report.waivers if w.rule not in area_of_rule]
        if orphans and len(root):
            props = root[0].find("properties")
            assert props is not None
            for w in orphans:
                ET.SubElement(props, "property", name="waiver", value=xml_safe(_waiver_text(w)))
        for k, v in totals.items():
            root.set(k, str(v))
        root.set("time", f"{time_total:.3f}")
        ET.indent(root)
        body = ET.tostring(root, encoding="unicode")
        return '<?xml version="1.0" encoding="UTF-8"?>\n' + body + "\n"

    def _suite(
        self,
        area: Area,
        rules: list[RuleResult],
        report: AuditReport,
        waivers: list[WaiverRecord],
    ) -> tuple[ET.Element, dict[str, int], float]:
        counts = {
            "tests": len(rules),
            "failures": sum(1 for r in rules if r.outcome is Outcome.FAILED),
            "errors": sum(1 for r in rules if r.outcome is Outcome.ERRORED),
            "skipped": sum(1 for r in rules if r.outcome is Outcome.SKIPPED),
        }
        elapsed = sum(r.duration_s for r in rules)
        suite = ET.Element("testsuite", name=area.value)
        for k, v in counts.items():
            suite.set(k, str(v))
        suite.set("time", f"{elapsed:.3f}")
        props = ET.SubElement(suite, "properties")
        score = next((a for a in report.areas if a.name is area), None)
        if score is not None:
            grade = score.grade.value if score.grade else "n/a"
            ET.SubElement(props, "property", name="grade", value=grade)
            ET.SubElement(
                props,
                "property",
                name="score",
                value="n/a" if score.score is None else f"{score.score:.2f}",
            )
            ET.SubElement(props, "property", name="coverage", value=f"{score.coverage:.4f}")
        for w in waivers:
            ET.SubElement(props, "property", name="waiver", value=xml_safe(_waiver_text(w)))
        for r in rules:
            suite.append(self._case(r, report))
        return suite, counts, elapsed

    def _case(self, r: RuleResult, report: AuditReport) -> ET.Element:
        case = ET.Element(
            "testcase",
            classname=r.area.value,
            name=xml_safe(f"{r.id} {r.title}"),
            time=f"{r.duration_s:.3f}",
        )
        mine = [f for f in report.findings if f.rule_id == r.id]
        live = [f for f in mine if not f.waived]
        waived = [f for f in mine if f.waived]
        if r.outcome is Outcome.FAILED:
            worst = max((f.severity for f in live), key=lambda s: s.rank, default=r.severity)
            failure = ET.SubElement(
                case,
                "failure",
                message=xml_safe(f"{len(live)} finding(s), worst {worst.value}"),
                type=worst.value,
            )
            failure.text = xml_safe("\n\n".join(_finding_text(f) for f in live))
        elif r.outcome is Outcome.ERRORED:
            error = ET.SubElement(
                case, "error", message=xml_safe(r.error or "errored"), type="errored"
            )
            error.text = xml_safe(r.error or "")
        elif r.outcome is Outcome.SKIPPED:
            ET.SubElement(case, "skipped", message=xml_safe(r.skip_reason or "skipped"))
        if waived:
            out = ET.SubElement(case, "system-out")
            out.text = xml_safe(
                "waived:\n"
                + "\n\n".join(f"{_finding_text(f)}\n  waiver: {f.waiver_reason}" for f in waived)
            )
        return case
