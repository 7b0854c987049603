"""FMFL-P01 with a spaCy NER model: names and places are found only when the engine has NER.

No spaCy model can be downloaded here, so the test trains a tiny English NER pipeline in-process
(PERSON and GPE, a few dozen sentences), saves it with `nlp.to_disk`, and points Presidio at the
folder, once through the rule's `spacy_model` and once through $FMFL_AUDIT_SPACY_MODEL.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
from tests.checkers.privacy.conftest import audit
from tests.conftest import minimal_manifest, write_jsonl, write_manifest

from fmfl_audit.checkers.privacy._presidio import PII_ENGINE_NOTE, SPACY_MODEL_ENV
from fmfl_audit.models import Outcome

NAMES = ["Alice", "Bob", "Maria", "Omar", "Lucy", "Tom"]
CITIES = ["Paris", "London", "Berlin", "Madrid", "Tokyo", "Boston"]
TEMPLATES = ["{n} lives in {c}.", "{n} moved to {c} last year.", "My friend {n} visited {c}."]


def _examples() -> list[tuple[str, list[tuple[int, int, str]]]]:
    out = []
    for i, template in enumerate(TEMPLATES):
        for j, name in enumerate(NAMES):
            city = CITIES[(i + j) % len(CITIES)]
            text = template.format(n=name, c=city)
            n0, c0 = text.index(name), text.index(city)
            out.append((text, [(n0, n0 + len(name), "PERSON"), (c0, c0 + len(city), "GPE")]))
    return out


@pytest.fixture(scope="module")
def ner_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny spaCy NER pipeline trained here (18 sentences, 25 epochs), saved to a folder."""
    import spacy
    from spacy.training import Example

    spacy.util.fix_random_seed(0)
    nlp = spacy.blank("en")
    ner = nlp.add_pipe("ner")
    for label in ("PERSON", "GPE"):
        ner.add_label(label)
    examples = [
        Example.from_dict(nlp.make_doc(text), {"entities": ents}) for text, ents in _examples()
    ]
    optimizer = nlp.initialize(lambda: examples)
    rng = random.Random(0)
    for _ in range(25):
        rng.shuffle(examples)
        for batch in spacy.util.minibatch(examples, size=6):
            nlp.update(batch, sgd=optimizer, drop=0.1)
    path = tmp_path_factory.mktemp("spacy") / "tiny-ner"
    nlp.to_disk(path)
    return path


def _deploy(tmp: Path, params: dict[str, Any] | None = None) -> Path:
    texts = [text for text, _ in _examples()[:6]]  # one sentence per name, all three templates
    write_jsonl(tmp / "synthetic.jsonl", [{"text": t} for t in texts])
    manifest = minimal_manifest(clients=[{"id": "a", "synthetic_data": "synthetic.jsonl"}])
    if params is not None:
        manifest["policy"] = {"rules": {"FMFL-P01": {"params": params}}}
    return write_manifest(tmp, manifest)


def _names_and_places(rep: Any) -> dict[str, int]:
    entities = rep.rule("FMFL-P01").metrics["client:a"]["entities"]
    return {k: v for k, v in entities.items() if k in ("PERSON", "LOCATION")}


@pytest.mark.slow
def test_ner_model_by_param_finds_names_and_places(ner_model: Path, tmp_path: Path) -> None:
    rep = audit(_deploy(tmp_path, {"spacy_model": str(ner_model)}), "FMFL-P01")
    assert _names_and_places(rep) == {"PERSON": 6, "LOCATION": 6}
    result = rep.rule("FMFL-P01")
    assert result.outcome is Outcome.FAILED
    (note,) = result.notes
    assert note.startswith(PII_ENGINE_NOTE + "Presidio ")
    assert f"spaCy model {ner_model}" in note and "NER: names and places detected" in note
    keys = {(f.subject, f.metric.name) for f in rep.findings if f.metric}
    assert keys == {("client:a", "PERSON_count"), ("client:a", "LOCATION_count")}
    # Evidence is masked with the same engine: no name or city survives in an excerpt.
    excerpts = [e.excerpt for f in rep.findings for e in f.evidence]
    assert excerpts and not any(w in x for x in excerpts for w in NAMES + CITIES)


@pytest.mark.slow
def test_ner_model_by_environment(
    ner_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SPACY_MODEL_ENV, str(ner_model))
    rep = audit(_deploy(tmp_path), "FMFL-P01")
    assert _names_and_places(rep) == {"PERSON": 6, "LOCATION": 6}


def test_blank_engine_finds_no_names_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SPACY_MODEL_ENV, "blank")
    rep = audit(_deploy(tmp_path), "FMFL-P01")
    result = rep.rule("FMFL-P01")
    assert result.outcome is Outcome.PASSED and rep.findings == ()
    assert result.metrics["client:a"]["entities"] == {}
    (note,) = result.notes
    assert note.startswith(PII_ENGINE_NOTE + "Presidio ")
    assert "blank spaCy 'en' pipeline" in note and "need a spaCy NER model" in note


def test_missing_model_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SPACY_MODEL_ENV, str(tmp_path / "no-such-model"))
    result = audit(_deploy(tmp_path), "FMFL-P01").rule("FMFL-P01")
    assert result.outcome is Outcome.ERRORED
    assert result.error is not None
    assert (
        f"from ${SPACY_MODEL_ENV}" in result.error
        and "neither an installed package" in result.error
    )
