"""FMFL-R04 (artifact integrity, real malicious pickles never executed) and FMFL-R05 (tampering)."""

from __future__ import annotations

import json
import os
import pathlib
import pickle
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import minimal_manifest

from fmfl_audit.checkers.robustness.artifacts import safetensors_problems
from fmfl_audit.inputs.checkpoints import checkpoint_digest
from fmfl_audit.inputs.pickles import Danger, scan_pickle
from fmfl_audit.models import Outcome, Severity

RunRule = Callable[..., Any]


class _SystemPayload:
    """Unpickling this would run a shell command creating the marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (f"touch {self.marker}",))


class _TouchPayload:
    """Unpickling this would call pathlib.Path.touch on the marker."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (pathlib.Path.touch, (pathlib.Path(self.marker),))


def _tensors(**overrides: Any) -> dict[str, Any]:
    import torch

    g = torch.Generator().manual_seed(0)
    base = {
        "embed.weight": torch.randn(8, 4, generator=g),
        "layer.weight": torch.randn(4, 4, generator=g),
        "layer.bias": torch.zeros(4),
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def _save(path: Path, tensors: dict[str, Any]) -> Path:
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path))
    return path


def _hf_folder(folder: Path, tensors: dict[str, Any], config: dict[str, Any] | None = None) -> Path:
    _save(folder / "model.safetensors", tensors)
    (folder / "config.json").write_text(json.dumps(config or {"model_type": "tiny"}))
    return folder


def _bad_offsets(path: Path) -> Path:
    header = {
        "w": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 12]},
        "v": {"dtype": "Q9", "shape": [1], "data_offsets": [12, 16]},
    }
    raw = json.dumps(header).encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + b"\0" * 16)
    return path


def test_malicious_pickles_are_detected_and_never_executed(tmp_path: Path) -> None:
    marker = tmp_path / "PWNED"
    evil = tmp_path / "evil.bin"
    evil.write_bytes(pickle.dumps({"weights": _SystemPayload(marker)}))
    touch = tmp_path / "weights.dat"
    touch.write_bytes(pickle.dumps(_TouchPayload(marker)))
    with evil.open("rb") as fh:
        report = scan_pickle(fh)
    assert [(i.module, i.name) for i in report.dangerous] == [("posix", "system")]
    assert report.error is None
    with touch.open("rb") as fh:
        report = scan_pickle(fh)
    # Path.touch writes to the file system: dangerous, not merely outside the allowlist.
    assert [(i.dotted, i.danger) for i in report.imports] == [
        ("pathlib.Path.touch", Danger.DANGEROUS),
        ("pathlib.PosixPath", Danger.DANGEROUS),
    ]
    assert not marker.exists()


def test_r04_reports_every_integrity_problem(
    tmp_path: Path, make_deployment: Callable[..., Path], run_rule: RunRule
) -> None:
    marker = tmp_path / "PWNED"
    fm = _hf_folder(tmp_path / "fm", _tensors(), {"model_type": "tiny", "auto_map": {"x": "y"}})
    ref = _hf_folder(tmp_path / "ref", _tensors())
    (ref / "extra.dat").write_bytes(pickle.dumps(_TouchPayload(marker)))
    (tmp_path / "models").mkdir()
    (tmp_path / "models/global.bin").write_bytes(pickle.dumps({"w": _SystemPayload(marker)}))
    _bad_offsets(tmp_path / "clients/a/update.safetensors")
    _save(tmp_path / "clients/b/update.safetensors", _tensors())
    manifest = minimal_manifest(
        foundation_model={
            "name": "tiny",
            "checkpoint": {"path": "fm", "sha256": "0" * 64},
            "reference_checkpoint": "ref",
        },
        models=[{"name": "global", "kind": "causal-lm", "checkpoint": "models/global.bin"}],
        clients=[
            {"id": "a", "update": "clients/a/update.safetensors"},
            {"id": "b", "update": "clients/b/update.safetensors"},
        ],
    )
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    run = run_rule(make_deployment(manifest), "FMFL-R04")
    run.assert_exact(
        {
            ("fm", "digest-mismatch"),
            ("fm", "remote-code"),
            ("fm:reference", "unpinned"),
            ("fm:reference", "unsafe-pickle:extra.dat"),
            ("model:global", "unpinned"),
            ("model:global", "unsafe-pickle:global.bin"),
            ("client:a:update", "safetensors:update.safetensors"),
        }
    )
    assert not marker.exists()
    assert all(p.read_bytes() == b for p, b in before.items())
    unsafe = run.one("model:global", "unsafe-pickle:global.bin")
    assert unsafe.severity == Severity.CRITICAL and "posix.system" in unsafe.message
    assert run.one("fm:reference", "unsafe-pickle:extra.dat").severity == Severity.CRITICAL
    bad = run.one("client:a:update", "safetensors:update.safetensors")
    assert "unknown dtype 'Q9'" in " ".join(e.excerpt or "" for e in bad.evidence)
    m = run.result.metrics
    assert m["fm"]["digest_matches"] is False and m["fm"]["sha256"] == checkpoint_digest(fm)
    assert m["model:global"]["dangerous_imports"] == 1
    assert m["client:b:update"] == {
        "path": "clients/b/update.safetensors",
        "files": 1,
        "pickle_files": 0,
        "safetensors_files": 1,
        "unscanned_files": 0,
        "sha256": checkpoint_digest(tmp_path / "clients/b/update.safetensors"),
        "pinned": False,
        "digest_matches": None,
        "dangerous_imports": 0,
    }


