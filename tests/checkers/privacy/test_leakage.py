"""FMFL-P06 cross-client leakage, the fingerprint file and the `fingerprint` command."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml
from tests.checkers.privacy.conftest import audit, report_json
from tests.conftest import minimal_manifest, write_jsonl, write_manifest
from typer.testing import CliRunner

from fmfl_audit.checkers.privacy._shingles import (
    LeakIndexBuilder,
    build_fingerprint,
    derive_key,
    read_fingerprint,
    text_hashes,
)
from fmfl_audit.cli.fingerprint import register
from fmfl_audit.errors import InputError
from fmfl_audit.models import Outcome, Severity

KEY = "correct horse battery staple"
A_SECRET = "Maria Lopez in grade four still struggles with reading long words aloud at home"
A_PRIVATE = "the counsellor noted that Daniel was moved to the quiet room after the fight on monday"
SERVER_SECRET = (
    "internal rubric says essays below four hundred words always receive a failing grade"
)
CLEAN = [
    "Lily had a little cat. They went to the park and played with a red ball all day long.",
    "Tom found a key under the mat and opened the old door to the garden behind the house.",
]


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FMFL_AUDIT_FINGERPRINT_KEY", KEY)


def _build(tmp: Path, *, a_private: str = "raw", server: bool = True) -> Path:
    """a: prompts + private (raw or fingerprint); b, c: receivers; server sensitive data."""
    write_jsonl(tmp / "a/prompts.jsonl", [{"text": f"Write a story about {A_SECRET}."}])
    write_jsonl(tmp / "a/private.jsonl", [{"text": A_PRIVATE}, {"text": CLEAN[1]}])
    write_jsonl(tmp / "a/synthetic.jsonl", [{"text": f"Once upon a time {A_SECRET}!"}])  # own: ok
    write_jsonl(tmp / "b/prompts.jsonl", [{"text": "Write a story about a happy dog in the sun."}])
    write_jsonl(
        tmp / "b/synthetic.jsonl",
        [
            {"text": CLEAN[0]},
            {"text": f"Story: {A_SECRET.upper()}, the end. Also {A_PRIVATE}."},
            {"text": f"Again, {A_SECRET}."},
        ],
    )
    write_jsonl(
        tmp / "c/synthetic.jsonl", [{"text": f"Rules: {SERVER_SECRET}."}, {"text": CLEAN[1]}]
    )
    a: dict[str, Any] = {
        "id": "a",
        "prompts": "a/prompts.jsonl",
        "synthetic_data": "a/synthetic.jsonl",
    }
    if a_private == "raw":
        a["private_sample"] = "a/private.jsonl"
    else:
        a["fingerprint"] = a_private
    clients = [
        a,
        {"id": "b", "prompts": "b/prompts.jsonl", "synthetic_data": "b/synthetic.jsonl"},
        {"id": "c", "synthetic_data": "c/synthetic.jsonl"},
    ]
    fm: dict[str, Any] = {"name": "fm"}
    if server:
        write_jsonl(tmp / "server/sensitive.jsonl", [{"text": SERVER_SECRET}])
        fm["sensitive_data"] = "server/sensitive.jsonl"
    return write_manifest(tmp, minimal_manifest(clients=clients, foundation_model=fm))


def _fingerprint_cli(data: Path, out: Path, *extra: str) -> Any:
    app = typer.Typer()

    @app.callback()
    def _root() -> None:
        """Test root."""

    register(app)
    return CliRunner().invoke(app, ["fingerprint", str(data), "-o", str(out), *extra])


def test_p06_matrix_findings_and_redaction(tmp_path: Path) -> None:
    rep = audit(_build(tmp_path), "FMFL-P06")
    got = sorted(
        (f.subject, f.message.split(" (>=")[0], f.metric.value, f.severity)  # type: ignore[union-attr]
        for f in rep.findings
    )
    # b got two spans of a's prompt (records 2 and 3) and one of a's private record (record 2,
    # a separate span); c got the server's data and a's private record CLEAN[1].
    assert got == [
        ("client:b", "3 span(s) of client a's prompts or private records", 3, Severity.CRITICAL),
        ("client:c", "1 span(s) of client a's prompts or private records", 1, Severity.CRITICAL),
        ("client:c", "1 span(s) of the server's sensitive data", 1, Severity.CRITICAL),
    ]
    m = rep.rule("FMFL-P06").metrics
    assert m["federation"]["leakage_matrix"] == {"a": {"b": 3, "c": 1}, "fm:server": {"c": 1}}
    assert m["federation"]["sources_indexed"] == {
        "a:prompts": {"records": 1, "shingles": 11},  # 18 words - 7
        "a:private": {"records": 2, "shingles": 20},  # (16 - 7) + (18 - 7)
        "b:prompts": {"records": 1, "shingles": 3},
        "fm:sensitive_data": {"records": 1, "shingles": 6},
    }
    assert m["client:a"] == {
        "synthetic_records_probed": 1,
        "records_with_leaked_spans": 0,
        "leaked_spans_from": {},
        "discounted_common_spans_from": {},
    }
    assert m["client:b"]["records_with_leaked_spans"] == 2
    b = next(f for f in rep.findings if f.subject == "client:b")
    assert [e.location for e in b.evidence] == ["b/synthetic.jsonl:2", "b/synthetic.jsonl:3"]
    assert b.evidence[1].excerpt == "Again, <LEAKED_FROM:a>."
    out = report_json(rep)
    for raw in ("Maria Lopez", "MARIA LOPEZ", "Daniel", "failing grade", "four hundred words"):
        assert raw not in out


def test_p06_passes_when_nothing_crosses(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "a/prompts.jsonl", [{"text": f"Write a story about {A_SECRET}."}])
    write_jsonl(tmp_path / "a/synthetic.jsonl", [{"text": A_SECRET}])
    write_jsonl(tmp_path / "b/synthetic.jsonl", [{"text": t} for t in CLEAN])
    manifest = minimal_manifest(
        clients=[
            {"id": "a", "prompts": "a/prompts.jsonl", "synthetic_data": "a/synthetic.jsonl"},
            {"id": "b", "synthetic_data": "b/synthetic.jsonl"},
        ]
    )
    rep = audit(write_manifest(tmp_path, manifest), "FMFL-P06")
    assert rep.findings == () and rep.rule("FMFL-P06").outcome is Outcome.PASSED
    assert rep.rule("FMFL-P06").metrics["federation"]["leakage_matrix"] == {}


def test_p06_fingerprint_gives_identical_results(tmp_path: Path) -> None:
    raw = audit(_build(tmp_path / "raw"), "FMFL-P06")
    fp_dir = tmp_path / "fp"
    _build(fp_dir)
    res = _fingerprint_cli(fp_dir / "a/private.jsonl", fp_dir / "a/fingerprint.json")
    assert res.exit_code == 0, res.output
    (fp_dir / "a/private.jsonl").unlink()  # the raw data never reaches the auditor
    via_fp = audit(_build_fp(fp_dir), "FMFL-P06")
    assert via_fp.rule("FMFL-P06").outcome is Outcome.FAILED
    assert via_fp.findings == raw.findings
    assert via_fp.rule("FMFL-P06").metrics == raw.rule("FMFL-P06").metrics
    doc = json.loads((fp_dir / "a/fingerprint.json").read_text())
    assert doc["format"] == "fmfl-audit-fingerprint" and doc["version"] == 1
    assert doc["records"] == 2 and doc["distinct_shingles"] == 20 and doc["k"] == 8
    text = (fp_dir / "a/fingerprint.json").read_text()
    assert "Daniel" not in text and KEY not in text and "counsellor" not in text


def _build_fp(tmp: Path) -> Path:
    """The same deployment with client a's private data given as its fingerprint."""
    write_jsonl(tmp / "a/private.jsonl", [{"text": "placeholder"}])  # _build rewrites it
    path = _build(tmp, a_private="a/fingerprint.json")
    (tmp / "a/private.jsonl").unlink()
    return path


