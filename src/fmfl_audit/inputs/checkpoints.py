"""Safe access to model checkpoints: digests, safetensors, and transformers loading.

An audit tool must never execute code from the artifacts it audits, so:
- weights are read from safetensors; a torch file is read only with `weights_only=True`;
- transformers loads with `trust_remote_code=False`, `local_files_only=True` and
  `use_safetensors=True`;
- pickle-based files (.bin, .pt, .pth, .pkl, .ckpt) are never handed to `pickle.load`.

Folder digest (what `checkpoint.sha256` pins for a folder): the sha256 of the text made of one
line per regular file under the folder, sorted by POSIX relative path, each line
`<relative path>\\0<sha256 of the file's bytes>\\n`. Symbolic links are rejected. A single file's
digest is the sha256 of its bytes.
"""

from __future__ import annotations

import hashlib
import json
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fmfl_audit.errors import InputError

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
    entries = []
    for p in path.rglob("*"):
        if p.is_symlink():
            raise InputError(f"{p}: symbolic links are not allowed inside a checkpoint")
        if p.is_file():
            entries.append(p)
    yield from sorted(entries, key=lambda p: p.relative_to(path).as_posix())


def checkpoint_digest(path: Path) -> str:
    """The documented digest of a checkpoint file or folder."""
    if path.is_file():
        return file_sha256(path)
    if not path.is_dir():
        raise InputError(f"{path}: checkpoint not found")
    h = hashlib.sha256()
    for f in iter_checkpoint_files(path):
        rel = f.relative_to(path).as_posix()
        h.update(f"{rel}\0{file_sha256(f)}\n".encode())
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
        try:
            header = json.loads(fh.read(n).decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InputError(f"{path}: safetensors header is not valid JSON ({exc})") from None
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


def _check_loadable(folder: Path) -> None:
    if not folder.is_dir():
        raise InputError(f"{folder}: expected a Hugging Face checkpoint folder")
    if not (folder / "config.json").is_file():
        raise InputError(f"{folder}: no config.json")
    if not list(folder.glob("*.safetensors")):
        raise InputError(
            f"{folder}: no safetensors weights; fmfl-audit does not unpickle checkpoints "
            "(convert with safetensors first)"
        )
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    if config.get("auto_map"):
        raise InputError(f"{folder}: config.json needs remote code (auto_map); refusing to load")


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
