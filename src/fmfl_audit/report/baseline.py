"""Baselines: compare two JSON reports by finding fingerprint, and gate a scan on what got worse.

A finding of the new report is
- *new* when the old report has no finding with its fingerprint;
- *worsened* when it has one but the new one is more severe, or equally severe with its metric
  further past its threshold (the failing side is read from the new finding: a value above its
  threshold fails upwards, below it downwards);
- *unchanged* otherwise (also when it became less severe).
An old finding whose fingerprint is absent from the new report is *fixed* when its rule ran in the
new scan, and *not checked* when its rule was skipped, errored or not planned there: a rule that did
not run cannot have found the problem gone. The baseline gate fails when a rule that ran in the
baseline no longer runs (`policy.fail_on_rules_not_rerun`), so dropping inputs cannot pass a gate.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from pydantic import ValidationError

from fmfl_audit.errors import ReportError
from fmfl_audit.gate import GatePolicy, evaluate_gate
from fmfl_audit.models import SCHEMA_VERSION, AuditReport, Finding, Outcome

_VERSION = re.compile(r"^\d{1,4}\.\d{1,4}$")
_EPS = 1e-9
"""Metric moves smaller than this (relative) are rounding noise, not a worsening."""


def load_report(path: Path) -> AuditReport:
    """A JSON report written by `scan --format json`; ReportError naming the path otherwise."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ReportError(f"{path}: no such report file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ReportError(f"{path}: cannot read the report ({exc})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ReportError(
            f"{path}:{exc.lineno}:{exc.colno}: not JSON ({exc.msg}); "
            "give a report written by `fmfl-audit scan --format json`"
        ) from None
    except RecursionError:
        raise ReportError(f"{path}: JSON nested too deeply for an fmfl-audit report") from None
    except ValueError as exc:  # e.g. an integer of more digits than Python converts
        raise ReportError(f"{path}: not a readable JSON report ({exc})") from None
    if not isinstance(data, dict):
        raise ReportError(f"{path}: expected a JSON object (an fmfl-audit JSON report)")
    raw = data.get("schema_version")
    # Quote the version only when it looks like one: the file may be anything.
    version = raw if isinstance(raw, str) and _VERSION.match(raw) else None
    if version is None or version.split(".")[0] != SCHEMA_VERSION.split(".")[0]:
        shown = version or ("missing" if raw is None else "unrecognised")
        raise ReportError(
            f"{path}: report schema version {shown} is not readable by this "
            f"fmfl-audit (schema {SCHEMA_VERSION}); re-run the scan with this version"
        )
    try:
        return AuditReport.model_validate(data)
    except RecursionError:
        raise ReportError(f"{path}: JSON nested too deeply for an fmfl-audit report") from None
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or '<root>'}: {e['msg']}"
            for e in exc.errors(include_url=False)[:5]
        )
        more = exc.error_count() - 5
        tail = f" (and {more} more)" if more > 0 else ""
        raise ReportError(
            f"{path}: not an fmfl-audit JSON report (schema {SCHEMA_VERSION}): {problems}{tail}"
        ) from None


@dataclass(frozen=True)
class Change:
    """A finding present in both reports, old and new."""

    old: Finding
    new: Finding


@dataclass(frozen=True)
class ReportDiff:
    """How the findings moved between a baseline report and a new one."""

    new: tuple[Finding, ...]
    fixed: tuple[Finding, ...]
    worsened: tuple[Change, ...]
    unchanged: tuple[Change, ...]
    not_checked: tuple[Finding, ...] = ()
    """Old findings whose rule did not run in the new scan: neither fixed nor still present."""
    rules_not_rerun: tuple[str, ...] = ()
    """Rules that ran (passed or failed) in the old report and not in the new one."""

    @property
    def regressed(self) -> bool:
        """True when an unwaived finding is new or worse: what `diff` exits 1 on."""
        return any(not f.waived for f in self.new) or any(not c.new.waived for c in self.worsened)


def _excess(f: Finding, direction: float) -> float | None:
    m = f.metric
    if m is None or m.threshold is None:
        return None
    return direction * (m.value - m.threshold)


