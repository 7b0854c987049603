"""The robustness area's checkers (FMFL-R..), in catalog order.

Kept out of the package's `__init__`: the checkers import the probe judges, which import helpers
of this package; an `__init__` importing every checker made `import
fmfl_audit.checkers.probes.safety` fail on a circular import when nothing had imported the
robustness checkers first."""

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
