"""The scan: plan the rules, run their checkers in isolation, then grade, waive and gate."""

from __future__ import annotations

import datetime as dt
import functools
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from fmfl_audit._version import __version__
from fmfl_audit.checkers.base import (
    CheckContext,
    Checker,
    CheckerParams,
    CheckOutput,
    InputLedger,
    ResourceCache,
)
from fmfl_audit.checkers.registry import checker_map, not_implemented
from fmfl_audit.engine.executors import Executor, LocalExecutor
from fmfl_audit.engine.observer import NullObserver, Observer, ObserverProgress
from fmfl_audit.engine.param_paths import resolve_param_paths
from fmfl_audit.engine.threads import apply_threads
from fmfl_audit.errors import FmflAuditError, MissingDependencyError, RulePackError, RuleSkipped
from fmfl_audit.gate import GatePolicy, evaluate_gate
from fmfl_audit.grading import area_scores, overall
from fmfl_audit.inputs.records import ReadStats
from fmfl_audit.manifest.loader import Deployment, load_waivers
from fmfl_audit.models import (
    Area,
    AuditReport,
    DeploymentInfo,
    Finding,
    FindingDraft,
    Grade,
    Outcome,
    RuleResult,
    Severity,
    ToolInfo,
    fingerprint,
)
from fmfl_audit.rulepacks.loader import (
    MANIFEST_OVERRIDE,
    EffectiveRule,
    RuleSet,
    load_ruleset,
    select,
)
from fmfl_audit.scrub import ReportScrubber, canary_values
from fmfl_audit.waivers import apply_waivers

NOT_IMPLEMENTED = "not implemented"


@dataclass(frozen=True)
class PlannedRule:
    """A rule selected for this scan and what will happen to it."""

    rule: EffectiveRule
    checker: type[Checker] | None
    params: CheckerParams | None
    skip_reason: str | None


@dataclass(frozen=True)
class GateOverrides:
    """Command-line overrides of the manifest's gate policy (None keeps the manifest's)."""

    fail_on: Severity | None = None
    fail_under: Grade | None = None
    min_coverage: float | None = None
    disable_fail_on: bool = False
    disable_fail_under: bool = False


