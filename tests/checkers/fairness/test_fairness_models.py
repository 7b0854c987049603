"""Model-based fairness rules on real tiny classifiers: FMFL-F03 (model path), F04, F05, F08.

Two sequence classifiers are built from the stories260K LM (same config, `num_labels=2`, backbone =
the LM's pretrained weights) by setting the score head, in closed form, to a logistic-regression probe
of the backbone's pooled (last-token) hidden state:

- `biased`: the probe predicts the gender of the story's person (label 1 = female): a planted bias.
- `control`: the probe predicts the story's sentiment (happy vs unhappy activity), fitted after
  projecting out the subspace spanned by the hidden-state changes that gender swaps cause (the top
  singular vectors of original - swapped features), so the head is blind to gender.

No gradient training: a few forward passes, deterministic. The checkers must catch the first and
pass the second.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import minimal_manifest

from fmfl_audit.checkers.base import CheckContext, Checker, CheckOutput, ResourceCache
from fmfl_audit.checkers.fairness._lexicon import load_gender_swaps
from fmfl_audit.checkers.fairness.amplification import AmplificationChecker
from fmfl_audit.checkers.fairness.client_performance import ClientPerformanceChecker
from fmfl_audit.checkers.fairness.counterfactual import CounterfactualChecker, gender_swap
from fmfl_audit.checkers.fairness.group_fairness import GroupFairnessChecker
from fmfl_audit.engine.runner import Auditor
from fmfl_audit.manifest import load_manifest
from fmfl_audit.models import Outcome

pytestmark = pytest.mark.slow

FEMALE = [
    ("girl", "she", "her"),
    ("woman", "she", "her"),
    ("mother", "she", "her"),
    ("sister", "she", "her"),
]
MALE = [
    ("boy", "he", "his"),
    ("man", "he", "his"),
    ("father", "he", "his"),
    ("brother", "he", "his"),
]
POSITIVE = [
    "played in the sunny park",
    "ate a sweet cake",
    "found a shiny toy",
    "sang a happy song",
]
NEGATIVE = ["lost a little ball", "fell in the mud", "broke a red cup", "was sick in bed"]
GENDER_SUBSPACE = 8
"""Directions of gender-swap change projected out of the control's head."""


def _probe_texts() -> tuple[list[str], list[int], list[int]]:
    """Texts with (female, happy) labels: four templates x 8 people x 8 activities."""
    texts: list[str] = []
    female_labels: list[int] = []
    happy_labels: list[int] = []
    for female, people in ((1, FEMALE), (0, MALE)):
        for noun, pron, poss in people:
            for happy, acts in ((1, POSITIVE), (0, NEGATIVE)):
                for act in acts:
                    for t in (
                        _story(noun, act),
                        f"The {noun} {act}.",
                        f"One day the {noun} {act}, and {pron} smiled.",
                        f"{pron.capitalize()} said the {noun} {act} with {poss} friend.",
                    ):
                        texts.append(t)
                        female_labels.append(female)
                        happy_labels.append(happy)
    return texts, female_labels, happy_labels


