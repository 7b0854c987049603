"""One scrubber for every string a report carries, whichever rule or input produced it.

A rule redacts what it detected, but text from the audited artifacts reaches a report through many
doors: evidence excerpts, messages quoting a mined n-gram, a system-prompt diff, a file name, a
client id, an input error. Before a report leaves the engine, every free-text string in it (and
every metrics key) goes through `ReportScrubber`:

- PII found by the scan's Presidio analyzer (default recognizers, the same offline engine as
  FMFL-P01; dates and URLs are left alone, a report is full of both);
- secrets found by the FMFL-P02 scanner (detect-secrets plugins and the extra patterns);
- declared canaries (`models[].canaries`): the whole canary text and every secret value of four
  characters or more;
- characters that cannot be written as UTF-8 (lone surrogates from a `\\ud800` escape or a
  non-UTF-8 file name) are spelled out, so no report write fails on them.

Each span is replaced by `<TYPE>` in place; the rest of the string is kept as it was (no clipping,
no whitespace change), so a diff stays a diff. Identifiers the engine made (rule ids, fingerprints,
digests, enum values) are not scrubbed: they carry no input text.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Sequence
from typing import Any

from pydantic import BaseModel

from fmfl_audit.engine.executors import Cache
from fmfl_audit.models import AuditReport

SCRUB_MIN_SCORE = 0.4
"""FMFL-P01's default: what the audit calls PII in the data, it masks in the report."""

_PROTECTED = re.compile(r"\b[A-Z][A-Z0-9]*-[A-Z]+[0-9]+\b")
"""Rule ids (`FMFL-R09`): weak licence-number patterns would otherwise mask them in messages."""

MIN_CANARY_SECRET = 4
"""Shorter canary fills (a `{choice:red|blue}` word, two digits) would mask ordinary text."""

_ENGINE_KEYS = frozenset(
    {
        "schema_version",
        "manifest_sha256",
        "fingerprint",
        "rule_id",
        "id",
        "rule",
        "threat",
        "title",
        "remediation",
        "started_at",
    }
)
"""Report fields the engine fills from its own vocabulary or the rule packs, never from inputs."""

_SEPARATORS = re.compile(r"[/\\]")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def printable(text: str) -> str:
    """`text` with lone surrogates spelled out (`\\udcff`) and control characters (other than
    tab and newlines) shown as `\\x..`, so it can be written as UTF-8 anywhere."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def mask_spans(text: str, spans: Iterable[tuple[int, int, str]]) -> str:
    """Replace each (start, end, label) span with `<LABEL>`; overlapping spans are merged (the
    earliest label wins) so no raw character of any span survives. Nothing else changes."""
    merged: list[tuple[int, int, str]] = []
    for s, e, lab in sorted(x for x in spans if x[1] > x[0]):
        if merged and s < merged[-1][1]:
            ps, pe, plab = merged[-1]
            merged[-1] = (ps, max(pe, e), plab)
        else:
            merged.append((s, e, lab))
    out, pos = [], 0
    for s, e, lab in merged:
        out += [text[pos:s], f"<{lab}>"]
        pos = e
    out.append(text[pos:])
    return "".join(out)


class ReportScrubber:
    """Masks PII, secrets and canaries in strings; memoised, so each distinct string is analysed
    once. `cache` is the scan's resource cache (the Presidio analyzer is shared with the rules)."""

    def __init__(self, *, cache: Cache, canaries: Sequence[str] = ()) -> None:
        self._cache = cache
        self._memo: dict[str, str] = {}
        values = sorted({c for c in canaries if len(c) >= MIN_CANARY_SECRET}, key=len, reverse=True)
        self._canary = (
            re.compile("|".join(re.escape(v) for v in values), re.IGNORECASE) if values else None
        )

    def texts(self, texts: Sequence[str]) -> list[str]:
        """The scrubbed form of each text (analysed in one batch)."""
        todo = sorted({t for t in texts if t not in self._memo})
        if todo:
            for raw, clean in zip(todo, self._analyse(todo), strict=True):
                self._memo[raw] = clean
        return [self._memo[t] for t in texts]

    def text(self, text: str) -> str:
        """The scrubbed form of one text."""
        return self.texts([text])[0]

    def _analyse(self, texts: list[str]) -> list[str]:
        from fmfl_audit.checkers.privacy._presidio import analyze_texts, shared_analyzer
        from fmfl_audit.checkers.privacy.secrets import (
            DEFAULT_DISABLED,
            EXTRA_PATTERNS,
            SecretScanner,
        )
        from fmfl_audit.errors import FmflAuditError

        clean = [printable(t) for t in texts]
        # File paths: a recognizer reads `dir/jane@example.org/x` as one odd address and lets it
        # pass; the same text with separators as spaces (same offsets) shows each component.
        split = [i for i, t in enumerate(clean) if "/" in t or "\\" in t]
        variants = clean + [_SEPARATORS.sub(" ", clean[i]) for i in split]
        try:
            analyzer = shared_analyzer(self._cache, language="en", recognizers=())
        except FmflAuditError:
            # The configured spaCy model cannot be loaded (the PII rules say so): the report is
            # still scrubbed, with the pattern recognizers.
            analyzer = shared_analyzer(
                self._cache, language="en", recognizers=(), spacy_model="blank"
            )
        found = analyze_texts(
            analyzer,
            variants,
            language="en",
            min_score=SCRUB_MIN_SCORE,
            entities=None,
            exclude=("DATE_TIME", "URL"),
            batch_size=64,
        )
        for k, i in enumerate(split):
            found[i] = [*found[i], *found[len(clean) + k]]
        found = found[: len(clean)]
        scanner = self._cache.get(
            "secrets:evidence",
            lambda: SecretScanner(disabled=DEFAULT_DISABLED, extra=dict(EXTRA_PATTERNS)),
        )
        out = []
        for text, pii in zip(clean, found, strict=True):
            spans = [(r.start, r.end, r.entity_type) for r in pii]
            spans += [
                (h.start, h.end, h.kind.upper().replace(" ", "_")) for h in scanner.scan(text)
            ]
            keep = [(m.start(), m.end()) for m in _PROTECTED.finditer(text)]
            spans = [x for x in spans if not any(a <= x[0] and x[1] <= b for a, b in keep)]
            if self._canary is not None:
                spans += [(m.start(), m.end(), "CANARY") for m in self._canary.finditer(text)]
            out.append(mask_spans(text, spans) if spans else text)
        return out

    def report(self, report: AuditReport) -> AuditReport:
        """`report` with every input-derived string scrubbed."""
        strings: list[str] = []
        _walk(report, strings.append)
        done = dict(zip(strings, self.texts(strings), strict=True))
        rebuilt: AuditReport = _rebuild(report, done)
        return rebuilt


