"""Writing what the pipeline produced: data dumps, checkpoints, digests, the unsafe pickle."""

from __future__ import annotations

import csv
import hashlib
import json
import pickle
import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any


def write_jsonl(path: Path, rows: Iterable[Mapping[str, Any]]) -> Path:
    """Rows as JSON lines (UTF-8, non-ASCII kept), creating parent folders."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    return path


def write_csv(path: Path, rows: list[Mapping[str, Any]]) -> Path:
    """Rows as CSV with the first row's keys as header."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return path


def file_sha256(path: Path) -> str:
    """sha256 of a file's bytes."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def folder_digest(path: Path) -> str:
    """The folder digest fmfl-audit pins (see fmfl_audit.inputs.checkpoints): one line per file."""
    h = hashlib.sha256()
    files = sorted(
        (p for p in path.rglob("*") if p.is_file()), key=lambda p: p.relative_to(path).as_posix()
    )
    for f in files:
        h.update(f"{f.relative_to(path).as_posix()}\0{file_sha256(f)}\n".encode())
    return h.hexdigest()


def copy_fm(source: Path, target: Path) -> None:
    """Copy the published FM (weights, tokenizer, config and its MIT source notice)."""
    target.mkdir(parents=True, exist_ok=True)
    for name in (
        "config.json",
        "generation_config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
        "SOURCE.txt",
    ):
        shutil.copyfile(source / name, target / name)


def save_hf(model: Any, tok: Any, folder: Path, notice: Path | None = None) -> None:
    """save_pretrained with safetensors, the tokenizer, and the FM's license notice."""
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(folder), safe_serialization=True)
    tok.save_pretrained(str(folder))
    if notice is not None:
        shutil.copyfile(notice, folder / "SOURCE.txt")


def save_update(delta: Mapping[str, Any], path: Path) -> None:
    """A client's update (its weight delta of the last round it took part in) as safetensors."""
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in sorted(delta.items())}, str(path))


class _MarkerPayload:
    """Pickles into a call of `pathlib.Path.touch(marker)`: the shape of a pickle code-execution
    attack, with an inert effect. Defined only here; the builder pickles it and never unpickles."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return (Path.touch, (Path(self.marker),))


def write_unsafe_pickle(path: Path, marker: str) -> None:
    """A `training_args.bin` whose unpickling would import `pathlib` and call `Path.touch`.

    `pickle.dumps` only records the reduce tuple; nothing runs here. Nothing may ever load it.
    """
    payload = {"learning_rate": 0.003, "num_train_epochs": 2, "_resume": _MarkerPayload(marker)}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(payload, protocol=4))
