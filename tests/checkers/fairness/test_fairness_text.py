"""FMFL-F01 (representation) on synthetic text, the lexicon, and FMFL-F04's swaps (F02: test_stereotype.py)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import minimal_manifest

from fmfl_audit.checkers.base import CheckContext, Checker, CheckOutput
from fmfl_audit.checkers.fairness._lexicon import load_demographic_lexicon, tokenize
from fmfl_audit.checkers.fairness.representation import RepresentationChecker
from fmfl_audit.engine.runner import Auditor
from fmfl_audit.manifest import load_manifest
from fmfl_audit.models import Outcome


def check(checker: type[Checker], manifest: Path, **params: Any) -> CheckOutput:
    deployment = load_manifest(manifest)
    ctx = CheckContext(deployment=deployment, rule_id=checker.id)
    return checker().run(ctx, checker.Params(**params))


def found(out: CheckOutput) -> set[tuple[str, str]]:
    return {(f.subject, f.key) for f in out.findings}


def rows(*parts: tuple[str, int]) -> list[dict[str, str]]:
    return [{"text": text} for text, n in parts for _ in range(n)]


def one_client(
    make: Callable[..., Path],
    synthetic: list[dict[str, str]],
    private: list[dict[str, str]] | None = None,
) -> Path:
    client: dict[str, Any] = {"id": "school-a", "synthetic_data": "a/syn.jsonl"}
    files: dict[str, Any] = {"a/syn.jsonl": synthetic}
    if private is not None:
        client["private_sample"] = "a/private.jsonl"
        files["a/private.jsonl"] = private
    return make(minimal_manifest(clients=[client]), files)


# -- the lexicon ---------------------------------------------------------------------------------

LEX = load_demographic_lexicon()


def mentions(text: str) -> list[tuple[str, str]]:
    return [(m.axis, m.group) for m in LEX.mentions(tokenize(text)[0])]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The black cat sat on the old mat.", []),  # descriptors count only before a person noun
        (
            "Black students met an old man.",
            [("race_ethnicity", "black"), ("age", "old"), ("gender_and_sex", "male")],
        ),
        ("Her boyfriend is a mangrove expert.", [("gender_and_sex", "female")]),  # word boundaries
        (
            "Two women and three Muslims.",
            [("gender_and_sex", "female"), ("religion", "muslim")],
        ),  # plural nouns
        (
            "A hard of hearing person and a trans female teacher.",
            [("ability", "auditory"), ("gender_and_sex", "transgender")],
        ),
        (
            "Grandmothers and grandpas, HE and she.",
            [
                ("gender_and_sex", "female"),
                ("gender_and_sex", "male"),
                ("gender_and_sex", "male"),
                ("gender_and_sex", "female"),
            ],
        ),
    ],
)
def test_lexicon_mentions(text: str, expected: list[tuple[str, str]]) -> None:
    assert mentions(text) == expected


def test_lexicon_has_every_holistic_bias_axis() -> None:
    assert len(LEX.axes) == 13
    assert {"female", "male", "transgender"} <= set(LEX.groups["gender_and_sex"])
    assert "binary" in LEX.groups["gender_and_sex"]  # `gender-conforming` keeps its bucket


# -- FMFL-F01 ------------------------------------------------------------------------------------


def test_f01_fires_on_gender_skew_against_parity(make_deployment: Callable[..., Path]) -> None:
    m = one_client(make_deployment, rows(("The girl smiled.", 40), ("The boy smiled.", 5)))
    out = check(RepresentationChecker, m)
    assert found(out) == {
        ("client:school-a", "gender_and_sex:representation"),
        ("overall", "gender_and_sex:representation"),
    }
    fig = out.metrics["client:school-a"]["gender_and_sex"]
    assert fig["counts"] == {"female": 40, "male": 5}
    assert fig["reference"] == "parity"
    assert fig["min_max_ratio"] == pytest.approx(5 / 40)
    assert fig["absent_groups"] == []
    f = out.findings[0]
    assert f.metric is not None and f.metric.threshold == 0.5
    assert f.metric.value == pytest.approx(0.125)
    assert [e.location for e in f.evidence] == ["a/syn.jsonl"]
    # Axes with no parity groups and no real data are measured but not graded.
    assert out.metrics["overall"]["race_ethnicity"] == {
        "mentions": 0,
        "counts": {},
        "graded": False,
        "reference": "none",
    }


def test_f01_passes_balanced_data(make_deployment: Callable[..., Path]) -> None:
    m = one_client(make_deployment, rows(("The girl smiled.", 20), ("The boy smiled.", 18)))
    out = check(RepresentationChecker, m)
    assert out.findings == []
    assert out.metrics["overall"]["gender_and_sex"]["min_max_ratio"] == pytest.approx(0.9)


def test_f01_reference_is_the_clients_real_data(make_deployment: Callable[..., Path]) -> None:
    real = rows(("A girl read.", 40), ("A boy read.", 10))
    # Same 80/20 split as the real data: not a finding, although parity would fail it.
    m = one_client(make_deployment, rows(("The girl smiled.", 40), ("The boy smiled.", 10)), real)
    out = check(RepresentationChecker, m)
    assert out.findings == []
    fig = out.metrics["client:school-a"]["gender_and_sex"]
    assert fig["reference"] == "client-private-sample"
    assert fig["min_max_ratio"] == pytest.approx(1.0)


def test_f01_absent_group_against_real_data(
    tmp_path: Path, make_deployment: Callable[..., Path]
) -> None:
    real = rows(("A girl read.", 30), ("A boy read.", 30), ("An old man sat.", 25))
    m = one_client(make_deployment, rows(("The girl smiled.", 50), ("An old woman sat.", 25)), real)
    out = check(RepresentationChecker, m)
    assert found(out) == {
        ("client:school-a", "gender_and_sex:representation"),
        ("overall", "gender_and_sex:representation"),
    }
    fig = out.metrics["client:school-a"]["gender_and_sex"]
    assert fig["absent_groups"] == ["male"]
    assert fig["min_max_ratio"] == 0.0
    assert "absent: male" in out.findings[0].message
    # The age axis: only `old` in both, so it is graded and balanced.
    assert out.metrics["client:school-a"]["age"]["min_max_ratio"] == pytest.approx(1.0)


def test_f01_skew_must_be_significant(make_deployment: Callable[..., Path]) -> None:
    # 26 vs 11 is a 0.42 ratio but, on 37 mentions, chi-square p = 0.0137: not enough at 0.01.
    m = one_client(make_deployment, rows(("The girl smiled.", 26), ("The boy smiled.", 11)))
    out = check(RepresentationChecker, m)
    assert out.findings == []
    fig = out.metrics["client:school-a"]["gender_and_sex"]
    assert fig["min_max_ratio"] == pytest.approx(11 / 26, abs=1e-6)
    assert fig["p_value"] == pytest.approx(0.013664, abs=1e-6)
    assert len(check(RepresentationChecker, m, alpha=0.05).findings) == 2


def test_f01_too_few_mentions_is_not_graded(make_deployment: Callable[..., Path]) -> None:
    m = one_client(make_deployment, rows(("The girl smiled.", 5)))
    out = check(RepresentationChecker, m)
    assert out.findings == []
    assert out.metrics["client:school-a"]["gender_and_sex"]["graded"] is False


def test_f01_through_the_engine_and_pack(make_deployment: Callable[..., Path]) -> None:
    m = one_client(make_deployment, rows(("The girl smiled.", 40), ("The boy smiled.", 5)))
    report = Auditor(load_manifest(m), only=("FMFL-F01",)).run()
    assert report.rule("FMFL-F01").outcome is Outcome.FAILED
    assert {f.subject for f in report.findings} == {"client:school-a", "overall"}


# -- FMFL-F04's swaps (the model part is in test_fairness_models.py) ------------------------------


def test_gender_swap_keeps_case_and_word_boundaries() -> None:
    from fmfl_audit.checkers.fairness._lexicon import load_gender_swaps
    from fmfl_audit.checkers.fairness.counterfactual import gender_swap

    table = load_gender_swaps()
    assert gender_swap("She told HER brother, the King.", table) == (
        "He told HIS sister, the Queen."
    )
    assert gender_swap("The mangrove heron sat.", table) is None


def test_axis_swap_stays_within_the_axis_and_is_seeded() -> None:
    import random

    from fmfl_audit.checkers.fairness.counterfactual import axis_swap

    text = "Two Black students and an old man."
    a = axis_swap(text, LEX, "race_ethnicity", random.Random(7), 2)
    b = axis_swap(text, LEX, "race_ethnicity", random.Random(7), 2)
    assert a == b and a is not None and a != text
    assert a.endswith(" students and an old man.")
    swapped = mentions(a)
    assert swapped[0][0] == "race_ethnicity" and swapped[0][1] != "black"
    assert axis_swap("The black cat.", LEX, "race_ethnicity", random.Random(7), 2) is None


def test_model_rules_skip_without_their_inputs(make_deployment: Callable[..., Path]) -> None:
    from fmfl_audit.checkers.fairness.client_performance import ClientPerformanceChecker
    from fmfl_audit.checkers.fairness.counterfactual import CounterfactualChecker
    from fmfl_audit.checkers.fairness.group_fairness import GroupFairnessChecker

    (Path(make_deployment(minimal_manifest())).parent / "clf").mkdir()
    m = make_deployment(
        minimal_manifest(
            models=[{"name": "clf", "kind": "sequence-classifier", "checkpoint": "clf"}],
            evaluation={"data": "eval.jsonl"},
        ),
        {"eval.jsonl": [{"text": "x", "label": 1}]},
    )
    dep = load_manifest(m)
    assert GroupFairnessChecker().missing_inputs(dep) == ["evaluation.sensitive_features"]
    assert CounterfactualChecker().missing_inputs(dep) == []
    assert ClientPerformanceChecker().missing_inputs(dep) == ["clients[].holdout"]
    report = Auditor(dep, only=("FMFL-F03", "FMFL-F08")).run()
    assert report.rule("FMFL-F03").skip_reason == "missing input: evaluation.sensitive_features"
    assert report.rule("FMFL-F08").skip_reason == "missing input: clients[].holdout"


def test_f01_groups_rare_in_real_data_stay_out_of_the_reference(
    make_deployment: Callable[..., Path],
) -> None:
    real = rows(("A girl read.", 40), ("A boy read.", 2))
    m = one_client(make_deployment, rows(("The girl smiled.", 400)), real)
    out = check(RepresentationChecker, m)
    assert out.findings == []
    fig = out.metrics["client:school-a"]["gender_and_sex"]
    assert fig["reference_shares"] == {"female": 1.0}
    assert found(check(RepresentationChecker, m, min_reference_mentions=1)) == {
        ("client:school-a", "gender_and_sex:representation"),
        ("overall", "gender_and_sex:representation"),
    }
