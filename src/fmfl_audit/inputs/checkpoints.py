"""Safe access to model checkpoints: digests, safetensors, and transformers loading.

An audit tool must never execute code from the artifacts it audits, so:
- weights are read from safetensors; a torch file is read only with `weights_only=True`;
- transformers loads with `trust_remote_code=False`, `local_files_only=True` and
  `use_safetensors=True`, and only after `checkpoint_safety.folder_issues` found nothing that
  would make it read outside the folder, unpickle a shard or run remote code;
- pickle-based files (.bin, .pt, .pth, .pkl, .ckpt) are never handed to `pickle.load`.

Folder digest (what `checkpoint.sha256` pins for a folder): the sha256 of the bytes made of one
line per regular file under the folder, sorted by POSIX relative path, each line
`<relative path>\\0<sha256 of the file's bytes>\\n`, the path in the bytes the file system holds
(UTF-8 for ordinary names). Symbolic links are rejected. A single file's digest is the sha256 of
its bytes.
"""

from __future__ import annotations

import hashlib
import os
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fmfl_audit.errors import InputError
from fmfl_audit.inputs.checkpoint_safety import (
    IssueKind,
    folder_issues,
    parse_json_bytes,
    read_json_file,
    walk_checkpoint,
)

PICKLE_SUFFIXES = frozenset({".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".joblib"})
_CHUNK = 1 << 20


def file_sha256(path: Path) -> str:
    """sha256 of a file's bytes, streamed."""
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def iter_checkpoint_files(path: Path) -> Iterator[Path]:
    """Regular files of a checkpoint folder in digest order; InputError on a symlink."""
    tree = walk_checkpoint(path)
    if tree.symlinks:
        raise InputError(f"{tree.symlinks[0]}: symbolic links are not allowed inside a checkpoint")
    yield from tree.files


def checkpoint_digest(path: Path) -> str:
    """The documented digest of a checkpoint file or folder."""
    if path.is_file():
        return file_sha256(path)
    if not path.is_dir():
        raise InputError(f"{path}: checkpoint not found")
    h = hashlib.sha256()
    for f in iter_checkpoint_files(path):
        rel = os.fsencode(f.relative_to(path).as_posix())
        h.update(rel + b"\0" + file_sha256(f).encode() + b"\n")
    return h.hexdigest()


def read_safetensors_header(path: Path) -> dict[str, Any]:
    """The JSON header of a safetensors file, without reading tensors. InputError when invalid."""
    size = path.stat().st_size
    with path.open("rb") as fh:
        head = fh.read(8)
        if len(head) != 8:
            raise InputError(f"{path}: too short to be a safetensors file")
        (n,) = struct.unpack("<Q", head)
        if n > min(size - 8, 100 * _CHUNK):
            raise InputError(f"{path}: safetensors header length {n} exceeds the file")
        header = parse_json_bytes(fh.read(n), what=f"{path}: safetensors header")
    if not isinstance(header, dict):
        raise InputError(f"{path}: safetensors header is not an object")
    return header


def load_state_dict(path: Path) -> dict[str, Any]:
    """Tensors of a weights file: safetensors, or a torch file with `weights_only=True`."""
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return dict(load_file(str(path)))
        except Exception as exc:  # noqa: BLE001 - safetensors raises its own error types
            raise InputError(f"{path}: cannot read safetensors ({exc})") from None
    if path.suffix in {".pt", ".pth", ".bin"}:
        import pickle

        import torch

        try:
            obj = torch.load(str(path), map_location="cpu", weights_only=True)
        except (pickle.UnpicklingError, RuntimeError, OSError) as exc:
            raise InputError(
                f"{path}: refused to load: not a plain weights file ({str(exc).splitlines()[0]})"
            ) from None
        if not isinstance(obj, dict):
            raise InputError(f"{path}: expected a state dict, found {type(obj).__name__}")
        return obj
    raise InputError(f"{path}: unsupported weights format {path.suffix!r}")


def weights_files(folder: Path) -> list[Path]:
    """Weight files of an HF checkpoint folder (safetensors first)."""
    st = sorted(folder.glob("*.safetensors"))
    return st if st else sorted(p for p in folder.iterdir() if p.suffix in PICKLE_SUFFIXES)


def resolve_device(device: str) -> str:
    """`auto` -> `cuda` when available else `cpu`; explicit values are checked."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise InputError("--device cuda was asked for but no CUDA device is available")
    return device


_REFUSED = frozenset(
    {
        IssueKind.INDEX_ESCAPE,
        IssueKind.INDEX_NOT_SAFETENSORS,
        IssueKind.INDEX_MISSING,
        IssueKind.INDEX_INVALID,
        IssueKind.SYMLINK_OUT,
        IssueKind.PATH_ESCAPE,
        IssueKind.CONFIG_INVALID,
        IssueKind.SPECIAL_FILE,
        IssueKind.UNREADABLE,
        IssueKind.REMOTE_CODE,
    }
)
"""Folder issues that make `load_hf_model` refuse: transformers would read outside the folder,
unpickle a shard, block on a FIFO or fail on a config. Python files alone are not refused
(transformers never imports them without `auto_map`), but `auto_map` and friends are."""


def _check_loadable(folder: Path) -> None:
    """Refuse, before transformers sees it, a folder it could not load safely."""
    if not folder.is_dir():
        raise InputError(f"{folder}: expected a Hugging Face checkpoint folder")
    config = folder / "config.json"
    if config.is_symlink() or not config.is_file():
        raise InputError(f"{folder}: no config.json")
    if (folder / "adapter_config.json").exists():
        # transformers (with peft) would load the base model the adapter names, from anywhere.
        raise InputError(f"{folder}: adapter folders are not loaded; merge the adapter first")
    if not list(folder.glob("*.safetensors")):
        raise InputError(
            f"{folder}: no safetensors weights; fmfl-audit does not unpickle checkpoints "
            "(convert with safetensors first)"
        )
    for issue in folder_issues(walk_checkpoint(folder)):
        if issue.kind == IssueKind.REMOTE_CODE:
            raise InputError(f"{folder}: needs remote code ({issue.message}); refusing to load")
        if issue.kind in _REFUSED:
            raise InputError(f"{folder}: refusing to load: {issue.message}")
    if not isinstance(read_json_file(config, what=f"{folder}/config.json"), dict):
        raise InputError(f"{folder}/config.json: not a JSON object")


def load_hf_model(folder: Path, *, kind: str, device: str = "cpu") -> tuple[Any, Any]:
    """(model, tokenizer) for a causal LM or sequence classifier, loaded safely and in eval mode."""
    _check_loadable(folder)
    import transformers

    # The library never prints: transformers' weight-loading bars would go to stderr.
    transformers.utils.logging.disable_progress_bar()

    cls = (
        transformers.AutoModelForCausalLM
        if kind == "causal-lm"
        else transformers.AutoModelForSequenceClassification
    )
    try:
        tok = transformers.AutoTokenizer.from_pretrained(
            str(folder), trust_remote_code=False, local_files_only=True
        )
        model: Any = cls.from_pretrained(
            str(folder), trust_remote_code=False, local_files_only=True, use_safetensors=True
        )
    except (OSError, ValueError, KeyError) as exc:
        raise InputError(f"{folder}: cannot load model ({exc})") from None
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token or tok.unk_token
    if model.config.pad_token_id is None:
        # Llama-style classifiers find each row's last token through the pad id; batching needs one.
        model.config.pad_token_id = tok.pad_token_id
    model.to(resolve_device(device))
    model.eval()
    return model, tok
