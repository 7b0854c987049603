"""An offline Presidio analyzer: no model download, no network, and a report of which engine ran.

Without a lemmatizer (the blank pipeline), lower-cased tokens stand in for lemmas so that
Presidio's context words still raise the score of pattern hits near them.

spaCy models cannot be downloaded at run time (an audit must run offline), so the NLP engine is
the best spaCy English pipeline installed (`en_core_web_lg`, then `_md`, then `_sm`), and otherwise
a blank English pipeline built in memory: tokenisation only, so Presidio's pattern recognizers
(e-mail, phone, credit card, SSN, IBAN, IP, passport, driver's licence ...) run but NER entities
(PERSON, LOCATION, NRP) do not. The engine in use is stated in the report's notes.

Presidio's e-mail recognizer validates domains with `tldextract`, whose default extractor fetches
the public-suffix list over the network; we swap in a recognizer that uses tldextract's bundled
snapshot only.

Speed, with results identical to Presidio's `BatchAnalyzerEngine` (benchmarks/p01_throughput.py):
- only the recognizers of the requested entity types run (excluded types are never computed);
- a text reaches Presidio only when some recognizer could fire on it: a pattern recognizer's
  regex (same regex, same flags) has a non-empty match, or the phone recognizer has a digit to
  look at. Without NER and without recognizers of another kind, a text that fails this test gets
  no result from Presidio either, so it is skipped. With an NER model every text goes through;
- a file's shards are spread over the executor's workers (`engine.executors`); forked local
  workers inherit the analyzer, Ray workers build it once per process.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import Field

from fmfl_audit.checkers.base import CheckerParams
from fmfl_audit.engine.executors import Cache
from fmfl_audit.errors import MissingDependencyError

SPACY_MODELS = ("en_core_web_lg", "en_core_web_md", "en_core_web_sm")


class PatternSpec(CheckerParams):
    """One regex of a custom recognizer."""

    name: str
    regex: str
    score: float = Field(default=0.6, gt=0, le=1)


class RecognizerSpec(CheckerParams):
    """A custom pattern recognizer declared in a rule pack (e.g. student IDs)."""

    name: str
    entity: str = Field(pattern=r"^[A-Z][A-Z0-9_]*$")
    patterns: tuple[PatternSpec, ...] = Field(min_length=1)
    context: tuple[str, ...] = ()


@dataclass(frozen=True)
class Prefilter:
    """Cheap, exact test of whether any recognizer of a set could return a result for a text.

    Each pattern carries a *gate* when its syntax tree shows that every match must contain a
    decimal digit or one of a few non-letter characters (`@`, `:`, `-`, `.`); the regex runs only
    on texts that pass its gate. Most of Presidio's patterns need a digit, so prose without digits
    costs a handful of `in` tests.
    """

    patterns: tuple[tuple[Any, frozenset[str] | None], ...]
    digits: bool
    passthrough: bool

    def select(self, texts: Sequence[str]) -> list[bool]:
        """For each text, False only when Presidio is certain to return nothing for it."""
        if self.passthrough:
            return [True] * len(texts)
        try:
            return [self._may_match(t) for t in texts]
        except TimeoutError:
            return [True] * len(texts)  # pathological input: let Presidio decide

    def _may_match(self, text: str) -> bool:
        has_digit = _DIGIT.search(text) is not None
        if self.digits and has_digit:
            return True
        for rx, gate in self.patterns:
            if gate is not None and not any(
                has_digit if tok == _DIGIT_TOKEN else tok in text for tok in gate
            ):
                continue
            # Presidio skips empty matches, so only a non-empty one counts.
            if any(m.end() > m.start() for m in rx.finditer(text, timeout=_REGEX_TIMEOUT)):
                return True
        return False


@dataclass(frozen=True)
class Analyzer:
    """A ready Presidio analyzer and a description of its NLP engine."""

    engine: Any
    description: str
    ner: bool
    _prefilters: dict[tuple[str, ...], Prefilter] = field(
        default_factory=dict, compare=False, repr=False
    )

    def requested_entities(
        self, entities: Sequence[str] | None, exclude: Sequence[str], language: str = "en"
    ) -> list[str]:
        """The entity types to ask Presidio for: `entities` (or all it supports) minus `exclude`."""
        pool = entities if entities else self.engine.get_supported_entities(language=language)
        return sorted(set(pool) - set(exclude))

    def prefilter(self, entities: Sequence[str], language: str = "en") -> Prefilter:
        """The prefilter for these entity types (built once per set)."""
        key = (language, *entities)
        if key not in self._prefilters:
            self._prefilters[key] = _build_prefilter(self, entities, language)
        return self._prefilters[key]


_REGEX_TIMEOUT = 5.0


def _digit_regex() -> Any:
    import regex

    return regex.compile(r"\d")


class _LazyDigit:
    # Compiled on first use so importing this module stays cheap.
    _rx: Any = None

    def search(self, text: str) -> Any:
        if self._rx is None:
            self._rx = _digit_regex()
        return self._rx.search(text)


_DIGIT = _LazyDigit()


def _build_prefilter(analyzer: Analyzer, entities: Sequence[str], language: str) -> Prefilter:
    import regex
    from presidio_analyzer import PatternRecognizer
    from presidio_analyzer.predefined_recognizers import (
        IbanRecognizer,
        PhoneRecognizer,
        SpacyRecognizer,
    )

    # Pattern recognizers that override `analyze` but still only report (parts of) non-empty
    # matches of their own patterns with their own flags (checked against Presidio's source).
    pattern_only = (IbanRecognizer,)

    recognizers = analyzer.engine.registry.get_recognizers(
        language=language, entities=list(entities), all_fields=False
    )
    patterns: list[tuple[Any, frozenset[str] | None]] = []
    digits = False
    for rec in recognizers:
        if isinstance(rec, PatternRecognizer) and (
            type(rec).analyze is PatternRecognizer.analyze or isinstance(rec, pattern_only)
        ):
            flags: int = rec.global_regex_flags or 0
            specs: Sequence[Any] = getattr(rec, "patterns", ())
            for p in specs:
                rx = regex.compile(p.regex, flags=flags)
                patterns.append((rx, required_chars(p.regex, flags)))
        elif isinstance(rec, PhoneRecognizer):
            digits = True  # phonenumbers' matcher needs decimal digits
        elif isinstance(rec, SpacyRecognizer) and not analyzer.ner:
            continue  # no NER component: it can only return what the pipeline's ents hold: none
        else:
            return Prefilter(patterns=(), digits=False, passthrough=True)
    return Prefilter(patterns=tuple(patterns), digits=digits, passthrough=False)


_DIGIT_TOKEN = "<digit>"


def required_chars(pattern: str, flags: int) -> frozenset[str] | None:
    """Characters one of which every match of `pattern` must contain, or None if unknown.

    Tokens are `<digit>` (any decimal digit) and single non-letter, non-space characters, read
    off the pattern's syntax tree (Python's own regex parser). Letters are never used (case
    folding), and any construct the analysis does not know gives None, which disables the gate.
    """
    import re
    import re._constants as c  # type: ignore[import-not-found,unused-ignore]
    import re._parser as sre  # type: ignore[import-not-found,unused-ignore]

    import regex

    if flags & regex.VERBOSE or "[[:" in pattern:
        return None  # syntax the stdlib parser reads differently from the regex module
    try:
        tree = sre.parse(pattern, 0)
    except (re.error, ValueError, OverflowError, RecursionError):
        return None

    def char_token(code: int) -> str | None:
        ch = chr(code)
        if ch.isdigit():
            return _DIGIT_TOKEN
        return None if ch.isalpha() or ch.isspace() else ch

    def item(op: Any, av: Any) -> frozenset[str] | None:
        if op is c.LITERAL:
            tok = char_token(av)
            return None if tok is None else frozenset({tok})
        if op is c.IN:
            toks: set[str] = set()
            for o, a in av:
                if (o is c.CATEGORY and a is c.CATEGORY_DIGIT) or (
                    o is c.RANGE and a[0] >= 48 and a[1] <= 57
                ):
                    toks.add(_DIGIT_TOKEN)
                elif o is c.LITERAL and (tok := char_token(a)) is not None:
                    toks.add(tok)
                else:
                    return None
            return frozenset(toks) or None
        if op is c.CATEGORY:
            return frozenset({_DIGIT_TOKEN}) if av is c.CATEGORY_DIGIT else None
        if op in (c.MAX_REPEAT, c.MIN_REPEAT, getattr(c, "POSSESSIVE_REPEAT", None)):
            return seq(av[2]) if av[0] >= 1 else None
        if op is c.SUBPATTERN:
            return seq(av[-1])
        if op is getattr(c, "ATOMIC_GROUP", None):
            return seq(av)
        if op is c.BRANCH:
            options = [seq(b) for b in av[1]]
            if any(o is None for o in options):
                return None
            return frozenset().union(*(o for o in options if o is not None))
        return None  # anchors, lookarounds, ANY, back references: no constraint

    def seq(items: Any) -> frozenset[str] | None:
        best: frozenset[str] | None = None
        for op, av in items:
            need = item(op, av)
            if need is None:
                continue
            # Prefer a digit-only requirement, then the smallest set of characters.
            rank = (need != frozenset({_DIGIT_TOKEN}), len(need))
            if best is None or rank < (best != frozenset({_DIGIT_TOKEN}), len(best)):
                best = need
        return best

    return seq(tree)


def _nlp_engine_class() -> Any:
    from presidio_analyzer.nlp_engine import SpacyNlpEngine

    class InMemorySpacyNlpEngine(SpacyNlpEngine):  # type: ignore[misc,unused-ignore]
        """A SpacyNlpEngine over an already-built spaCy pipeline (no download, no GPU probe)."""

        def __init__(self, nlp: Any, lang: str) -> None:
            super().__init__(models=[{"lang_code": lang, "model_name": "in-memory"}])
            self.nlp = {lang: nlp}  # type: ignore[assignment,unused-ignore]

        def load(self) -> None:
            return None

        def _doc_to_nlp_artifact(self, doc: Any, language: str) -> Any:
            # A pipeline without a lemmatizer (the blank fallback) gives empty lemmas, which
            # silently disables Presidio's context words (e.g. "student" before an id); the
            # lower-cased token is the best lemma we have then.
            for token in doc:
                if not token.lemma_:
                    token.lemma_ = token.lower_
            return super()._doc_to_nlp_artifact(doc, language)

    return InMemorySpacyNlpEngine


def _offline_email_recognizer(lang: str) -> Any:
    import tldextract
    from presidio_analyzer.predefined_recognizers import EmailRecognizer

    extractor = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)

    class OfflineEmailRecognizer(EmailRecognizer):  # type: ignore[misc,unused-ignore]
        """Presidio's e-mail recognizer with tldextract's bundled suffix list only."""

        def validate_result(self, pattern_text: str) -> bool:
            return bool(extractor(pattern_text).fqdn)

    return OfflineEmailRecognizer(supported_language=lang)


def load_spacy(lang: str = "en") -> tuple[Any, str, bool]:
    """(pipeline, description, has_ner) using the best installed English model, else blank."""
    import spacy

    if lang == "en":
        for name in SPACY_MODELS:
            if spacy.util.is_package(name):
                nlp = spacy.load(name)
                return nlp, f"spaCy {name} {nlp.meta.get('version', '')} (NER + patterns)", True
    nlp = spacy.blank(lang)
    return nlp, f"spaCy blank '{lang}' pipeline (pattern recognizers only, no NER)", False


def build_analyzer(
    *, lang: str = "en", extra: Sequence[RecognizerSpec] = (), nlp: Any = None
) -> Analyzer:
    """A Presidio AnalyzerEngine that runs offline, plus custom recognizers."""
    try:
        from presidio_analyzer import AnalyzerEngine, Pattern, PatternRecognizer
        from presidio_analyzer.recognizer_registry import RecognizerRegistry
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise MissingDependencyError("presidio-analyzer") from exc
    import logging

    # Presidio logs a warning per recognizer whose language is not loaded: not ours to show.
    logging.getLogger("presidio-analyzer").setLevel(logging.ERROR)
    if nlp is None:
        nlp, description, ner = load_spacy(lang)
    else:
        description, ner = "caller-supplied spaCy pipeline", bool(nlp.has_pipe("ner"))
    engine = _nlp_engine_class()(nlp, lang)
    registry = RecognizerRegistry(supported_languages=[lang])
    registry.load_predefined_recognizers(languages=[lang], nlp_engine=engine)
    registry.remove_recognizer("EmailRecognizer")
    registry.add_recognizer(_offline_email_recognizer(lang))
    for spec in extra:
        registry.add_recognizer(
            PatternRecognizer(
                supported_entity=spec.entity,
                name=spec.name,
                patterns=[Pattern(p.name, p.regex, p.score) for p in spec.patterns],
                context=list(spec.context),
                supported_language=lang,
            )
        )
    analyzer = AnalyzerEngine(nlp_engine=engine, registry=registry, supported_languages=[lang])
    return Analyzer(engine=analyzer, description=f"Presidio with {description}", ner=ner)


def shared_analyzer(
    cache: Cache, *, language: str, recognizers: Sequence[RecognizerSpec]
) -> Analyzer:
    """The Presidio analyzer for this language and recognizer set, built once per scan (or per
    worker process) through `cache`."""
    recs = tuple(recognizers)
    key = f"presidio:{language}:{recs!r}"
    return cache.get(key, lambda: build_analyzer(lang=language, extra=recs))  # type: ignore[no-any-return,unused-ignore]


@dataclass(frozen=True)
class PresidioSettings:
    """The Presidio part of a shard task's settings (picklable; the analyzer is built once per
    process through the cache)."""

    language: str
    recognizers: tuple[RecognizerSpec, ...]
    min_score: float
    entities: tuple[str, ...] | None
    exclude: tuple[str, ...]
    batch_size: int

    def analyze(self, cache: Cache, texts: list[str]) -> list[list[Any]]:
        """Presidio results per text (see `analyze_texts`)."""
        analyzer = shared_analyzer(cache, language=self.language, recognizers=self.recognizers)
        return analyze_texts(
            analyzer,
            texts,
            language=self.language,
            min_score=self.min_score,
            entities=self.entities,
            exclude=self.exclude,
            batch_size=self.batch_size,
        )


def analyze_texts(
    analyzer: Analyzer,
    texts: list[str],
    *,
    language: str,
    min_score: float,
    entities: Sequence[str] | None,
    exclude: Sequence[str],
    batch_size: int,
) -> list[list[Any]]:
    """Presidio results per text, filtered by score and entity type (see the module docstring).

    Runs in the calling process: parallelism comes from the executor, which runs this over the
    shards of a file (`engine.executors`).
    """
    wanted = analyzer.requested_entities(entities, exclude, language)
    out: list[list[Any]] = [[] for _ in texts]
    if not wanted:
        return out
    prefilter = analyzer.prefilter(wanted, language)
    todo = [i for i, keep in enumerate(prefilter.select(texts)) if keep]
    if not todo:
        return out
    engine = analyzer.engine
    for k in range(0, len(todo), batch_size):
        chunk = todo[k : k + batch_size]
        artifacts = engine.nlp_engine.process_batch(
            texts=[texts[i] for i in chunk], language=language, batch_size=batch_size
        )
        for i, (_, nlp_artifacts) in zip(chunk, artifacts, strict=True):
            out[i] = engine.analyze(
                text=texts[i],
                language=language,
                entities=list(wanted),
                nlp_artifacts=nlp_artifacts,
                score_threshold=min_score,
            )
    return out
