"""Evidence excerpts with every PII value and secret masked, whichever rule found the record.

A rule redacts what it detected, but the same record may hold other sensitive values (an e-mail
next to a leaked credential); reports must never show any of them. `scrub` runs the scan's shared
Presidio analyzer (default recognizers) and the secret scanner over the excerpt's record and masks
their spans together with the rule's own.
"""

from __future__ import annotations

from collections.abc import Iterable

from fmfl_audit.checkers.privacy._presidio import analyze_texts, shared_analyzer
from fmfl_audit.checkers.privacy.secrets import DEFAULT_DISABLED, EXTRA_PATTERNS, SecretScanner
from fmfl_audit.engine.executors import Cache, Executor, LocalExecutor
from fmfl_audit.redact import redact_spans

SCRUB_MIN_SCORE = 0.3
"""Lower than the rules' thresholds: masking a little too much in an excerpt is harmless."""


def warm_scrubber(cache: Cache, executor: Executor) -> None:
    """Before a forking executor runs shard tasks that may call `scrub`: build what it uses in the
    scan's process, so that the workers inherit it instead of each building it again (a full spaCy
    model takes seconds to load). Ray workers build it once per process; inline runs build it on
    first use."""
    if isinstance(executor, LocalExecutor) and executor.parallelism > 1:
        scrub(cache, "")


def scrub(
    cache: Cache,
    text: str,
    spans: Iterable[tuple[int, int, str]] = (),
    spacy_model: str | None = None,
) -> str:
    """`redact_spans(text, spans)` plus every PII and secret span found in `text`.

    `cache` is the scan's (`ctx.cache`) or, in a shard task, the worker's (`env.cache`);
    `spacy_model` is the calling rule's choice (see `_presidio.load_spacy`).
    """
    analyzer = shared_analyzer(cache, language="en", recognizers=(), spacy_model=spacy_model)
    found = analyze_texts(
        analyzer,
        [text],
        language="en",
        min_score=SCRUB_MIN_SCORE,
        entities=None,
        exclude=("DATE_TIME", "URL"),
        batch_size=1,
    )[0]
    scanner = cache.get(
        "secrets:evidence",
        lambda: SecretScanner(disabled=DEFAULT_DISABLED, extra=dict(EXTRA_PATTERNS)),
    )
    own = list(spans)
    extra = [(r.start, r.end, r.entity_type) for r in found]
    extra += [(h.start, h.end, h.kind.upper().replace(" ", "_")) for h in scanner.scan(text)]
    # The rule's own labels win where spans overlap; the rest are masked too.
    merged = own + [x for x in extra if not any(x[0] < e and s < x[1] for s, e, _ in own)]
    return redact_spans(text, merged)