@dataclass
class Auditor:
    """Runs the rules of THREATS.md against one deployment.

    `packs` replaces the manifest's `policy.packs`; `extra_packs` are added after them.
    """

    deployment: Deployment
    packs: Sequence[str] | None = None
    extra_packs: Sequence[str] = ()
    only: Sequence[str] = ()
    skip: Sequence[str] = ()
    seed: int = 0
    device: str = "auto"
    executor: Executor = field(default_factory=LocalExecutor)
    """Where record-level work runs (in this process by default; see `engine.executors`)."""
    observer: Observer = field(default_factory=NullObserver)
    gate: GateOverrides = field(default_factory=GateOverrides)
    today: dt.date | None = None
    registry: Mapping[str, type[Checker]] | None = None
    threads: int | None = None
    """Threads for model inference in this process (None leaves torch's setting alone; see
    `engine.threads`)."""

    def ruleset(self) -> RuleSet:
        """The merged rule packs in force."""
        policy = self.deployment.manifest.policy
        packs = [*(self.packs if self.packs is not None else policy.packs), *self.extra_packs]
        overrides = {k: v.model_dump(exclude_none=True) for k, v in policy.rules.items()}
        return load_ruleset(packs, base_dir=self.deployment.base_dir, overrides=overrides)

    def plan(self, ruleset: RuleSet | None = None) -> list[PlannedRule]:
        """Which rules run, which are skipped and why; RulePackError on an invalid pack."""
        rs = ruleset or self.ruleset()
        registry = self.registry if self.registry is not None else checker_map()
        planned_ids = set(select([r for r in rs.rules if r.spec.enabled], self.only, self.skip))
        plan = []
        for rule in rs.rules:
            if rule.id not in planned_ids:
                continue
            checker = registry.get(rule.spec.checker_id)
            if checker is None:
                if rule.spec.checker_id not in not_implemented():
                    raise RulePackError(
                        f"{rule.source}: rule {rule.id} names unknown checker "
                        f"{rule.spec.checker_id!r}"
                    )
                plan.append(PlannedRule(rule, None, None, NOT_IMPLEMENTED))
                continue
            params = resolve_param_paths(
                _validate_params(rule, checker, self.deployment),
                rule,
                self.deployment,
                functools.partial(_param_location, rule, deployment=self.deployment),
            )
            missing = checker().missing_inputs(self.deployment)
            reason = f"missing input: {', '.join(missing)}" if missing else None
            plan.append(PlannedRule(rule, checker, params, reason))
        return plan

    def run(self) -> AuditReport:
        """Plan, run every checker, grade and gate; never raises for one broken checker."""
        started = dt.datetime.now(dt.timezone.utc)
        t0 = time.perf_counter()
        if self.threads is not None:
            apply_threads(self.threads)
        rs = self.ruleset()
        plan = self.plan(rs)
        ledger = InputLedger()
        cache = ResourceCache()
        results: list[RuleResult] = []
        drafts: list[tuple[EffectiveRule, FindingDraft]] = []
        for item in plan:
            result, out = self._run_one(item, ledger, cache)
            results.append(result)
            drafts.extend((item.rule, d) for d in out.findings)
        findings = sorted((_complete(rule, d) for rule, d in drafts), key=_finding_order)
        manifest = self.deployment.manifest
        waivers = list(manifest.policy.waivers)
        if manifest.policy.waivers_file is not None:
            waivers.extend(load_waivers(manifest.policy.waivers_file))
        today = self.today or dt.datetime.now(dt.timezone.utc).date()
        findings, waiver_records, warnings = apply_waivers(findings, waivers, today=today)
        results = [_with_outcome(r, findings) for r in results]
        areas = area_scores(results, findings, rs.grading)
        grade, score, coverage = overall(areas)
        gate = evaluate_gate(
            policy=self._gate_policy(),
            findings=findings,
            rules=results,
            grade=grade,
            coverage=coverage,
        )
        inputs = ledger.all()
        for stats in inputs:
            if stats.malformed:
                warnings.append(
                    f"{stats.path}: {stats.malformed} malformed record(s) were not checked"
                )
        report = AuditReport(
            tool=ToolInfo(version=__version__),
            deployment=DeploymentInfo(name=manifest.deployment.name, task=manifest.deployment.task),
            manifest_path=self.deployment.path.name,
            manifest_sha256=self.deployment.sha256,
            packs=rs.packs,
            seed=self.seed,
            started_at=started,
            duration_s=round(time.perf_counter() - t0, 3),
            grade=grade,
            score=score,
            coverage=coverage,
            gate=gate,
            areas=areas,
            rules=tuple(results),
            findings=tuple(findings),
            waivers=tuple(waiver_records),
            inputs=inputs,
            warnings=tuple(warnings),
        )
        # Every string of the report, whatever produced it, passes one scrubber (DESIGN.md).
        scrubber = ReportScrubber(cache=cache, canaries=canary_values(self.deployment))
        return scrubber.report(report)

    def _gate_policy(self) -> GatePolicy:
        p = self.deployment.manifest.policy
        g = self.gate
        return GatePolicy(
            fail_on=None if g.disable_fail_on else (g.fail_on or p.fail_on),
            fail_under=None if g.disable_fail_under else (g.fail_under or p.fail_under),
            min_coverage=g.min_coverage if g.min_coverage is not None else p.min_coverage,
            fail_on_error=p.fail_on_error,
            fail_on_unreadable_inputs=p.fail_on_unreadable_inputs,
            fail_on_rules_not_rerun=p.fail_on_rules_not_rerun,
        )

    def _run_one(
        self, item: PlannedRule, ledger: InputLedger, cache: ResourceCache
    ) -> tuple[RuleResult, CheckOutput]:
        spec = item.rule.spec
        base = _base_result(spec)
        if item.skip_reason is not None or item.checker is None:
            self.observer.rule_finished(spec.id, Outcome.SKIPPED)
            return base(outcome=Outcome.SKIPPED, skip_reason=item.skip_reason), CheckOutput()
        self.observer.rule_started(spec.id, spec.title)
        ctx = CheckContext(
            deployment=self.deployment,
            rule_id=spec.id,
            seed=self.seed,
            device=self.device,
            progress=ObserverProgress(self.observer, spec.id),
            ledger=ledger,
            cache=cache,
            executor=self.executor,
        )
        t0 = time.perf_counter()
        try:
            out = item.checker().run(ctx, item.params)
        except (MissingDependencyError, RuleSkipped) as exc:
            self.observer.rule_finished(spec.id, Outcome.SKIPPED)
            # A rule that skipped because what it read was unreadable says so, and the gate's
            # `fail_on_unreadable_inputs` applies to it as to a rule that ran.
            unreadable = self._unreadable(ctx)
            reason = str(exc)
            if unreadable:
                reason = "unreadable input: " + "; ".join(unreadable) + f" ({reason})"
            result = base(
                outcome=Outcome.SKIPPED, skip_reason=reason, unreadable_inputs=tuple(unreadable)
            )
            return result, CheckOutput()
        except FmflAuditError as exc:
            return self._errored(base, spec.id, str(exc), t0)
        except Exception as exc:  # noqa: BLE001 - isolation point: one checker must not sink a scan
            return self._errored(base, spec.id, f"internal error: {type(exc).__name__}: {exc}", t0)
        elapsed = round(time.perf_counter() - t0, 3)
        unreadable = self._unreadable(ctx)
        outcome = Outcome.FAILED if out.findings else Outcome.PASSED
        skip_reason = None
        if unreadable and not out.findings:
            # It "passed" on records it could not read: that is no pass (DESIGN.md).
            outcome, skip_reason = Outcome.SKIPPED, "unreadable input: " + "; ".join(unreadable)
        self.observer.rule_finished(spec.id, outcome)
        result = base(
            outcome=outcome,
            skip_reason=skip_reason,
            metrics={k: dict(v) for k, v in sorted(out.metrics.items())},
            notes=tuple(out.notes),
            duration_s=elapsed,
            findings=len(out.findings),
            unreadable_inputs=tuple(unreadable),
        )
        return result, out

    def _unreadable(self, ctx: CheckContext) -> list[str]:
        """The files the rule could not read enough of, under the manifest's policy."""
        return unreadable_inputs(
            ctx.reads.all(), self.deployment.manifest.policy.max_malformed_share
        )

    def _errored(
        self, base: Any, rule_id: str, message: str, t0: float
    ) -> tuple[RuleResult, CheckOutput]:
        self.observer.rule_finished(rule_id, Outcome.ERRORED)
        elapsed = round(time.perf_counter() - t0, 3)
        return base(outcome=Outcome.ERRORED, error=message, duration_s=elapsed), CheckOutput()


