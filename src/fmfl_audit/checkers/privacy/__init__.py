"""Privacy checkers (FMFL-P..)."""

from __future__ import annotations

from fmfl_audit.checkers.base import Checker
from fmfl_audit.checkers.privacy.canary import CanaryChecker
from fmfl_audit.checkers.privacy.configuration import ConfigurationChecker
from fmfl_audit.checkers.privacy.extraction import ExtractionChecker
from fmfl_audit.checkers.privacy.leakage import LeakageChecker
from fmfl_audit.checkers.privacy.membership import MembershipChecker
from fmfl_audit.checkers.privacy.pii import PiiChecker
from fmfl_audit.checkers.privacy.propagation import PropagationChecker
from fmfl_audit.checkers.privacy.secrets import SecretsChecker

CHECKERS: tuple[type[Checker], ...] = (
    PiiChecker,
    SecretsChecker,
    CanaryChecker,
    ExtractionChecker,
    MembershipChecker,
    LeakageChecker,
    PropagationChecker,
    ConfigurationChecker,
)

NOT_IMPLEMENTED: tuple[str, ...] = ()
"""Rules of this area whose checker is still to be written."""
