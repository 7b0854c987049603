"""What makes a checkpoint folder unsafe to load, found without loading it.

Shared by FMFL-R04 (which reports every issue) and `load_hf_model` (which refuses a folder with
any issue that would make transformers read or run something the audit did not cover):

- index files (`*.index.json`) whose `weight_map` points outside the folder, through a symbolic
  link out of it, at a missing file, or (for a safetensors index) at a non-safetensors file:
  transformers follows such an entry and `torch.load`s whatever it names;
- symbolic links (out of the folder: the loaded bytes are not the audited ones), FIFOs and other
  special files, names that are not valid UTF-8, entries that cannot be read;
- configs asking for remote code (`auto_map`, `trust_remote_code`, `custom_pipelines` in any
  `*config*.json`), Python files anywhere in the tree, and `*_file` paths in configs that leave
  the folder.

JSON is parsed with limits (size, nesting depth, integer digits) so a crafted header or config is
reported, never a crash.
"""

from __future__ import annotations

import enum
import json
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from fmfl_audit.errors import InputError

MAX_JSON_DEPTH = 64
"""Nesting a checkpoint's JSON may have (real configs and safetensors headers use under 10)."""
MAX_JSON_BYTES = 64 << 20
MAX_INT_DIGITS = 40
_PY_SUFFIXES = frozenset({".py", ".pyc", ".pyo", ".pyw"})
_REMOTE_CODE_KEYS = ("auto_map", "trust_remote_code", "custom_pipelines")
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)


def display_name(rel: str) -> str:
    """A relative path safe to print and hash: undecodable bytes shown as `\\xNN`."""
    return rel.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _max_depth(raw: bytes) -> int:
    import numpy as np

    # Strings may hold brackets: blank them, then depth is the running sum of opens minus closes.
    body = np.frombuffer(_JSON_STRING.sub(b'""', raw), dtype=np.uint8)
    opens = (body == ord("[")) | (body == ord("{"))
    closes = (body == ord("]")) | (body == ord("}"))
    steps = opens.astype(np.int64) - closes.astype(np.int64)
    return int(np.cumsum(steps).max(initial=0))


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise ValueError(f"an integer with {len(text.lstrip('-'))} digits")
    return int(text)


def parse_json_bytes(raw: bytes, *, what: str) -> Any:
    """JSON from bytes, or InputError naming `what`; limits depth and integer size first."""
    depth = _max_depth(raw)
    if depth > MAX_JSON_DEPTH:
        raise InputError(f"{what}: JSON nested {depth} levels deep (limit {MAX_JSON_DEPTH})")
    try:
        return json.loads(raw.decode("utf-8"), parse_int=_bounded_int)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise InputError(f"{what}: not valid JSON ({exc})") from None


def read_json_file(path: Path, *, what: str) -> Any:
    """A JSON file parsed with `parse_json_bytes`; InputError when too large or invalid."""
    try:
        size = path.stat().st_size
        if size > MAX_JSON_BYTES:
            raise InputError(f"{what}: {size} bytes, over the {MAX_JSON_BYTES >> 20} MiB limit")
        raw = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{what}: cannot read ({exc.strerror or exc})") from None
    return parse_json_bytes(raw, what=what)


@dataclass(frozen=True)
class CheckpointTree:
    """Entries of a checkpoint folder, walked without following links; each list sorted by POSIX
    relative path."""

    root: Path
    files: tuple[Path, ...]
    symlinks: tuple[Path, ...]
    special: tuple[Path, ...]
    """FIFOs, sockets, devices: never opened (reading a FIFO blocks)."""
    unreadable: tuple[tuple[Path, str], ...] = ()

    def rel(self, path: Path) -> str:
        """`path` relative to the root, POSIX style (may hold undecodable bytes)."""
        return path.relative_to(self.root).as_posix()


def walk_checkpoint(root: Path) -> CheckpointTree:
    """Walk a folder: regular files, symlinks (file or folder, not followed), special files."""
    files: list[Path] = []
    links: list[Path] = []
    special: list[Path] = []
    errors: list[tuple[Path, str]] = []

    def onerror(exc: OSError) -> None:
        errors.append((Path(exc.filename or root), exc.strerror or str(exc)))

    for base, dirs, names in os.walk(root, onerror=onerror, followlinks=False):
        for d in dirs:
            if (Path(base) / d).is_symlink():
                links.append(Path(base) / d)
        for n in names:
            p = Path(base) / n
            try:
                mode = p.lstat().st_mode
            except OSError as exc:
                errors.append((p, exc.strerror or str(exc)))
                continue
            if stat.S_ISLNK(mode):
                links.append(p)
            elif stat.S_ISREG(mode):
                files.append(p)
            else:
                special.append(p)

    def key(p: Path) -> str:
        return p.relative_to(root).as_posix()

    return CheckpointTree(
        root=root,
        files=tuple(sorted(files, key=key)),
        symlinks=tuple(sorted(links, key=key)),
        special=tuple(sorted(special, key=key)),
        unreadable=tuple(sorted(errors, key=lambda e: str(e[0]))),
    )