def test_p06_fingerprint_with_another_key_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _build(tmp_path)
    res = _fingerprint_cli(tmp_path / "a/private.jsonl", tmp_path / "a/fingerprint.json")
    assert res.exit_code == 0
    monkeypatch.setenv("FMFL_AUDIT_FINGERPRINT_KEY", "another key")
    rep = audit(_build_fp(tmp_path), "FMFL-P06")
    r = rep.rule("FMFL-P06")
    assert r.outcome is Outcome.ERRORED
    assert r.error == (
        "a/fingerprint.json: fingerprint made with another key than the auditor's "
        "(key_check differs)"
    )


def test_p06_fingerprint_needs_a_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _build(tmp_path)
    assert _fingerprint_cli(tmp_path / "a/private.jsonl", tmp_path / "a/fp.json").exit_code == 0
    monkeypatch.delenv("FMFL_AUDIT_FINGERPRINT_KEY")
    rep = audit(_build(tmp_path, a_private="a/fp.json"), "FMFL-P06")
    assert rep.rule("FMFL-P06").outcome is Outcome.ERRORED
    assert "no fingerprint key is set" in (rep.rule("FMFL-P06").error or "")
    res = _fingerprint_cli(tmp_path / "a/private.jsonl", tmp_path / "a/fp2.json")
    assert res.exit_code == 2 and "no key" in res.output


