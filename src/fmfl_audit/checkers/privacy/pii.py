"""FMFL-P01: PII in what the FM returned (synthetic data, distillation outputs) and in what clients
sent to a third-party FM (Presidio).

Sources scanned:
- every client's `synthetic_data` (subject `client:ID`, finding key = the entity type);
- `foundation_model.teacher_predictions` when its records carry text (subject `fm`, key
  `teacher:ENTITY`); records without a string text field are counted, not scanned;
- every client's `prompts` when the FM is run by a third party (`provider.third_party` or placement
  `third-party-api`): PII in them has left the federation (subject `client:ID`, key
  `prompts:ENTITY`).

Counts per entity type, source and client; severity by entity class (government and financial
identifiers critical, contact details high, names and places medium). Rule packs can add pattern
recognizers for identifiers Presidio lacks (student ids, medical record numbers) with context words.
Evidence is `path:line` plus an excerpt in which every detected span is replaced by its entity type.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pydantic import Field

from fmfl_audit.checkers.base import CheckContext, Checker, CheckerParams, CheckOutput, clients_with
from fmfl_audit.checkers.privacy._evidence import scrub, warm_scrubber
from fmfl_audit.checkers.privacy._presidio import (
    PresidioSettings,
    RecognizerSpec,
    choose_spacy_model,
    shared_analyzer,
)
from fmfl_audit.engine.executors import ShardEnv, ShardTask
from fmfl_audit.inputs.records import Record
from fmfl_audit.manifest.loader import Deployment
from fmfl_audit.manifest.model import DataSource
from fmfl_audit.models import Area, Confidence, Evidence, FindingDraft, Metric, Severity

GOVERNMENT_AND_FINANCIAL = (
    "US_SSN",
    "US_ITIN",
    "US_PASSPORT",
    "US_DRIVER_LICENSE",
    "US_BANK_NUMBER",
    "CREDIT_CARD",
    "IBAN_CODE",
    "CRYPTO",
    "UK_NHS",
    "UK_NINO",
    "ES_NIF",
    "ES_NIE",
    "IT_FISCAL_CODE",
    "IT_PASSPORT",
    "IT_IDENTITY_CARD",
    "IN_AADHAAR",
    "IN_PAN",
    "SG_NRIC_FIN",
    "AU_TFN",
    "AU_MEDICARE",
    "MEDICAL_LICENSE",
    "MEDICAL_RECORD_NUMBER",
)
CONTACT = ("EMAIL_ADDRESS", "PHONE_NUMBER", "IP_ADDRESS")
NAMES_AND_PLACES = ("PERSON", "LOCATION", "NRP")


def _default_severities() -> dict[str, Severity]:
    table = {e: Severity.CRITICAL for e in GOVERNMENT_AND_FINANCIAL}
    table.update({e: Severity.HIGH for e in CONTACT})
    table.update({e: Severity.MEDIUM for e in NAMES_AND_PLACES})
    return table


def third_party_fm(deployment: Deployment) -> bool:
    """True when the FM is run by someone outside the deployment (prompts leave the federation)."""
    fm = deployment.manifest.foundation_model
    if fm is None:
        return False
    return fm.placement == "third-party-api" or bool(fm.provider and fm.provider.third_party)


class PiiParams(CheckerParams):
    """Settings of FMFL-P01."""

    min_score: float = Field(default=0.4, ge=0, le=1, description="Presidio score threshold.")
    entities: tuple[str, ...] | None = Field(
        default=None, description="Entity types to look for; all supported when null."
    )
    exclude_entities: tuple[str, ...] = Field(
        default=("URL", "DATE_TIME"),
        description="Entity types never reported (URLs and dates are rarely personal).",
    )
    max_count: int = Field(
        default=0, ge=0, description="Values of one entity type tolerated per client and source."
    )
    severity_by_entity: dict[str, Severity] = Field(default_factory=_default_severities)
    default_severity: Severity = Field(
        default=Severity.MEDIUM, description="Severity of entity types not in the table."
    )
    recognizers: tuple[RecognizerSpec, ...] = Field(
        default=(), description="Extra pattern recognizers (e.g. student IDs)."
    )
    scan_teacher_outputs: bool = Field(
        default=True, description="Scan foundation_model.teacher_predictions records with text."
    )
    scan_third_party_prompts: bool = Field(
        default=True, description="Scan client prompts when the FM provider is a third party."
    )
    max_examples: int = Field(default=3, ge=0, le=20, description="Evidence items per finding.")
    spacy_model: str | None = Field(
        default=None,
        description=(
            "spaCy model under Presidio: an installed package (en_core_web_lg) or a pipeline "
            "folder; `blank` for none. Default: $FMFL_AUDIT_SPACY_MODEL, else the best "
            "installed en_core_web_*, else blank (no names or places)."
        ),
    )
    batch_size: int = Field(default=256, ge=1)
    language: str = "en"


@dataclass
class _Tally:
    """Counts of one scanned source (or of one shard of it: tallies merge in file order)."""

    scanned: int = 0
    without_text: int = 0
    with_pii: int = 0
    counts: Counter[str] = field(default_factory=Counter)
    examples: dict[str, list[Evidence]] = field(default_factory=lambda: defaultdict(list))

    def merge(self, other: _Tally, max_examples: int) -> None:
        """Add the tally of the next shard."""
        self.scanned += other.scanned
        self.without_text += other.without_text
        self.with_pii += other.with_pii
        self.counts.update(other.counts)
        for entity, ex in other.examples.items():
            mine = self.examples[entity]
            mine.extend(ex[: max(0, max_examples - len(mine))])


@dataclass(frozen=True)
class _PiiTask(ShardTask):
    """P01's map step: Presidio over one shard's texts."""

    presidio: PresidioSettings
    max_examples: int
    text_field: str
    text_optional: bool

    def map(self, batches: Iterator[list[Record]], env: ShardEnv) -> _Tally:
        tally = _Tally()
        for batch in batches:
            recs = batch
            if self.text_optional:
                recs = [r for r in batch if isinstance(r.data.get(self.text_field), str)]
                tally.without_text += len(batch) - len(recs)
            texts = [r.text if r.text is not None else str(r.data[self.text_field]) for r in recs]
            if not texts:
                continue
            results = self.presidio.analyze(env.cache, texts)
            for rec, text, found in zip(recs, texts, results, strict=True):
                tally.scanned += 1
                if not found:
                    continue
                tally.with_pii += 1
                spans = [(r.start, r.end, r.entity_type) for r in found]
                for r in found:
                    tally.counts[r.entity_type] += 1
                    ex = tally.examples[r.entity_type]
                    if len(ex) < self.max_examples and all(e.location != rec.location for e in ex):
                        excerpt = scrub(env.cache, text, spans, self.presidio.spacy_model)
                        ex.append(Evidence(location=rec.location, excerpt=excerpt))
        return tally


@dataclass(frozen=True)
class _Source:
    """One data source to scan and how its results are reported."""

    source: DataSource
    subject: str
    key_prefix: str
    metric_prefix: str
    what: str
    text_optional: bool = False


class PiiChecker(Checker):
    """Ensure the synthetic data and outputs returned by the FM contain no personal data."""

    id: ClassVar[str] = "FMFL-P01"
    title: ClassVar[str] = "Ensure synthetic data and FM outputs contain no PII"
    area: ClassVar[Area] = Area.PRIVACY
    threat: ClassVar[str] = "top-down disclosure"
    inputs: ClassVar[tuple[str, ...]] = (
        "clients[].synthetic_data",
        "foundation_model.teacher_predictions",
        "clients[].prompts (third-party FM)",
    )
    Params = PiiParams

    def missing_inputs(self, deployment: Deployment) -> list[str]:
        fm = deployment.manifest.foundation_model
        if clients_with(deployment, "synthetic_data"):
            return []
        if fm is not None and fm.teacher_predictions is not None:
            return []
        if third_party_fm(deployment) and clients_with(deployment, "prompts"):
            return []
        return ["clients[].synthetic_data"]

    def run(self, ctx: CheckContext, params: Any) -> CheckOutput:
        assert isinstance(params, PiiParams)
        warm_scrubber(ctx.cache, ctx.executor)
        analyzer = shared_analyzer(
            ctx.cache,
            language=params.language,
            recognizers=params.recognizers,
            spacy_model=params.spacy_model,
        )
        out = CheckOutput(notes=[analyzer.note])
        sources = self._sources(ctx.deployment, params)
        ctx.progress.set_total(len(sources))
        tallies = self._scan(ctx, params, sources)
        for src, tally in zip(sources, tallies, strict=True):
            self._report(params, src, tally, out)
            ctx.progress.advance()
        return out

    @staticmethod
    def _sources(deployment: Deployment, params: PiiParams) -> list[_Source]:
        out = [
            _Source(c.synthetic_data, c.subject, "", "", f"the synthetic data of client {c.id}")
            for c in clients_with(deployment, "synthetic_data")
        ]
        fm = deployment.manifest.foundation_model
        if params.scan_teacher_outputs and fm is not None and fm.teacher_predictions is not None:
            out.append(
                _Source(
                    fm.teacher_predictions,
                    "fm",
                    "teacher:",
                    "teacher_",
                    "the FM's distillation outputs",
                    text_optional=True,
                )
            )
        if params.scan_third_party_prompts and third_party_fm(deployment):
            out.extend(
                _Source(
                    c.prompts,
                    c.subject,
                    "prompts:",
                    "prompts_",
                    f"the prompts client {c.id} sent to the third-party FM",
                )
                for c in clients_with(deployment, "prompts")
            )
        return out

    @staticmethod
    def _scan(ctx: CheckContext, params: PiiParams, sources: list[_Source]) -> list[_Tally]:
        """Tallies of every source; the sources of one read mode go through one executor map,
        so that small files keep every worker busy too."""
        tallies = [_Tally() for _ in sources]
        presidio = PresidioSettings(
            language=params.language,
            recognizers=params.recognizers,
            min_score=params.min_score,
            entities=params.entities,
            exclude=params.exclude_entities,
            batch_size=params.batch_size,
            # Resolved here: a Ray worker's environment may not name the model.
            spacy_model=choose_spacy_model(params.spacy_model)[0],
        )
        for optional in (False, True):
            group = [i for i, src in enumerate(sources) if src.text_optional is optional]
            jobs = [
                (
                    sources[i].source,
                    _PiiTask(
                        presidio=presidio,
                        max_examples=params.max_examples,
                        text_field=sources[i].source.text_field,
                        text_optional=optional,
                    ),
                )
                for i in group
            ]
            for j, part in ctx.map_sources(
                jobs, batch_size=params.batch_size, require_text=not optional
            ):
                tallies[group[j]].merge(part, params.max_examples)
        return tallies

    @staticmethod
    def _report(params: PiiParams, src: _Source, tally: _Tally, out: CheckOutput) -> None:
        p = src.metric_prefix
        figures = out.metrics.setdefault(src.subject, {})
        figures.update(
            {
                f"{p}records_scanned": tally.scanned,
                f"{p}records_with_pii": tally.with_pii,
                f"{p}pii_rate": round(tally.with_pii / tally.scanned, 6) if tally.scanned else 0.0,
                f"{p}entities": dict(sorted(tally.counts.items())),
            }
        )
        if src.text_optional:
            figures[f"{p}records_without_text"] = tally.without_text
        for entity, n in sorted(tally.counts.items()):
            if n <= params.max_count:
                continue
            sev = params.severity_by_entity.get(entity, params.default_severity)
            out.findings.append(
                FindingDraft(
                    subject=src.subject,
                    key=f"{src.key_prefix}{entity}",
                    severity=sev,
                    confidence=Confidence.HIGH if n > 1 else Confidence.MEDIUM,
                    message=(
                        f"{n} {entity} value(s) in {src.what} "
                        f"({tally.with_pii} of {tally.scanned} records contain PII)"
                    ),
                    metric=Metric(name=f"{p}{entity}_count", value=n, threshold=params.max_count),
                    evidence=tuple(tally.examples[entity]),
                )
            )
