"""FMFL-P03, P04, P05 on the real stories260K model and quick fine-tuned copies of it."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from tests.checkers.privacy.conftest import audit, report_json
from tests.conftest import minimal_manifest, write_jsonl, write_manifest

from fmfl_audit.checkers.privacy.canary import parse_canary
from fmfl_audit.checkers.privacy.extraction import edit_similarity
from fmfl_audit.checkers.privacy.membership import attack_metrics, tpr_at_fpr
from fmfl_audit.models import Outcome


def _deploy(
    tmp: Path,
    lm: dict[str, Any],
    model: str,
    *,
    canaries: list[dict[str, Any]] | None = None,
    reference: bool = True,
) -> Path:
    tmp.mkdir(parents=True, exist_ok=True)
    write_jsonl(tmp / "members.jsonl", [{"text": t} for t in lm["members"]])
    write_jsonl(tmp / "non_members.jsonl", [{"text": t} for t in lm["non_members"]])
    spec: dict[str, Any] = {
        "name": "global-lm",
        "kind": "causal-lm",
        "checkpoint": str(lm[model]),
        "members": "members.jsonl",
        "non_members": "non_members.jsonl",
    }
    if reference:
        spec["reference"] = "foundation_model"
    if canaries is not None:
        write_jsonl(tmp / "canaries.jsonl", canaries)
        spec["canaries"] = "canaries.jsonl"
    manifest = minimal_manifest(
        foundation_model={"name": "stories260K", "checkpoint": str(lm["base"])},
        models=[spec],
    )
    return write_manifest(tmp, manifest)


CANARY = [{"id": "c1", "format": "my student code is {digits:3}", "secret": "472"}]


# -- FMFL-P03 ------------------------------------------------------------------------------------


@pytest.mark.slow
def test_p03_exposure_grows_with_repetitions(lm_setup: dict[str, Any], tmp_path: Path) -> None:
    exposure = {}
    for model in ("base", "once", "many"):
        rep = audit(_deploy(tmp_path / model, lm_setup, model, canaries=CANARY), "FMFL-P03")
        m = rep.rule("FMFL-P03").metrics["model:global-lm"]["canaries"]["c1"]
        assert m["method"] == "exact" and m["candidates"] == 1000 and m["scored"] == 1000
        assert m["max_bits"] == pytest.approx(math.log2(1000), abs=1e-3)
        exposure[model] = m["exposure_bits"]
        # A 3-digit space tops out at 9.97 bits, under the pack's 10 bits: findings are tested
        # below with a lower threshold.
        assert rep.findings == ()
        if model == "many":
            out = report_json(rep)
            assert "472" not in out and "student code" not in out
    # Measured: base 0.5, once 2.1, many 6.1 bits (of 9.97).
    assert exposure["many"] > exposure["once"] + 2.0
    assert exposure["once"] > exposure["base"]
    assert exposure["base"] < 2.0


@pytest.mark.slow
def test_p03_threshold_fires_only_when_exposed(lm_setup: dict[str, Any], tmp_path: Path) -> None:
    rules = {"FMFL-P03": {"params": {"max_exposure_bits": 4.0}}}
    for model, expected in (("base", []), ("many", [("model:global-lm", "exposure_bits")])):
        path = _deploy(tmp_path / model, lm_setup, model, canaries=CANARY)
        _with_rules(path, rules)
        rep = audit(path, "FMFL-P03")
        assert [(f.subject, f.metric.name) for f in rep.findings] == expected  # type: ignore[union-attr]
        assert rep.rule("FMFL-P03").outcome is (Outcome.FAILED if expected else Outcome.PASSED)


def _with_rules(manifest: Path, rules: dict[str, Any]) -> None:
    import yaml

    data = yaml.safe_load(manifest.read_text())
    data["policy"] = {"rules": rules}
    manifest.write_text(yaml.safe_dump(data))


@pytest.mark.slow
def test_p03_sampled_estimate_tracks_exact(lm_setup: dict[str, Any], tmp_path: Path) -> None:
    path = _deploy(tmp_path, lm_setup, "many", canaries=CANARY)
    exact = audit(path, "FMFL-P03").rule("FMFL-P03").metrics["model:global-lm"]["canaries"]["c1"]
    _with_rules(path, {"FMFL-P03": {"params": {"max_enumerate": 100, "samples": 400}}})
    sampled = audit(path, "FMFL-P03").rule("FMFL-P03").metrics["model:global-lm"]["canaries"]["c1"]
    assert exact["method"] == "exact" and sampled["method"] == "sampled-skewnorm"
    assert sampled["scored"] == 400 and sampled["candidates"] == 1000
    assert abs(sampled["exposure_bits"] - exact["exposure_bits"]) < 1.5


def test_canary_format_parsing() -> None:
    c = parse_canary(
        {
            "format": "{choice:red|blue} door {letters:2} code {digits:3}",
            "secret": ["blue", "qz", "007"],
        },
        "c.jsonl:1",
        1,
    )
    assert c.cid == "#1" and c.space == 2 * 26**2 * 1000
    assert c.render(c.secret) == "blue door qz code 007"
    for data, reason in (
        ({"format": "no slot", "secret": "1"}, "no {digits:N}"),
        ({"format": "x {digits:3}", "secret": "12a"}, "does not fit"),
        ({"format": "x {digits:3}", "secret": ["1", "2"]}, "2 value(s) for 1 slot"),
        ({"format": "x {choice:a}", "secret": "a"}, "at least two"),
        ({"secret": "1"}, "missing string field 'format'"),
    ):
        with pytest.raises(
            ValueError, match=reason.replace("{", r"\{").replace("(", r"\(").replace(")", r"\)")
        ):
            parse_canary(data, "c.jsonl:1", 1)


# -- FMFL-P04 ------------------------------------------------------------------------------------


@pytest.mark.slow
def test_p04_extraction_fires_on_memorising_model(lm_setup: dict[str, Any], tmp_path: Path) -> None:
    rules = {"FMFL-P04": {"params": {"prefix_tokens": 8, "suffix_tokens": 8}}}
    results = {}
    for model in ("base", "overfit"):
        path = _deploy(tmp_path / model, lm_setup, model)
        _with_rules(path, rules)
        rep = audit(path, "FMFL-P04")
        m = rep.rule("FMFL-P04").metrics["model:global-lm"]
        assert m["members_tested"] == 24 and m["members_too_short"] == 0
        results[model] = (m, [(f.subject, f.metric.name) for f in rep.findings])  # type: ignore[union-attr]
        out = report_json(rep)
        assert not any(t in out for t in lm_setup["members"])
    base, many = results["base"], results["overfit"]
    assert base[0]["exact_extractions"] == 0 and base[1] == []
    assert many[0]["exact_rate"] >= 0.25
    assert many[1] == [("model:global-lm", "exact_extraction_rate")]


def test_edit_similarity() -> None:
    assert edit_similarity([1, 2, 3, 4], [1, 2, 3, 4]) == 1.0
    assert edit_similarity([1, 2, 3, 4], [1, 2, 9, 4]) == 0.75
    assert edit_similarity([], []) == 1.0
    assert edit_similarity([1], []) == 0.0


# -- FMFL-P05 ------------------------------------------------------------------------------------


@pytest.mark.slow
def test_p05_membership_auc_overfit_vs_base(lm_setup: dict[str, Any], tmp_path: Path) -> None:
    aucs = {}
    for model in ("base", "overfit"):
        rep = audit(_deploy(tmp_path / model, lm_setup, model), "FMFL-P05")
        m = rep.rule("FMFL-P05").metrics["model:global-lm"]
        assert (
            m["members"] == 24 and m["non_members"] == 24 and m["reference"] == "foundation_model"
        )
        assert set(m["attacks"]) == {"loss", "reference", "zlib"}
        aucs[model] = {a: v["auc"] for a, v in m["attacks"].items()}
        for v in m["attacks"].values():
            assert v["auc_ci"][0] <= v["auc"] <= v["auc_ci"][1]
        keys = sorted(f.metric.name for f in rep.findings)  # type: ignore[union-attr]
        if model == "overfit":
            assert "loss_attack_auc" in keys and "reference_attack_auc" in keys
    assert aucs["overfit"]["loss"] > 0.8
    assert aucs["overfit"]["reference"] > 0.8
    assert abs(aucs["base"]["loss"] - 0.5) < 0.2
    # The base model is its own reference: the calibrated score is identically 0 -> AUC 0.5.
    assert aucs["base"]["reference"] == 0.5


def test_attack_metrics_exact_on_separable_scores() -> None:
    import numpy as np

    members = np.arange(100, 200, dtype=float)
    non = np.arange(0, 100, dtype=float)
    res = attack_metrics(members, non, bootstrap=50, level=0.95, seed=1)
    assert res["auc"] == 1.0 and res["tpr_at_1pct_fpr"] == 1.0 and res["auc_ci"] == [1.0, 1.0]
    res = attack_metrics(non, members, bootstrap=0, level=0.95, seed=1)
    assert res["auc"] == 0.0 and res["tpr_at_1pct_fpr"] == 0.0 and "auc_ci" not in res
    y = np.r_[np.ones(3), np.zeros(3)]
    assert tpr_at_fpr(y, np.array([3.0, 2.0, 0.5, 1.0, 0.0, -1.0]), 0.0) == pytest.approx(2 / 3)


def test_fast_metrics_equal_sklearn() -> None:
    import numpy as np
    from sklearn.metrics import roc_auc_score

    from fmfl_audit.checkers.privacy.membership import fast_metrics

    rng = np.random.default_rng(0)
    for n1, n0, ties in ((50, 70, False), (300, 1200, True), (5, 3, True)):
        m = rng.normal(0.5, 1, n1)
        n = rng.normal(0, 1, n0)
        if ties:
            m, n = np.round(m, 1), np.round(n, 1)
        y = np.r_[np.ones(n1), np.zeros(n0)]
        s = np.r_[m, n]
        auc, t1, t01 = fast_metrics(m, n)
        assert auc == pytest.approx(roc_auc_score(y, s), abs=1e-12)
        assert t1 == pytest.approx(tpr_at_fpr(y, s, 0.01), abs=1e-12)
        assert t01 == pytest.approx(tpr_at_fpr(y, s, 0.001), abs=1e-12)


@pytest.mark.slow
def test_p05_sequence_classifier_loss_on_true_label(
    lm_setup: dict[str, Any], tmp_path: Path
) -> None:
    from tests.checkers.privacy.conftest import fine_tune_classifier

    rng = __import__("random").Random(5)
    members = [(t, rng.randint(0, 1)) for t in lm_setup["members"]]
    non = [(t, rng.randint(0, 1)) for t in lm_setup["non_members"]]
    clf = fine_tune_classifier(
        lm_setup["base"],
        tmp_path / "clf",
        [t for t, _ in members],
        [y for _, y in members],
        steps=120,
        lr=5e-3,
    )
    write_jsonl(tmp_path / "m.jsonl", [{"text": t, "label": y} for t, y in members])
    write_jsonl(tmp_path / "n.jsonl", [{"text": t, "label": str(y)} for t, y in non])
    manifest = minimal_manifest(
        models=[
            {
                "name": "clf",
                "kind": "sequence-classifier",
                "checkpoint": str(clf),
                "members": "m.jsonl",
                "non_members": "n.jsonl",
            }
        ]
    )
    rep = audit(write_manifest(tmp_path, manifest), "FMFL-P05")
    m = rep.rule("FMFL-P05").metrics["model:clf"]
    # Random labels can only be fitted by memorising: members get a far lower loss.
    assert set(m["attacks"]) == {"loss"} and m["reference"] == "no reference model declared"
    assert m["attacks"]["loss"]["auc"] > 0.8
    assert [(f.subject, f.metric.name) for f in rep.findings] == [  # type: ignore[union-attr]
        ("model:clf", "loss_attack_auc")
    ]


@pytest.mark.slow
def test_p03_malformed_canaries_are_noted_not_scored(
    lm_setup: dict[str, Any], tmp_path: Path
) -> None:
    canaries = [
        {"id": "ok", "format": "the code is {choice:red|blue|green}", "secret": "blue"},
        {"id": "bad", "format": "the code is {digits:2}", "secret": "7"},
    ]
    rep = audit(_deploy(tmp_path, lm_setup, "base", canaries=canaries), "FMFL-P03")
    r = rep.rule("FMFL-P03")
    assert r.metrics["model:global-lm"]["canaries_tested"] == 1
    assert r.metrics["model:global-lm"]["canaries"]["ok"]["candidates"] == 3
    assert r.notes == (
        "global-lm: 1 malformed canary record(s): canaries.jsonl:2: secret value 1 does not fit "
        "its slot",
    )


def test_an_unknown_label_is_named_only_when_it_looks_like_a_class_name() -> None:
    from types import SimpleNamespace

    from fmfl_audit.checkers.privacy._lm_scoring import label_index
    from fmfl_audit.errors import CheckerError

    lm: Any = SimpleNamespace(model=SimpleNamespace(config=SimpleNamespace(label2id={"pos": 1})))
    assert label_index(lm, "pos") == 1 and label_index(lm, "3") == 3 and label_index(lm, True) == 1
    with pytest.raises(CheckerError, match=r"^label 'neutral' is not a class"):
        label_index(lm, "neutral")
    # A text field read as the label by mistake: its content stays out of the report.
    story = "Call Jane on 555-0100, she said the password is hunter2."
    with pytest.raises(CheckerError) as err:
        label_index(lm, story)
    assert str(err.value) == (
        f"label (a str of {len(story)} characters, not shown) is not a class of the classifier"
    )
    with pytest.raises(CheckerError, match=r"label \(a float, not shown\)"):
        label_index(lm, 0.5)
