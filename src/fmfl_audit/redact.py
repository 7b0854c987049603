"""Redaction helpers: every excerpt that reaches a report goes through here."""

from __future__ import annotations

from collections.abc import Iterable

EXCERPT_CONTEXT = 40
"""Characters of context kept on each side of the first redacted span."""


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
        return _clip(text, 0, len(text), context)
    parts: list[str] = []
    pos = 0
    for s, e, lab in merged:
        parts.append(text[pos:s])
        parts.append(f"<{lab}>")
        pos = e
    parts.append(text[pos:])
    first_start = merged[0][0]
    redacted = "".join(parts)
    # Offsets in the redacted text: the first placeholder starts at `first_start`.
    return _clip(redacted, first_start, first_start + len(merged[0][2]) + 2, context)


def _clip(text: str, start: int, end: int, context: int) -> str:
    lo = max(0, start - context)
    hi = min(len(text), end + context)
    out = " ".join(text[lo:hi].split())
    return ("…" if lo > 0 else "") + out + ("…" if hi < len(text) else "")


def mask(value: str, *, keep: int = 0) -> str:
    """`secret123` -> `s********` (keep the first `keep` characters; never more than 4)."""
    keep = min(keep, 4, max(0, len(value) - 4))
    return value[:keep] + "*" * max(3, len(value) - keep)
