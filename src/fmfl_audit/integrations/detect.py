"""`fmfl-audit init`: find the inputs in a deployment folder and draft a manifest for them.

What is recognised, by folder layout and file name (the first record of a data file is read to
tell a participation log and the text column; nothing else is opened):

- client folders: the sub-folders of a `clients/`, `sites/`, `participants/`, `parties/` or
  `nodes/` folder, else folders named `client*` or `site*`; in each, data files named like
  prompts, synthetic / generated data, private samples, holdouts, a fingerprint and a safetensors
  update; updates may also sit in `updates/<client>.safetensors` or `updates/round-N/...` (the
  latest round is used);
- a participation log: a CSV, JSONL or Parquet file with `round` and `client_id` columns;
- Hugging Face checkpoint folders (`config.json` next to weights or an adapter): named like
  `fm`, `foundation`, `teacher` -> the FM; like `reference` / `base` -> the FM's reference; others
  -> FL models by their architecture;
- a system prompt (`*system*prompt*.txt`), teacher predictions, evaluation data, model
  predictions (`y_true` and `y_pred` columns).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fmfl_audit.integrations.scaffold import (
    ClientDraft,
    ManifestDraft,
    ModelDraft,
    relative,
    safe_client_id,
)

DATA = {".jsonl", ".ndjson", ".csv", ".parquet"}
SKIP_DIRS = {".git", ".venv", "venv", "node_modules", "__pycache__", ".mypy_cache", ".cache"}
CLIENT_PARENTS = {"clients", "sites", "participants", "parties", "nodes"}
TEXT_FIELDS = ("text", "prompt", "content", "output", "response", "completion", "sentence")
# Client file kinds: manifest key -> name patterns (first kind whose pattern matches wins).
CLIENT_KINDS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("prompts", re.compile(r"prompt")),
    ("synthetic_data", re.compile(r"synthetic|generated|fm[_-]?output|augment")),
    ("holdout", re.compile(r"holdout|test|eval|valid")),
    ("private_sample", re.compile(r"private|train|local|sample")),
)
WEIGHTS = ("*.safetensors", "pytorch_model*.bin", "model.safetensors.index.json", "*.gguf")
MAX_FILES = 20000


@dataclass
class Detection:
    """A drafted manifest plus what was found but not placed."""

    draft: ManifestDraft
    found: list[str] = field(default_factory=list)
    unplaced: list[str] = field(default_factory=list)


def detect(root: Path, manifest_dir: Path, *, name: str | None = None) -> Detection:
    """Scan `root` and draft a manifest whose paths are relative to `manifest_dir`."""
    files, folders = _walk(root)
    rel = lambda p: relative(p, manifest_dir)  # noqa: E731 - short local alias
    draft = ManifestDraft(
        name=name or root.resolve().name or "deployment",
        source=f"the folder {rel(root)} (fmfl-audit init)",
    )
    det = Detection(draft=draft)
    used: set[Path] = set()
    checkpoints = [f for f in folders if _is_checkpoint(f)]
    inside_ckpt = {p for c in checkpoints for p in files if c in p.parents}
    _checkpoints(det, checkpoints, rel)
    client_dirs = _client_dirs(root, folders)
    for cdir in client_dirs:
        det.draft.clients.append(_client(cdir, files, used, rel))
    _updates(det, files, used, rel)
    # A system prompt often sits in the FM's folder; nothing else inside a checkpoint is an input.
    rest = [
        f
        for f in files
        if f not in used and (f not in inside_ckpt or f.suffix.lower() in {".txt", ".md"})
    ]
    _top_level(det, rest, used, rel)
    det.found.append(f"{len(det.draft.clients)} client(s)")
    for f in files:
        if f not in used and f not in inside_ckpt and f.suffix.lower() in DATA | {".safetensors"}:
            det.unplaced.append(rel(f))
    return det


def _walk(root: Path) -> tuple[list[Path], list[Path]]:
    files: list[Path] = []
    folders: list[Path] = []
    stack = [root]
    while stack and len(files) < MAX_FILES:
        here = stack.pop()
        try:
            entries = sorted(here.iterdir())
        except OSError:
            continue
        for p in entries:
            if p.is_symlink():
                continue
            if p.is_dir() and p.name not in SKIP_DIRS and not p.name.startswith("."):
                folders.append(p)
                stack.append(p)
            elif p.is_file():
                files.append(p)
    return sorted(files), sorted(folders)


def _is_checkpoint(folder: Path) -> bool:
    if not (folder / "config.json").is_file() and not (folder / "adapter_config.json").is_file():
        return False
    return any(next(folder.glob(pattern), None) for pattern in (*WEIGHTS, "adapter_model.*"))


def _architecture(folder: Path) -> str | None:
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    archs = config.get("architectures") if isinstance(config, dict) else None
    if not archs:
        return None
    arch = str(archs[0])
    if arch.endswith("ForCausalLM"):
        return "causal-lm"
    if arch.endswith("ForSequenceClassification"):
        return "sequence-classifier"
    return None


def _checkpoints(det: Detection, checkpoints: list[Path], rel: Any) -> None:
    fm = det.draft.fm
    for c in checkpoints:
        lname = c.name.lower()
        if re.search(r"reference|^base|[-_]base", lname) and fm.reference_checkpoint is None:
            fm.reference_checkpoint = rel(c)
            det.found.append(f"FM reference checkpoint {rel(c)}")
        elif re.search(r"^fm|foundation|teacher|[-_]fm", lname) and fm.checkpoint is None:
            fm.checkpoint = rel(c)
            fm.name = fm.name or c.name
            det.found.append(f"FM checkpoint {rel(c)}")
        elif (kind := _architecture(c)) is not None:
            model = ModelDraft(name=safe_client_id(c.name), kind=kind, checkpoint=rel(c))
            det.draft.models.append(model)
            det.found.append(f"{kind} model {rel(c)}")
        else:
            det.unplaced.append(f"{rel(c)}/ (checkpoint of an unknown architecture)")


def _client_dirs(root: Path, folders: list[Path]) -> list[Path]:
    by_parent = [f for f in folders if f.parent.name.lower() in CLIENT_PARENTS]
    if by_parent:
        return by_parent
    return [f for f in folders if re.match(r"(client|site)[-_]?\w", f.name.lower()) and f != root]


def _client(cdir: Path, files: list[Path], used: set[Path], rel: Any) -> ClientDraft:
    draft = ClientDraft(id=safe_client_id(cdir.name))
    mine = [f for f in files if cdir in f.parents and f not in used]
    for f in mine:
        stem = f.stem.lower()
        if f.suffix.lower() == ".safetensors" and "update" not in draft.files:
            draft.files["update"] = rel(f)
        elif f.suffix.lower() == ".json" and "fingerprint" in stem:
            draft.files.setdefault("fingerprint", rel(f))
        elif f.suffix.lower() in DATA:
            kind = next((k for k, pat in CLIENT_KINDS if pat.search(stem)), None)
            if kind is None or kind in draft.files:
                continue
            draft.files[kind] = data_ref(f, rel)
        else:
            continue
        used.add(f)
    return draft


def data_ref(path: Path, rel: Any) -> Any:
    """A manifest data reference: the path, plus `text_field` when the text is not in `text`."""
    fields = first_record_fields(path)
    if fields is None or "text" in fields:
        return rel(path)
    text = next((f for f in TEXT_FIELDS if f in fields), None)
    return {"path": rel(path), "text_field": text} if text else rel(path)


def first_record_fields(path: Path) -> list[str] | None:
    """Column names of a data file from its header or first record; None if unreadable."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            import pyarrow.parquet as pq

            return list(pq.read_schema(path).names)
        with path.open(encoding="utf-8", errors="replace") as fh:
            line = fh.readline()
    except (OSError, ValueError):
        return None
    if suffix == ".csv":
        import csv

        return next(csv.reader([line]), None)
    try:
        rec = json.loads(line)
    except ValueError:
        return None
    return list(rec) if isinstance(rec, dict) else None


