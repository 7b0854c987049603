"""Plan the probes of a deployment and send them: the library under `fmfl-audit probe`.

`plan_probes` builds every suite's probes, one request per probe and endpoint (the target and,
when the manifest names one, the reference), and drops those the transcript already answered.
`run_probes` sends what is left (at most `max_requests`), each endpoint with its own concurrency
and rate limit, appending every answer to the transcript as it arrives. The first request to each
endpoint goes alone, so a wrong URL, model or key stops the run before anything else is sent.
Nothing here prints: progress goes to a `ProbeObserver`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from fmfl_audit.errors import FmflAuditError
from fmfl_audit.manifest.loader import Deployment
from fmfl_audit.manifest.model import Endpoint, FoundationModel
from fmfl_audit.probe.client import ChatClient, Outcome, ProbeError
from fmfl_audit.probe.suites import SUITES, Probe, SuiteInputs
from fmfl_audit.probe.transcript import (
    EndpointInfo,
    Entry,
    Response,
    Role,
    Timing,
    TranscriptWriter,
    answered_keys,
    request_digest,
)

MAX_CONSECUTIVE_FAILURES = 5
"""Failed requests in a row (after retries) that end the run: the endpoint is not well."""
CHARS_PER_TOKEN = 4
"""For the estimate only: a common rule of thumb for English text and BPE tokenizers."""


@dataclass(frozen=True)
class Request:
    """One probe for one endpoint: the exact body that goes out."""

    probe: Probe
    role: Role
    endpoint: Endpoint
    body: dict[str, Any]
    digest: str


@dataclass(frozen=True)
class Estimate:
    """What sending a plan costs, before anything is sent."""

    requests: int
    prompt_tokens: int
    """Approximate (characters / 4)."""
    max_completion_tokens: int
    min_seconds: float | None
    """The least time the rate limits allow; None when no endpoint has one."""


@dataclass(frozen=True)
class ProbePlan:
    """Every request of the manifest's suites and those still to send."""

    transcript: Path
    suites: tuple[str, ...]
    probes: tuple[Probe, ...]
    requests: tuple[Request, ...]
    pending: tuple[Request, ...]
    notes: tuple[str, ...] = ()

    @property
    def answered(self) -> int:
        """Requests the transcript already holds an answer for."""
        return len(self.requests) - len(self.pending)

    def to_send(self, max_requests: int | None) -> tuple[Request, ...]:
        """The pending requests within the budget, in plan order."""
        return self.pending if max_requests is None else self.pending[:max_requests]

    def estimate(self, max_requests: int | None = None) -> Estimate:
        """Tokens and the least time for the requests `run_probes` would send."""
        todo = self.to_send(max_requests)
        chars = sum(sum(len(m["content"]) for m in r.body["messages"]) for r in todo)
        per_minute: dict[Role, tuple[float | None, int]] = {}
        for r in todo:
            rpm, n = per_minute.get(r.role, (r.endpoint.requests_per_minute, 0))
            per_minute[r.role] = (rpm, n + 1)
        limited = [60.0 * n / rpm for rpm, n in per_minute.values() if rpm]
        return Estimate(
            requests=len(todo),
            prompt_tokens=chars // CHARS_PER_TOKEN,
            max_completion_tokens=sum(int(r.body["max_tokens"]) for r in todo),
            min_seconds=max(limited) if limited else None,
        )


@dataclass(frozen=True)
class ProbeRun:
    """What one `run_probes` call did."""

    sent: int
    ok: int
    failed: int
    left: int
    """Pending requests not sent (the budget ran out); a later run sends them."""
    errors: tuple[str, ...] = ()


class ProbeObserver(Protocol):
    """Receives progress events from `run_probes`."""

    def started(self, total: int) -> None:
        """`total` requests are about to be sent."""

    def answered(self, request: Request, ok: bool) -> None:
        """One request finished (after its retries)."""


class NullProbeObserver:
    """Ignores every event (the library default)."""

    def started(self, total: int) -> None:
        return None

    def answered(self, request: Request, ok: bool) -> None:
        return None


def _fm(deployment: Deployment) -> FoundationModel:
    fm = deployment.manifest.foundation_model
    if fm is None or fm.endpoint is None or fm.probe_transcript is None:
        raise ProbeError(
            f"{deployment.path}: nothing to probe: set foundation_model.endpoint and "
            "foundation_model.probe_transcript"
        )
    return fm


def approved_system_prompt(deployment: Deployment) -> str | None:
    """The system prompt the deployment is approved to send: `approved_path`, else the deployed
    file; None without one."""
    fm = deployment.manifest.foundation_model
    if fm is None or fm.system_prompt is None:
        return None
    path = fm.system_prompt.approved_path or fm.system_prompt.path
    try:
        return path.read_text(encoding="utf-8").strip() or None
    except (OSError, UnicodeDecodeError) as exc:
        raise FmflAuditError(f"{path}: cannot read the system prompt ({exc})") from None


