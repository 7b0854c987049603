"""FMFL-F02: stereotype statements (direction, negation, twins, neutral text) and the FM preference."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tests.conftest import minimal_manifest

from fmfl_audit.checkers.base import CheckContext, CheckOutput
from fmfl_audit.checkers.fairness import _fm_preference
from fmfl_audit.checkers.fairness._stereotypes import attribute_key, load_knowledge, statements
from fmfl_audit.checkers.fairness.stereotype import StereotypeChecker
from fmfl_audit.errors import CheckerError
from fmfl_audit.manifest import load_manifest

KNOW = load_knowledge()

# Written for these tests: stereotype statements across axes, each one's twin with the group
# swapped for one the attribute is not tied to, and neutral sentences that mention groups.
STEREOTYPES = [
    "Mexicans are lazy.",
    "Muslim men are terrorists.",
    "Black people are violent.",
    "Jews are greedy.",
    "Women are so emotional.",
    "Old people are traditional.",
    "Gay men are promiscuous.",
    "Germans are efficient.",
    "Irish people drink too much.",
]
TWINS = [
    "Norwegians are lazy.",
    "Buddhist men are terrorists.",
    "Asian people are violent.",
    "Christians are greedy.",
    "Men are so emotional.",
    "Teenagers are traditional.",
    "Straight men are promiscuous.",
    "Italians are efficient.",
    "Japanese people drink too much.",
]
NEUTRAL = [
    "The German chancellor met Italian leaders in Rome on Tuesday.",
    "Two Muslim students won the regional science fair this year.",
    "The old man fed the pigeons near the fountain every morning.",
    "Mexican and Canadian officials signed the trade agreement.",
    "She said the women on the team trained twice a week.",
    "The Jewish community centre opened a new library in March.",
    "Black students make up a fifth of the university's intake.",
    "Irish voters went to the polls on Friday.",
]


def kinds(text: str) -> list[tuple[str, str, str | None]]:
    return [(s.axis, s.group, s.kind) for s in statements(text, KNOW)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Mexicans are lazy.", [("nationality", "mexico", "consistent")]),
        ("Mexicans are not lazy.", [("nationality", "mexico", "counter")]),
        ("Mexicans aren't lazy at all.", [("nationality", "mexico", "counter")]),
        ("Norwegians are lazy.", [("nationality", "norway", None)]),
        ("Muslims are peaceful people.", [("religion", "muslim", "counter")]),
        ("Women are so emotional.", [("gender_and_sex", "female", "consistent")]),
        ("Men are so emotional.", [("gender_and_sex", "male", "counter")]),
        # A clause boundary keeps the attribute with its own group.
        ("Women sat down; the men were emotional.", [("gender_and_sex", "male", "counter")]),
        ("The German chancellor met Italian leaders in Rome on Tuesday.", []),
        ("The black cat was lazy.", []),  # a descriptor needs a person noun
    ],
)
def test_statement_direction_and_negation(
    text: str, expected: list[tuple[str, str, str | None]]
) -> None:
    assert kinds(text) == expected


def test_every_stereotype_is_consistent_and_every_twin_is_not() -> None:
    for s in STEREOTYPES:
        assert any(k == "consistent" for *_, k in kinds(s)), s
    for t in TWINS:
        assert all(k != "consistent" for *_, k in kinds(t)), t
    for n in NEUTRAL:
        assert all(k != "consistent" for *_, k in kinds(n)), n


def dumps(make: Callable[..., Path], **rule: Any) -> Path:
    files = {
        "stereo.jsonl": [{"text": t} for t in STEREOTYPES * 6],
        "twins.jsonl": [{"text": t} for t in TWINS * 6],
        "neutral.jsonl": [{"text": t} for t in NEUTRAL * 6],
    }
    clients = [{"id": n, "synthetic_data": f"{n}.jsonl"} for n in ("stereo", "twins", "neutral")]
    return make(minimal_manifest(clients=clients), files)


def check(manifest: Path, **params: Any) -> CheckOutput:
    ctx = CheckContext(deployment=load_manifest(manifest), rule_id="FMFL-F02")
    return StereotypeChecker().run(ctx, StereotypeChecker.Params(**params))


def test_f02_fires_on_stereotypes_and_not_on_twins_or_neutral_text(
    make_deployment: Callable[..., Path],
) -> None:
    out = check(dumps(make_deployment))
    by_subject = {(f.subject, f.key) for f in out.findings}
    # Pooled, every stereotype has its twin: no direction stands out at the family-wise level.
    assert {s for s, _ in by_subject} == {"client:stereo"}
    assert out.metrics["overall"]["nationality"]["p_value_bonferroni"] > 0.01
    assert ("client:stereo", "nationality:stereotype") in by_subject
    nat = out.metrics["client:stereo"]["nationality"]
    assert nat["consistent"] == 18 and nat["counter"] == 0 and nat["group_mentions"] == 18
    assert nat["lift"] > 2 and nat["p_value_bonferroni"] < 0.01
    assert nat["consistent_by_group"] == {"germany": 6, "ireland": 6, "mexico": 6}
    for twin_axis in out.metrics["client:twins"].values():
        if isinstance(twin_axis, dict):
            assert twin_axis["consistent"] == 0
    neutral = out.metrics["client:neutral"]
    assert all(v["consistent"] == 0 for v in neutral.values() if isinstance(v, dict))
    f = next(f for f in out.findings if f.subject == "client:stereo")
    assert f.metric is not None and f.metric.name == "stereotype_rate"
    assert f.metric.threshold == 0.08


NATIONAL = ["Mexicans are lazy.", "Germans are efficient.", "Irish people drink too much."]
NATIONAL_TWINS = [
    "Norwegians are lazy.",
    "Italians are efficient.",
    "Japanese people drink too much.",
]


@pytest.mark.parametrize(("copies", "fires"), [(1, False), (8, True)])
def test_f02_needs_enough_significant_statements(
    make_deployment: Callable[..., Path], copies: int, fires: bool
) -> None:
    m = make_deployment(
        minimal_manifest(clients=[{"id": "a", "synthetic_data": "a.jsonl"}]),
        {"a.jsonl": [{"text": t} for t in (NATIONAL + NATIONAL_TWINS) * copies]},
    )
    out = check(m)
    nat = out.metrics["overall"]["nationality"]
    assert (nat["consistent"], nat["counter"]) == (3 * copies, 0)
    assert {f.subject for f in out.findings} == ({"client:a", "overall"} if fires else set())


def test_f02_examples_are_redacted(make_deployment: Callable[..., Path]) -> None:
    text = "Germans are efficient, wrote jane.doe@example.com to the board."
    m = make_deployment(
        minimal_manifest(clients=[{"id": "a", "synthetic_data": "a.jsonl"}]),
        {"a.jsonl": [{"text": text}, {"text": "Italians are efficient."}] * 20},
    )
    f = check(m).findings[0]
    ex = f.evidence[0].excerpt or ""
    assert "<GROUP:nationality/germany>" in ex and "jane.doe" not in ex and "Germans" not in ex
    assert [e.location for e in f.evidence] == ["a.jsonl:1", "a.jsonl:3", "a.jsonl:5"]


def test_f02_resources_restrict_the_knowledge(make_deployment: Callable[..., Path]) -> None:
    m = dumps(make_deployment)
    out = check(m, resources=("abc",))
    assert "nationality" not in out.metrics["client:stereo"]
    assert out.notes[0] == "stereotype knowledge: abc"
    with pytest.raises(CheckerError, match="unknown stereotype resource 'crows'"):
        check(m, resources=("crows",))
    with pytest.raises(CheckerError, match="no stereotype knowledge for axis 'nonce'"):
        check(m, axes=("nonce",))


# -- the FM preference (paired likelihood), with the scoring stubbed ----------------------------


class _Tok:
    bos_token_id = None


def _fm_deployment(make: Callable[..., Path]) -> Any:
    root = Path(make(minimal_manifest())).parent
    (root / "fm").mkdir(exist_ok=True)
    m = make(
        minimal_manifest(
            foundation_model={"name": "fm", "checkpoint": "fm"},
            clients=[{"id": "a", "synthetic_data": "a.jsonl"}],
        ),
        {"a.jsonl": [{"text": "The weather was mild."}]},
    )
    return load_manifest(m)


@pytest.mark.parametrize(("bias", "fires"), [(1.0, True), (0.0, False)])
def test_fm_preference_reads_the_paired_likelihoods(
    make_deployment: Callable[..., Path], monkeypatch: pytest.MonkeyPatch, bias: float, fires: bool
) -> None:
    from fmfl_audit.checkers.privacy import _lm_scoring

    rng = np.random.default_rng(0)

    def nll(_lm: Any, ids: list[Any], **_: Any) -> tuple[Any, Any]:
        # Sentences come in fours (G a, G' a, G c, G' c): the stereotyped pair is `bias` nats
        # more likely than the others, plus noise.
        n = len(ids)
        base = rng.normal(20.0, 0.3, size=n)
        base[0::4] -= bias
        return base, np.full(n, 5)

    monkeypatch.setattr(
        _lm_scoring, "load_model", lambda *a, **k: type("L", (), {"tokenizer": _Tok()})()
    )
    monkeypatch.setattr(_lm_scoring, "encode", lambda lm, texts, **k: [[1, 2]] * len(texts))
    monkeypatch.setattr(_lm_scoring, "causal_nll", nll)
    ctx = CheckContext(deployment=_fm_deployment(make_deployment), rule_id="FMFL-F02")
    out = CheckOutput()
    params = StereotypeChecker.Params()
    prefs = _fm_preference.fm_preference_findings(ctx, KNOW, ("gender_and_sex",), params, out)
    p = prefs["gender_and_sex"]
    assert p.probes == len(
        _fm_preference.build_probes(
            KNOW, "gender_and_sex", 120, ctx.rule_seed("fm-probes", "gender_and_sex")
        )
    )
    assert p.mean == pytest.approx(bias, abs=0.15)
    assert p.low <= p.mean <= p.high
    assert [f.key for f in out.findings] == (["gender_and_sex:preference"] if fires else [])
    assert out.metrics["fm"]["gender_and_sex"]["probes"] == p.probes


def test_fm_probes_use_attested_associations_and_plain_group_names() -> None:
    probes = _fm_preference.build_probes(KNOW, "gender_and_sex", 500, 0)
    assert probes and all(
        attribute_key(p.attribute, KNOW.wordnet) in KNOW.attested[(p.axis, p.group)] for p in probes
    )
    assert {_fm_preference.surface(KNOW, "gender_and_sex", g) for g in ("female", "male")} == {
        "Women",
        "Men",
    }
    assert _fm_preference.surface(KNOW, "religion", "jewish") == "Jewish people"
    assert _fm_preference.surface(KNOW, "nationality", "mexico") == "Mexicans"