def test_fingerprint_cli_key_file_and_k(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "d.jsonl", [{"body": "one two three four five six"}])
    (tmp_path / "key.txt").write_text("s3cret\n")
    res = _fingerprint_cli(
        tmp_path / "d.jsonl",
        tmp_path / "fp.json",
        "--text-field",
        "body",
        "--k",
        "4",
        "--key-file",
        str(tmp_path / "key.txt"),
    )
    assert res.exit_code == 0, res.output
    fp = read_fingerprint(tmp_path / "fp.json", "fp.json")
    assert fp.k == 4 and fp.records == 1 and len(fp.hashes) == 3
    expected = text_hashes(["one two three four five six"], 4, derive_key(b"s3cret"))
    assert sorted(int(h) for h in fp.hashes) == sorted(int(h) for h in expected)


def test_read_fingerprint_rejects_other_files(tmp_path: Path) -> None:
    bad = tmp_path / "x.json"
    for content, msg in (
        ("{}", "not an fmfl-audit fingerprint"),
        ('{"format": "fmfl-audit-fingerprint", "version": 9}', "version 9 is not supported"),
        ("not json", "not a readable fingerprint"),
    ):
        bad.write_text(content)
        with pytest.raises(InputError, match=msg):
            read_fingerprint(bad, "x.json")


def test_index_merges_owners_and_normalises() -> None:
    key = derive_key(b"k")
    builder = LeakIndexBuilder()
    a, b = builder.owner("a"), builder.owner("b")
    builder.add(a, text_hashes(["One, two: three FOUR five"], 3, key))
    builder.add(b, text_hashes(["three four five six"], 3, key))
    index = builder.build()
    probe = text_hashes(["one two three four five six seven"], 3, key)
    owners = [sorted(index.owners_of(row)) for row in index.lookup(probe)]
    assert owners == [[0], [0], [0, 1], [1], []]
    fp = build_fingerprint([["one two three"], ["one two three"]], k=3, key=key)
    assert fp.records == 2 and len(fp.hashes) == 1


def test_index_lookup_matches_a_set() -> None:
    import numpy as np

    rng = np.random.default_rng(0)
    builder = LeakIndexBuilder()
    held = {}
    for name in ("a", "b", "c"):
        owner = builder.owner(name)
        arr = rng.integers(0, 2**63, 5000, dtype=np.uint64)
        arr[:100] = np.arange(100, dtype=np.uint64)  # shared by every owner
        builder.add(owner, arr)
        for h in arr.tolist():
            held.setdefault(h, set()).add(owner)
    index = builder.build()
    probe = np.r_[
        np.array(list(held), dtype=np.uint64), rng.integers(0, 2**63, 20000, dtype=np.uint64)
    ]
    got = [set(index.owners_of(row)) for row in index.lookup(probe)]
    assert got == [held.get(int(h), set()) for h in probe]
    assert len(index.hashes) == len(held)


