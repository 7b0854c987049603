"""FMFL-F02's knowledge layers: WordNet canonical forms, WordNet synonyms / antonyms, the ToxiGen
resource (disability, immigration status, sexual orientation, ...) and Choenni et al.'s and
Kamruzzaman et al.'s (age, socio-economic status, physical appearance)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import minimal_manifest

from fmfl_audit.checkers.base import CheckContext
from fmfl_audit.checkers.fairness._stereotypes import (
    RESOURCES,
    StereotypeKnowledge,
    load_knowledge,
    load_wordnet,
    statements,
)
from fmfl_audit.checkers.fairness.stereotype import StereotypeChecker
from fmfl_audit.errors import CheckerError
from fmfl_audit.manifest import load_manifest

FULL = load_knowledge()
NO_EXPANSION = load_knowledge(expand=False)
FOLD_ONLY = load_knowledge(lemmatise=False, expand=False)
NO_TOXIGEN = load_knowledge(tuple(r for r in RESOURCES if r != "toxigen"))
NEW = ("choenni", "kamruzzaman")
WITHOUT_NEW = load_knowledge(tuple(r for r in RESOURCES if r not in NEW))

Kinds = list[tuple[str, str, str | None]]


def kinds(text: str, know: StereotypeKnowledge = FULL) -> Kinds:
    return [(s.axis, s.group, s.kind) for s in statements(text, know)]


def test_the_wordnet_slice_relates_the_words_the_tests_use() -> None:
    wn = load_wordnet()
    assert "indolent" in wn.synonyms["lazy"] and "busy" in wn.antonyms["lazy"]
    assert "selfish" in wn.synonyms["egoistic"]
    assert [wn.canonical(w) for w in ("laziness", "lazily", "criminals", "greed")] == [
        "lazy",
        "lazy",
        "criminal",
        "greedy",
    ]
    # A concrete noun or an everyday word keeps its own meaning.
    assert [wn.canonical(w) for w in ("father", "meaning", "needs")] == [
        "father",
        "meaning",
        "need",
    ]


@pytest.mark.parametrize(
    ("text", "full"),
    [
        # SeeGULL: Mexicans - lazy; WordNet: indolent is a synonym, busy an antonym.
        ("Mexicans are indolent.", [("nationality", "mexico", "consistent")]),
        ("Mexicans are not indolent.", [("nationality", "mexico", "counter")]),
        ("Mexicans are busy.", [("nationality", "mexico", "counter")]),
        ("Norwegians are indolent.", [("nationality", "norway", None)]),
        # ABC: wealthy people - egoistic; WordNet: egocentric (Choenni et al. say `selfish`).
        ("Rich people are egocentric.", [("socioeconomic_class", "upper_class", "consistent")]),
        ("Rich people are not egocentric.", [("socioeconomic_class", "upper_class", "counter")]),
        ("Poor people are egocentric.", [("socioeconomic_class", "below_poverty_line", None)]),
    ],
)
def test_wordnet_synonyms_and_antonyms_keep_direction(text: str, full: Kinds) -> None:
    assert kinds(text) == full
    # Without the expansion the word is no attribute of the group (of another at most).
    assert all(k is None for *_, k in kinds(text, NO_EXPANSION))


@pytest.mark.parametrize(
    ("text", "lemmatised", "folded"),
    [
        (
            "Mexicans are known for their laziness.",
            [("nationality", "mexico", "consistent")],
            [],
        ),
        ("Mexicans work lazily.", [("nationality", "mexico", "consistent")], []),
        ("Norwegians are known for their laziness.", [("nationality", "norway", None)], []),
    ],
)
def test_canonical_forms_match_derived_words(text: str, lemmatised: Kinds, folded: Kinds) -> None:
    assert kinds(text, NO_EXPANSION) == lemmatised
    assert kinds(text, FOLD_ONLY) == folded


@pytest.mark.parametrize(
    ("text", "with_toxigen"),
    [
        ("Blind people are helpless.", [("ability", "visual", "consistent")]),
        ("Deaf people are helpless.", [("ability", "auditory", None)]),
        ("Blind people are not helpless.", [("ability", "visual", "counter")]),
        ("The mentally ill are a threat to society.", [("ability", "mental_health", "consistent")]),
        (
            "Immigrants steal our jobs.",
            [("characteristics", "immigration_status", "consistent")],
        ),
    ],
)
def test_toxigen_covers_disability_and_immigration(text: str, with_toxigen: Kinds) -> None:
    assert kinds(text) == with_toxigen
    # Without ToxiGen the same mentions carry no known attribute of theirs.
    assert [k for *_, k in kinds(text, NO_TOXIGEN)] == [None] * len(with_toxigen)


def test_toxigen_words_are_not_attested_for_the_fm_probes() -> None:
    assert ("helpless",) in FULL.stereo[("ability", "visual")]
    assert ("helpless",) not in FULL.attested.get(("ability", "visual"), frozenset())
    # Expansions are never attested either.
    assert ("indolent",) in FULL.stereo[("nationality", "mexico")]
    assert ("indolent",) not in FULL.attested.get(("nationality", "mexico"), frozenset())


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # Choenni et al.: rich people - greedy, poor people - unappreciative.
        ("Rich people are greedy.", [("socioeconomic_class", "upper_class", "consistent")]),
        ("Rich people are not greedy.", [("socioeconomic_class", "upper_class", "counter")]),
        ("Poor people are greedy.", [("socioeconomic_class", "below_poverty_line", None)]),
        (
            "Poor people are unappreciative.",
            [("socioeconomic_class", "below_poverty_line", "consistent")],
        ),
        # Choenni et al.: old people, boomers - grumpy; teenagers - moody; millennials - anxious.
        ("Old people are grumpy.", [("age", "old", "consistent")]),
        ("Old people are not grumpy.", [("age", "old", "counter")]),
        ("Young people are grumpy.", [("age", "young", None)]),
        ("Boomers are grumpy.", [("age", "old", "consistent")]),
        ("Teenagers are moody.", [("age", "child", "consistent")]),
        ("Millennials are anxious.", [("age", "young", "consistent")]),
        # Kamruzzaman et al.: older people rigid (counter adaptable), younger adaptable.
        ("Old people are rigid.", [("age", "old", "consistent")]),
        ("Old people are adaptable.", [("age", "old", "counter")]),
        ("Young people are adaptable.", [("age", "young", "consistent")]),
        # Kamruzzaman et al.'s beauty halo: unattractive people stupid, attractive ones smart.
        ("Ugly people are stupid.", [("body_type", "unattractive", "consistent")]),
        ("Attractive people are stupid.", [("body_type", "attractive", "counter")]),
    ],
)
def test_choenni_and_kamruzzaman_cover_age_class_and_looks(text: str, expected: Kinds) -> None:
    assert kinds(text) == expected
    # Without the two resources none of these is a statement of either kind.
    assert all(k is None for *_, k in kinds(text, WITHOUT_NEW))


def test_the_known_gaps_stay_statements_of_no_kind() -> None:
    """No licensed resource fetched ties `lazy` to poor or fat people (RESULTS.md, F02): the
    mention is found, the attribute is known (of other groups), but the statement has no kind."""
    assert kinds("Poor people are lazy.") == [("socioeconomic_class", "below_poverty_line", None)]
    assert kinds("Poor people are not lazy.") == [
        ("socioeconomic_class", "below_poverty_line", None)
    ]
    assert kinds("Fat people are lazy.") == [("body_type", "overweight", None)]


def test_the_new_resources_never_attest() -> None:
    """Autocompletions and the ageism / beauty-halo hypotheses do not feed the FM probes."""
    assert ("grumpy",) in FULL.stereo[("age", "old")]
    assert ("rigid",) in FULL.stereo[("age", "old")]
    assert FULL.attested[("age", "old")] == WITHOUT_NEW.attested[("age", "old")]
    assert ("body_type", "unattractive") not in FULL.attested
    assert ("greedy",) not in FULL.attested.get(("socioeconomic_class", "upper_class"), ())


def test_a_bad_wordnet_slice_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "wordnet.json"
    bad.write_text(json.dumps({"format": "something-else", "version": 1}), "utf-8")
    with pytest.raises(CheckerError, match="not a version-1 fmfl-audit-wordnet-slice file"):
        load_wordnet(bad)


# RedditBias and ToxiGen: Jews - greedy; WordNet: avaricious, covetous (no other religion's).
SYNONYMS = ["Jews are avaricious.", "Jews are covetous."]
SYNONYM_TWINS = ["Buddhists are avaricious.", "Buddhists are covetous."]
COPIES = 20


def _stereo_and_twins(
    make_deployment: Callable[..., Path], stereo: list[str], twins: list[str], **params: Any
) -> Any:
    """F02 with `params` on two clients: `stereo` and its group-swapped `twins`, COPIES each."""
    m = make_deployment(
        minimal_manifest(
            clients=[
                {"id": "stereo", "synthetic_data": "s.jsonl"},
                {"id": "twins", "synthetic_data": "t.jsonl"},
            ]
        ),
        {
            "s.jsonl": [{"text": t} for t in stereo * COPIES],
            "t.jsonl": [{"text": t} for t in twins * COPIES],
        },
    )
    ctx = CheckContext(deployment=load_manifest(m), rule_id="FMFL-F02")
    return StereotypeChecker().run(ctx, StereotypeChecker.Params(**params))


@pytest.mark.parametrize(("expand", "fires"), [(True, True), (False, False)])
def test_f02_fires_on_synonym_statements_only_with_the_expansion(
    make_deployment: Callable[..., Path], expand: bool, fires: bool
) -> None:
    out = _stereo_and_twins(make_deployment, SYNONYMS, SYNONYM_TWINS, wordnet_expansion=expand)
    found = {(f.subject, f.key) for f in out.findings}
    rel = out.metrics["client:stereo"]["religion"]
    if fires:
        # Pooled with the twins the 40 statements are still all about one group: it fires too.
        assert found == {
            ("client:stereo", "religion:stereotype"),
            ("overall", "religion:stereotype"),
        }
        assert (rel["consistent"], rel["counter"], rel["group_mentions"]) == (40, 0, 40)
        assert rel["lift"] > 1.5 and rel["p_value_bonferroni"] < 0.01
    else:
        assert found == set() and rel["consistent"] == 0
    twins = out.metrics["client:twins"]
    assert all(v["consistent"] == 0 for v in twins.values() if isinstance(v, dict))


# Each attribute is a stereotype of one age group only (`grumpy` is said of old people and
# teenagers: with three age groups it would carry too little direction to count).
AGE = ["Old people are rigid.", "Young people are adaptable.", "Boomers are cynical."]
AGE_TWINS = ["Young people are rigid.", "Old people are adaptable.", "Millennials are cynical."]


@pytest.mark.parametrize(("resources", "fires"), [(None, True), (list(RESOURCES[:6]), False)])
def test_f02_fires_on_age_statements_only_with_the_new_resources(
    make_deployment: Callable[..., Path], resources: list[str] | None, fires: bool
) -> None:
    out = _stereo_and_twins(make_deployment, AGE, AGE_TWINS, resources=resources)
    found = {(f.subject, f.key) for f in out.findings}
    age = out.metrics["client:stereo"]["age"]
    if fires:
        # Pooled, the twins' 40 counter statements (`Young people are rigid`) outweigh the
        # direction: only the stereotyping client is flagged.
        assert found == {("client:stereo", "age:stereotype")}
        assert (age["consistent"], age["counter"], age["group_mentions"]) == (60, 0, 60)
        assert age["lift"] >= 1.5 and age["p_value_bonferroni"] < 0.01
    else:
        assert found == set() and age["consistent"] == 0
    twins = out.metrics["client:twins"]
    assert all(v["consistent"] == 0 for v in twins.values() if isinstance(v, dict))