def test_r04_passes_pinned_safetensors(
    tmp_path: Path, make_deployment: Callable[..., Path], run_rule: RunRule
) -> None:
    fm = _hf_folder(tmp_path / "fm", _tensors())
    manifest = minimal_manifest(
        foundation_model={
            "name": "tiny",
            "checkpoint": {"path": "fm", "sha256": checkpoint_digest(fm)},
        }
    )
    run = run_rule(make_deployment(manifest), "FMFL-R04")
    run.assert_exact(set())
    assert run.result.outcome == Outcome.PASSED
    assert run.result.metrics["fm"]["digest_matches"] is True


def test_safetensors_header_validation(tmp_path: Path) -> None:
    good = _save(tmp_path / "good.safetensors", _tensors())
    assert safetensors_problems(good) == []
    problems = safetensors_problems(_bad_offsets(tmp_path / "bad.safetensors"))
    assert problems == [
        "w: 12 bytes for shape [2, 2] F32 (expected 16)",
        "v: unknown dtype 'Q9'",
        "tensor data ends at byte 12 but the data section has 16",
    ]


def _tamper_deployment(tmp_path: Path, make: Callable[..., Path], deployed: dict[str, Any]) -> Path:
    _hf_folder(tmp_path / "fm", deployed)
    _hf_folder(tmp_path / "ref", _tensors())
    manifest = minimal_manifest(
        foundation_model={"name": "tiny", "checkpoint": "fm", "reference_checkpoint": "ref"}
    )
    return make(manifest)


def test_r05_finds_changed_missing_and_mismatched_tensors(
    tmp_path: Path, make_deployment: Callable[..., Path], run_rule: RunRule
) -> None:
    import torch

    ref = _tensors()
    deployed = _tensors(
        **{
            "layer.weight": ref["layer.weight"] + 0.05,
            "layer.bias": None,
            "embed.weight": ref["embed.weight"][:4],
            "backdoor.weight": torch.ones(2),
        }
    )
    run = run_rule(_tamper_deployment(tmp_path, make_deployment, deployed), "FMFL-R05")
    run.assert_exact({("fm", "changed-tensors"), ("fm", "tensor-set"), ("fm", "shape-dtype")})
    changed = run.one("fm", "changed-tensors")
    expected = float((0.05 * torch.ones(4, 4)).norm() / ref["layer.weight"].norm())
    assert changed.metric is not None and changed.metric.value == pytest.approx(expected, rel=1e-5)
    assert changed.evidence[0].location == "fm:layer.weight"
    m = run.result.metrics["fm"]
    assert (
        m["tensors_compared"],
        m["tensors_changed"],
        m["missing_tensors"],
        m["extra_tensors"],
        m["shape_or_dtype_mismatches"],
    ) == (1, 1, 1, 1, 1)
    assert run.one("fm", "tensor-set").evidence[0].excerpt == "-layer.bias, +backdoor.weight"


def test_r05_passes_identical_weights(
    tmp_path: Path, make_deployment: Callable[..., Path], run_rule: RunRule
) -> None:
    run = run_rule(_tamper_deployment(tmp_path, make_deployment, _tensors()), "FMFL-R05")
    run.assert_exact(set())
    assert run.result.metrics["fm"]["max_relative_difference"] == 0.0
    assert run.result.metrics["fm"]["tensors_compared"] == 3
