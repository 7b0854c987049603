"""An offline Presidio analyzer: no model download, no network, and a report of which engine ran.

Without a lemmatizer (the blank pipeline), lower-cased tokens stand in for lemmas so that
Presidio's context words still raise the score of pattern hits near them.

The spaCy pipeline under Presidio (`load_spacy`): the model a rule's `spacy_model` or
$FMFL_AUDIT_SPACY_MODEL names (an installed package or a folder; `blank` for none), else the best
English model installed (`en_core_web_lg`, then `_md`, then `_sm`), else a blank English pipeline
built in memory: tokenisation only, so Presidio's pattern recognizers (e-mail, phone, credit card,
SSN, IBAN, IP, passport, driver's licence ...) run but NER entities (PERSON, LOCATION, NRP) do not.
Models are never downloaded (an audit must run offline). P01, P07 and P08 state the engine in a
note starting with `PII_ENGINE_NOTE` (`EngineInfo.describe`).

Presidio's e-mail recognizer validates domains with `tldextract`, whose default extractor fetches
the public-suffix list over the network; we swap in a recognizer that uses tldextract's bundled
snapshot only.

Speed, with results identical to Presidio's `BatchAnalyzerEngine` (benchmarks/p01_throughput.py):
- only the recognizers of the requested entity types run (excluded types are never computed);
- per text, Presidio is asked only for the entity types whose recognizers could fire on it: a
  pattern recognizer's regex (same regex, same flags) has a non-empty match, searched only where
  a match can lie (a pattern whose every match holds a digit, around the text's digits), or the
  phone recognizer has a digit to look at. A text for which none could fire is skipped. With an
  NER model (or a recognizer of another kind) every text goes through with every type;
- without NER, the spaCy pass runs only for texts where Presidio reads it (context words around
  a result): most texts that reach Presidio yield nothing and never pay for it; the NLP artifacts
  are built in one pass over the tokens, and phonenumbers' regex cache is switched on;
- a file's shards are spread over the executor's workers (`engine.executors`); forked local
  workers inherit the analyzer, Ray workers build it once per process.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import Field

from fmfl_audit.checkers.base import CheckerParams
from fmfl_audit.engine.executors import Cache
from fmfl_audit.errors import CheckerError, MissingDependencyError

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
class _Gate:
    """What one recognizer needs to be able to return anything for a text."""

    entities: frozenset[str]
    """The requested entity types it reports."""
    patterns: tuple[_GatedPattern, ...] = ()
    digits: bool = False
    """True for the phone recognizer: phonenumbers' matcher needs decimal digits."""

    def open(self, text: str, present: frozenset[str], digits: tuple[int, int] | None) -> bool:
        """`present`: the gate tokens `text` holds; `digits`: the first and last decimal digit's
        positions in `text` (None: none)."""
        if self.digits:
            return digits is not None
        return any(p.matches(text, present, digits) for p in self.patterns)


@dataclass(frozen=True)
class _GatedPattern:
    """One regex of a recognizer, and where in a text a match of it can lie."""

    rx: Any
    need: frozenset[str] | None
    """Characters one of which every match contains (None: unknown)."""
    width: int | None
    """The longest match (None: unbounded or unknown)."""
    tail: bool
    """True when nothing after a match's end but the next character decides it (no
    lookahead), so the text can be cut one character after the longest match."""

    def matches(self, text: str, present: frozenset[str], digits: tuple[int, int] | None) -> bool:
        """True when the regex has a non-empty match in `text` (Presidio skips empty ones)."""
        need = self.need
        if need is not None and need.isdisjoint(present):
            return False
        pos, endpos = 0, len(text)
        if need == _ONLY_DIGIT and digits is not None and self.width is not None:
            # Every match holds a digit, so it starts at most `width` before the first digit
            # and ends at most `width` after the last. Matching from `pos` still sees the text
            # before it (lookbehinds, word boundaries); cutting at `endpos` can only add a
            # match at the cut, which lets Presidio run the recognizer and find nothing.
            first, last = digits
            pos = max(0, first - self.width)
            if self.tail:
                endpos = min(endpos, last + self.width + 1)
        found = self.rx.finditer(text, pos, endpos, timeout=_REGEX_TIMEOUT)
        return any(m.end() > m.start() for m in found)


