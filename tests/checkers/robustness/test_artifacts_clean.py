"""FMFL-R04 must not fire on ordinary checkpoints: torch files, HF folders, stories260K."""

from __future__ import annotations

import io
import json
import shutil
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.conftest import minimal_manifest

from fmfl_audit.inputs.checkpoints import checkpoint_digest
from fmfl_audit.models import Outcome, Severity

RunRule = Callable[..., Any]


def _pinned(tmp_path: Path, rel: str) -> dict[str, Any]:
    sha = checkpoint_digest(tmp_path / rel)
    return minimal_manifest(
        models=[{"name": "m", "kind": "causal-lm", "checkpoint": {"path": rel, "sha256": sha}}]
    )


def _state() -> dict[str, Any]:
    import torch

    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.LayerNorm(3)).state_dict()


def test_torch_checkpoints_are_only_told_to_move_to_safetensors(
    tmp_path: Path, make_deployment: Callable[..., Path], run_rule: RunRule
) -> None:
    import torch

    folder = tmp_path / "m"
    folder.mkdir()
    torch.save(_state(), folder / "model.pt")
    torch.save(_state(), folder / "legacy.pth.tar", _use_new_zipfile_serialization=False)
    run = run_rule(make_deployment(_pinned(tmp_path, "m")), "FMFL-R04")
    run.assert_exact(
        {("model:m", "pickle-format:model.pt"), ("model:m", "pickle-format:legacy.pth.tar")}
    )
    assert {f.severity for f in run.findings} == {Severity.LOW}
    assert run.result.metrics["model:m"]["pickle_files"] == 2
    quiet = run_rule(
        make_deployment(_pinned(tmp_path, "m")), "FMFL-R04", report_pickle_format=False
    )
    quiet.assert_exact(set())


def _safetensors(path: Path, tensors: dict[str, Any]) -> None:
    from safetensors.torch import save_file

    save_file(tensors, str(path))


def test_sharded_hf_folder_with_text_files_passes(
    tmp_path: Path, make_deployment: Callable[..., Path], run_rule: RunRule
) -> None:
    import numpy as np

    folder = tmp_path / "m"
    folder.mkdir()
    state = _state()
    names = sorted(state)
    _safetensors(folder / "model-00001-of-00002.safetensors", {k: state[k] for k in names[:2]})
    _safetensors(folder / "model-00002-of-00002.safetensors", {k: state[k] for k in names[2:]})
    weight_map = {k: f"model-0000{1 + (i >= 2)}-of-00002.safetensors" for i, k in enumerate(names)}
    (folder / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {"total_size": 76}, "weight_map": weight_map})
    )
    (folder / "config.json").write_text(json.dumps({"model_type": "llama", "vocab_size": 32}))
    (folder / "tokenizer_config.json").write_text(json.dumps({"model_max_length": 512}))
    (folder / "merges.txt").write_text("#version: 0.2\nc o\nco s\n")
    (folder / "notes.yaml").write_text("checkpoint: tiny\ncreated: today\n")
    (folder / "README.md").write_text("card\ncreated from stories\n(c) the authors\n")
    buf = io.BytesIO()
    np.savez(buf, a=np.arange(3))
    (folder / "stats.npz").write_bytes(buf.getvalue())
    run = run_rule(make_deployment(_pinned(tmp_path, "m")), "FMFL-R04")
    run.assert_exact(set())
    assert run.result.outcome == Outcome.PASSED
    metrics = run.result.metrics["model:m"]
    assert (metrics["files"], metrics["safetensors_files"], metrics["pickle_files"]) == (9, 2, 0)


def test_stories260k_copy_passes(
    tmp_path: Path, shared_data: Path, make_deployment: Callable[..., Path], run_rule: RunRule
) -> None:
    shutil.copytree(shared_data / "stories260K", tmp_path / "fm")
    manifest = minimal_manifest(
        foundation_model={
            "name": "stories260K",
            "checkpoint": {"path": "fm", "sha256": checkpoint_digest(tmp_path / "fm")},
        }
    )
    run = run_rule(make_deployment(manifest), "FMFL-R04")
    run.assert_exact(set())
    metrics = run.result.metrics["fm"]
    assert metrics["digest_matches"] is True and metrics["safetensors_files"] == 1
    assert (metrics["pickle_files"], metrics["unscanned_files"]) == (0, 0)


def test_safetensors_content_is_recognised_under_any_name(
    tmp_path: Path, make_deployment: Callable[..., Path], run_rule: RunRule
) -> None:
    raw = json.dumps({"w": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}).encode()
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "weights.bin").write_bytes(struct.pack("<Q", len(raw)) + raw + b"\0" * 8)
    run = run_rule(make_deployment(_pinned(tmp_path, "m")), "FMFL-R04")
    run.assert_exact({("model:m", "safetensors:weights.bin")})
    assert (
        "w: 8 bytes for shape [3] F32 (expected 12)"
        in run.one("model:m", "safetensors:weights.bin").message
    )
