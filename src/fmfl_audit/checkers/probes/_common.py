"""What every probe judge shares: the subject of its findings and how it quotes an answer."""

from __future__ import annotations

from fmfl_audit.checkers.probes._text import one_line
from fmfl_audit.checkers.robustness._common import mask_keep_hosts

SUBJECT = "fm:endpoint"
"""Findings about the FM as its endpoint answers (`foundation_model.endpoint`)."""
EXCERPT_CHARS = 160


def excerpt(text: str) -> str:
    """An answer as evidence: one line, e-mails, numbers and long tokens masked, link hosts kept
    (the injected host is what a reviewer needs), cut to `EXCERPT_CHARS`."""
    short = one_line(text)
    cut = len(short) > EXCERPT_CHARS
    return mask_keep_hosts(short[:EXCERPT_CHARS]) + ("…" if cut else "")
