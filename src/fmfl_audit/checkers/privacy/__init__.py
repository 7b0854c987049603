"""Privacy checkers (FMFL-P..)."""

from __future__ import annotations

from fmfl_audit.checkers.base import Checker
from fmfl_audit.checkers.privacy.pii import PiiChecker

CHECKERS: tuple[type[Checker], ...] = (PiiChecker,)

NOT_IMPLEMENTED: tuple[str, ...] = tuple(f"FMFL-P{i:02d}" for i in range(2, 9))
"""Rules of this area whose checker is still to be written."""