def _walk(value: Any, visit: Any) -> None:
    """Visit every scrubbable string: field values of the report's models (not their names, nor
    the engine's own fields), and the keys and values of free-form mappings (metrics)."""
    if isinstance(value, BaseModel):
        for name in type(value).model_fields:
            if name not in _ENGINE_KEYS:
                _walk(getattr(value, name), visit)
    elif isinstance(value, enum.Enum):
        return
    elif isinstance(value, str):
        visit(value)
    elif isinstance(value, dict):
        for k, v in value.items():
            if isinstance(k, str):
                visit(k)
            _walk(v, visit)
    elif isinstance(value, (list, tuple)):
        for v in value:
            _walk(v, visit)


def _rebuild(value: Any, done: dict[str, str]) -> Any:
    if isinstance(value, BaseModel):
        update = {
            name: _rebuild(getattr(value, name), done)
            for name in type(value).model_fields
            if name not in _ENGINE_KEYS
        }
        return value.model_copy(update=update)
    if isinstance(value, enum.Enum):
        return value
    if isinstance(value, str):
        return done.get(value, value)
    if isinstance(value, dict):
        out: dict[Any, Any] = {}
        for k, v in value.items():
            new_key = done.get(k, k) if isinstance(k, str) else k
            # Two keys that scrub to the same text keep both values apart.
            while new_key in out:
                new_key = f"{new_key}'"
            out[new_key] = _rebuild(v, done)
        return out
    if isinstance(value, (list, tuple)):
        return type(value)(_rebuild(v, done) for v in value)
    return value


def canary_values(deployment: Any) -> list[str]:
    """Every declared canary's full text and its secret values (see FMFL-P03's file format)."""
    from fmfl_audit.checkers.privacy.canary import parse_canary
    from fmfl_audit.errors import FmflAuditError
    from fmfl_audit.inputs.records import ReadStats, iter_records

    values: list[str] = []
    for spec in deployment.manifest.models:
        if spec.canaries is None:
            continue
        index = 0
        try:
            for batch in iter_records(
                spec.canaries,
                display=str(spec.canaries.path),
                stats=ReadStats(path=str(spec.canaries.path)),
                require_text=False,
            ):
                for rec in batch:
                    index += 1
                    values.extend(_canary_strings(rec, index, parse_canary))
        except FmflAuditError:
            continue  # FMFL-P03 reports an unreadable canary file
    return values


def _canary_strings(rec: Any, index: int, parse: Any) -> list[str]:
    secret = rec.data.get("secret")
    fills = [secret] if isinstance(secret, str) else secret
    out = [v for v in fills if isinstance(v, str)] if isinstance(fills, list) else []
    try:
        canary = parse(rec.data, rec.location, index)
    except ValueError:
        return out
    return [*out, canary.render(canary.secret)]
