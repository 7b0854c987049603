"""FMFL-P08: the federation's privacy configuration, read from the manifest (and prompts).

One finding per problem, each with its own key and severity:
- `dp:absent` (subject `federation`): no differential privacy; `dp:epsilon`: epsilon above the
  pack's `max_epsilon`;
- `secure-aggregation:absent` (subject `federation`): the server sees individual updates;
- `provider:isolation` (subject `fm`): an FM shared across clients, run by a third party, with no
  per-client isolation (`none`, `shared` or undeclared);
- `provider:retention` (subject `fm`): a third-party provider without declared retention terms;
- `provider:trains-on-prompts` (subject `fm`): the provider declares it may train on prompts;
- `prompts-pii` (subject `client:ID`): PII in the prompts a client sent to a third-party provider
  (the FMFL-P01 Presidio analyzer, shared through the scan cache).
"""

from __future__ import annotations

from collections import Counter
from typing import Any, ClassVar

from pydantic import Field

from fmfl_audit.checkers.base import CheckContext, Checker, CheckerParams, CheckOutput, clients_with
from fmfl_audit.checkers.privacy._evidence import scrub
from fmfl_audit.checkers.privacy._presidio import RecognizerSpec, analyze_texts, shared_analyzer
from fmfl_audit.checkers.privacy.pii import third_party_fm
from fmfl_audit.manifest.loader import Deployment
from fmfl_audit.models import Area, Confidence, Evidence, FindingDraft, Metric, Severity


class ConfigurationParams(CheckerParams):
    """Settings of FMFL-P08."""

    max_epsilon: float = Field(default=8.0, gt=0, description="Largest acceptable DP epsilon.")
    require_secure_aggregation: bool = True
    check_prompts_pii: bool = Field(
        default=True, description="Scan prompts for PII when the FM provider is a third party."
    )
    min_score: float = Field(default=0.4, ge=0, le=1)
    exclude_entities: tuple[str, ...] = ("URL", "DATE_TIME")
    recognizers: tuple[RecognizerSpec, ...] = ()
    language: str = "en"
    batch_size: int = Field(default=256, ge=1)
    severity_dp_absent: Severity = Severity.HIGH
    severity_epsilon: Severity = Severity.MEDIUM
    severity_secure_aggregation: Severity = Severity.MEDIUM
    severity_isolation: Severity = Severity.HIGH
    severity_retention: Severity = Severity.MEDIUM
    severity_trains_on_prompts: Severity = Severity.HIGH
    severity_prompts_pii: Severity = Severity.HIGH


