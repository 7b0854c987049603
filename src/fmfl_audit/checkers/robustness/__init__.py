"""Robustness checkers (FMFL-R..)."""

from __future__ import annotations

from fmfl_audit.checkers.base import Checker

CHECKERS: tuple[type[Checker], ...] = ()

NOT_IMPLEMENTED: tuple[str, ...] = tuple(f"FMFL-R{i:02d}" for i in range(1, 13))
"""Rules of this area whose checker is still to be written."""
