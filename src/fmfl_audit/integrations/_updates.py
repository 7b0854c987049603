"""Client updates and global snapshots on disk: safetensors, a size cap, the last N rounds kept.

Framework-neutral: callers hand over `{name: numpy array}` mappings. An update is the difference
between what a client sent and the global arrays of the round it trained on, so FMFL-R12 compares
like with like; only floating-point arrays are kept (integer buffers such as a batch-norm step
counter are bookkeeping, not learned parameters, and would swamp the norms).
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_MAX_UPDATE_BYTES = 512 * 1024**2


@dataclass(frozen=True)
class Saved:
    """What `UpdateStore.save_update` did: the file (or None) and why not, when not."""

    path: Path | None
    skipped: str | None
    nbytes: int


def difference(
    sent: Mapping[str, Any], base: Mapping[str, Any]
) -> tuple[dict[str, Any], list[str]]:
    """`sent - base` per floating-point array name; also the names left out and why."""
    import numpy as np

    out: dict[str, Any] = {}
    left_out: list[str] = []
    for name, value in sent.items():
        arr = np.asarray(value)
        if not np.issubdtype(arr.dtype, np.floating):
            left_out.append(f"{name} (not floating point)")
        elif name not in base:
            left_out.append(f"{name} (not in the global arrays)")
        elif np.shape(base[name]) != arr.shape:
            left_out.append(f"{name} (shape {arr.shape} vs global {np.shape(base[name])})")
        else:
            out[name] = np.ascontiguousarray(arr - np.asarray(base[name], dtype=arr.dtype))
    return out, left_out


class UpdateStore:
    """Writes `updates/round-NNNN/<client>.safetensors` and `global/round-NNNN.safetensors`."""

    def __init__(
        self,
        root: Path,
        *,
        max_update_bytes: int | None = DEFAULT_MAX_UPDATE_BYTES,
        keep_last_rounds: int | None = None,
    ) -> None:
        if keep_last_rounds is not None and keep_last_rounds < 1:
            raise ValueError("keep_last_rounds must be at least 1 (or None to keep every round)")
        if max_update_bytes is not None and max_update_bytes < 1:
            raise ValueError("max_update_bytes must be positive (or None for no cap)")
        self.root = root
        self.max_update_bytes = max_update_bytes
        self.keep_last_rounds = keep_last_rounds

    def update_path(self, server_round: int, client_id: str) -> Path:
        """Where a client's update of a round goes."""
        return self.root / "updates" / f"round-{server_round:04d}" / f"{client_id}.safetensors"

    def global_path(self, server_round: int) -> Path:
        """Where the global arrays after a round go (round 0: the initial arrays)."""
        return self.root / "global" / f"round-{server_round:04d}.safetensors"

    def save_update(
        self, server_round: int, client_id: str, arrays: Mapping[str, Any], meta: Mapping[str, Any]
    ) -> Saved:
        """Write one update unless it is empty or over the size cap."""
        nbytes = sum(int(a.nbytes) for a in arrays.values())
        if not arrays:
            return Saved(None, "no floating-point array matched the global arrays", 0)
        if self.max_update_bytes is not None and nbytes > self.max_update_bytes:
            return Saved(
                None, f"{nbytes} bytes is over the cap of {self.max_update_bytes} bytes", nbytes
            )
        path = self.update_path(server_round, client_id)
        _save(path, arrays, meta)
        return Saved(path, None, nbytes)

    def save_global(self, server_round: int, arrays: Mapping[str, Any]) -> Path:
        """Write the global arrays after `server_round`."""
        import numpy as np

        path = self.global_path(server_round)
        tensors = {k: np.ascontiguousarray(v) for k, v in arrays.items()}
        _save(path, tensors, {"round": server_round})
        return path

    def prune(self, current_round: int) -> list[int]:
        """Delete rounds older than the last `keep_last_rounds`; returns the rounds removed."""
        if self.keep_last_rounds is None:
            return []
        oldest_kept = current_round - self.keep_last_rounds + 1
        removed: set[int] = set()
        for folder in (self.root / "updates").glob("round-*"):
            rnd = int(folder.name.removeprefix("round-"))
            if rnd < oldest_kept:
                shutil.rmtree(folder)
                removed.add(rnd)
        for file in (self.root / "global").glob("round-*.safetensors"):
            rnd = int(file.stem.removeprefix("round-"))
            if rnd < oldest_kept:
                file.unlink()
                removed.add(rnd)
        return sorted(removed)


def _save(path: Path, tensors: Mapping[str, Any], meta: Mapping[str, Any]) -> None:
    from safetensors.numpy import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(dict(tensors), str(path), metadata={k: str(v) for k, v in meta.items()})
