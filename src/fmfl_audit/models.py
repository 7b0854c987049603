"""The typed vocabulary shared by every subsystem: enums, findings, rule results, the report.

Everything here is a frozen Pydantic model so that the JSON report is the canonical, published
form (`fmfl-audit schema report`) and every renderer reads the same object.
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
from typing import Annotated, Any, NewType

from pydantic import BaseModel, ConfigDict, Field

RuleId = NewType("RuleId", str)
"""A stable public rule identifier such as ``FMFL-P01`` (see THREATS.md)."""

Subject = NewType("Subject", str)
"""What a finding is about: ``client:school-b``, ``model:global-lm``, ``fm:system-prompt``."""

SCHEMA_VERSION = "1.1"
"""Version of the JSON report schema; bumped on any incompatible change."""


class Severity(str, enum.Enum):
    """How bad a finding is, independent of how sure we are (see `Confidence`)."""

    INFO = "info"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        """Position in the order info < low < medium < high < critical."""
        return _SEVERITY_ORDER.index(self)

    def __ge__(self, other: object) -> bool:
        if not isinstance(other, Severity):
            return NotImplemented
        return self.rank >= other.rank

    def __gt__(self, other: object) -> bool:
        if not isinstance(other, Severity):
            return NotImplemented
        return self.rank > other.rank

    def __le__(self, other: object) -> bool:
        if not isinstance(other, Severity):
            return NotImplemented
        return self.rank <= other.rank

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Severity):
            return NotImplemented
        return self.rank < other.rank


_SEVERITY_ORDER = (
    Severity.INFO,
    Severity.LOW,
    Severity.MEDIUM,
    Severity.HIGH,
    Severity.CRITICAL,
)


class Confidence(str, enum.Enum):
    """How sure the measurement behind a finding is (SARIF `precision`)."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


class Outcome(str, enum.Enum):
    """What happened to one rule in one scan."""

    PASSED = "passed"
    FAILED = "failed"
    SKIPPED = "skipped"
    ERRORED = "errored"


class Area(str, enum.Enum):
    """The three audit areas of THREATS.md; each gets its own grade."""

    ROBUSTNESS = "robustness"
    PRIVACY = "privacy"
    FAIRNESS = "fairness"


class Grade(str, enum.Enum):
    """Letter grades, best first."""

    A = "A"
    B = "B"
    C = "C"
    D = "D"
    F = "F"

    @property
    def rank(self) -> int:
        """0 for A (best) to 4 for F (worst)."""
        return list(Grade).index(self)

    def worse_than(self, other: Grade) -> bool:
        """True when this grade is strictly below `other`."""
        return self.rank > other.rank


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Evidence(_Frozen):
    """Something a person can check: where, and a redacted excerpt (never raw PII or secrets)."""

    location: str | None = Field(
        default=None, description="`path:line` relative to the manifest folder, or a record id."
    )
    excerpt: str | None = Field(default=None, description="Redacted excerpt of the evidence.")


class Metric(_Frozen):
    """The measured value a finding is about and the threshold it was held against."""

    name: str = Field(description="Metric name, e.g. `flagged_rate` or `demographic_parity_ratio`.")
    value: float = Field(description="Measured value.")
    threshold: float | None = Field(default=None, description="Threshold from the rule pack.")


class FindingDraft(_Frozen):
    """What a checker reports; the engine completes it into a `Finding` with the rule's metadata."""

    subject: str = Field(description="What the finding is about, e.g. `client:school-b`.")
    message: str = Field(description="One sentence a reader understands without the docs.")
    key: str = Field(
        default="",
        description="Stable discriminator within (rule, subject) used for the fingerprint; never "
        "raw sensitive data.",
    )
    severity: Severity | None = Field(
        default=None, description="Overrides the rule's default severity for this finding."
    )
    confidence: Confidence = Field(default=Confidence.HIGH, description="How sure the check is.")
    metric: Metric | None = Field(default=None, description="Measured value and threshold.")
    evidence: tuple[Evidence, ...] = Field(default=(), description="Checkable, redacted evidence.")


class Finding(_Frozen):
    """A problem found by one rule about one subject."""

    rule_id: str = Field(description="Stable rule identifier, e.g. `FMFL-P01`.")
    area: Area
    threat: str = Field(description="Threat family from THREATS.md.")
    severity: Severity
    confidence: Confidence
    subject: str
    message: str
    metric: Metric | None = None
    evidence: tuple[Evidence, ...] = ()
    remediation: str = Field(default="", description="What to do about it.")
    fingerprint: str = Field(description="Stable id for waivers and baseline diffs.")
    waived: bool = Field(default=False, description="A waiver in force covers this finding.")
    waiver_reason: str | None = None