@dataclass(frozen=True)
class Prefilter:
    """Cheap, exact test of which recognizers of a set could return a result for a text.

    Each pattern carries a *gate* when its syntax tree shows that every match must contain a
    decimal digit or one of a few non-letter characters (`@`, `:`, `-`, `.`); the regex runs only
    on texts that pass its gate. Most of Presidio's patterns need a digit, so prose without digits
    costs a handful of `in` tests. Presidio is then asked only for the entity types whose
    recognizers could fire on the text: the others would return nothing, and no recognizer's
    results depend on another's (checked: none overrides `enhance_using_context`).
    """

    gates: tuple[_Gate, ...]
    passthrough: bool
    everything: tuple[str, ...]
    """The requested entity types (what a passthrough prefilter asks for)."""
    tokens: frozenset[str] = frozenset()
    """Every gate token of every pattern (looked up once per text)."""
    without_digits: tuple[_Gate, ...] = ()
    """`gates` less what needs a digit: all a text without digits has to be tested with."""

    def select(self, texts: Sequence[str]) -> list[bool]:
        """For each text, False only when Presidio is certain to return nothing for it."""
        return [bool(self.entities(t)) for t in texts]

    def entities(self, text: str) -> tuple[str, ...]:
        """The entity types to ask Presidio for on `text` (empty: it would find nothing)."""
        if self.passthrough:
            return self.everything
        first = _DIGIT.search(text)
        digits = None if first is None else (first.start(), _LAST_DIGIT.search(text).start())
        present = frozenset(
            tok
            for tok in self.tokens
            if (digits is not None if tok == _DIGIT_TOKEN else tok in text)
        )
        found: set[str] = set()
        try:
            for gate in self.gates if digits is not None else self.without_digits:
                if not gate.entities <= found and gate.open(text, present, digits):
                    found |= gate.entities
        except TimeoutError:
            return self.everything  # pathological input: let Presidio decide
        return tuple(e for e in self.everything if e in found)


@dataclass(frozen=True)
class Analyzer:
    """A ready Presidio analyzer and what its NLP engine is."""

    engine: Any
    info: EngineInfo
    _prefilters: dict[tuple[str, ...], Prefilter] = field(
        default_factory=dict, compare=False, repr=False
    )

    @property
    def ner(self) -> bool:
        """True when the spaCy pipeline has an NER component (names, places)."""
        return self.info.ner

    @property
    def description(self) -> str:
        """The engine in words (see `EngineInfo.describe`)."""
        return self.info.describe()

    @property
    def note(self) -> str:
        """The rule note naming the engine: `PII_ENGINE_NOTE` followed by the description."""
        return PII_ENGINE_NOTE + self.info.describe()

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


class _LazyDigit:
    # Compiled on first use so importing this module stays cheap.
    _rx: Any = None

    def __init__(self, *, last: bool) -> None:
        self._last = last

    def search(self, text: str) -> Any:
        if self._rx is None:
            import regex

            self._rx = regex.compile(r"\d", flags=regex.REVERSE if self._last else 0)
        return self._rx.search(text)


_DIGIT = _LazyDigit(last=False)
_LAST_DIGIT = _LazyDigit(last=True)


def _build_prefilter(analyzer: Analyzer, entities: Sequence[str], language: str) -> Prefilter:
    import regex
    from presidio_analyzer import EntityRecognizer, PatternRecognizer
    from presidio_analyzer.predefined_recognizers import (
        IbanRecognizer,
        PhoneRecognizer,
        SpacyRecognizer,
    )

    # Pattern recognizers that override `analyze` but still only report (parts of) non-empty
    # matches of their own patterns with their own flags (checked against Presidio's source).
    pattern_only = (IbanRecognizer,)
    everything = tuple(entities)
    passthrough = Prefilter(gates=(), passthrough=True, everything=everything)

    recognizers = analyzer.engine.registry.get_recognizers(
        language=language, entities=list(entities), all_fields=False
    )
    gates: list[_Gate] = []
    for rec in recognizers:
        if type(rec).enhance_using_context is not EntityRecognizer.enhance_using_context:
            return passthrough  # its results may depend on other recognizers' results
        reports = frozenset(rec.supported_entities) & frozenset(entities)
        if isinstance(rec, PatternRecognizer) and (
            type(rec).analyze is PatternRecognizer.analyze or isinstance(rec, pattern_only)
        ):
            flags: int = rec.global_regex_flags or 0
            specs: Sequence[Any] = getattr(rec, "patterns", ())
            patterns = tuple(
                _GatedPattern(
                    regex.compile(p.regex, flags=flags),
                    required_chars(p.regex, flags),
                    *match_extent(p.regex, flags),
                )
                for p in specs
            )
            gates.append(_Gate(entities=reports, patterns=patterns))
        elif isinstance(rec, PhoneRecognizer):
            gates.append(_Gate(entities=reports, digits=True))
        elif isinstance(rec, SpacyRecognizer) and not analyzer.ner:
            continue  # no NER component: it can only return what the pipeline's ents hold: none
        else:
            return passthrough
    tokens = frozenset(t for g in gates for p in g.patterns if p.need for t in p.need)
    without_digits = []
    for g in gates:
        kept = tuple(p for p in g.patterns if p.need is None or p.need - _ONLY_DIGIT)
        if kept:
            without_digits.append(_Gate(entities=g.entities, patterns=kept))
    return Prefilter(
        gates=tuple(gates),
        passthrough=False,
        everything=everything,
        tokens=tokens,
        without_digits=tuple(without_digits),
    )


