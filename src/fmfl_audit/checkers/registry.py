"""The explicit checker registry: a literal tuple per family, no import-time registration."""

from __future__ import annotations

from fmfl_audit.checkers import fairness, privacy
from fmfl_audit.checkers.base import Checker
from fmfl_audit.checkers.robustness import catalog as robustness

CHECKERS: tuple[type[Checker], ...] = (
    *robustness.CHECKERS,
    *privacy.CHECKERS,
    *fairness.CHECKERS,
)
"""Every checker the tool ships, in catalog order."""


def checker_map() -> dict[str, type[Checker]]:
    """Checker id -> class."""
    return {c.id: c for c in CHECKERS}


def not_implemented() -> frozenset[str]:
    """Rule ids of THREATS.md whose checker is still to be written (reported as skipped)."""
    return frozenset(
        {*robustness.NOT_IMPLEMENTED, *privacy.NOT_IMPLEMENTED, *fairness.NOT_IMPLEMENTED}
    )