def is_worse(old: Finding, new: Finding) -> bool:
    """More severe, or as severe with the metric further past its threshold."""
    if new.severity.rank != old.severity.rank:
        return new.severity.rank > old.severity.rank
    if new.metric is None or old.metric is None or new.metric.name != old.metric.name:
        return False
    if new.metric.threshold is None:
        return False
    diff = new.metric.value - new.metric.threshold
    direction = (diff > 0) - (diff < 0)
    if direction == 0:
        return False
    before, after = _excess(old, direction), _excess(new, direction)
    if before is None or after is None:
        return False
    scale = max(abs(before), abs(after), 1.0)
    return after - before > _EPS * scale


def _index(findings: Iterable[Finding]) -> dict[str, Finding]:
    out: dict[str, Finding] = {}
    for f in findings:
        # Fingerprints are unique per (rule, subject, key); keep the worst if a pack breaks that.
        prev = out.get(f.fingerprint)
        if prev is None or f.severity.rank > prev.severity.rank:
            out[f.fingerprint] = f
    return out


def ran_rules(report: AuditReport) -> frozenset[str]:
    """Ids of the rules that ran to a verdict (passed or failed) in `report`."""
    return frozenset(r.id for r in report.rules if r.outcome in (Outcome.PASSED, Outcome.FAILED))


def rules_not_rerun(old: AuditReport, new: AuditReport) -> tuple[str, ...]:
    """Rules that ran in `old` but were skipped, errored or not planned in `new`, sorted."""
    return tuple(sorted(ran_rules(old) - ran_rules(new)))


def diff_findings(
    old: Sequence[Finding], new: Sequence[Finding], *, not_run: Collection[str] = ()
) -> ReportDiff:
    """Classify findings by fingerprint (see the module docstring).

    `not_run`: ids of rules that did not run in the new scan; their absent findings are not checked.
    """
    before = _index(old)
    after = _index(new)
    added, worsened, same = [], [], []
    for fp, f in after.items():
        prev = before.get(fp)
        if prev is None:
            added.append(f)
        elif is_worse(prev, f):
            worsened.append(Change(prev, f))
        else:
            same.append(Change(prev, f))
    gone = [f for fp, f in before.items() if fp not in after]
    fixed = [f for f in gone if f.rule_id not in not_run]
    unchecked = [f for f in gone if f.rule_id in not_run]
    return ReportDiff(
        tuple(added), tuple(fixed), tuple(worsened), tuple(same), not_checked=tuple(unchecked)
    )


def diff_reports(old: AuditReport, new: AuditReport) -> ReportDiff:
    """`diff_findings` over two whole reports, knowing which rules ran in the new one."""
    not_run = {r.id for r in old.rules} | {f.rule_id for f in old.findings}
    d = diff_findings(old.findings, new.findings, not_run=not_run - ran_rules(new))
    return replace(d, rules_not_rerun=rules_not_rerun(old, new))


def gate_fingerprints(old: AuditReport, new_findings: Sequence[Finding]) -> frozenset[str]:
    """Fingerprints the baseline accepts: present in `old` and not worse now.

    This is what `Auditor(baseline_fingerprints=...)` and `evaluate_gate` take.
    """
    d = diff_findings(old.findings, new_findings)
    return frozenset(c.new.fingerprint for c in d.unchanged)


def apply_baseline(
    report: AuditReport, baseline: AuditReport, *, baseline_name: str
) -> AuditReport:
    """`report` with its gate re-evaluated against `baseline` (new or worsened findings only).

    The gate policy is the one recorded in `report.gate`.
    """
    policy = GatePolicy(
        fail_on=report.gate.fail_on,
        fail_under=report.gate.fail_under,
        min_coverage=report.gate.min_coverage,
        fail_on_error=report.gate.fail_on_error,
        fail_on_unreadable_inputs=report.gate.fail_on_unreadable_inputs,
        fail_on_rules_not_rerun=report.gate.fail_on_rules_not_rerun,
    )
    gate = evaluate_gate(
        policy=policy,
        findings=report.findings,
        rules=report.rules,
        grade=report.grade,
        coverage=report.coverage,
        baseline_fingerprints=gate_fingerprints(baseline, report.findings),
        baseline_name=baseline_name,
        rules_not_rerun=rules_not_rerun(baseline, report),
    )
    return report.model_copy(update={"gate": gate})