_DIGIT_TOKEN = "<digit>"
_ONLY_DIGIT = frozenset({_DIGIT_TOKEN})


def match_extent(pattern: str, flags: int) -> tuple[int | None, bool]:
    """(the longest match of `pattern`, or None if unbounded or unknown; True when it has no
    lookahead), read off the syntax tree as `required_chars` does."""
    import re
    import re._constants as c  # type: ignore[import-not-found,unused-ignore]
    import re._parser as sre  # type: ignore[import-not-found,unused-ignore]

    import regex

    if flags & (regex.VERBOSE | regex.FULLCASE) or "[[:" in pattern:
        return None, False
    try:
        tree = sre.parse(pattern, 0)
    except (re.error, ValueError, OverflowError, RecursionError):
        return None, False
    hi = tree.getwidth()[1]
    return (None if hi >= c.MAXREPEAT else int(hi)), not _has_lookahead(tree, c)


def _has_lookahead(items: Any, c: Any) -> bool:
    """True when the (stdlib) syntax tree holds a lookahead or a construct not analysed."""
    for op, av in items:
        if op in (c.ASSERT, c.ASSERT_NOT):
            if av[0] == 1 or _has_lookahead(av[1], c):
                return True
        elif op in (c.MAX_REPEAT, c.MIN_REPEAT, getattr(c, "POSSESSIVE_REPEAT", None)):
            if _has_lookahead(av[2], c):
                return True
        elif op is c.SUBPATTERN:
            if _has_lookahead(av[-1], c):
                return True
        elif op is getattr(c, "ATOMIC_GROUP", None):
            if _has_lookahead(av, c):
                return True
        elif op is c.BRANCH:
            if any(_has_lookahead(b, c) for b in av[1]):
                return True
        elif op is c.GROUPREF_EXISTS:
            return True
    return False


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


_MAX_CACHED_WORDS = 200_000


def _nlp_engine_class() -> Any:
    from presidio_analyzer.nlp_engine import NlpArtifacts, SpacyNlpEngine

    class InMemorySpacyNlpEngine(SpacyNlpEngine):  # type: ignore[misc,unused-ignore]
        """A SpacyNlpEngine over an already-built spaCy pipeline (no download, no GPU probe)."""

        def __init__(self, nlp: Any, lang: str) -> None:
            super().__init__(models=[{"lang_code": lang, "model_name": "in-memory"}])
            self.nlp = {lang: nlp}  # type: ignore[assignment,unused-ignore]
            self._flags: dict[tuple[str, str, bool], bool] = {}

        def load(self) -> None:
            return None

        def _doc_to_nlp_artifact(self, doc: Any, language: str) -> Any:
            # Presidio's own version, in one pass over the tokens instead of several (each
            # pass builds a Python object per token). A pipeline without a lemmatizer (the
            # blank fallback) gives empty lemmas, which silently disables Presidio's context
            # words (e.g. "student" before an id); the lower-cased token stands in then.
            # The tokens are handed over as a list of the Doc's Token objects: Presidio's
            # context enhancer walks them from the start for every result, and walking a Doc
            # builds every Token object again each time.
            tokens = list(doc)
            lemmas = [token.lemma_ or token.lower_ for token in tokens]
            indices = [token.idx for token in tokens]
            entities, scores = self._get_updated_entities(
                self._get_entities(doc), self._get_scores_for_entities(doc)
            )
            return NlpArtifacts(
                entities=entities,
                tokens=tokens,  # type: ignore[arg-type,unused-ignore]
                tokens_indices=indices,
                lemmas=lemmas,
                nlp_engine=self,
                language=language,
                scores=scores,
            )

        def is_stopword(self, word: str, language: str) -> bool:
            # Asked for every lemma of every text (Presidio's keywords); each answer is a
            # vocabulary lookup that also adds the word to the vocabulary.
            return self._lexeme_flag(word, language, stop=True)

        def is_punct(self, word: str, language: str) -> bool:
            return self._lexeme_flag(word, language, stop=False)

        def _lexeme_flag(self, word: str, language: str, *, stop: bool) -> bool:
            key = (word, language, stop)
            flag = self._flags.get(key)
            if flag is None:
                if len(self._flags) >= _MAX_CACHED_WORDS:
                    self._flags.clear()
                lexeme = self.get_nlp(language).vocab[word]
                flag = self._flags[key] = bool(lexeme.is_stop if stop else lexeme.is_punct)
            return flag

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