class IssueKind(str, enum.Enum):
    """What is wrong with a checkpoint folder, worst first within each group."""

    INDEX_ESCAPE = "index-escape"
    """An index entry leaves the folder (absolute, `..`, or through a link out)."""
    INDEX_NOT_SAFETENSORS = "index-not-safetensors"
    """A safetensors index maps a weight to a file that is not safetensors."""
    INDEX_MISSING = "index-missing"
    INDEX_INVALID = "index-invalid"
    SYMLINK_OUT = "symlink-out"
    SYMLINK = "symlink"
    PATH_ESCAPE = "path-escape"
    """A config's `*_file` value points outside the folder."""
    REMOTE_CODE = "remote-code"
    """A config asks for code shipped with the checkpoint (`auto_map` ...)."""
    PYTHON_FILE = "python-file"
    CONFIG_INVALID = "config-invalid"
    SPECIAL_FILE = "special-file"
    FILE_NAME = "file-name"
    UNREADABLE = "unreadable"


@dataclass(frozen=True)
class FolderIssue:
    """One problem with a checkpoint folder: its kind, the file it is about, what is wrong."""

    kind: IssueKind
    where: str
    """Relative path of the file the issue is about (display-safe)."""
    message: str


@dataclass
class _Collector:
    tree: CheckpointTree
    issues: list[FolderIssue] = field(default_factory=list)

    def add(self, kind: IssueKind, path: Path, message: str) -> None:
        where = display_name(self.tree.rel(path)) if path != self.tree.root else "."
        self.issues.append(FolderIssue(kind=kind, where=where, message=message))


def _inside(root: Path, path: Path) -> bool:
    real_root = os.path.realpath(root)
    return os.path.commonpath([real_root, os.path.realpath(path)]) == real_root


def _leaves(value: str) -> bool:
    p = PurePosixPath(value.replace("\\", "/"))
    return p.is_absolute() or ".." in p.parts or "\0" in value


def _json(c: _Collector, path: Path, invalid: IssueKind) -> tuple[str, Any]:
    """(display path, parsed JSON); None and an `invalid` issue when it cannot be parsed."""
    rel = display_name(c.tree.rel(path))
    try:
        return rel, read_json_file(path, what=rel)
    except InputError as exc:
        c.add(invalid, path, str(exc))
        return rel, None


def _check_index(c: _Collector, path: Path) -> None:
    rel, data = _json(c, path, IssueKind.INDEX_INVALID)
    if data is None:
        return
    weight_map = data.get("weight_map") if isinstance(data, dict) else None
    if not isinstance(weight_map, dict) or not all(isinstance(v, str) for v in weight_map.values()):
        c.add(IssueKind.INDEX_INVALID, path, f"{rel}: weight_map is not a map of file names")
        return
    safetensors_index = path.name.endswith(".safetensors.index.json")
    for target in sorted(set(weight_map.values())):
        shown = display_name(target)[:200]
        full = path.parent / target
        if _leaves(target) or not _inside(c.tree.root, full):
            c.add(
                IssueKind.INDEX_ESCAPE, path, f"{rel} maps weights to {shown!r}, outside the folder"
            )
        elif not full.is_file():
            c.add(
                IssueKind.INDEX_MISSING, path, f"{rel} maps weights to {shown!r}, which is missing"
            )
        elif safetensors_index and not target.endswith(".safetensors"):
            c.add(
                IssueKind.INDEX_NOT_SAFETENSORS,
                path,
                f"{rel} maps weights to {shown!r}, not a safetensors file (it would be unpickled)",
            )


def _check_config(c: _Collector, path: Path) -> None:
    rel, data = _json(c, path, IssueKind.CONFIG_INVALID)
    if not isinstance(data, dict):
        return
    for key in _REMOTE_CODE_KEYS:
        if data.get(key):
            c.add(IssueKind.REMOTE_CODE, path, f"{rel} sets {key}")
    for key, value in data.items():
        values = value if isinstance(value, list) else [value]
        if key.endswith(("_file", "_files")) and any(
            isinstance(v, str) and _leaves(v) for v in values
        ):
            c.add(IssueKind.PATH_ESCAPE, path, f"{rel}: {key} points outside the folder")


def folder_issues(tree: CheckpointTree) -> list[FolderIssue]:
    """Every issue of the folder, in a stable order (by kind group, then path)."""
    c = _Collector(tree)
    for p, reason in tree.unreadable:
        c.add(IssueKind.UNREADABLE, p, f"cannot read {display_name(c.tree.rel(p))}: {reason}")
    for p in tree.symlinks:
        out = not _inside(tree.root, p)
        c.add(
            IssueKind.SYMLINK_OUT if out else IssueKind.SYMLINK,
            p,
            f"{display_name(tree.rel(p))} is a symbolic link"
            + (" out of the checkpoint folder" if out else " (the digest cannot cover it)"),
        )
    for p in tree.special:
        c.add(IssueKind.SPECIAL_FILE, p, f"{display_name(tree.rel(p))} is not a regular file")
    for p in tree.files:
        rel = tree.rel(p)
        if display_name(rel) != rel:
            c.add(IssueKind.FILE_NAME, p, f"{display_name(rel)}: file name is not valid UTF-8")
        if p.name.endswith(".index.json"):
            _check_index(c, p)
        elif p.suffix == ".json" and "config" in p.name:
            _check_config(c, p)
        if p.suffix.lower() in _PY_SUFFIXES:
            c.add(IssueKind.PYTHON_FILE, p, f"Python file {display_name(rel)}")
    return c.issues