class ConfigurationChecker(Checker):
    """Ensure DP, secure aggregation and FM-provider terms protect the clients' data."""

    id: ClassVar[str] = "FMFL-P08"
    title: ClassVar[str] = "Ensure the federation's privacy protections are configured"
    area: ClassVar[Area] = Area.PRIVACY
    threat: ClassVar[str] = "protection limits"
    inputs: ClassVar[tuple[str, ...]] = ("manifest", "clients[].prompts")
    Params = ConfigurationParams

    def missing_inputs(self, deployment: Deployment) -> list[str]:
        return []

    def run(self, ctx: CheckContext, params: Any) -> CheckOutput:
        assert isinstance(params, ConfigurationParams)
        out = CheckOutput()
        self._federation(ctx.deployment, params, out)
        self._provider(ctx.deployment, params, out)
        if params.check_prompts_pii and third_party_fm(ctx.deployment):
            self._prompts(ctx, params, out)
        return out

    @staticmethod
    def _federation(deployment: Deployment, params: ConfigurationParams, out: CheckOutput) -> None:
        fed = deployment.manifest.federation
        dp = fed.differential_privacy if fed else None
        secagg = bool(fed and fed.secure_aggregation)
        out.metrics["federation"] = {
            "differential_privacy": dp is not None,
            "epsilon": dp.epsilon if dp else None,
            "delta": dp.delta if dp else None,
            "secure_aggregation": secagg,
        }
        if dp is None:
            out.findings.append(
                FindingDraft(
                    subject="federation",
                    key="dp:absent",
                    severity=params.severity_dp_absent,
                    message="The federation trains without differential privacy: client records "
                    "can be memorised by the global model",
                )
            )
        elif dp.epsilon > params.max_epsilon:
            out.findings.append(
                FindingDraft(
                    subject="federation",
                    key="dp:epsilon",
                    severity=params.severity_epsilon,
                    message=f"The DP budget epsilon={dp.epsilon:g} exceeds the policy maximum "
                    f"{params.max_epsilon:g}",
                    metric=Metric(name="epsilon", value=dp.epsilon, threshold=params.max_epsilon),
                )
            )
        if params.require_secure_aggregation and not secagg:
            out.findings.append(
                FindingDraft(
                    subject="federation",
                    key="secure-aggregation:absent",
                    severity=params.severity_secure_aggregation,
                    message="Secure aggregation is off: the server sees every client's update",
                )
            )

    @staticmethod
    def _provider(deployment: Deployment, params: ConfigurationParams, out: CheckOutput) -> None:
        fm = deployment.manifest.foundation_model
        if fm is None:
            return
        third = third_party_fm(deployment)
        prov = fm.provider
        isolation = prov.isolation if prov else None
        retention = prov.retention_days if prov else None
        trains = prov.trains_on_prompts if prov else None
        out.metrics["fm"] = {
            "third_party": third,
            "shared_across_clients": fm.shared_across_clients,
            "isolation": isolation,
            "retention_days": retention,
            "trains_on_prompts": trains,
        }
        if not third:
            return
        name = prov.name if prov else fm.name
        if fm.shared_across_clients and isolation in (None, "none", "shared"):
            out.findings.append(
                FindingDraft(
                    subject="fm",
                    key="provider:isolation",
                    severity=params.severity_isolation,
                    message=f"The FM is shared by all clients and run by third party {name} with "
                    f"{'undeclared' if isolation is None else repr(isolation)} isolation: one "
                    "client's prompts can reach another",
                )
            )
        if retention is None:
            out.findings.append(
                FindingDraft(
                    subject="fm",
                    key="provider:retention",
                    severity=params.severity_retention,
                    message=f"Third-party FM provider {name} has no declared prompt retention "
                    "terms (retention_days)",
                )
            )
        if trains:
            out.findings.append(
                FindingDraft(
                    subject="fm",
                    key="provider:trains-on-prompts",
                    severity=params.severity_trains_on_prompts,
                    message=f"Third-party FM provider {name} may train on the clients' prompts",
                )
            )

    @staticmethod
    def _prompts(ctx: CheckContext, params: ConfigurationParams, out: CheckOutput) -> None:
        analyzer = shared_analyzer(
            ctx.cache, language=params.language, recognizers=params.recognizers
        )
        out.notes.append(analyzer.note)
        for client in clients_with(ctx.deployment, "prompts"):
            counts: Counter[str] = Counter()
            flagged = scanned = 0
            evidence: list[Evidence] = []
            for batch in ctx.records(client.prompts, batch_size=params.batch_size):
                texts = [r.text or "" for r in batch]
                results = analyze_texts(
                    analyzer,
                    texts,
                    language=params.language,
                    min_score=params.min_score,
                    entities=None,
                    exclude=params.exclude_entities,
                    batch_size=params.batch_size,
                )
                for rec, text, found in zip(batch, texts, results, strict=True):
                    scanned += 1
                    if not found:
                        continue
                    flagged += 1
                    counts.update(r.entity_type for r in found)
                    if len(evidence) < 3:
                        spans = [(r.start, r.end, r.entity_type) for r in found]
                        evidence.append(
                            Evidence(location=rec.location, excerpt=scrub(ctx.cache, text, spans))
                        )
            out.metrics[client.subject] = {
                "prompts_scanned": scanned,
                "prompts_with_pii": flagged,
                "prompt_pii": dict(sorted(counts.items())),
            }
            if flagged:
                kinds = ", ".join(f"{e} {n}" for e, n in sorted(counts.items()))
                out.findings.append(
                    FindingDraft(
                        subject=client.subject,
                        key="prompts-pii",
                        severity=params.severity_prompts_pii,
                        confidence=Confidence.HIGH,
                        message=f"Client {client.id} sent PII to the third-party FM provider in "
                        f"{flagged} of {scanned} prompts ({kinds})",
                        metric=Metric(name="prompts_with_pii", value=flagged, threshold=0),
                        evidence=tuple(evidence),
                    )
                )
