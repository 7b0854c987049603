"""Redaction helpers: every excerpt that reaches a report goes through here."""

from __future__ import annotations

import re
from collections.abc import Iterable

EXCERPT_CONTEXT = 40
"""Characters of context kept on each side of the first redacted span."""

MASK_MARGIN = 256
"""Characters beyond an excerpt's window that are searched for sensitive values before it is cut:
a value straddling the cut is only recognised whole (a partial e-mail or number matches no
pattern), so masking must look past the cut and the cut must then take the whole placeholder."""

_PLACEHOLDER = re.compile(r"<[A-Za-z][^<>\n]{0,100}>")
"""A `<LABEL>` written by `redact_spans` (or `mask_keep_hosts`): a cut never splits one."""


def redact_spans(
    text: str,
    spans: Iterable[tuple[int, int, str]],
    *,
    context: int = EXCERPT_CONTEXT,
) -> str:
    """Replace each (start, end, label) span with `<LABEL>` and cut the text around the first one.

    Overlapping spans are merged (the earliest label wins) so no raw character of any span survives.
    """
    ordered = sorted((s, e, lab) for s, e, lab in spans if e > s)
    merged: list[tuple[int, int, str]] = []
    for s, e, lab in ordered:
        if merged and s < merged[-1][1]:
            ps, pe, plab = merged[-1]
            merged[-1] = (ps, max(pe, e), plab)
        else:
            merged.append((s, e, lab))
    if not merged:
        return _clip(text, 0, len(text), context, [])
    parts: list[str] = []
    placed: list[tuple[int, int, str]] = []  # placeholder offsets in the redacted text
    pos = at = 0
    for s, e, lab in merged:
        parts.append(text[pos:s])
        at += s - pos
        parts.append(f"<{lab}>")
        placed.append((at, at + len(lab) + 2, lab))
        at += len(lab) + 2
        pos = e
    parts.append(text[pos:])
    redacted = "".join(parts)
    return _clip(redacted, placed[0][0], placed[0][1], context, placed)


def _clip(text: str, start: int, end: int, context: int, placed: list[tuple[int, int, str]]) -> str:
    # Masking came first; the cut then keeps each placeholder whole (`<EMAIL_ADDR…` reads badly).
    lo, hi = cover_spans(max(0, start - context), min(len(text), end + context), placed)
    out = " ".join(text[lo:hi].split())
    return ("…" if lo > 0 else "") + out + ("…" if hi < len(text) else "")


def cover_spans(start: int, end: int, spans: Iterable[tuple[int, int, str]]) -> tuple[int, int]:
    """`[start, end)` grown so that no span straddles either edge: a cut made after masking takes
    a placeholder whole, a cut made before masking takes the whole sensitive value (so it is
    recognised and masked, never shown in part)."""
    ordered = sorted((s, e) for s, e, _ in spans if e > s)
    changed = True
    while changed:
        changed = False
        for s, e in ordered:
            if s < start < e:
                start, changed = s, True
            if s < end < e:
                end, changed = e, True
    return start, end


def cut_masked(text: str, limit: int, *, more: bool = False) -> str:
    """The first `limit` characters of an already-masked `text` (plus `…` when cut, or when `more`
    says `text` was itself the head of a longer one), the cut moved to the end of a `<LABEL>`
    placeholder it would split."""
    if len(text) <= limit:
        return text + ("…" if more else "")
    spans = [(m.start(), m.end(), "") for m in _PLACEHOLDER.finditer(text, 0, limit + 102)]
    _, end = cover_spans(0, limit, spans)
    return text[:end] + ("…" if more or end < len(text) else "")


def mask(value: str, *, keep: int = 0) -> str:
    """`secret123` -> `s********` (keep the first `keep` characters; never more than 4)."""
    keep = min(keep, 4, max(0, len(value) - 4))
    return value[:keep] + "*" * max(3, len(value) - keep)