def choose_spacy_model(model: str | None = None) -> tuple[str | None, str]:
    """(the spaCy model asked for, where from): `model` (a rule's `spacy_model`), else
    $FMFL_AUDIT_SPACY_MODEL, else (None, "auto"). Resolved in the scan's process, so that shard
    workers load what it loaded whatever their environment."""
    import os

    if model:
        return model, "param"
    env = os.environ.get(SPACY_MODEL_ENV)
    return (env, "env") if env else (None, "auto")


def load_spacy(
    lang: str = "en", model: str | None = None, source: str = "param"
) -> tuple[Any, EngineInfo]:
    """The spaCy pipeline Presidio runs on, and what it is.

    `model` (see `choose_spacy_model`; `source` says where it came from) names an installed spaCy
    package or a pipeline folder (`nlp.to_disk`); `blank` forces the blank pipeline. Without one,
    the best installed English model (`SPACY_MODELS`), else a blank pipeline (tokenizer only: no
    names or places). Nothing is ever downloaded: a model that is neither installed nor a folder
    is an error.
    """
    import spacy

    if model and model != BLANK:
        origin = f"${SPACY_MODEL_ENV}" if source == "env" else "the rule's spacy_model"
        package = spacy.util.is_package(model)
        if not (package or Path(model).expanduser().is_dir()):
            raise CheckerError(
                f"spaCy model {model!r} (from {origin}) is neither an installed package nor a "
                "pipeline folder; install it (README: PII detection) or point at a folder"
            )
        try:
            nlp = spacy.load(model if package else Path(model).expanduser())
        except (OSError, ValueError) as exc:
            raise CheckerError(f"cannot load spaCy model {model!r} (from {origin}): {exc}") from exc
        return nlp, _info(nlp, model, source)
    if not model and lang == "en":
        for name in SPACY_MODELS:
            if spacy.util.is_package(name):
                nlp = spacy.load(name)
                return nlp, _info(nlp, name, "installed")
    nlp = spacy.blank(lang)
    return nlp, _info(nlp, None, source if model else "blank")


def _info(nlp: Any, name: str | None, source: str) -> EngineInfo:
    from importlib.metadata import version

    return EngineInfo(
        presidio=version("presidio-analyzer"),
        spacy_model=name,
        spacy_model_version=str(nlp.meta.get("version", "")) if name else None,
        language=nlp.lang,
        ner=bool(nlp.has_pipe("ner")),
        source=source,
    )


PII_ENGINE_NOTE = "PII engine: "
"""Prefix of the note P01, P07 and P08 add to their results (renderers look for it)."""
SPACY_MODEL_ENV = "FMFL_AUDIT_SPACY_MODEL"
BLANK = "blank"


@dataclass(frozen=True)
class EngineInfo:
    """Which PII engine ran: Presidio's version and the spaCy pipeline under it."""

    presidio: str
    spacy_model: str | None
    """Package name or folder of the spaCy model; None for the blank pipeline."""
    spacy_model_version: str | None
    language: str
    ner: bool
    """True when the pipeline has NER, without which names and places are not detected."""
    source: str
    """Where the choice came from: param (spacy_model), env ($FMFL_AUDIT_SPACY_MODEL),
    installed (the best en_core_web_* found) or blank (none installed)."""

    def describe(self) -> str:
        """One line for reports."""
        head = f"Presidio {self.presidio}"
        if self.spacy_model is None:
            return (
                f"{head} with a blank spaCy '{self.language}' pipeline: pattern recognizers only; "
                "names and places (PERSON, LOCATION, NRP) need a spaCy NER model "
                f"(install en_core_web_lg, or set ${SPACY_MODEL_ENV}; see the README)"
            )
        model = f"spaCy model {self.spacy_model} {self.spacy_model_version or ''}".rstrip()
        if self.ner:
            return f"{head} with {model} (NER: names and places detected, with the patterns)"
        return f"{head} with {model} (no NER component: pattern recognizers only)"


