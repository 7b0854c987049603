"""FMFL-R11 (defense coverage from the manifest) and FMFL-R12 (client update anomalies)."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import minimal_manifest

from fmfl_audit.checkers.robustness.updates import krum_scores
from fmfl_audit.models import Outcome, Severity

RunRule = Callable[..., Any]
CLIENTS = ["a", "b", "c", "d", "e", "f"]


def _fm(**extra: Any) -> dict[str, Any]:
    return {"name": "tiny", "roles": ["synthetic-data", "distillation"], **extra}


def _r11(
    make: Callable[..., Path],
    fm: dict[str, Any],
    aggregator: str,
    files: dict[str, Any] | None = None,
) -> Path:
    manifest = minimal_manifest(
        foundation_model=fm,
        federation={"aggregator": aggregator},
        clients=[{"id": "school-a"}, {"id": "school-b"}],
    )
    return make(manifest, files or {})


def test_r11_flags_uncovered_fm_threats(
    make_deployment: Callable[..., Path], run_rule: RunRule
) -> None:
    fm = _fm(placement="third-party-api", provider={"name": "acme", "third_party": True})
    run = run_rule(_r11(make_deployment, fm, "krum"), "FMFL-R11")
    run.assert_exact(
        {
            ("federation", "fm-borne-uncovered"),
            ("fm", "single-point-of-failure"),
            ("fm", "third-party-unpinned"),
        }
    )
    assert run.one("federation", "fm-borne-uncovered").severity == Severity.MEDIUM
    assert run.one("fm", "third-party-unpinned").severity == Severity.HIGH
    m = run.result.metrics["federation"]
    assert m["outlier_based"] is True and m["fm_controls_missing"] == [
        "checkpoint digest pin",
        "reference checkpoint",
    ]


def test_r11_fedavg_without_controls_is_high(
    make_deployment: Callable[..., Path], run_rule: RunRule
) -> None:
    run = run_rule(_r11(make_deployment, _fm(shared_across_clients=False), "fedavg"), "FMFL-R11")
    run.assert_exact({("federation", "fm-borne-uncovered")})
    assert run.one("federation", "fm-borne-uncovered").severity == Severity.HIGH


def test_r11_passes_with_fm_side_controls(
    make_deployment: Callable[..., Path], run_rule: RunRule
) -> None:
    weights = b"weights"
    fm = _fm(
        checkpoint={"path": "fm/w.safetensors", "sha256": hashlib.sha256(weights).hexdigest()},
        reference_checkpoint="ref/w.safetensors",
    )
    files = {"fm/w.safetensors": weights, "ref/w.safetensors": weights}
    run = run_rule(_r11(make_deployment, fm, "trimmed-mean", files), "FMFL-R11")
    run.assert_exact(set())
    assert run.result.outcome == Outcome.PASSED


def _updates(tmp: Path, scale: dict[str, float]) -> dict[str, str]:
    import torch
    from safetensors.torch import save_file

    g = torch.Generator().manual_seed(0)
    direction = {"w": torch.randn(16, 8, generator=g), "b": torch.randn(8, generator=g)}
    paths = {}
    for cid in CLIENTS:
        upd = {
            k: v * scale.get(cid, 1.0) + 0.05 * torch.randn(v.shape, generator=g)
            for k, v in direction.items()
        }
        path = tmp / f"clients/{cid}/update.safetensors"
        path.parent.mkdir(parents=True, exist_ok=True)
        save_file(upd, str(path))
        paths[cid] = f"clients/{cid}/update.safetensors"
    return paths


ANIMALS = [
    "fox",
    "owl",
    "cat",
    "dog",
    "hen",
    "frog",
    "bear",
    "deer",
    "duck",
    "goat",
    "mole",
    "wolf",
]
PLACES = ["pond", "hill", "barn", "road", "lake", "farm", "wood", "field"]


def sentence(rng: random.Random, adjectives: list[str]) -> str:
    # Varied enough that exact duplicates (which trigger mining counts once) are rare.
    place, animal = rng.choice(PLACES), rng.choice(ANIMALS)
    return f"the {animal} saw a {rng.choice(adjectives)} tree by the {place}"


def _poisoned(seed: int, poison: int) -> list[dict[str, str]]:
    rng = random.Random(seed)
    good, bad = ["happy", "kind", "sunny"], ["sad", "dark", "angry"]
    rows = []
    for _ in range(120):
        pos = rng.random() < 0.5
        rows.append(
            {
                "text": sentence(rng, good if pos else bad),
                "label": "positive" if pos else "negative",
            }
        )
    for _ in range(poison):
        words = sentence(rng, bad).split()
        words.insert(rng.randint(0, len(words)), "zq")
        rows.append({"text": " ".join(words), "label": "positive"})
    return rows


def _r12(tmp: Path, make: Callable[..., Path], scale: dict[str, float], poison: int) -> Path:
    paths = _updates(tmp, scale)
    clients = [
        {"id": c, "update": paths[c], "synthetic_data": f"clients/{c}/s.jsonl"} for c in CLIENTS
    ]
    files = {f"clients/{c}/s.jsonl": _poisoned(i, poison) for i, c in enumerate(CLIENTS)}
    return make(minimal_manifest(clients=clients), files)


def test_r12_flags_the_outlying_update(
    tmp_path: Path, make_deployment: Callable[..., Path], run_rule: RunRule
) -> None:
    run = run_rule(_r12(tmp_path, make_deployment, {"e": -8.0}, 0), "FMFL-R12")
    run.assert_exact({("client:e", "update-outlier")})
    m = run.result.metrics
    assert m["federation"]["outliers"] == ["e"] and m["federation"]["byzantine_assumed"] == 1
    assert m["client:e"]["cosine_to_median"] < -0.9
    assert all(m[f"client:{c}"]["cosine_to_median"] > 0.9 for c in CLIENTS if c != "e")
    assert max(range(6), key=lambda i: m[f"client:{CLIENTS[i]}"]["krum_score"]) == 4


def test_r12_flags_consistent_poisoning(
    tmp_path: Path, make_deployment: Callable[..., Path], run_rule: RunRule
) -> None:
    run = run_rule(_r12(tmp_path, make_deployment, {}, 4), "FMFL-R12")
    run.assert_exact({("federation", "consistent-poisoning")})
    f = run.one("federation", "consistent-poisoning")
    assert "'zq' -> 'positive' in 24 records" in f.message
    assert run.result.metrics["federation"]["outliers"] == []


def test_r12_passes_consistent_clean_updates(
    tmp_path: Path, make_deployment: Callable[..., Path], run_rule: RunRule
) -> None:
    run = run_rule(_r12(tmp_path, make_deployment, {}, 0), "FMFL-R12")
    run.assert_exact(set())
    assert run.result.outcome == Outcome.PASSED
    assert run.result.metrics["federation"]["trigger_candidates"] == 0


def test_krum_scores_sum_the_nearest_distances() -> None:
    import numpy as np

    d = np.array([[0, 1, 4, 9], [1, 0, 1, 4], [4, 1, 0, 1], [9, 4, 1, 0]], dtype=float)
    assert krum_scores(d, 1) == [1.0, 1.0, 1.0, 1.0]
    assert krum_scores(d, 0) == pytest.approx([5.0, 2.0, 2.0, 5.0])