def unreadable_inputs(reads: Sequence[ReadStats], max_share: float) -> list[str]:
    """The files of `reads` a rule could not read enough of: no record at all (an empty file
    checks nothing), no usable record among malformed ones, or a malformed share above
    `max_share`; each with its counts and first reason."""
    out = []
    for st in reads:
        total = st.records + st.malformed
        if total == 0:
            out.append(f"{st.path}: no records (the file is empty)")
            continue
        if not st.malformed or (st.records and st.malformed / total <= max_share):
            continue
        if total == 1 and st.issues and st.issues[0].location == st.path:
            out.append(f"{st.path}: {st.issues[0].reason}")  # the whole file: cannot be read
            continue
        first = f"; first: {st.issues[0].location}: {st.issues[0].reason}" if st.issues else ""
        out.append(f"{st.path}: {st.malformed} of {total} record(s) malformed{first}")
    return out


def _validate_params(
    rule: EffectiveRule, checker: type[Checker], deployment: Deployment
) -> CheckerParams:
    try:
        return checker.Params.model_validate(rule.spec.params)
    except ValidationError as exc:
        lines = []
        for e in exc.errors(include_url=False):
            name = str(e["loc"][0]) if e["loc"] else ""
            where = _param_location(rule, name, deployment)
            lines.append(
                f"{where}: rule {rule.id}: params.{'.'.join(map(str, e['loc']))}: {e['msg']}"
            )
        raise RulePackError("\n".join(lines)) from None


def _param_location(rule: EffectiveRule, name: str, deployment: Deployment) -> str:
    """Where a param was set: `manifest.yaml:LINE:COL` for the manifest's `policy.rules`, else
    the pack file that set it (or defined the rule)."""
    source = rule.param_sources.get(name, rule.source)
    if source != MANIFEST_OVERRIDE:
        return source
    from fmfl_audit.yamlpos import YamlLocatedError, load_located, read_text

    try:
        located = load_located(read_text(deployment.path))
    except (OSError, UnicodeDecodeError, YamlLocatedError):
        return f"{deployment.path}: policy.rules.{rule.id}.params.{name}"
    pos = located.locate(("policy", "rules", rule.id, "params", name))
    return f"{deployment.path}:{pos.line}:{pos.column}" if pos else str(deployment.path)


def _base_result(spec: Any) -> Any:
    def build(**kw: Any) -> RuleResult:
        return RuleResult(
            id=spec.id,
            title=spec.title,
            area=spec.area,
            threat=spec.threat,
            severity=spec.severity,
            weight=spec.weight,
            **kw,
        )

    return build


def _complete(rule: EffectiveRule, d: FindingDraft) -> Finding:
    spec = rule.spec
    return Finding(
        rule_id=spec.id,
        area=spec.area,
        threat=spec.threat,
        severity=d.severity or spec.severity,
        confidence=d.confidence,
        subject=d.subject,
        message=d.message,
        metric=d.metric,
        evidence=d.evidence,
        remediation=spec.remediation.strip(),
        fingerprint=fingerprint(spec.id, d.subject, d.key),
    )


_AREA_ORDER = {a: i for i, a in enumerate(Area)}


def _finding_order(f: Finding) -> tuple[Any, ...]:
    return (_AREA_ORDER[f.area], f.rule_id, -f.severity.rank, f.subject, f.fingerprint)


def _with_outcome(r: RuleResult, findings: Sequence[Finding]) -> RuleResult:
    """A rule whose findings are all waived counts as passed."""
    if r.outcome is not Outcome.FAILED:
        return r
    if any(f.rule_id == r.id and not f.waived for f in findings):
        return r
    if r.unreadable_inputs:
        reason = "unreadable input: " + "; ".join(r.unreadable_inputs)
        return r.model_copy(update={"outcome": Outcome.SKIPPED, "skip_reason": reason})
    return r.model_copy(update={"outcome": Outcome.PASSED})