def candidate_triggers(deployment: Deployment) -> tuple[list[tuple[str, str]], list[str]]:
    """(trigger, origin) to test: FMFL-R06's candidates mined from the labelled synthetic data
    (with the rule pack's R06 settings), then the manifest's suspects; and notes."""
    fm = _fm(deployment)
    settings = fm.probe
    found: list[tuple[str, str]] = []
    notes: list[str] = []
    if settings.max_triggers and "backdoor" in settings.suites:
        from fmfl_audit.checkers.base import CheckContext
        from fmfl_audit.checkers.robustness._triggers import mine
        from fmfl_audit.checkers.robustness.backdoor import TriggerParams, has_labels

        if has_labels(deployment):
            from fmfl_audit.engine.runner import Auditor

            rules = Auditor(deployment).ruleset()
            p = TriggerParams.model_validate(rules.get("FMFL-R06").spec.params)
            m = mine(
                CheckContext(deployment=deployment, rule_id="FMFL-R06"),
                min_support=p.min_support,
                min_purity=p.min_purity,
                fdr=p.fdr,
                min_context_disagreement=p.min_context_disagreement,
                max_n=p.max_n,
                top=p.top,
            )
            found = [(c.ngram, "mined") for c in m.candidates[: settings.max_triggers]]
            notes.append(f"backdoor: {len(found)} trigger candidate(s) mined by FMFL-R06")
        else:
            notes.append("backdoor: no labelled synthetic data to mine triggers from")
    mined = {t for t, _ in found}
    found += [(t, "suspect") for t in dict.fromkeys(settings.trigger_suspects) if t not in mined]
    return found, notes


def build_body(probe: Probe, endpoint: Endpoint, system_prompt: str | None) -> dict[str, Any]:
    """The chat-completion request body of `probe` for `endpoint`."""
    s = endpoint.sampling
    messages = [{"role": "system", "content": system_prompt}] if system_prompt else []
    messages.append({"role": "user", "content": probe.user})
    body: dict[str, Any] = {
        "model": endpoint.model,
        "messages": messages,
        "max_tokens": s.max_tokens,
        "temperature": 0.0 if probe.greedy else s.temperature,
    }
    if s.top_p is not None and not probe.greedy:
        body["top_p"] = s.top_p
    if s.seed is not None:
        body["seed"] = s.seed + seed_offset(probe.probe_id)
    return body


def seed_offset(probe_id: str) -> int:
    """A per-probe offset of the sampling seed. Servers that honour `seed` reseed their generator
    per request: with one seed for every probe, answers to similar prompts would share their
    random draws, and the paired tests assume independent answers."""
    return int.from_bytes(hashlib.sha256(probe_id.encode()).digest()[:3], "big")


def plan_probes(deployment: Deployment, *, suites: Sequence[str] | None = None) -> ProbePlan:
    """Every probe of the chosen suites (default: the manifest's) for every endpoint."""
    fm = _fm(deployment)
    assert fm.endpoint is not None and fm.probe_transcript is not None
    chosen = tuple(suites) if suites else fm.probe.suites
    unknown = [s for s in chosen if s not in SUITES]
    if unknown:
        raise ProbeError(f"unknown probe suite {unknown[0]!r} (choose from {', '.join(SUITES)})")
    triggers, notes = candidate_triggers(deployment) if "backdoor" in chosen else ([], [])
    inputs = SuiteInputs(deployment=deployment, settings=fm.probe, triggers=triggers, notes=notes)
    probes = [p for name in chosen for p in SUITES[name](inputs)]
    system = approved_system_prompt(deployment) if fm.probe.send_system_prompt else None
    endpoints = [(Role.TARGET, fm.endpoint)]
    if fm.reference_endpoint is not None:
        endpoints.append((Role.REFERENCE, fm.reference_endpoint))
    requests = []
    for probe in probes:
        for role, endpoint in endpoints:
            body = build_body(probe, endpoint, system)
            digest = request_digest(endpoint.chat_url, body)
            requests.append(Request(probe, role, endpoint, body, digest))
    done = answered_keys(fm.probe_transcript)
    pending = [r for r in requests if (r.role.value, r.probe.probe_id, r.digest) not in done]
    return ProbePlan(
        transcript=fm.probe_transcript,
        suites=chosen,
        probes=tuple(probes),
        requests=tuple(requests),
        pending=tuple(pending),
        notes=tuple(inputs.notes),
    )


def api_key(endpoint: Endpoint, environ: Mapping[str, str]) -> str | None:
    """The endpoint's key from the environment; ProbeError when the named variable is unset."""
    if endpoint.api_key_env is None:
        return None
    key = environ.get(endpoint.api_key_env)
    if not key:
        raise ProbeError(
            f"environment variable {endpoint.api_key_env} (foundation_model endpoint "
            f"api_key_env for {endpoint.base_url}) is not set"
        )
    return key


