"""Judging the probe transcript (`fmfl-audit probe`): each suite's answers feed an existing rule
through `hooks`, and the target-vs-reference comparison is FMFL-R13 (`behaviour`)."""
