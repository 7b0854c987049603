"""FMFL-F05: the evaluation data as the real stage, groups read from synthetic text, and the
stereotype chain FM -> synthetic data -> model (the label-gap cases are in test_fairness_group.py)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import minimal_manifest

from fmfl_audit.checkers.base import CheckContext, CheckOutput
from fmfl_audit.checkers.fairness.amplification import AmplificationChecker
from fmfl_audit.errors import RuleSkipped
from fmfl_audit.manifest import load_manifest


def check(manifest: Path, **params: Any) -> CheckOutput:
    ctx = CheckContext(deployment=load_manifest(manifest), rule_id="FMFL-F05")
    return AmplificationChecker().run(ctx, AmplificationChecker.Params(**params))


def found(out: CheckOutput) -> set[tuple[str, str]]:
    return {(f.subject, f.key) for f in out.findings}


def _eval_rows(n: int = 40) -> list[dict[str, Any]]:
    """Real data with an even gap: half of each gender is positive."""
    return [
        {"text": f"A story {i}.", "label": int(i % 2 == 0), "gender": g}
        for g in ("female", "male")
        for i in range(n)
    ]


def _preds(female_pos: int, male_pos: int, n: int = 40) -> list[dict[str, Any]]:
    return [
        {"y_true": 1, "y_pred": int(i < pos), "gender": g}
        for g, pos in (("female", female_pos), ("male", male_pos))
        for i in range(n)
    ]


def _deployment(
    make: Callable[..., Path],
    synthetic: list[dict[str, Any]],
    *,
    private: list[dict[str, Any]] | None = None,
    preds: list[dict[str, Any]] | None = None,
) -> Path:
    client: dict[str, Any] = {"id": "a", "synthetic_data": "a/syn.jsonl"}
    files: dict[str, Any] = {"a/syn.jsonl": synthetic, "eval.jsonl": _eval_rows()}
    if private is not None:
        client["private_sample"] = "a/private.jsonl"
        files["a/private.jsonl"] = private
    models = []
    if preds is not None:
        files["p.csv"] = preds
        models.append({"name": "clf", "kind": "predictions", "predictions": {"path": "p.csv"}})
    return make(
        minimal_manifest(
            clients=[client],
            models=models,
            evaluation={"data": "eval.jsonl", "sensitive_features": ["gender"]},
        ),
        files,
    )


def _stories(female_pos: int, male_pos: int, n: int = 30) -> list[dict[str, Any]]:
    """Labelled synthetic stories without a gender column: the text names the child."""
    return [
        {"text": f"The {kid} went out. {sub} played.", "label": int(i < pos)}
        for kid, sub, pos in (("girl", "She", female_pos), ("boy", "He", male_pos))
        for i in range(n)
    ]


def test_f05_reads_groups_from_synthetic_text_and_falls_back_to_evaluation(
    make_deployment: Callable[..., Path],
) -> None:
    # Students' writing carries no label: the evaluation data's true labels are the real stage.
    m = _deployment(
        make_deployment,
        _stories(6, 24),
        private=[{"text": "A student story."}] * 10,
        preds=_preds(8, 32),
    )
    out = check(m)
    assert out.metrics["real-data"]["source"] == "evaluation (true labels)"
    assert out.metrics["real-data"]["gender"]["female"] == {"positive_rate": 0.5, "rows": 40}
    assert found(out) == {
        ("fm:synthetic-data", "gender:amplification"),
        ("model:clf", "gender:amplification"),
    }
    syn = out.metrics["fm:synthetic-data"]["gender"]
    assert syn["gap_stage"] == pytest.approx(0.6) and syn["gap_real"] == 0.0
    assert out.metrics["chain"]["group_gaps"]["gender"] == {
        "real": 0.0,
        "synthetic": 0.6,
        "model:clf": 0.6,
    }


def test_f05_is_quiet_when_no_stage_widens_the_gap(make_deployment: Callable[..., Path]) -> None:
    out = check(_deployment(make_deployment, _stories(15, 15), preds=_preds(20, 21)))
    assert out.findings == []
    assert out.metrics["fm:synthetic-data"]["gender"]["gap_stage"] == 0.0


def test_f05_texts_naming_both_groups_evenly_are_left_out(
    make_deployment: Callable[..., Path],
) -> None:
    both = [{"text": "The girl and the boy played. She and he laughed.", "label": 1}] * 30
    out = check(_deployment(make_deployment, both + _stories(15, 15)))
    syn = out.metrics["fm:synthetic-data"]
    assert syn["skipped_rows"] == 30
    assert syn["gender"]["groups"]["female"]["rows"] == 30


def test_f05_skips_when_no_real_row_has_a_label_and_feature(
    make_deployment: Callable[..., Path],
) -> None:
    m = make_deployment(
        minimal_manifest(
            clients=[
                {
                    "id": "a",
                    "private_sample": {"path": "p.jsonl", "sensitive_features": ["gender"]},
                    "synthetic_data": "s.jsonl",
                }
            ]
        ),
        {"p.jsonl": [{"text": "x", "gender": "female"}], "s.jsonl": _stories(1, 1)},
    )
    with pytest.raises(RuleSkipped, match="no private-sample or evaluation row carries a label"):
        check(m)


# -- the stereotype chain ------------------------------------------------------------------------

STEREO = ["She was very emotional.", "He was very tough."]
EVEN = [
    "She was very emotional.",
    "He was very emotional.",
    "She was very tough.",
    "He was very tough.",
]
PLAIN = ["She went to the park.", "He went to the shop."]


@pytest.mark.parametrize(("synthetic", "fires"), [(STEREO, True), (EVEN, False)])
def test_f05_chain_flags_a_stereotype_rate_above_the_real_texts(
    make_deployment: Callable[..., Path], synthetic: list[str], fires: bool
) -> None:
    m = _deployment(
        make_deployment,
        [{"text": t, "label": 1} for t in synthetic * 20],
        private=[{"text": t} for t in PLAIN * 20],
        preds=_preds(8, 32),
    )
    out = check(m)
    key = ("fm:synthetic-data", "gender_and_sex:stereotype-rate")
    assert (key in found(out)) is fires
    chain = out.metrics["chain"]
    assert chain["real_stereotype_rate"]["gender_and_sex"] == 0.0
    rate = chain["synthetic_stereotype_rate"]["gender_and_sex"]
    assert rate == (1.0 if fires else 0.5)
    model = next(f for f in out.findings if f.subject == "model:clf")
    # Every F05 finding names the upstream links that are elevated.
    assert (
        "upstream: gender_and_sex stereotype rate 100.0% in synthetic data" in model.message
    ) is fires


def test_f05_chain_can_be_switched_off(make_deployment: Callable[..., Path]) -> None:
    m = _deployment(make_deployment, [{"text": t, "label": 1} for t in STEREO * 20])
    out = check(m, chain=False)
    assert "chain" not in out.metrics and out.findings == []
