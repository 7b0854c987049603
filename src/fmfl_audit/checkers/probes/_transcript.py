"""The probe transcript as the judges see it: the latest answer of every probe per endpoint.

Read once per scan (through the scan cache). Malformed lines are counted into the scan's input
ledger with their line numbers, like any data file's malformed records; an answer sent with
settings that have since changed is still judged (the latest `ok` line of a probe id wins), but
only when it came from the endpoint the manifest names now for its role (same base URL and model):
answers of a previous endpoint or model say nothing about the current one, so they are ignored and
counted in a note (`Transcript.ignored_note`).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from fmfl_audit.checkers.base import CheckContext
from fmfl_audit.inputs.records import ReadStats
from fmfl_audit.manifest.loader import Deployment
from fmfl_audit.probe.transcript import Entry, ProbeMeta, Role, iter_entries


@dataclass(frozen=True)
class Answer:
    """One probe's answer from one endpoint."""

    probe_id: str
    suite: str
    role: Role
    meta: ProbeMeta
    request: str
    """Everything the request said (system prompt and user message), for 'was it asked for'."""
    user: str
    text: str
    location: str
    """`transcript.jsonl:LINE`."""
    refusal: bool = False
    """The API flagged the answer as a refusal: it refuses whatever its text says."""


@dataclass
class Transcript:
    """The answers of a transcript, by suite and endpoint role."""

    display: str
    answers: dict[tuple[str, Role], dict[str, Answer]] = field(default_factory=dict)
    errors: int = 0
    """Lines recording a request that failed after its retries (its probe may be answered later)."""
    ignored: Counter[Role] = field(default_factory=Counter)
    """Lines per role sent to another endpoint or model than the manifest's current one."""

    def ignored_summary(self) -> str | None:
        """Why some lines were not judged, or None when every line was from the current
        endpoints."""
        if not self.ignored:
            return None
        per_role = ", ".join(f"{role.value} {n}" for role, n in sorted(self.ignored.items()))
        return (
            f"{sum(self.ignored.values())} line(s) ignored ({per_role}): sent to another endpoint "
            "or model than the manifest names now; run `fmfl-audit probe` to ask the current one"
        )

    def ignored_note(self) -> str | None:
        """`ignored_summary` prefixed with the transcript's name, for a rule's notes."""
        summary = self.ignored_summary()
        return None if summary is None else f"{self.display}: {summary}"

    def of(self, suite: str, role: Role = Role.TARGET) -> list[Answer]:
        """The suite's answers from one endpoint, ordered by probe id."""
        found = self.answers.get((suite, role), {})
        return [found[k] for k in sorted(found)]

    def has(self, suite: str, kind: str | None = None) -> bool:
        """Whether the target endpoint answered any probe of the suite (of that kind)."""
        found = self.answers.get((suite, Role.TARGET), {})
        return any(kind is None or a.meta.kind == kind for a in found.values())

    def paired(self, suite: str | None = None) -> list[tuple[Answer, Answer]]:
        """(target, reference) answers to the same probe of `suite` (None: of every suite),
        ordered by suite and probe id."""
        suites = [suite] if suite is not None else sorted({s for s, _ in self.answers})
        out = []
        for name in suites:
            ref = self.answers.get((name, Role.REFERENCE), {})
            out += [(a, ref[a.probe_id]) for a in self.of(name) if a.probe_id in ref]
        return out


def transcript_path(deployment: Deployment) -> Path | None:
    """The manifest's probe transcript when it exists."""
    fm = deployment.manifest.foundation_model
    if fm is None or fm.probe_transcript is None or not fm.probe_transcript.is_file():
        return None
    return fm.probe_transcript


def current_endpoints(deployment: Deployment) -> dict[Role, tuple[str, str]] | None:
    """(base URL, model) the manifest names per role now; None when it names no endpoint (a
    transcript given on its own is judged whole)."""
    fm = deployment.manifest.foundation_model
    if fm is None or fm.endpoint is None:
        return None
    out = {Role.TARGET: (fm.endpoint.base_url, fm.endpoint.model)}
    if fm.reference_endpoint is not None:
        out[Role.REFERENCE] = (fm.reference_endpoint.base_url, fm.reference_endpoint.model)
    return out


def _answer(entry: Entry, location: str) -> Answer:
    messages = entry.request.get("messages") or []
    contents = [str(m.get("content", "")) for m in messages if isinstance(m, dict)]
    return Answer(
        probe_id=entry.probe_id,
        suite=entry.suite,
        role=entry.endpoint.role,
        meta=entry.meta,
        request="\n".join(contents),
        user=contents[-1] if contents else "",
        text=entry.response.text if entry.response is not None else "",
        location=location,
        refusal=entry.response is not None and entry.response.refusal,
    )


def read_transcript(
    path: Path,
    display: str,
    stats: ReadStats,
    current: Mapping[Role, tuple[str, str]] | None = None,
) -> Transcript:
    """Every answer of the transcript at `path`; malformed lines are counted into `stats`.

    `current`: (base URL, model) per role; lines of another endpoint are counted, not kept.
    """
    out = Transcript(display=display)
    latest: dict[tuple[str, Role], dict[str, Answer]] = defaultdict(dict)
    for lineno, item in iter_entries(path):
        location = f"{display}:{lineno}"
        if isinstance(item, ValueError):
            stats.bad(location, str(item))
            continue
        stats.records += 1
        ep = item.endpoint
        if current is not None and current.get(ep.role) != (ep.base_url.rstrip("/"), ep.model):
            out.ignored[ep.role] += 1
            continue
        if item.status != "ok" or item.response is None:
            out.errors += 1
            continue
        latest[(item.suite, item.endpoint.role)][item.probe_id] = _answer(item, location)
    out.answers = dict(latest)
    stats.complete = True
    return out


def load_transcript(ctx: CheckContext) -> Transcript | None:
    """The scan's probe transcript (read once per scan); None when the manifest names none or it
    was not written yet."""
    path = transcript_path(ctx.deployment)
    if path is None:
        return None

    stats_key = f"probe-transcript-stats:{path}"

    def build() -> Transcript:
        display = ctx.display(path)
        stats = ReadStats(path=display)
        transcript = read_transcript(path, display, stats, current_endpoints(ctx.deployment))
        ctx.ledger.commit(stats)
        ctx.cache.get(stats_key, lambda: stats)
        return transcript

    loaded: Transcript = ctx.cache.get(f"probe-transcript:{path}", build)
    # Every rule that judges the transcript answers for what it could read of it: a transcript
    # whose lines are mostly malformed makes the rule unreadable-input skipped, not passed.
    ctx.reads.add(ctx.cache.get(stats_key, lambda: ReadStats(path=ctx.display(path))))
    return loaded