MetricValue = Annotated[
    float | int | str | bool | list[Any] | dict[str, Any] | None,
    Field(description="A figure a checker measured."),
]


class RuleResult(_Frozen):
    """One rule's outcome in one scan, with every subject's measurements."""

    id: str
    title: str
    area: Area
    threat: str
    severity: Severity = Field(description="The rule's default severity from the pack.")
    weight: float = Field(description="The rule's weight in its area's score.")
    outcome: Outcome
    skip_reason: str | None = Field(default=None, description="Why the rule was skipped.")
    error: str | None = Field(default=None, description="Why the rule errored.")
    metrics: dict[str, dict[str, MetricValue]] = Field(
        default_factory=dict,
        description="Subject -> figures measured, whether or not a finding fired.",
    )
    notes: tuple[str, ...] = Field(default=(), description="Method notes (e.g. which engine ran).")
    duration_s: float = Field(default=0.0, description="Wall time of the checker.")
    findings: int = Field(default=0, description="Number of findings this rule produced.")
    unreadable_inputs: tuple[str, ...] = Field(
        default=(),
        description="Data files this rule could not read enough of (over the policy's malformed "
        "share, or no usable record), with counts and the first reason.",
    )


class AreaScore(_Frozen):
    """An area's score, letter and coverage."""

    name: Area
    grade: Grade | None = Field(description="Letter grade; null when no rule of the area ran.")
    score: float | None = Field(description="0-100; null when no rule of the area ran.")
    coverage: float = Field(description="Share of the area's enabled rules that actually ran.")
    rules_total: int
    rules_run: int
    capped: bool = Field(default=False, description="A critical finding capped this area at F.")


class GateResult(_Frozen):
    """Whether the scan passes the policy gate, and why not."""

    passed: bool
    reasons: tuple[str, ...] = ()
    fail_on: Severity | None = None
    fail_under: Grade | None = None
    min_coverage: float | None = None
    fail_on_error: bool = Field(default=True, description="An errored rule fails the gate.")
    fail_on_unreadable_inputs: bool = Field(
        default=True, description="A rule with unreadable inputs fails the gate."
    )
    fail_on_rules_not_rerun: bool = Field(
        default=True,
        description="With a baseline: a rule that ran in the baseline and not now fails the gate.",
    )
    baseline: str | None = Field(default=None, description="Baseline report gated against.")


class WaiverRecord(_Frozen):
    """A waiver as it stood in this scan."""

    rule: str
    subject: str
    reason: str
    expires: dt.date
    expired: bool
    matched: int = Field(description="Findings this waiver covered in this scan.")


class InputIssue(_Frozen):
    """One malformed record, located."""

    location: str
    reason: str


class InputStats(_Frozen):
    """What was read from one data file, and what could not be read."""

    path: str
    records: int
    malformed: int
    issues: tuple[InputIssue, ...] = Field(
        default=(), description="The first malformed records (capped), with their locations."
    )


class ToolInfo(_Frozen):
    """Which tool produced the report."""

    name: str = "fmfl-audit"
    version: str


class DeploymentInfo(_Frozen):
    """Which deployment was audited."""

    name: str
    task: str | None = None


class AuditReport(_Frozen):
    """The canonical result of a scan; every output format renders from this object."""

    schema_version: str = SCHEMA_VERSION
    tool: ToolInfo
    deployment: DeploymentInfo
    manifest_path: str
    manifest_sha256: str
    packs: tuple[str, ...] = Field(description="Rule packs in force, in order.")
    seed: int
    started_at: dt.datetime | None = Field(default=None, description="UTC start (not hashed).")
    duration_s: float | None = Field(default=None, description="Wall time (not deterministic).")
    grade: Grade | None = Field(description="Overall letter grade; null when no rule ran.")
    score: float | None = Field(description="Overall 0-100 score; null when no rule ran.")
    coverage: float
    gate: GateResult
    areas: tuple[AreaScore, ...]
    rules: tuple[RuleResult, ...]
    findings: tuple[Finding, ...]
    waivers: tuple[WaiverRecord, ...] = ()
    inputs: tuple[InputStats, ...] = ()
    warnings: tuple[str, ...] = ()

    def unwaived(self) -> tuple[Finding, ...]:
        """Findings that count towards grades and the gate."""
        return tuple(f for f in self.findings if not f.waived)

    def rule(self, rule_id: str) -> RuleResult:
        """The result of one rule; KeyError when the rule was not planned."""
        for r in self.rules:
            if r.id == rule_id:
                return r
        raise KeyError(rule_id)


def fingerprint(rule_id: str, subject: str, key: str) -> str:
    """Stable finding id: independent of message wording, severity and run order."""
    digest = hashlib.sha256(f"{rule_id}\x1f{subject}\x1f{key}".encode()).hexdigest()
    return digest[:32]
