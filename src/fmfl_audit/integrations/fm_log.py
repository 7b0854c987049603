"""Client-side log of what a client sends to the foundation model and what it gets back.

Framework-neutral: call it from any client code (a Flower ClientApp, an NVFlare executor, a plain
script). Each call appends one JSON line, flushed at once, to a file in the input shapes the
checkers read:

- `prompts.jsonl`: `{"id", "text", ...}`: what the client sent to the FM (FMFL-R01, P02, P06-P08);
- `synthetic.jsonl`: `{"id", "text", "label"?, "prompt_id"?, ...}`: what the FM returned and the
  client trains on (FMFL-R02, R06, R08, R09, P01, P06, P07, F01, F02);
- `teacher_predictions.jsonl`: `{"client_id", "label", "pred", "prob", ...}`: distillation teacher
  outputs on the client's holdout (FMFL-R10).

Files are opened per call in append mode, so nothing stays open between rounds and a client that
crashes loses at most the record being written. Record ids are `<client>-p<n>` / `<client>-s<n>`,
continuing after the records already in the file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

PROMPTS = "prompts.jsonl"
SYNTHETIC = "synthetic.jsonl"
TEACHER = "teacher_predictions.jsonl"
_RESERVED = frozenset({"id", "text", "label", "prompt_id", "client_id", "pred", "prob"})


class FMInteractionLog:
    """Append a client's FM prompts, FM outputs and teacher predictions to JSONL files.

    `folder` is where this client's files go (e.g. `<run>/clients/<client_id>`); the Flower
    recorder and `fmfl-audit init` pick the files up from there.
    """

    def __init__(self, folder: str | Path, *, client_id: str) -> None:
        self.folder = Path(folder)
        self.client_id = client_id
        self._counts: dict[str, int] = {}

    @classmethod
    def for_client(cls, run_dir: str | Path, client_id: str) -> FMInteractionLog:
        """The log of `client_id` under a run folder's `clients/<client_id>/`."""
        return cls(Path(run_dir) / "clients" / client_id, client_id=client_id)

    def prompt(self, text: str, *, id: str | None = None, **fields: Any) -> str:
        """Record a prompt sent to the FM; returns its id (pass it to `output`)."""
        return self._append(PROMPTS, "p", {"id": id, "text": text}, fields)

    def output(
        self,
        text: str,
        *,
        label: Any = None,
        prompt_id: str | None = None,
        id: str | None = None,
        **fields: Any,
    ) -> str:
        """Record an FM output the client uses (synthetic data, a teacher's text answer)."""
        rec: dict[str, Any] = {"id": id, "text": text}
        if label is not None:
            rec["label"] = label
        if prompt_id is not None:
            rec["prompt_id"] = prompt_id
        return self._append(SYNTHETIC, "s", rec, fields)

    def teacher_prediction(
        self, *, label: Any, pred: Any, prob: float, id: str | None = None, **fields: Any
    ) -> str:
        """Record the teacher's prediction (and its confidence) on one holdout record."""
        if not 0.0 <= float(prob) <= 1.0:
            raise ValueError(f"prob must be in [0, 1], got {prob!r}")
        rec = {"id": id, "client_id": self.client_id, "label": label, "pred": pred, "prob": prob}
        return self._append(TEACHER, "t", rec, fields)

    def _append(self, name: str, tag: str, rec: dict[str, Any], fields: dict[str, Any]) -> str:
        clash = _RESERVED.intersection(fields)
        if clash:
            raise ValueError(f"reserved field name(s) in extra fields: {sorted(clash)}")
        path = self.folder / name
        if rec["id"] is None:
            rec["id"] = f"{self.client_id}-{tag}{self._next(name, path)}"
        line = json.dumps({**rec, **fields}, ensure_ascii=False, allow_nan=False)
        self.folder.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as fh:
            fh.write(line + "\n")
        return str(rec["id"])

    def _next(self, name: str, path: Path) -> int:
        if name not in self._counts:
            # A new process (Flower starts a ClientApp per message) continues the numbering.
            self._counts[name] = _count_lines(path)
        self._counts[name] += 1
        return self._counts[name]


def _count_lines(path: Path) -> int:
    if not path.is_file():
        return 0
    with path.open("rb") as fh:
        return sum(1 for _ in fh)
