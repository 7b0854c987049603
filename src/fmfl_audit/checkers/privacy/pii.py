"""FMFL-P01: PII in the synthetic data the FM returned to each client (Presidio).

Counts per entity type and client; severity by entity class (government and financial identifiers
critical, contact details high, names and places medium); evidence is `path:line` plus an excerpt in
which every detected span is replaced by its entity type.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any, ClassVar

from pydantic import Field

from fmfl_audit.checkers.base import CheckContext, Checker, CheckerParams, CheckOutput, clients_with
from fmfl_audit.checkers.privacy._presidio import RecognizerSpec, build_analyzer
from fmfl_audit.manifest.loader import Deployment
from fmfl_audit.models import Area, Confidence, Evidence, FindingDraft, Metric, Severity
from fmfl_audit.redact import redact_spans

GOVERNMENT_AND_FINANCIAL = (
    "US_SSN", "US_ITIN", "US_PASSPORT", "US_DRIVER_LICENSE", "US_BANK_NUMBER", "CREDIT_CARD",
    "IBAN_CODE", "CRYPTO", "UK_NHS", "UK_NINO", "ES_NIF", "ES_NIE", "IT_FISCAL_CODE",
    "IT_PASSPORT", "IT_IDENTITY_CARD", "IN_AADHAAR", "IN_PAN", "SG_NRIC_FIN", "AU_TFN",
    "AU_MEDICARE", "MEDICAL_LICENSE",
)
CONTACT = ("EMAIL_ADDRESS", "PHONE_NUMBER", "IP_ADDRESS")
NAMES_AND_PLACES = ("PERSON", "LOCATION", "NRP")


def _default_severities() -> dict[str, Severity]:
    table = {e: Severity.CRITICAL for e in GOVERNMENT_AND_FINANCIAL}
    table.update({e: Severity.HIGH for e in CONTACT})
    table.update({e: Severity.MEDIUM for e in NAMES_AND_PLACES})
    return table


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
        default=0, ge=0, description="Values of one entity type tolerated per client."
    )
    severity_by_entity: dict[str, Severity] = Field(default_factory=_default_severities)
    default_severity: Severity = Field(
        default=Severity.MEDIUM, description="Severity of entity types not in the table."
    )
    recognizers: tuple[RecognizerSpec, ...] = Field(
        default=(), description="Extra pattern recognizers (e.g. student IDs)."
    )
    max_examples: int = Field(default=3, ge=0, le=20, description="Evidence items per finding.")
    batch_size: int = Field(default=256, ge=1)
    language: str = "en"


class PiiChecker(Checker):
    """Ensure the synthetic data returned by the FM contains no personal data."""

    id: ClassVar[str] = "FMFL-P01"
    title: ClassVar[str] = "Ensure synthetic data and FM outputs contain no PII"
    area: ClassVar[Area] = Area.PRIVACY
    threat: ClassVar[str] = "top-down disclosure"
    inputs: ClassVar[tuple[str, ...]] = ("clients[].synthetic_data",)
    Params = PiiParams

    def missing_inputs(self, deployment: Deployment) -> list[str]:
        if not clients_with(deployment, "synthetic_data"):
            return ["clients[].synthetic_data"]
        return []

    def run(self, ctx: CheckContext, params: Any) -> CheckOutput:
        assert isinstance(params, PiiParams)
        key = f"presidio:{params.language}:{params.recognizers!r}"
        analyzer = ctx.cache.get(
            key, lambda: build_analyzer(lang=params.language, extra=params.recognizers)
        )
        out = CheckOutput(notes=[f"NLP engine: {analyzer.description}"])
        clients = clients_with(ctx.deployment, "synthetic_data")
        ctx.progress.set_total(len(clients))
        for client in clients:
            self._scan_client(ctx, params, analyzer.engine, client, out)
            ctx.progress.advance()
        return out

    def _scan_client(
        self, ctx: CheckContext, params: PiiParams, engine: Any, client: Any, out: CheckOutput
    ) -> None:
        counts: Counter[str] = Counter()
        examples: dict[str, list[Evidence]] = defaultdict(list)
        scanned = with_pii = 0
        entities = list(params.entities) if params.entities else None
        for batch in ctx.records(client.synthetic_data, batch_size=params.batch_size):
            texts = [r.text or "" for r in batch]
            artifacts = engine.nlp_engine.process_batch(
                texts=texts, language=params.language, batch_size=params.batch_size
            )
            for rec, (text, nlp_artifacts) in zip(batch, artifacts, strict=True):
                scanned += 1
                results = [
                    r
                    for r in engine.analyze(
                        text=text,
                        language=params.language,
                        entities=entities,
                        nlp_artifacts=nlp_artifacts,
                        score_threshold=params.min_score,
                    )
                    if r.entity_type not in params.exclude_entities
                ]
                if not results:
                    continue
                with_pii += 1
                spans = [(r.start, r.end, r.entity_type) for r in results]
                for r in results:
                    counts[r.entity_type] += 1
                    ex = examples[r.entity_type]
                    if len(ex) < params.max_examples and all(
                        e.location != rec.location for e in ex
                    ):
                        ex.append(
                            Evidence(location=rec.location, excerpt=redact_spans(text, spans))
                        )
        subject = client.subject
        out.metrics[subject] = {
            "records_scanned": scanned,
            "records_with_pii": with_pii,
            "pii_rate": round(with_pii / scanned, 6) if scanned else 0.0,
            "entities": dict(sorted(counts.items())),
        }
        for entity, n in sorted(counts.items()):
            if n <= params.max_count:
                continue
            sev = params.severity_by_entity.get(entity, params.default_severity)
            out.findings.append(
                FindingDraft(
                    subject=subject,
                    key=entity,
                    severity=sev,
                    confidence=Confidence.HIGH if n > 1 else Confidence.MEDIUM,
                    message=(
                        f"{n} {entity} value(s) in the synthetic data of client {client.id} "
                        f"({with_pii} of {scanned} records contain PII)"
                    ),
                    metric=Metric(name=f"{entity}_count", value=n, threshold=params.max_count),
                    evidence=tuple(examples[entity]),
                )
            )
