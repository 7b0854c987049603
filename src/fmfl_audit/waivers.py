"""Apply waivers: one in force marks matching findings waived; an expired one warns."""

from __future__ import annotations

import datetime as dt
import fnmatch
from collections.abc import Sequence

from fmfl_audit.manifest.model import Waiver
from fmfl_audit.models import Finding, WaiverRecord


def _matches(w: Waiver, f: Finding) -> bool:
    return w.rule == f.rule_id and fnmatch.fnmatchcase(f.subject, w.subject)


def apply_waivers(
    findings: Sequence[Finding], waivers: Sequence[Waiver], *, today: dt.date
) -> tuple[list[Finding], list[WaiverRecord], list[str]]:
    """(findings with `waived` set, waiver records, warnings). Expired waivers waive nothing."""
    out: list[Finding] = []
    counts = [0] * len(waivers)
    for f in findings:
        hit = None
        for i, w in enumerate(waivers):
            if _matches(w, f):
                if w.expires >= today:
                    hit = i
                    break
                counts[i] += 1  # counted, but the finding stays live
        if hit is not None:
            counts[hit] += 1
            w = waivers[hit]
            out.append(f.model_copy(update={"waived": True, "waiver_reason": w.reason}))
        else:
            out.append(f)
    records = []
    warnings = []
    for i, w in enumerate(waivers):
        expired = w.expires < today
        records.append(
            WaiverRecord(
                rule=w.rule,
                subject=w.subject,
                reason=w.reason,
                expires=w.expires,
                expired=expired,
                matched=counts[i],
            )
        )
        if expired:
            warnings.append(
                f"waiver for {w.rule} on {w.subject} expired on {w.expires.isoformat()}; "
                f"its {counts[i]} finding(s) count again"
            )
    return out, records, warnings