# -- the common-phrase discount ------------------------------------------------------------------

# Unrelated sentences that share a formulaic phrase (a-b), and client a's rare text (written for
# these tests) leaked verbatim and near-verbatim into c's and d's synthetic data.
A_PROMPT = (
    "Write about Harlan Voss, who was an Associate Justice of the Supreme Court of Ohio for "
    "years. Our caretaker Odile keeps the spare greenhouse key under the cracked blue flowerpot "
    "beside the rain barrel, and the alarm code is written on the back of the seed catalogue."
)
B_SYNTH = "Mabel Quint was an Associate Justice of the Supreme Court after a long career."
RARE_12 = "keeps the spare greenhouse key under the cracked blue flowerpot beside the rain"
NEAR = (
    "Our caretaker Odile keeps the spare shed key under the cracked blue flowerpot beside the "
    "rain barrel, and also the alarm code is written on the back of the seed catalogue."
)


def _discount_deployment(tmp: Path, *, fingerprint: bool = False) -> Path:
    write_jsonl(tmp / "a/prompts.jsonl", [{"text": A_PROMPT}])
    write_jsonl(tmp / "b/synthetic.jsonl", [{"text": B_SYNTH}])
    write_jsonl(tmp / "c/synthetic.jsonl", [{"text": f"The story says that he {RARE_12}."}])
    write_jsonl(tmp / "d/synthetic.jsonl", [{"text": NEAR}])
    a: dict[str, Any] = {"id": "a"}
    if fingerprint:
        res = _fingerprint_cli(tmp / "a/prompts.jsonl", tmp / "a/fp.json")
        assert res.exit_code == 0, res.output
        a["fingerprint"] = "a/fp.json"
    else:
        a["prompts"] = "a/prompts.jsonl"
    clients = [a] + [{"id": c, "synthetic_data": f"{c}/synthetic.jsonl"} for c in "bcd"]
    return write_manifest(tmp, minimal_manifest(clients=clients))


@pytest.mark.parametrize("fingerprint", [False, True])
def test_p06_discounts_common_phrases_and_keeps_rare_leaks(
    tmp_path: Path, fingerprint: bool
) -> None:
    rep = audit(_discount_deployment(tmp_path, fingerprint=fingerprint), "FMFL-P06")
    got = sorted((f.subject, f.metric.value) for f in rep.findings)  # type: ignore[union-attr]
    # c: one 12-word span; d: a word changed and one inserted leave two shorter spans.
    assert got == [("client:c", 1), ("client:d", 2)]
    m = rep.rule("FMFL-P06").metrics
    assert m["client:b"]["leaked_spans_from"] == {}
    assert m["client:b"]["discounted_common_spans_from"] == {"a": 1}
    assert any("discounted as common English phrases" in n for n in rep.rule("FMFL-P06").notes)
    assert m["federation"]["leakage_matrix"] == {"a": {"c": 1, "d": 2}}


def test_p06_without_the_discount_the_common_phrase_is_a_leak(tmp_path: Path) -> None:
    m = _discount_deployment(tmp_path)
    doc = yaml.safe_load(m.read_text())
    doc["policy"] = {"rules": {"FMFL-P06": {"params": {"common_phrase_bits": None}}}}
    m.write_text(yaml.safe_dump(doc))
    rep = audit(m, "FMFL-P06")
    assert sorted(f.subject for f in rep.findings) == ["client:b", "client:c", "client:d"]


def test_background_table_scores_common_phrases_low(tmp_path: Path) -> None:
    from fmfl_audit.checkers.privacy._commonness import load_background
    from fmfl_audit.checkers.privacy._shingles import normalised_words
    from fmfl_audit.errors import CheckerError

    bg = load_background()
    common = bg.bits(normalised_words("was listed on the National Register of Historic Places"))
    formulaic = bg.bits(normalised_words("was an Associate Justice of the Supreme Court"))
    rare = bg.bits(normalised_words(RARE_12))
    assert common < 40 < formulaic < 70 < rare
    assert bg.bits([]) == 0.0
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a table")
    with pytest.raises(CheckerError, match="background n-gram table cannot be read"):
        load_background(bad)
