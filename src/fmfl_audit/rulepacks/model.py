"""Rule packs: YAML files in `rules/` that bind rule IDs to checkers with thresholds and grading."""

from __future__ import annotations

import re
from typing import Any

from pydantic import Field, field_validator, model_validator

from fmfl_audit.manifest.model import StrictModel
from fmfl_audit.models import Area, Grade, Severity

RULE_ID_RE = re.compile(r"^[A-Z][A-Z0-9]*-[A-Z]+[0-9]+$")


def _check_rule_id(value: str) -> str:
    if not RULE_ID_RE.match(value):
        raise ValueError(f"not a rule id: {value!r} (expected e.g. FMFL-P01)")
    return value


class GradeBand(StrictModel):
    """The lowest score that still earns a letter."""

    grade: Grade
    min_score: float = Field(ge=0, le=100)


class GradingPolicy(StrictModel):
    """How rule outcomes become area scores and letters (documented in the README)."""

    severity_penalty: dict[Severity, float] = Field(
        description="Share of a failed rule's weight lost, by its worst unwaived severity."
    )
    bands: tuple[GradeBand, ...] = Field(description="Letters by minimum score, best first.")
    critical_cap: Grade = Field(
        default=Grade.F, description="An unwaived critical finding caps its area at this letter."
    )

    @field_validator("severity_penalty")
    @classmethod
    def _all_severities(cls, value: dict[Severity, float]) -> dict[Severity, float]:
        missing = [s.value for s in Severity if s not in value]
        if missing:
            raise ValueError(f"severity_penalty lacks {', '.join(missing)}")
        for sev, pen in value.items():
            if not 0 <= pen <= 1:
                raise ValueError(f"severity_penalty[{sev.value}] must be between 0 and 1")
        return value

    @field_validator("bands")
    @classmethod
    def _ordered(cls, value: tuple[GradeBand, ...]) -> tuple[GradeBand, ...]:
        if [b.grade for b in value] != list(Grade):
            raise ValueError("bands must list every grade once, A to F, in order")
        scores = [b.min_score for b in value]
        if scores != sorted(scores, reverse=True) or len(set(scores)) != len(scores):
            raise ValueError("band min_score must strictly decrease from A to F")
        if value[-1].min_score != 0:
            raise ValueError("the F band must start at 0")
        return value

    def letter(self, score: float) -> Grade:
        """The letter for a 0-100 score."""
        for band in self.bands:
            if score >= band.min_score:
                return band.grade
        return Grade.F


class RuleSpec(StrictModel):
    """One rule as a pack declares it."""

    id: str = Field(description="Stable public id, e.g. FMFL-P01.")
    title: str = Field(min_length=3, description="An 'Ensure ...' sentence.")
    area: Area
    threat: str = Field(min_length=2)
    severity: Severity
    weight: float = Field(default=1.0, ge=0)
    checker: str | None = Field(
        default=None, description="Checker id (defaults to the rule id); lets a pack reuse one."
    )
    params: dict[str, Any] = Field(default_factory=dict, description="Thresholds and settings.")
    remediation: str = Field(min_length=3)
    description: str = ""
    references: tuple[str, ...] = ()
    enabled: bool = True

    _id = field_validator("id")(_check_rule_id)

    @property
    def checker_id(self) -> str:
        """The checker this rule runs."""
        return self.checker or self.id


class RuleOverride(StrictModel):
    """Changes to a rule defined by an earlier pack."""

    id: str
    enabled: bool | None = None
    severity: Severity | None = None
    weight: float | None = Field(default=None, ge=0)
    params: dict[str, Any] = Field(default_factory=dict)
    remediation: str | None = None

    _id = field_validator("id")(_check_rule_id)


class RulePackFile(StrictModel):
    """One YAML file of a pack. A pack is a file or a folder of such files."""

    pack: str = Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
    version: int | str = 1
    description: str = ""
    grading: GradingPolicy | None = None
    rules: tuple[RuleSpec, ...] = ()
    overrides: tuple[RuleOverride, ...] = ()

    @model_validator(mode="after")
    def _unique(self) -> RulePackFile:
        ids = [r.id for r in self.rules]
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup:
            raise ValueError(f"rule ids declared twice: {', '.join(dup)}")
        return self
