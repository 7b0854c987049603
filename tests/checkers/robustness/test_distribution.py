"""FMFL-R08 (synthetic vs real gap), FMFL-R09 (degenerate records), FMFL-R10 (teacher quality)."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import minimal_manifest

from fmfl_audit.checkers.robustness.distribution import alpha_share, repeated_share
from fmfl_audit.checkers.robustness.teacher import expected_calibration_error
from fmfl_audit.models import Outcome

RunRule = Callable[..., Any]
ANIMALS = ["fox", "owl", "cat", "dog", "frog", "bear", "duck", "mouse", "hen", "pig"]
PLACES = ["forest", "pond", "garden", "barn", "river", "hill", "meadow", "cave"]
THINGS = ["ball", "kite", "cake", "book", "boat", "drum", "hat", "lamp", "shoe", "cup"]
FINANCE = [
    "stock",
    "bond",
    "yield",
    "equity",
    "dividend",
    "portfolio",
    "hedge",
    "margin",
    "futures",
    "ledger",
]


def story(rng: random.Random, nouns: list[str]) -> str:
    a, b = rng.sample(ANIMALS, 2)
    return (
        f"the {a} found a {rng.choice(nouns)} near the {rng.choice(PLACES)} and showed "
        f"it to the {b} who laughed"
    )


def market(rng: random.Random) -> str:
    return (
        f"quarterly {rng.choice(FINANCE)} report shows the {rng.choice(FINANCE)} "
        f"{rng.choice(FINANCE)} rose while {rng.choice(FINANCE)} fell sharply"
    )


def _ood_deployment(make: Callable[..., Path]) -> Path:
    rng = random.Random(0)
    real = [{"text": story(rng, THINGS), "label": rng.choice(["easy", "hard"])} for _ in range(80)]
    near = [{"text": story(rng, THINGS), "label": rng.choice(["easy", "hard"])} for _ in range(80)]
    far = [{"text": market(rng), "label": "hard"} for _ in range(80)]
    manifest = minimal_manifest(
        clients=[
            {"id": "school-a", "synthetic_data": "a/s.jsonl", "private_sample": "a/p.jsonl"},
            {"id": "school-b", "synthetic_data": "b/s.jsonl", "holdout": "b/h.jsonl"},
            {"id": "school-c", "synthetic_data": "c/s.jsonl"},
        ]
    )
    return make(
        manifest,
        {
            "a/s.jsonl": near,
            "a/p.jsonl": real,
            "b/s.jsonl": far,
            "b/h.jsonl": real,
            "c/s.jsonl": near,
        },
    )


def test_r08_flags_the_off_distribution_client_only(
    make_deployment: Callable[..., Path], run_rule: RunRule
) -> None:
    run = run_rule(_ood_deployment(make_deployment), "FMFL-R08")
    run.assert_exact(
        {("client:school-b", "two-sample-auc"), ("client:school-b", "label-divergence")}
    )
    m = run.result.metrics
    assert set(m) == {"client:school-a", "client:school-b"}
    assert m["client:school-a"]["auc"] < 0.75 and m["client:school-b"]["auc"] > 0.95
    assert m["client:school-a"]["real_source"] == "private_sample"
    assert m["client:school-b"]["real_source"] == "holdout"
    assert m["client:school-b"]["vocabulary_coverage"] < 0.2
    assert m["client:school-a"]["vocabulary_coverage"] > 0.9


def test_r08_passes_matching_data(make_deployment: Callable[..., Path], run_rule: RunRule) -> None:
    rng = random.Random(3)
    real = [{"text": story(rng, THINGS), "label": rng.choice(["easy", "hard"])} for _ in range(80)]
    near = [{"text": story(rng, THINGS), "label": rng.choice(["easy", "hard"])} for _ in range(80)]
    manifest = minimal_manifest(
        clients=[{"id": "school-a", "synthetic_data": "a/s.jsonl", "private_sample": "a/p.jsonl"}]
    )
    run = run_rule(make_deployment(manifest, {"a/s.jsonl": near, "a/p.jsonl": real}), "FMFL-R08")
    run.assert_exact(set())
    assert run.result.outcome == Outcome.PASSED
    assert run.result.metrics["client:school-a"]["label_jsd"] < 0.3


def _degenerate_rows() -> list[dict[str, str]]:
    rng = random.Random(1)
    rows = [
        {"text": " then ".join(story(rng, THINGS) for _ in range(1 + i % 3)) + f" on day {i}"}
        for i in range(60)
    ]
    rows += [{"text": ""}, {"text": "   "}]  # 2 empty
    rows += [{"text": rows[0]["text"]}, {"text": rows[1]["text"].upper()}]  # 2 exact duplicates
    rows += [{"text": rows[2]["text"] + " again"}, {"text": rows[3]["text"] + " again"}]  # 2 near
    rows += [{"text": "the the cat sat " * 100}]  # 1 repetition loop, also a length outlier
    rows += [{"text": "x9$ 11## %%a 0x3f ;; ^^ 42 !!!"} for _ in range(4)]  # 1 non-language + 3
    return rows


def test_r09_counts_each_degenerate_category(
    make_deployment: Callable[..., Path], run_rule: RunRule
) -> None:
    manifest = minimal_manifest(clients=[{"id": "school-a", "synthetic_data": "a/s.jsonl"}])
    run = run_rule(
        make_deployment(manifest, {"a/s.jsonl": _degenerate_rows()}), "FMFL-R09", max_rate=0.02
    )
    m = run.result.metrics["client:school-a"]
    assert m["records"] == 71
    counts = {k[:-6]: v for k, v in m.items() if k.endswith("_count")}
    assert counts == {
        "empty": 2,
        "exact_duplicate": 5,
        "near_duplicate": 2,
        "repetition_loop": 1,
        "non_language": 1,
        "length_outlier": 1,
    }
    run.assert_exact(
        {
            ("client:school-a", "empty"),
            ("client:school-a", "exact_duplicate"),
            ("client:school-a", "near_duplicate"),
        }
    )


def test_r09_passes_clean_varied_data(
    make_deployment: Callable[..., Path], run_rule: RunRule
) -> None:
    rng = random.Random(2)
    rows = [{"text": f"{story(rng, THINGS)} then {story(rng, ANIMALS)}"} for _ in range(50)]
    manifest = minimal_manifest(clients=[{"id": "school-a", "synthetic_data": "a/s.jsonl"}])
    run = run_rule(make_deployment(manifest, {"a/s.jsonl": rows}), "FMFL-R09")
    run.assert_exact(set())
    m = run.result.metrics["client:school-a"]
    assert all(v == 0 for k, v in m.items() if k.endswith("_count"))


def test_text_shape_measures() -> None:
    assert repeated_share(["a", "b", "c", "a", "b", "c", "a", "b", "c"]) == pytest.approx(4 / 7)
    assert repeated_share(["one", "two", "three", "four", "five", "six"]) == 0.0
    assert alpha_share("Hello, world! 123 ###") == 0.5


def _teacher_rows() -> list[dict[str, Any]]:
    rows = []
    for i in range(40):  # school-a: accurate and calibrated-ish
        rows.append({"client_id": "school-a", "label": i % 2, "pred": i % 2, "prob": 0.97})
    for i in range(40):  # school-b: 50% accurate, always 0.95 sure
        rows.append({"client_id": "school-b", "label": i % 2, "pred": 0, "prob": 0.95})
    return rows


def test_r10_flags_an_inaccurate_overconfident_teacher(
    make_deployment: Callable[..., Path], run_rule: RunRule
) -> None:
    manifest = minimal_manifest(
        foundation_model={"name": "tiny", "teacher_predictions": "fm/teacher.jsonl"},
        clients=[{"id": "school-a"}, {"id": "school-b"}],
    )
    run = run_rule(make_deployment(manifest, {"fm/teacher.jsonl": _teacher_rows()}), "FMFL-R10")
    run.assert_exact({("client:school-b", "accuracy"), ("client:school-b", "calibration")})
    m = run.result.metrics
    assert m["client:school-a"] == {
        "predictions": 40,
        "accuracy": 1.0,
        "ece": 0.03,
        "low_confidence_share": 0.0,
    }
    assert m["client:school-b"]["accuracy"] == 0.5
    assert m["client:school-b"]["ece"] == pytest.approx(0.45)


def test_r10_passes_a_good_teacher(make_deployment: Callable[..., Path], run_rule: RunRule) -> None:
    manifest = minimal_manifest(
        foundation_model={"name": "tiny", "teacher_predictions": "fm/teacher.jsonl"}
    )
    rows = [r for r in _teacher_rows() if r["client_id"] == "school-a"]
    run = run_rule(make_deployment(manifest, {"fm/teacher.jsonl": rows}), "FMFL-R10")
    run.assert_exact(set())
    assert run.result.outcome == Outcome.PASSED


def test_ece_equal_width_bins() -> None:
    assert expected_calibration_error([0.9, 0.9, 0.6, 0.6], [True, False, True, True], 10) == (
        pytest.approx(0.5 * 0.4 + 0.5 * 0.4)
    )