def build_analyzer(
    *,
    lang: str = "en",
    extra: Sequence[RecognizerSpec] = (),
    nlp: Any = None,
    spacy_model: str | None = None,
    model_source: str = "param",
) -> Analyzer:
    """A Presidio AnalyzerEngine that runs offline, plus custom recognizers, on `nlp` or the
    pipeline `load_spacy(lang, spacy_model, model_source)` picks."""
    try:
        from phonenumbers.re_util import enable_pattern_cache
        from presidio_analyzer import AnalyzerEngine, Pattern, PatternRecognizer
        from presidio_analyzer.recognizer_registry import RecognizerRegistry
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise MissingDependencyError("presidio-analyzer") from exc
    import logging

    # Presidio logs a warning per recognizer whose language is not loaded: not ours to show.
    logging.getLogger("presidio-analyzer").setLevel(logging.ERROR)
    # The phone recognizer compiles phonenumbers' regexes text by text; more of them than the
    # `re` module caches, so without phonenumbers' own cache they are compiled again and again.
    enable_pattern_cache()
    if nlp is None:
        nlp, info = load_spacy(lang, spacy_model, model_source)
    else:
        info = _info(nlp, f"{nlp.meta.get('lang', lang)}_{nlp.meta.get('name', '')}", "param")
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
    return Analyzer(engine=analyzer, info=info)


def shared_analyzer(
    cache: Cache,
    *,
    language: str,
    recognizers: Sequence[RecognizerSpec],
    spacy_model: str | None = None,
) -> Analyzer:
    """The Presidio analyzer for this language, recognizer set and spaCy model choice
    (`choose_spacy_model(spacy_model)`), built once per scan (or per worker process) through
    `cache`."""
    recs = tuple(recognizers)
    model, source = choose_spacy_model(spacy_model)
    key = f"presidio:{language}:{recs!r}:{model}"
    return cache.get(  # type: ignore[no-any-return,unused-ignore]
        key,
        lambda: build_analyzer(lang=language, extra=recs, spacy_model=model, model_source=source),
    )


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
    spacy_model: str | None = None

    def analyze(self, cache: Cache, texts: list[str]) -> list[list[Any]]:
        """Presidio results per text (see `analyze_texts`)."""
        analyzer = shared_analyzer(
            cache,
            language=self.language,
            recognizers=self.recognizers,
            spacy_model=self.spacy_model,
        )
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
    todo = [(i, ents) for i, t in enumerate(texts) if (ents := prefilter.entities(t))]
    engine = analyzer.engine
    for k in range(0, len(todo), batch_size):
        chunk = todo[k : k + batch_size]
        chunk_texts = [texts[i] for i, _ in chunk]
        if analyzer.ner or prefilter.passthrough:
            # Every text needs its NLP pass (NER results): run spaCy over the batch.
            artifacts = [
                a
                for _, a in engine.nlp_engine.process_batch(
                    texts=chunk_texts, language=language, batch_size=batch_size
                )
            ]
        else:
            # Only context words read the NLP pass, and only for texts with a result.
            lazy = _lazy_artifacts_class()
            artifacts = [lazy(engine.nlp_engine, t, language) for t in chunk_texts]
        for (i, ents), nlp_artifacts in zip(chunk, artifacts, strict=True):
            out[i] = engine.analyze(
                text=texts[i],
                language=language,
                entities=list(ents),
                nlp_artifacts=nlp_artifacts,
                score_threshold=min_score,
            )
    return out


@functools.cache
def _lazy_artifacts_class() -> Any:
    # Built on first use: importing Presidio is slow.
    from presidio_analyzer.nlp_engine import NlpArtifacts

    class LazyArtifacts(NlpArtifacts):  # type: ignore[misc,unused-ignore]
        """NlpArtifacts whose spaCy pass runs on first use of any of its fields.

        Presidio reads the NLP pass only to enhance scores with context words around a result,
        and for NER results, which a pipeline without components has none of: most texts that
        reach it yield no result, and skip spaCy entirely.
        """

        def __init__(self, nlp_engine: Any, text: str, language: str) -> None:
            # No super().__init__: the fields appear when the pass runs.
            self.__dict__["_pending"] = (nlp_engine, text, language)
            if not nlp_engine.get_nlp(language).pipe_names:
                # A pipeline without components finds no entities: Presidio's spaCy
                # recognizer (asked for PHONE_NUMBER, among others) need not run it for that.
                self.__dict__.update(entities=[], scores=[])

        def __getattr__(self, name: str) -> Any:
            pending = self.__dict__.pop("_pending", None)
            if pending is None:
                raise AttributeError(name)
            nlp_engine, text, language = pending
            self.__dict__.update(vars(nlp_engine.process_text(text, language)))
            return getattr(self, name)

    return LazyArtifacts
