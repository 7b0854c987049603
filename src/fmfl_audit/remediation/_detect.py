"""What `fmfl-audit redact` replaces in a text, and how (Presidio's anonymizer).

The detectors are the scan's own, set up from the effective rule pack, so what a scan reports is
what gets replaced:

- PII: FMFL-P01's Presidio setup (`_presidio.build_analyzer` with the rule's custom recognizers,
  `min_score`, `entities` and `exclude_entities`), once per rule bound to the P01 checker;
- secrets: FMFL-P02's scanner (`secrets.SecretScanner` with the rule's plugins and patterns);
- canaries: every `models[].canaries` record; the rendered canary text anywhere (case and
  whitespace ignored), and each `{digits:N}` / `{letters:N}` secret of at least
  `MIN_CANARY_SECRET` characters as a whole token (shorter ones would mask common numbers);
- leaked spans (synthetic data only): FMFL-P06's keyed shingle index of the other clients'
  prompts, private samples or fingerprints and of the server's sensitive data; a span is a run of
  leaked shingles, exactly as P06 counts it.

Each span becomes a Presidio `RecognizerResult` and Presidio's `AnonymizerEngine` replaces it with
`<TYPE>`. Where spans overlap, the higher score keeps the overlap and the other is trimmed
(`REMOVE_INTERSECTIONS`), so no character of any span survives. A replaced text is scanned again
(PII, secrets, canaries) until nothing more is found, at most `MAX_ROUNDS` times, so a re-scan of
the copy with the same rules finds nothing; a text still changing after that is replaced whole by
`<REDACTION_INCOMPLETE>` (counted), never handed back half redacted.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from fmfl_audit.checkers.privacy._presidio import Analyzer, PresidioSettings, shared_analyzer
from fmfl_audit.checkers.privacy._shingles import (
    LeakIndex,
    ShingleHasher,
    normalised_words,
    word_offsets,
)
from fmfl_audit.checkers.privacy.canary import Canary
from fmfl_audit.checkers.privacy.leakage import _leaked_runs
from fmfl_audit.checkers.privacy.secrets import SecretScanner
from fmfl_audit.engine.executors import Cache

CANARY = "CANARY"
LEAKED_SPAN = "LEAKED_SPAN"
MIN_CANARY_SECRET = 4
"""Canary secrets shorter than this are masked only inside the whole canary text."""
MAX_ROUNDS = 3
"""Detection rounds per text (the first plus re-scans of the replaced text)."""
INCOMPLETE = "REDACTION_INCOMPLETE"
"""The placeholder of a whole text whose detections had not settled after `MAX_ROUNDS`."""
_CERTAIN = 1.0
"""Score of secret, canary and leak spans: they win an overlap against a Presidio guess."""


@dataclass(frozen=True)
class Span:
    """A character range of a text to replace with `<kind>`."""

    start: int
    end: int
    kind: str
    score: float = _CERTAIN


def secret_type(kind: str) -> str:
    """`AWS Access Key` -> `AWS_ACCESS_KEY` (the placeholder of a detect-secrets type)."""
    return re.sub(r"[^A-Z0-9]+", "_", kind.upper()).strip("_") or "SECRET"


@dataclass(frozen=True)
class PiiConfig:
    """One P01-bound rule's Presidio settings (the analyzer is built once through `cache`)."""

    settings: PresidioSettings
    cache: Cache = field(compare=False, repr=False)

    @property
    def analyzer(self) -> Analyzer:
        """The rule's analyzer (its language and custom recognizers)."""
        s = self.settings
        return shared_analyzer(self.cache, language=s.language, recognizers=s.recognizers)

    def spans(self, texts: list[str]) -> list[list[Span]]:
        """Presidio's results per text, as the rule would report them."""
        found = self.settings.analyze(self.cache, texts)
        return [[Span(r.start, r.end, r.entity_type, float(r.score)) for r in rs] for rs in found]


class CanaryMatcher:
    """Finds declared canaries (their full text, and their distinctive secret values)."""

    def __init__(self, canaries: Sequence[Canary]) -> None:
        patterns: set[str] = set()
        for c in canaries:
            words = c.render(c.secret).split()
            if words:
                patterns.add(r"\s+".join(re.escape(w) for w in words))
            for value, slot in zip(c.secret, c.slots, strict=True):
                if not slot.options and len(value) >= MIN_CANARY_SECRET:
                    patterns.add(rf"(?<![0-9A-Za-z]){re.escape(value)}(?![0-9A-Za-z])")
        # Longest first, so a whole canary wins over its own secret inside it.
        ordered = sorted(patterns, key=lambda p: (-len(p), p))
        self._rx = re.compile("|".join(ordered), re.IGNORECASE) if ordered else None
        self.count = len(canaries)

    def spans(self, text: str) -> list[Span]:
        """Every canary occurrence in `text`."""
        if self._rx is None:
            return []
        return [Span(m.start(), m.end(), CANARY) for m in self._rx.finditer(text) if m.end()]


