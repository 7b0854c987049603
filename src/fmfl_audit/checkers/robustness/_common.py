"""Helpers shared by the robustness checkers: redacted excerpts, tokens, stopwords, robust z."""

from __future__ import annotations

import re
import statistics
from collections.abc import Sequence

from fmfl_audit.redact import MASK_MARGIN, cover_spans, redact_spans

EXCERPT_WIDTH = 80
"""Characters of an excerpt kept around the evidence span."""

# Values that may be personal or secret in a prompt or output: masked before any excerpt is shown.
_SENSITIVE = (
    (re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+"), "EMAIL"),
    (re.compile(r"\b[a-z][a-z0-9+.-]*://\S+", re.IGNORECASE), "URL"),
    (re.compile(r"\+?\d[\d\s().-]{6,}\d"), "NUMBER"),
    (re.compile(r"\b\d{4,}\b"), "NUMBER"),
    (re.compile(r"[A-Za-z0-9+/=_-]{24,}"), "LONG_TOKEN"),
)

TOKEN_RE = re.compile(r"[^\W_]+(?:['’-][^\W_]+)*", re.UNICODE)

STOPWORDS = frozenset(
    [
        "a",
        "about",
        "above",
        "after",
        "again",
        "against",
        "all",
        "am",
        "an",
        "and",
        "any",
        "are",
        "as",
        "at",
        "be",
        "because",
        "been",
        "before",
        "being",
        "below",
        "between",
        "both",
        "but",
        "by",
        "can",
        "could",
        "did",
        "do",
        "does",
        "doing",
        "down",
        "during",
        "each",
        "few",
        "for",
        "from",
        "further",
        "had",
        "has",
        "have",
        "having",
        "he",
        "her",
        "here",
        "hers",
        "herself",
        "him",
        "himself",
        "his",
        "how",
        "i",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "itself",
        "just",
        "me",
        "more",
        "most",
        "my",
        "myself",
        "no",
        "nor",
        "not",
        "now",
        "of",
        "off",
        "on",
        "once",
        "only",
        "or",
        "other",
        "our",
        "ours",
        "ourselves",
        "out",
        "over",
        "own",
        "same",
        "she",
        "should",
        "so",
        "some",
        "such",
        "than",
        "that",
        "the",
        "their",
        "theirs",
        "them",
        "themselves",
        "then",
        "there",
        "these",
        "they",
        "this",
        "those",
        "through",
        "to",
        "too",
        "under",
        "until",
        "up",
        "very",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "while",
        "who",
        "whom",
        "why",
        "will",
        "with",
        "would",
        "you",
        "your",
        "yours",
        "yourself",
        "yourselves",
        "s",
        "t",
        "don",
    ]
)
"""English function words (the usual NLTK-style list), never trigger candidates."""


def safe_excerpt(
    text: str, span: tuple[int, int] | None = None, *, width: int = EXCERPT_WIDTH
) -> str:
    """A short excerpt around `span` (or the start) with e-mails, numbers, URLs and long tokens
    replaced by their kind, so a report never carries a personal value or a secret.

    Values are found in a window `MASK_MARGIN` characters wider than the excerpt, and the excerpt
    grows to take whole any value that straddles its edge: cutting first would leave a partial
    value (`john.smith…`, `219-0…`) that no pattern, here or in the report scrubber, recognises."""
    lo, hi = span if span is not None else (0, 0)
    lo = max(0, min(lo, len(text)))
    start = max(0, lo - width // 4)
    end = min(len(text), max(hi, lo) + width)
    end = min(end, start + 2 * width)
    wide_start = max(0, start - MASK_MARGIN)
    wide = text[wide_start : min(len(text), end + MASK_MARGIN)]
    found = [
        (wide_start + m.start(), wide_start + m.end(), label)
        for rx, label in _SENSITIVE
        for m in rx.finditer(wide)
    ]
    start, end = cover_spans(start, end, found)
    window = text[start:end]
    spans = [(max(s, start) - start, min(e, end) - start, lab) for s, e, lab in found]
    spans = [x for x in spans if x[1] > x[0]]
    body = redact_spans(window, spans, context=len(window)) if spans else " ".join(window.split())
    return ("…" if start > 0 else "") + body.strip("…") + ("…" if end < len(text) else "")


def tokens(text: str) -> list[str]:
    """Lower-cased word tokens."""
    return [t.lower() for t in TOKEN_RE.findall(text)]


def robust_z(values: Sequence[float], *, min_scale: float = 0.0) -> list[float]:
    """Robust z-scores: (x - median) / max(1.4826 * MAD, min_scale); when the scale is 0, 0 at
    the median and +-inf elsewhere."""
    if not values:
        return []
    med = statistics.median(values)
    mad = max(statistics.median(abs(v - med) for v in values) * 1.4826, min_scale)
    if mad == 0:
        return [0.0 if v == med else float("inf") if v > med else float("-inf") for v in values]
    return [(v - med) / mad for v in values]


def rate(n: int, total: int) -> float:
    """n / total rounded for reports; 0 when total is 0."""
    return round(n / total, 6) if total else 0.0


_URL = re.compile(r"\b([a-z][a-z0-9+.-]*://[^/\s?#]+)[^\s]*", re.IGNORECASE)


def mask_keep_hosts(text: str) -> str:
    """Mask e-mails, numbers and long tokens but keep URL hosts (whose path may carry a token):
    for reviewed configuration text such as a system prompt, where the injected host matters."""
    hosts: list[str] = []

    def keep(m: re.Match[str]) -> str:
        hosts.append(m.group(1) + ("/…" if len(m.group()) > len(m.group(1)) else ""))
        return f"\x00{len(hosts) - 1}\x00"

    held = _URL.sub(keep, text)
    spans: list[tuple[int, int, str]] = []
    for rx, label in _SENSITIVE:
        if label != "URL":
            spans.extend((m.start(), m.end(), label) for m in rx.finditer(held))
    masked = redact_spans(held, spans, context=len(held) + 1) if spans else held
    return re.sub(r"\x00(\d+)\x00", lambda m: hosts[int(m.group(1))], masked)
