"""Fairness checkers (FMFL-F..)."""

from __future__ import annotations

from fmfl_audit.checkers.base import Checker
from fmfl_audit.checkers.fairness.amplification import AmplificationChecker
from fmfl_audit.checkers.fairness.client_performance import ClientPerformanceChecker
from fmfl_audit.checkers.fairness.contribution import ContributionChecker
from fmfl_audit.checkers.fairness.counterfactual import CounterfactualChecker
from fmfl_audit.checkers.fairness.group_fairness import GroupFairnessChecker
from fmfl_audit.checkers.fairness.participation import ParticipationChecker
from fmfl_audit.checkers.fairness.representation import RepresentationChecker
from fmfl_audit.checkers.fairness.stereotype import StereotypeChecker

CHECKERS: tuple[type[Checker], ...] = (
    RepresentationChecker,
    StereotypeChecker,
    GroupFairnessChecker,
    CounterfactualChecker,
    AmplificationChecker,
    ContributionChecker,
    ParticipationChecker,
    ClientPerformanceChecker,
)

NOT_IMPLEMENTED: tuple[str, ...] = ()
"""Rules of this area whose checker is still to be written."""
