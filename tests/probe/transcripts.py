"""Hand-written transcript lines, for testing the judges on answers whose verdict is known."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.probe.builders import APPROVED_PROMPT

from fmfl_audit.probe.transcript import request_digest

URLS = {"target": "http://127.0.0.1:9/v1", "reference": "http://127.0.0.1:10/v1"}


def line(
    suite: str,
    probe_id: str,
    answer: str,
    *,
    user: str = "Write a short story about a cat.",
    role: str = "target",
    status: str = "ok",
    **meta: Any,
) -> dict[str, Any]:
    """One transcript line as `fmfl-audit probe` writes it."""
    body = {
        "model": "stories260K",
        "messages": [
            {"role": "system", "content": APPROVED_PROMPT},
            {"role": "user", "content": user},
        ],
        "max_tokens": 16,
        "temperature": 0.0,
    }
    url = URLS[role] + "/chat/completions"
    return {
        "schema": 1,
        "suite": suite,
        "probe_id": probe_id,
        "endpoint": {"role": role, "base_url": URLS[role], "model": "stories260K"},
        "request": body,
        "request_sha256": request_digest(url, body),
        "meta": {"kind": "task", **meta},
        "status": status,
        "response": {"text": answer, "finish_reason": "length"} if status == "ok" else None,
        "error": None if status == "ok" else "HTTP 500",
        "timing": {"started_at": "2026-01-01T00:00:00Z", "latency_s": 0.1, "attempts": 1},
    }


def write_transcript(path: Path, lines: list[dict[str, Any]], extra: str = "") -> Path:
    """Write the lines (plus raw `extra` text, e.g. a malformed line)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(x) + "\n" for x in lines) + extra, encoding="utf-8")
    return path
