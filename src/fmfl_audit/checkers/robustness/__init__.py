"""Robustness checkers (FMFL-R..)."""

from __future__ import annotations

from fmfl_audit.checkers.base import Checker
from fmfl_audit.checkers.probes.behaviour import BehaviourDriftChecker
from fmfl_audit.checkers.robustness.artifacts import ArtifactIntegrityChecker
from fmfl_audit.checkers.robustness.backdoor import (
    BackdoorActivationChecker,
    TriggerMiningChecker,
)
from fmfl_audit.checkers.robustness.defenses import DefenseCoverageChecker
from fmfl_audit.checkers.robustness.distribution import DegenerateChecker, OodChecker
from fmfl_audit.checkers.robustness.jailbreak import (
    JailbreakPromptChecker,
    JailbrokenOutputChecker,
)
from fmfl_audit.checkers.robustness.system_prompt import SystemPromptChecker
from fmfl_audit.checkers.robustness.tampering import TamperingChecker
from fmfl_audit.checkers.robustness.teacher import TeacherQualityChecker
from fmfl_audit.checkers.robustness.updates import UpdateAnomalyChecker

CHECKERS: tuple[type[Checker], ...] = (
    JailbreakPromptChecker,
    JailbrokenOutputChecker,
    SystemPromptChecker,
    ArtifactIntegrityChecker,
    TamperingChecker,
    TriggerMiningChecker,
    BackdoorActivationChecker,
    OodChecker,
    DegenerateChecker,
    TeacherQualityChecker,
    DefenseCoverageChecker,
    UpdateAnomalyChecker,
    BehaviourDriftChecker,
)

NOT_IMPLEMENTED: tuple[str, ...] = ()
"""Rules of this area whose checker is still to be written."""
