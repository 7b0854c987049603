"""The probe transcript as the judges see it: the latest answer of every probe per endpoint.

Read once per scan (through the scan cache). Malformed lines are counted into the scan's input
ledger with their line numbers, like any data file's malformed records; an answer sent with
settings that have since changed is still judged (the latest `ok` line of a probe id wins).
"""

from __future__ import annotations

from collections import defaultdict
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


@dataclass
class Transcript:
    """The answers of a transcript, by suite and endpoint role."""

    display: str
    answers: dict[tuple[str, Role], dict[str, Answer]] = field(default_factory=dict)
    errors: int = 0
    """Lines recording a request that failed after its retries (its probe may be answered later)."""
    endpoints: set[tuple[str, str, str]] = field(default_factory=set)

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
    )


def read_transcript(path: Path, display: str, stats: ReadStats) -> Transcript:
    """Every answer of the transcript at `path`; malformed lines are counted into `stats`."""
    out = Transcript(display=display)
    latest: dict[tuple[str, Role], dict[str, Answer]] = defaultdict(dict)
    for lineno, item in iter_entries(path):
        location = f"{display}:{lineno}"
        if isinstance(item, ValueError):
            stats.bad(location, str(item))
            continue
        stats.records += 1
        out.endpoints.add((item.endpoint.role.value, item.endpoint.base_url, item.endpoint.model))
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
        transcript = read_transcript(path, display, stats)
        ctx.ledger.commit(stats)
        ctx.cache.get(stats_key, lambda: stats)
        return transcript

    loaded: Transcript = ctx.cache.get(f"probe-transcript:{path}", build)
    # Every rule that judges the transcript answers for what it could read of it: a transcript
    # whose lines are mostly malformed makes the rule unreadable-input skipped, not passed.
    ctx.reads.add(ctx.cache.get(stats_key, lambda: ReadStats(path=ctx.display(path))))
    return loaded