def _updates(det: Detection, files: list[Path], used: set[Path], rel: Any) -> None:
    """`updates/<client>.safetensors` or `updates/round-N/<client>.safetensors` (latest N)."""
    latest: dict[str, tuple[int, Path]] = {}
    for f in files:
        if f in used or f.suffix.lower() != ".safetensors" or "updates" not in f.parts:
            continue
        m = re.search(r"round[-_]?(\d+)", f.parent.name)
        rnd = int(m.group(1)) if m else -1
        cid = safe_client_id(f.stem)
        if cid not in latest or rnd > latest[cid][0]:
            latest[cid] = (rnd, f)
        used.add(f)
    clients = {c.id: c for c in det.draft.clients}
    for cid, (rnd, f) in sorted(latest.items()):
        client = clients.get(cid)
        if client is None:
            client = ClientDraft(id=cid)
            det.draft.clients.append(client)
            clients[cid] = client
        if "update" not in client.files:
            client.files["update"] = rel(f)
            if rnd >= 0:
                client.notes.append(f"update: round {rnd}, the latest found")


def _top_level(det: Detection, rest: list[Path], used: set[Path], rel: Any) -> None:
    fm = det.draft.fm
    for f in rest:
        stem = f.stem.lower()
        if f.suffix.lower() in {".txt", ".md"} and re.search(r"system[-_ ]?prompt", stem):
            if fm.system_prompt is None:
                fm.system_prompt = rel(f)
                det.found.append(f"system prompt {rel(f)}")
                used.add(f)
            continue
        if f.suffix.lower() not in DATA:
            continue
        fields = first_record_fields(f) or []
        if {"round", "client_id"} <= set(fields) and det.draft.participation_log is None:
            det.draft.participation_log = rel(f)
            det.found.append(f"participation log {rel(f)}")
            _clients_from_log(det, f)
        elif {"y_true", "y_pred"} <= set(fields):
            name = safe_client_id(f.stem)
            det.draft.models.append(ModelDraft(name=name, kind="predictions", predictions=rel(f)))
            det.found.append(f"model predictions {rel(f)}")
        elif "teacher" in stem and fm.teacher_predictions is None:
            fm.teacher_predictions = rel(f)
            det.found.append(f"teacher predictions {rel(f)}")
        elif re.search(r"eval", stem) and det.draft.evaluation is None:
            det.draft.evaluation = rel(f)
            det.found.append(f"evaluation data {rel(f)}")
        else:
            continue
        used.add(f)


def _clients_from_log(det: Detection, path: Path) -> None:
    """Add the clients a participation log names (up to 10,000 distinct ids)."""
    known = {c.id for c in det.draft.clients}
    for cid in sorted(_log_client_ids(path)):
        sid = safe_client_id(cid)
        if sid not in known:
            det.draft.clients.append(ClientDraft(id=sid))
            known.add(sid)


def _log_client_ids(path: Path) -> set[str]:
    ids: set[str] = set()
    for rec in _records(path):
        if "client_id" in rec and rec["client_id"] not in (None, ""):
            ids.add(str(rec["client_id"]))
            if len(ids) >= 10000:
                break
    return ids


def _records(path: Path) -> Iterator[dict[str, Any]]:
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        for batch in pq.ParquetFile(path).iter_batches(columns=["client_id"]):
            yield from batch.to_pylist()
        return
    with path.open(encoding="utf-8", errors="replace", newline="") as fh:
        if suffix == ".csv":
            import csv

            yield from csv.DictReader(fh)
            return
        for line in fh:
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if isinstance(rec, dict):
                yield rec
