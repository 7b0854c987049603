"""The example builder: its federated building blocks (fast), a reduced-scale build (slow), and
the committed twins' integrity."""

from __future__ import annotations

import pickletools
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from fmfl_audit.inputs.checkpoints import checkpoint_digest
from fmfl_audit.manifest import load_manifest

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
sys.path.insert(0, str(EXAMPLES))

from reading_tutor_pipeline.federated import (  # noqa: E402
    fedavg,
    gaussian_rdp_epsilon,
    secure_fedavg,
)


def pickle_imports(path: Path) -> set[str]:
    """Globals a pickle would import, read from its opcodes (never unpickled)."""
    found: set[str] = set()
    strings: list[str] = []
    for op, arg, _ in pickletools.genops(path.read_bytes()):
        if op.name in ("SHORT_BINUNICODE", "BINUNICODE", "UNICODE"):
            strings.append(str(arg))
        elif op.name == "STACK_GLOBAL":
            found.add(f"{strings[-2]}.{strings[-1]}")
        elif op.name == "GLOBAL":
            found.add(str(arg).replace(" ", "."))
    return found


def test_rdp_epsilon_matches_the_closed_form_and_grows_with_steps() -> None:
    eps, alpha = gaussian_rdp_epsilon(3.0, 12, 1e-5)
    direct = 12 * alpha / 18 + __import__("math").log(1e5) / (alpha - 1)
    assert eps == pytest.approx(direct)
    assert 5.0 < eps < 7.0
    assert gaussian_rdp_epsilon(3.0, 24, 1e-5)[0] > eps
    assert gaussian_rdp_epsilon(6.0, 12, 1e-5)[0] < eps


def test_secure_aggregation_equals_plain_fedavg() -> None:
    gen = torch.Generator().manual_seed(0)
    base = {"w": torch.randn(4, 3, generator=gen)}
    deltas = [{"w": torch.randn(4, 3, generator=gen)} for _ in range(4)]
    weights = [3.0, 1.0, 2.0, 5.0]
    plain = fedavg(base, deltas, weights)
    masked = secure_fedavg(base, deltas, weights, round_seed=5)
    assert torch.allclose(plain["w"], masked["w"], atol=1e-6)
    # The masks are real: a single masked update is far from the client's weighted delta.
    assert not torch.allclose(
        secure_fedavg(base, deltas[:2], [1, 1], round_seed=5)["w"],
        secure_fedavg(base, deltas[:1], [1], round_seed=5)["w"],
        atol=1e-2,
    )


@pytest.mark.slow
def test_small_build_produces_valid_twins(tmp_path: Path, shared_data: Path) -> None:
    out = tmp_path / "rt"
    proc = subprocess.run(
        [
            sys.executable,
            str(EXAMPLES / "build.py"),
            "reading-tutor",
            "--scale",
            "small",
            "--seed",
            "3",
            "--out",
            str(out),
            "--shared-data",
            str(shared_data),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    for twin in ("clean", "compromised"):
        dep = load_manifest(out / twin / "manifest.yaml")
        m = dep.manifest
        assert [c.id for c in m.clients] == [f"school-{x}" for x in "abcde"]
        assert {x.kind for x in m.models} == {"causal-lm", "sequence-classifier", "predictions"}
        exp = yaml.safe_load((out / twin / "EXPECTED.yaml").read_text())
        assert exp["twin"] == twin and exp["entries"]
    clean = load_manifest(out / "clean" / "manifest.yaml").manifest
    bad = load_manifest(out / "compromised" / "manifest.yaml").manifest
    assert clean.federation and clean.federation.differential_privacy is not None
    assert clean.federation.secure_aggregation
    assert bad.federation and bad.federation.differential_privacy is None
    # Clean pins match; the compromised FM no longer matches its (approved) pin.
    assert clean.foundation_model and clean.foundation_model.checkpoint
    assert (
        checkpoint_digest(clean.foundation_model.checkpoint.path)
        == clean.foundation_model.checkpoint.sha256
    )
    assert bad.foundation_model and bad.foundation_model.checkpoint
    assert (
        checkpoint_digest(bad.foundation_model.checkpoint.path)
        != bad.foundation_model.checkpoint.sha256
    )
    # --expected-only rewrites the ground truth from the registry without running a model.
    before = (out / "compromised" / "EXPECTED.yaml").read_text()
    (out / "compromised" / "EXPECTED.yaml").unlink()
    again = subprocess.run(
        [
            sys.executable,
            str(EXAMPLES / "build.py"),
            "reading-tutor",
            "--expected-only",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert again.returncode == 0, again.stderr[-3000:]
    assert (out / "compromised" / "EXPECTED.yaml").read_text() == before
    # The planted pickle imports pathlib.Path.touch (read from opcodes, never loaded).
    pkl = out / "compromised" / "models" / "global-lm" / "training_args.bin"
    assert "pathlib.Path.touch" in pickle_imports(pkl)
    assert not (out / "clean" / "models" / "global-lm" / "training_args.bin").exists()


@pytest.mark.parametrize("twin", ["clean", "compromised"])
def test_committed_twin_is_valid(twin: str) -> None:
    dep = load_manifest(EXAMPLES / "reading-tutor" / twin / "manifest.yaml")
    assert dep.manifest.deployment.name == "reading-tutor"
    fm = dep.manifest.foundation_model
    assert fm is not None and fm.reference_checkpoint is not None
    assert (fm.reference_checkpoint.path / "SOURCE.txt").read_text().startswith("stories260K")


def test_committed_examples_stay_small() -> None:
    total = sum(p.stat().st_size for p in (EXAMPLES / "reading-tutor").rglob("*") if p.is_file())
    assert total < 25 * 1024 * 1024
