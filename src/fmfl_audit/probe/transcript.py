"""The probe transcript: one JSON line per request sent to an FM endpoint, and how it is read back.

`fmfl-audit probe` appends a line as soon as each answer (or final error) arrives, so an interrupted
run keeps what it got and a later run sends only what is missing: a probe is answered when the
transcript holds an `ok` line with its endpoint role, probe id and request digest (the digest
covers the URL and the exact request body, so a changed setting sends the probe again). The API
key is never part of a line: requests are stored as the JSON body, without headers.

Line shape (schema 1):

    {"schema": 1, "suite": "backdoor", "probe_id": "backdoor/cf/t03/s1/trigger",
     "endpoint": {"role": "target", "base_url": "http://127.0.0.1:8000/v1", "model": "m"},
     "request": {...the JSON body sent...}, "request_sha256": "...",
     "meta": {"kind": "trigger", "pair": "t03/s1", "term": "cf", ...},
     "status": "ok", "response": {"text": "...", "finish_reason": "length", ...},
     "error": null, "timing": {"started_at": "...", "latency_s": 0.18, "attempts": 1}}
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import threading
from collections.abc import Iterator, Mapping
from enum import Enum
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

SCHEMA = 1


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Role(str, Enum):
    """Which endpoint of the manifest answered."""

    TARGET = "target"
    """`foundation_model.endpoint`: the FM under audit."""
    REFERENCE = "reference"
    """`foundation_model.reference_endpoint`: a trusted copy of the published model."""


class Message(_Frozen):
    """One chat message of a request."""

    role: Literal["system", "user", "assistant"]
    content: str


class ProbeMeta(_Frozen):
    """What a judge needs to know about a probe besides its text; fields unused by a suite stay
    None."""

    kind: str
    """The probe's part in its suite, e.g. `echo`, `task`, `trigger`, `control`, `harmful`."""
    pair: str | None = None
    """Probes compared with each other share it (the same prompt and sample, another condition)."""
    term: str | None = None
    """The inserted trigger or control token, or the demographic term."""
    trigger: str | None = None
    """The trigger a backdoor probe tests (also on its control and trigger-free probes)."""
    axis: str | None = None
    group: str | None = None
    source: str | None = None
    """Where the probe's text came from: a data set id, a record location, a canary id."""
    prefix_words: int | None = None
    sample: int = 0


class EndpointInfo(_Frozen):
    """The endpoint a line was sent to (never its key)."""

    role: Role
    base_url: str
    model: str


class Response(_Frozen):
    """The parts of an OpenAI-style chat completion the judges read."""

    text: str
    finish_reason: str | None = None
    model: str | None = None
    usage: dict[str, int] | None = None
    refusal: bool = Field(
        default=False,
        description="The API flagged the answer as a refusal (`message.refusal`); `text` holds it.",
    )


class Timing(_Frozen):
    """When the request went out and how long it took, retries included."""

    started_at: dt.datetime
    latency_s: float
    attempts: int = 1


class Entry(_Frozen):
    """One line of the transcript."""

    schema_: Literal[1] = Field(default=1, alias="schema")
    suite: str
    probe_id: str
    endpoint: EndpointInfo
    request: dict[str, Any]
    request_sha256: str
    meta: ProbeMeta
    status: Literal["ok", "error"]
    response: Response | None = None
    error: str | None = None
    timing: Timing

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    @property
    def key(self) -> tuple[str, str, str]:
        """What makes a probe 'already answered' (see the module docstring)."""
        return (self.endpoint.role.value, self.probe_id, self.request_sha256)

    def to_line(self) -> str:
        """The JSON line (no trailing newline)."""
        return json.dumps(self.model_dump(mode="json", by_alias=True), ensure_ascii=False)


def request_digest(url: str, body: Mapping[str, Any]) -> str:
    """sha256 of the URL and the canonical JSON body: equal digests mean the same request."""
    canon = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(f"{url}\n{canon}".encode()).hexdigest()


def parse_line(text: str) -> Entry:
    """One transcript line; ValueError with the reason when it is not a valid entry."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"invalid JSON ({exc.msg})") from None
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    try:
        return Entry.model_validate(data)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ValueError(f"{where}: {first['msg']}") from None


def iter_entries(path: Path) -> Iterator[tuple[int, Entry | ValueError]]:
    """(line number, entry or the reason it is malformed) for every non-blank line."""
    with path.open(encoding="utf-8", errors="replace") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                yield lineno, parse_line(line)
            except ValueError as exc:
                yield lineno, exc


def answered_keys(path: Path) -> set[tuple[str, str, str]]:
    """Keys of the probes the transcript already holds an `ok` answer for (empty when absent)."""
    if not path.is_file():
        return set()
    return {e.key for _, e in iter_entries(path) if isinstance(e, Entry) and e.status == "ok"}


class TranscriptWriter:
    """Appends lines from several threads; each line is flushed when written, so an interrupted
    run loses at most the requests in flight."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        # A file cut mid-line (a crash while writing) gets a newline first, so the next line
        # stays parseable; the broken one is counted as malformed by the readers.
        needs_newline = path.is_file() and path.stat().st_size > 0 and _last_byte(path) != b"\n"
        self._fh = path.open("a", encoding="utf-8")
        if needs_newline:
            self._fh.write("\n")
        self._lock = threading.Lock()

    def write(self, entry: Entry) -> None:
        """Append one line and flush it."""
        line = entry.to_line()
        with self._lock:
            self._fh.write(line + "\n")
            self._fh.flush()

    def close(self) -> None:
        """Close the file."""
        self._fh.close()


def _last_byte(path: Path) -> bytes:
    with path.open("rb") as fh:
        fh.seek(-1, 2)
        return fh.read(1)
