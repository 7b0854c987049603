"""Fairness checkers (FMFL-F..)."""

from __future__ import annotations

from fmfl_audit.checkers.base import Checker
from fmfl_audit.checkers.fairness.contribution import ContributionChecker
from fmfl_audit.checkers.fairness.group_fairness import GroupFairnessChecker

CHECKERS: tuple[type[Checker], ...] = (GroupFairnessChecker, ContributionChecker)

NOT_IMPLEMENTED: tuple[str, ...] = ("FMFL-F01", "FMFL-F02", "FMFL-F04", "FMFL-F05", "FMFL-F07", "FMFL-F08")
"""Rules of this area whose checker is still to be written."""
