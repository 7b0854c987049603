"""What every probe judge shares: the subject of its findings and how it quotes an answer."""

from __future__ import annotations

from fmfl_audit.checkers.probes._text import one_line
from fmfl_audit.checkers.robustness._common import mask_keep_hosts
from fmfl_audit.redact import MASK_MARGIN, cut_masked

SUBJECT = "fm:endpoint"
"""Findings about the FM as its endpoint answers (`foundation_model.endpoint`)."""
EXCERPT_CHARS = 160


def excerpt(text: str) -> str:
    """An answer as evidence: one line, e-mails, numbers and long tokens masked, link hosts kept
    (the injected host is what a reviewer needs), cut to about `EXCERPT_CHARS`.

    Masked before it is cut (on `MASK_MARGIN` characters past the cut), and never cut inside a
    placeholder: a value cut first (`jonathan.apple…`) would match no mask and reach the report."""
    short = one_line(text)
    head = short[: EXCERPT_CHARS + MASK_MARGIN]
    return cut_masked(mask_keep_hosts(head), EXCERPT_CHARS, more=len(head) < len(short))
