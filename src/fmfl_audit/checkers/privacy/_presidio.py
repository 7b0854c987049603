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
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import Field

from fmfl_audit.checkers.base import CheckContext, CheckerParams
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
class Analyzer:
    """A ready Presidio analyzer and a description of its NLP engine."""

    engine: Any
    description: str
    ner: bool


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
    ctx: CheckContext, *, language: str, recognizers: Sequence[RecognizerSpec]
) -> Analyzer:
    """The scan's Presidio analyzer for this language and recognizer set (built once per scan)."""
    recs = tuple(recognizers)
    key = f"presidio:{language}:{recs!r}"
    return ctx.cache.get(key, lambda: build_analyzer(lang=language, extra=recs))  # type: ignore[no-any-return,unused-ignore]


def analyze_texts(
    engine: Any,
    texts: list[str],
    *,
    language: str,
    min_score: float,
    entities: Sequence[str] | None,
    exclude: Sequence[str],
    batch_size: int,
) -> list[list[Any]]:
    """Presidio results per text (spaCy runs once per batch), filtered by score and entity type."""
    artifacts = engine.nlp_engine.process_batch(
        texts=texts, language=language, batch_size=batch_size
    )
    wanted = list(entities) if entities else None
    out: list[list[Any]] = []
    for text, nlp_artifacts in zip(texts, (a for _, a in artifacts), strict=True):
        results = engine.analyze(
            text=text,
            language=language,
            entities=wanted,
            nlp_artifacts=nlp_artifacts,
            score_threshold=min_score,
        )
        out.append([r for r in results if r.entity_type not in exclude])
    return out