@dataclass(frozen=True)
class LeakProbe:
    """FMFL-P06's index and settings, probed record by record."""

    index: LeakIndex
    key: bytes = field(repr=False)
    k: int
    common_min_owners: int | None

    def spans(self, texts: list[str], owner: str) -> list[list[Span]]:
        """Leaked spans per text delivered to client `owner` (its own text is not a leak)."""
        import numpy as np

        hasher = ShingleHasher(self.key, self.k)
        me = self.index.owners.index(owner) if owner in self.index.owners else None
        out: list[list[Span]] = []
        for text in texts:
            words = normalised_words(text)
            digests = hasher.digests(words)
            if not digests:
                out.append([])
                continue
            masks = self.index.lookup(np.frombuffer(digests, dtype="<u8").astype(np.uint64))
            runs = (
                _leaked_runs(self.index, masks, me, self.common_min_owners) if masks.any() else {}
            )
            out.append(self._char_spans(text, len(words), runs))
        return out

    def _char_spans(
        self, text: str, n_words: int, runs: dict[int, list[tuple[int, int]]]
    ) -> list[Span]:
        if not runs:
            return []
        offsets = word_offsets(text)
        if unicodedata.normalize("NFKC", text) != text or len(offsets) != n_words:
            # Word offsets are those of the NFKC form; without a safe mapping back to this text,
            # the whole text goes (the same rule as P06's evidence excerpts).
            return [Span(0, len(text), LEAKED_SPAN)]
        return [
            Span(offsets[a][0], offsets[b + self.k - 1][1], LEAKED_SPAN)
            for spans in runs.values()
            for a, b in spans
        ]


@dataclass
class Detectors:
    """Everything `redact` looks for."""

    pii: list[PiiConfig]
    scanners: list[SecretScanner]
    canaries: CanaryMatcher
    leak: LeakProbe | None = None

    def find(self, texts: list[str], *, leak_owner: str | None) -> list[list[Span]]:
        """Spans per text; leaked spans only when `leak_owner` (the receiving client) is given."""
        out: list[list[Span]] = [[] for _ in texts]
        for cfg in self.pii:
            for acc, spans in zip(out, cfg.spans(texts), strict=True):
                acc.extend(spans)
        for acc, text in zip(out, texts, strict=True):
            for scanner in self.scanners:
                acc.extend(Span(h.start, h.end, secret_type(h.kind)) for h in scanner.scan(text))
            acc.extend(self.canaries.spans(text))
        if self.leak is not None and leak_owner is not None:
            for acc, spans in zip(out, self.leak.spans(texts, leak_owner), strict=True):
                acc.extend(spans)
        return out


class Redactor:
    """Replaces what the detectors find with typed placeholders (Presidio's anonymizer)."""

    def __init__(self, detectors: Detectors) -> None:
        from presidio_anonymizer import AnonymizerEngine

        self.detectors = detectors
        self._engine = AnonymizerEngine()

    def redact(self, texts: list[str], *, leak_owner: str | None) -> list[tuple[str, Counter[str]]]:
        """(new text, placeholders inserted by type) per text; unchanged texts come back as is."""
        current = list(texts)
        counts: list[Counter[str]] = [Counter() for _ in texts]
        todo = list(range(len(texts)))
        for round_no in range(MAX_ROUNDS):
            if not todo:
                break
            found = self.detectors.find(
                [current[i] for i in todo], leak_owner=leak_owner if round_no == 0 else None
            )
            changed = []
            for i, spans in zip(todo, found, strict=True):
                if spans:
                    current[i], added = self._replace(current[i], spans)
                    counts[i].update(added)
                    changed.append(i)
            todo = changed  # only a replaced text can hold something new
        if todo:
            # Still changing after MAX_ROUNDS: never hand back a copy that may hold what the
            # detectors find; the whole text becomes one placeholder, counted in the summary.
            found = self.detectors.find([current[i] for i in todo], leak_owner=None)
            for i, spans in zip(todo, found, strict=True):
                if spans:
                    current[i] = f"<{INCOMPLETE}>"
                    counts[i][INCOMPLETE] += 1
        return list(zip(current, counts, strict=True))

    def _replace(self, text: str, spans: list[Span]) -> tuple[str, Counter[str]]:
        from presidio_anonymizer.entities import ConflictResolutionStrategy, RecognizerResult

        results = [RecognizerResult(s.kind, s.start, s.end, s.score) for s in spans]
        out: Any = self._engine.anonymize(
            text=text,
            analyzer_results=results,
            conflict_resolution=ConflictResolutionStrategy.REMOVE_INTERSECTIONS,
        )
        return str(out.text), Counter(str(item.entity_type) for item in out.items)