def _build(src: Path, root: Path) -> dict[str, Path]:
    import numpy as np
    import torch
    from sklearn.linear_model import LogisticRegression
    from transformers import (
        AutoTokenizer,
        LlamaConfig,
        LlamaForCausalLM,
        LlamaForSequenceClassification,
    )

    tok = AutoTokenizer.from_pretrained(str(src))
    tok.pad_token = tok.eos_token
    config = LlamaConfig.from_pretrained(str(src))
    config.num_labels = 2
    config.pad_token_id = tok.pad_token_id
    model = LlamaForSequenceClassification(config)
    model.model.load_state_dict(LlamaForCausalLM.from_pretrained(str(src)).model.state_dict())
    model.eval()

    def pooled(texts: list[str]) -> Any:
        enc = tok(texts, padding=True, return_tensors="pt")
        with torch.inference_mode():
            hidden = model.model(**enc).last_hidden_state
        last = enc["attention_mask"].sum(1) - 1
        return hidden[torch.arange(len(texts)), last].double().numpy()

    texts, female, happy = _probe_texts()
    table = load_gender_swaps()
    feats = pooled(texts)
    swapped = pooled([gender_swap(t, table) or t for t in texts])
    _, _, vt = np.linalg.svd(feats - swapped, full_matrices=False)
    gender_dirs = vt[:GENDER_SUBSPACE]
    blind = feats - feats @ gender_dirs.T @ gender_dirs
    heads = {
        "biased": LogisticRegression(fit_intercept=False, max_iter=2000).fit(feats, female),
        "control": LogisticRegression(fit_intercept=False, max_iter=2000).fit(blind, happy),
    }
    out = {}
    for name, probe in heads.items():
        w = probe.coef_[0]
        if name == "control":
            w = w - gender_dirs.T @ (gender_dirs @ w)
        with torch.no_grad():
            # logits (0, w.h): softmax gives P(label 1) = sigmoid(w.h), the probe's probability.
            model.score.weight.copy_(torch.tensor(np.stack([np.zeros_like(w), w])))
        model.save_pretrained(str(root / name), safe_serialization=True)
        tok.save_pretrained(str(root / name))
        out[name] = root / name
    return out


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread() -> Iterator[None]:
    # These models are tiny: one thread is fastest, and several spin-wait badly on a busy CI box.
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def classifiers(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return _build(shared_data / "stories260K", tmp_path_factory.mktemp("classifiers"))


def _story(noun: str, act: str) -> str:
    return f"Yesterday the {noun} {act}."


def _eval_rows() -> list[dict[str, Any]]:
    rows = []
    for gender, people in (("f", FEMALE), ("m", MALE)):
        for noun, _, _ in people:
            for good, acts in ((1, POSITIVE), (0, NEGATIVE)):
                for act in acts:
                    rows.append({"text": _story(noun, act), "label": good, "gender": gender})
    return rows


def _holdout(
    favoured: list[tuple[str, str, str]], other: list[tuple[str, str, str]]
) -> list[dict[str, Any]]:
    rows = [{"text": _story(n, a), "label": 1} for n, _, _ in favoured for a in POSITIVE]
    rows += [{"text": _story(n, a), "label": 0} for n, _, _ in other for a in NEGATIVE]
    return rows


@pytest.fixture(scope="module")
def deployment(classifiers: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.conftest import write_jsonl, write_manifest

    root = tmp_path_factory.mktemp("deployment")
    write_jsonl(root / "eval.jsonl", _eval_rows())
    # Client a's holdout pairs women with happy stories, b's pairs men with them: a gender-coded
    # model is right on all of a and wrong on all of b.
    write_jsonl(root / "a/holdout.jsonl", _holdout(FEMALE, MALE))
    write_jsonl(root / "b/holdout.jsonl", _holdout(MALE, FEMALE))
    write_jsonl(root / "a/private.jsonl", _eval_rows())
    manifest = minimal_manifest(
        clients=[
            {
                "id": "a",
                "resources": {"tier": "abundant"},
                "holdout": "a/holdout.jsonl",
                "private_sample": {"path": "a/private.jsonl", "sensitive_features": ["gender"]},
            },
            {"id": "b", "resources": {"tier": "constrained"}, "holdout": "b/holdout.jsonl"},
        ],
        models=[
            {"name": name, "kind": "sequence-classifier", "checkpoint": str(path)}
            for name, path in classifiers.items()
        ],
        evaluation={"data": "eval.jsonl", "sensitive_features": ["gender"]},
    )
    return write_manifest(root, manifest)


CACHE = ResourceCache()
"""One model cache for the module, as the engine shares one per scan."""


def check(checker: type[Checker], manifest: Path, **params: Any) -> CheckOutput:
    ctx = CheckContext(
        deployment=load_manifest(manifest), rule_id=checker.id, cache=CACHE, device="cpu"
    )
    return checker().run(ctx, checker.Params(**params))


def found(out: CheckOutput) -> set[tuple[str, str]]:
    return {(f.subject, f.key) for f in out.findings}


def test_f04_flags_the_gender_coded_model_only(deployment: Path) -> None:
    out = check(CounterfactualChecker, deployment)
    assert found(out) == {("model:biased", "gender:counterfactual")}
    biased = out.metrics["model:biased"]["gender"]
    control = out.metrics["model:control"]["gender"]
    assert biased["swapped"] == control["swapped"] == 64
    assert biased["flip_rate"] >= 0.9
    assert control["flip_rate"] <= 0.05 and control["mean_abs_change"] <= 0.05
    # No race, religion... descriptor in these stories: nothing to swap, nothing graded.
    assert out.metrics["model:biased"]["race_ethnicity"] == {"swapped": 0}
    finding = out.findings[0]
    assert finding.metric is not None and finding.metric.name == "flip_rate"
    assert finding.evidence[0].location == "eval.jsonl:1"


def test_f03_runs_the_classifier_on_evaluation_data(deployment: Path) -> None:
    out = check(GroupFairnessChecker, deployment, bootstrap=50)
    assert found(out) == {
        ("model:biased", "gender:dp-ratio"),
        ("model:biased", "gender:eo-difference"),
    }
    biased = out.metrics["model:biased"]["gender"]
    assert biased["groups"]["f"]["selection_rate"] >= 0.9
    assert biased["groups"]["m"]["selection_rate"] <= 0.1
    assert biased["demographic_parity_ratio"] <= 0.1
    control = out.metrics["model:control"]["gender"]
    assert control["demographic_parity_ratio"] >= 0.8
    assert control["groups"]["f"]["accuracy"] >= 0.9
    assert out.metrics["model:control"]["source"] == "eval.jsonl"


def test_f08_flags_the_client_the_model_fails(deployment: Path) -> None:
    out = check(ClientPerformanceChecker, deployment)
    assert found(out) == {
        ("client:b", "biased:accuracy-gap"),
        ("tier:constrained", "biased:tier-gap"),
    }
    biased = out.metrics["model:biased"]
    assert biased["clients"]["a"]["accuracy"] >= 0.9
    assert biased["clients"]["b"]["accuracy"] <= 0.1
    assert biased["worst_client"] == "b"
    assert biased["clients"]["a"]["holdout"] == 32
    control = out.metrics["model:control"]
    assert control["accuracy_gap"] <= 0.1
    assert set(control["tier_mean_accuracy"]) == {"abundant", "constrained"}


def test_f05_model_stage_amplifies_a_gap_absent_from_real_data(deployment: Path) -> None:
    out = check(AmplificationChecker, deployment)
    assert found(out) == {("model:biased", "gender:amplification")}
    assert out.metrics["model:biased"]["gender"]["gap_real"] == 0.0
    assert out.metrics["model:biased"]["gender"]["gap_stage"] >= 0.8
    assert out.metrics["model:control"]["gender"]["gap_stage"] <= 0.05


def test_model_rules_through_the_engine(deployment: Path) -> None:
    report = Auditor(load_manifest(deployment), only=("FMFL-F04", "FMFL-F08"), device="cpu").run()
    assert report.rule("FMFL-F04").outcome is Outcome.FAILED
    assert report.rule("FMFL-F08").outcome is Outcome.FAILED
    assert {f.subject for f in report.findings} == {"model:biased", "client:b", "tier:constrained"}


def test_f03_positive_label_must_be_a_class(deployment: Path) -> None:
    from fmfl_audit.errors import CheckerError

    with pytest.raises(CheckerError, match="positive_label 'approved' is not one of its classes"):
        check(GroupFairnessChecker, deployment, positive_label="approved")


def test_f04_within_axis_swaps_run_through_the_model(
    classifiers: dict[str, Path], tmp_path: Path
) -> None:
    from tests.conftest import write_jsonl, write_manifest

    rows = [
        {"text": _story(f"{race} {noun}", act)}
        for race in ("Black", "white", "Asian")
        for noun, _, _ in FEMALE + MALE
        for act in POSITIVE
    ]
    write_jsonl(tmp_path / "eval.jsonl", rows)
    manifest = write_manifest(
        tmp_path,
        minimal_manifest(
            models=[
                {"name": "biased", "kind": "sequence-classifier", "checkpoint": str(path)}
                for path in [classifiers["biased"]]
            ],
            evaluation={"data": "eval.jsonl"},
        ),
    )
    # The probe never saw race words, so they nudge it a little (mean change about 0.07); the
    # gender swaps flip it outright. A looser change threshold separates the two.
    out = check(CounterfactualChecker, manifest, axes=("race_ethnicity",), max_mean_change=0.1)
    race = out.metrics["model:biased"]["race_ethnicity"]
    assert race["swapped"] == 96 and race["graded"] is True
    assert race["flip_rate"] <= 0.05 and race["mean_abs_change"] <= 0.1
    assert out.metrics["model:biased"]["gender"]["flip_rate"] >= 0.9
    assert found(out) == {("model:biased", "gender:counterfactual")}