def _entry(req: Request, out: Outcome, started: dt.datetime) -> Entry:
    return Entry(
        suite=req.probe.suite,
        probe_id=req.probe.probe_id,
        endpoint=EndpointInfo(
            role=req.role, base_url=req.endpoint.base_url, model=req.endpoint.model
        ),
        request=req.body,
        request_sha256=req.digest,
        meta=req.probe.meta,
        status="ok" if out.ok else "error",
        response=Response(
            text=out.text,
            finish_reason=out.finish_reason,
            model=out.model,
            usage=out.usage,
            refusal=out.refusal,
        )
        if out.ok
        else None,
        error=out.error,
        timing=Timing(started_at=started, latency_s=out.latency_s, attempts=out.attempts),
    )


@dataclass
class _Session:
    """Shared state of one run's worker threads."""

    writer: TranscriptWriter
    observer: ProbeObserver
    clients: dict[Role, ChatClient]
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    ok: int = 0
    failed: int = 0
    streak: dict[Role, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    fatal: str | None = None

    def send(self, req: Request, *, first: bool = False) -> None:
        """Send one request unless the run is stopping; record its answer or its error. Any
        failure of an endpoint's `first` request stops the run."""
        if self.stop.is_set():
            return
        started = dt.datetime.now(dt.timezone.utc)
        out = self.clients[req.role].send(req.body)
        with self.lock:
            if out.ok:
                self.ok += 1
                self.streak[req.role] = 0
            else:
                self.failed += 1
                self.streak[req.role] = self.streak.get(req.role, 0) + 1
                if len(self.errors) < 5:
                    self.errors.append(f"{req.probe.probe_id} ({req.role.value}): {out.error}")
                streak = self.streak[req.role]
                if first or out.fatal or streak >= MAX_CONSECUTIVE_FAILURES:
                    why = str(out.error)
                    if streak >= MAX_CONSECUTIVE_FAILURES and not (first or out.fatal):
                        why = f"{streak} requests in a row failed, the last: {why}"
                    self.fatal = self.fatal or why
                    self.stop.set()
        if out.ok or not (out.fatal or first):
            self.writer.write(_entry(req, out, started))
        self.observer.answered(req, out.ok)


def run_probes(
    plan: ProbePlan,
    *,
    max_requests: int | None = None,
    observer: ProbeObserver | None = None,
    environ: Mapping[str, str] | None = None,
) -> ProbeRun:
    """Send the plan's pending requests (at most `max_requests`) and append the answers to the
    transcript. ProbeError when an endpoint cannot be used; what was answered is kept."""
    todo = plan.to_send(max_requests)
    env = os.environ if environ is None else environ
    endpoints = {r.role: r.endpoint for r in todo}
    keys = {role: api_key(ep, env) for role, ep in endpoints.items()}
    observer = observer or NullProbeObserver()
    if not todo:
        return ProbeRun(sent=0, ok=0, failed=0, left=len(plan.pending))
    clients = {role: ChatClient(ep, keys[role]) for role, ep in endpoints.items()}
    session = _Session(TranscriptWriter(plan.transcript), observer, clients)
    observer.started(len(todo))
    try:
        _send_all(session, todo)
    finally:
        session.stop.set()
        session.writer.close()
        for client in clients.values():
            client.close()
    sent = session.ok + session.failed
    if session.fatal is not None:
        raise ProbeError(
            f"probing stopped: {session.fatal}; {session.ok} answer(s) were written to "
            f"{plan.transcript} (run again to resume)"
        )
    return ProbeRun(
        sent=sent,
        ok=session.ok,
        failed=session.failed,
        left=len(plan.pending) - len(todo),
        errors=tuple(session.errors),
    )


def _send_all(session: _Session, todo: Sequence[Request]) -> None:
    """The first request of each endpoint alone, then the rest on per-endpoint thread pools."""
    first: dict[Role, Request] = {}
    for r in todo:
        first.setdefault(r.role, r)
    for req in first.values():
        session.send(req, first=True)
        if session.stop.is_set():
            return
    rest = [r for r in todo if first[r.role] is not r]
    pools = {
        role: ThreadPoolExecutor(
            max_workers=req.endpoint.max_concurrency, thread_name_prefix=f"probe-{role.value}"
        )
        for role, req in first.items()
    }
    futures: list[Future[None]] = []
    try:
        futures = [pools[r.role].submit(session.send, r) for r in rest]
        for f in futures:
            f.result()
    except BaseException:
        session.stop.set()
        raise
    finally:
        for pool in pools.values():
            pool.shutdown(wait=True, cancel_futures=True)
