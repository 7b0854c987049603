"""FMFL-P06 as shard map/reduce tasks: the report does not depend on where files are cut or on how
many workers ran; the index partials, the tasks and the leakage index cross processes intact."""

from __future__ import annotations

import json
import pickle
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import minimal_manifest, same_report_on_every_executor

from fmfl_audit.checkers.privacy._shingles import (
    LeakIndexBuilder,
    build_fingerprint,
    derive_key,
    sorted_unique,
    text_hashes,
)
from fmfl_audit.checkers.privacy.leakage import _IndexTask, _ProbeTask
from fmfl_audit.engine.executors import Cache, ShardEnv
from fmfl_audit.inputs.records import Record
from fmfl_audit.inputs.shards import plan_shards
from fmfl_audit.manifest import load_manifest
from fmfl_audit.manifest.model import DataSource

KEY = "sharded p06 test key"
SHARD_BYTES = 400
RULE = "FMFL-P06"
SYLLABLES = ["ka", "lo", "mi", "ru", "te", "vo", "sa", "ne", "pi", "du", "ge", "ho", "zu", "fe"]
BOILERPLATE = "please write a short and gentle story for a young child about this"


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FMFL_AUDIT_FINGERPRINT_KEY", KEY)


def _texts(rng: random.Random, n: int) -> list[str]:
    """Texts of 10-16 random three-syllable words (no 8-word sequence repeats by chance)."""
    words = ["".join(rng.choices(SYLLABLES, k=3)) for _ in range(600)]
    return [" ".join(rng.choices(words, k=rng.randint(10, 16))) for _ in range(n)]


def _report(manifest: Path) -> dict[str, Any]:
    """The rule's report (JSON, timing aside), asserted identical on every executor."""
    _, dump = same_report_on_every_executor(
        load_manifest(manifest), (RULE,), shard_bytes=SHARD_BYTES, device="cpu"
    )
    return dump


def _sources(manifest: Path) -> list[DataSource]:
    m = load_manifest(manifest).manifest
    out = [
        s
        for c in m.clients
        for s in (c.prompts, c.private_sample, c.synthetic_data)
        if s is not None
    ]
    if m.foundation_model is not None and m.foundation_model.sensitive_data is not None:
        out.append(m.foundation_model.sensitive_data)
    return out


def _wrap(inner: str) -> str:
    return f"once upon a time {inner} and that was the end"


def _leaky(make_deployment: Callable[..., Path], tmp_path: Path) -> Path:
    """a: prompts (JSONL) + private (CSV); b: prompts + private (Parquet, small row groups);
    c: private given as a fingerprint; the server's sensitive data; synthetic data for all three
    with leaks spread over many shards."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = random.Random(6)
    a_prompts = [f"{BOILERPLATE} {t}" for t in _texts(rng, 40)]
    a_private = _texts(rng, 40)
    b_prompts = [f"{BOILERPLATE} {t}" for t in _texts(rng, 20)]
    b_private = _texts(rng, 40)
    c_private = _texts(rng, 30)
    server = _texts(rng, 40)

    a_syn = [{"text": t} for t in _texts(rng, 120)]
    for i in (3, 50, 110):
        a_syn[i] = {"text": _wrap(a_prompts[i % 40])}  # a's own prompt coming back: no leak
    a_syn[70] = {"text": _wrap(b_private[7])}  # b -> a
    a_lines = [json.dumps(r) for r in a_syn]
    a_lines.insert(30, "{not json")
    a_lines.insert(90, '{"other": "no text field"}')

    b_syn = [{"text": t} for t in _texts(rng, 150)]
    for n, i in enumerate((5, 40, 77, 120, 149)):
        b_syn[i] = {"text": _wrap(a_prompts[n])}  # a -> b, five spans
    b_syn[60] = {"text": _wrap(server[3]) + " " + _wrap(a_private[2])}  # fm and a, one record
    b_syn[130] = {"text": "mail pupil@example.org " + _wrap(server[9])}
    b_syn[90] = {"text": _wrap(c_private[4])}  # c (fingerprint) -> b
    b_syn[100] = {"text": _wrap(b_private[1])}  # b's own: no leak

    c_syn = [{"text": t} for t in _texts(rng, 130)]
    for i in (2, 33, 64, 95, 126):
        c_syn[i] = {"text": _wrap(b_private[i % 40])}  # b -> c, five spans
    c_syn[50] = {"text": _wrap(a_private[10])}  # a -> c
    c_syn[80] = {"text": _wrap(BOILERPLATE)}  # held by a and b: ignored (common_min_owners)

    fp = build_fingerprint([c_private], k=8, key=derive_key(KEY.encode()))
    pq_path = tmp_path / "b/private.parquet"
    pq_path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({"text": b_private}), pq_path, row_group_size=4)

    clients = [
        {
            "id": "a",
            "prompts": "a/prompts.jsonl",
            "private_sample": "a/private.csv",
            "synthetic_data": "a/synthetic.jsonl",
        },
        {
            "id": "b",
            "prompts": "b/prompts.jsonl",
            "private_sample": "b/private.parquet",
            "synthetic_data": "b/synthetic.csv",
        },
        {"id": "c", "fingerprint": "c/fingerprint.json", "synthetic_data": "c/synthetic.jsonl"},
    ]
    manifest = minimal_manifest(
        clients=clients,
        foundation_model={"name": "fm", "sensitive_data": "server/sensitive.jsonl"},
        policy={"rules": {RULE: {"params": {"max_examples": 2, "common_min_owners": 2, "k": 8}}}},
    )
    return make_deployment(
        manifest,
        {
            "a/prompts.jsonl": [{"text": t} for t in a_prompts],
            "a/private.csv": [{"id": i, "text": t} for i, t in enumerate(a_private)],
            "a/synthetic.jsonl": "\n".join(a_lines) + "\n",
            "b/prompts.jsonl": [{"text": t} for t in b_prompts],
            "b/synthetic.csv": b_syn,
            "c/fingerprint.json": fp.to_json() + "\n",
            "c/synthetic.jsonl": c_syn,
            "server/sensitive.jsonl": [{"text": t} for t in server],
        },
    )


def test_p06_leaks_are_identical_for_every_shard_cut_and_worker_count(
    make_deployment: Callable[..., Path], tmp_path: Path
) -> None:
    manifest = _leaky(make_deployment, tmp_path)
    for src in _sources(manifest):
        assert len(plan_shards(src, "x", target_bytes=SHARD_BYTES)) > 3, src.path
    whole = _report(manifest)  # identical on every executor
    assert whole["rules"][0]["outcome"] == "failed"
    metrics = whole["rules"][0]["metrics"]
    assert metrics["federation"]["leakage_matrix"] == {
        "a": {"b": 6, "c": 1},
        "b": {"a": 1, "c": 5},
        "c": {"b": 1},
        "fm:server": {"b": 2},
    }
    indexed = metrics["federation"]["sources_indexed"]
    assert {k: v["records"] for k, v in indexed.items()} == {
        "a:prompts": 40,
        "a:private": 40,
        "b:prompts": 20,
        "b:private": 40,
        "c:private": 30,
        "fm:sensitive_data": 40,
    }
    assert metrics["client:a"]["synthetic_records_probed"] == 120  # two malformed lines skipped
    assert metrics["client:b"]["records_with_leaked_spans"] == 8
    assert len(whole["findings"]) == 6
    b_from_a = next(
        f for f in whole["findings"] if f["subject"] == "client:b" and "client a's" in f["message"]
    )
    # max_examples=2: the first two records in file order, though they lie in different shards.
    assert [e["location"] for e in b_from_a["evidence"]] == [
        "b/synthetic.csv:7",
        "b/synthetic.csv:42",
    ]
    fm = next(f for f in whole["findings"] if "server's" in f["message"])
    assert fm["metric"]["value"] == 2 and "<EMAIL_ADDRESS>" in fm["evidence"][1]["excerpt"]
    assert "<LEAKED_FROM:fm:server" in fm["evidence"][1]["excerpt"]
    assert "pupil@" not in json.dumps(whole)
    assert "client c: private data from its fingerprint" in whole["rules"][0]["notes"]
    assert {i["path"]: i["malformed"] for i in whole["inputs"]}["a/synthetic.jsonl"] == 2


def test_p06_no_leak_is_identical_for_every_shard_cut_and_worker_count(
    make_deployment: Callable[..., Path],
) -> None:
    rng = random.Random(11)
    a_prompts, b_prompts = _texts(rng, 30), _texts(rng, 30)
    a_syn = [{"text": t} for t in _texts(rng, 80)] + [{"text": _wrap(t)} for t in a_prompts[:5]]
    b_syn = [{"text": t} for t in _texts(rng, 80)] + [{"text": _wrap(t)} for t in b_prompts[5:9]]
    manifest = make_deployment(
        minimal_manifest(
            clients=[
                {"id": "a", "prompts": "a/prompts.csv", "synthetic_data": "a/synthetic.jsonl"},
                {"id": "b", "prompts": "b/prompts.jsonl", "synthetic_data": "b/synthetic.csv"},
            ]
        ),
        {
            "a/prompts.csv": [{"text": t} for t in a_prompts],
            "a/synthetic.jsonl": a_syn,
            "b/prompts.jsonl": [{"text": t} for t in b_prompts],
            "b/synthetic.csv": b_syn,
        },
    )
    for src in _sources(manifest):
        assert len(plan_shards(src, "x", target_bytes=SHARD_BYTES)) > 3, src.path
    whole = _report(manifest)  # identical on every executor
    assert whole["rules"][0]["outcome"] == "passed" and whole["findings"] == []
    metrics = whole["rules"][0]["metrics"]
    assert metrics["client:a"]["synthetic_records_probed"] == 85
    assert metrics["client:b"]["synthetic_records_probed"] == 84
    assert metrics["federation"]["distinct_shingles"] > 0


def _records(texts: list[str]) -> list[Record]:
    return [
        Record(location=f"d.jsonl:{i + 1}", data={"text": t}, text=t) for i, t in enumerate(texts)
    ]


def test_index_partial_is_the_shards_distinct_hashes() -> None:
    import numpy as np

    key = derive_key(b"k")
    texts = ["one two three four five six", "one two three four five six", "four five six seven"]
    batches = iter([_records(texts[:2]), _records(texts[2:])])
    part = _IndexTask(key=key, k=3).map(batches, ShardEnv(cache=Cache()))
    expected = sorted_unique(text_hashes(texts, 3, key))
    assert part.records == 3
    assert part.hashes.dtype == np.uint64 and len(part.hashes) == 5  # 4 + 1 new, duplicates gone
    assert np.array_equal(part.hashes, expected)


def test_tasks_pickle_and_do_not_show_the_key() -> None:
    key = derive_key(b"a very secret key")
    for task in (
        _IndexTask(key=key, k=8),
        _ProbeTask(key=key, k=8, client_id="a", common_min_owners=None, max_examples=3),
    ):
        assert pickle.loads(pickle.dumps(task)) == task
        assert key.hex() not in repr(task) and repr(key) not in repr(task)


def test_leak_index_pickles_compactly_and_works_after_unpickling() -> None:
    import numpy as np

    rng = np.random.default_rng(1)
    builder = LeakIndexBuilder()
    held: dict[int, set[int]] = {}
    for name in ("a", "b", "fm:server"):
        owner = builder.owner(name)
        arr = rng.integers(0, 2**64 - 1, 30000, dtype=np.uint64)
        arr[:50] = np.arange(50, dtype=np.uint64)
        builder.add(owner, arr)
        for h in arr.tolist():
            held.setdefault(h, set()).add(owner)
    index = builder.build()
    data = pickle.dumps(index, protocol=pickle.HIGHEST_PROTOCOL)
    arrays = index.hashes.nbytes + index.masks.nbytes + index._filter.nbytes
    assert len(data) < arrays + 2048  # the arrays' bytes and little else
    copy = pickle.loads(data)
    # The bitmap pre-filter travels with the index: no rebuild needed, and it is the same one.
    assert copy._shift == index._shift and np.array_equal(copy._filter, index._filter)
    assert copy.owners == ["a", "b", "fm:server"]
    for arr in (copy.hashes, copy.masks, copy._filter):  # Ray maps arrays read-only
        arr.flags.writeable = False
    probe = np.r_[
        np.array(list(held), dtype=np.uint64), rng.integers(0, 2**63, 5000, dtype=np.uint64)
    ]
    got = [set(copy.owners_of(row)) for row in copy.lookup(probe)]
    assert got == [held.get(int(h), set()) for h in probe]
    assert sum(1 for g in got if g) == len(held)


def test_probe_task_uses_the_shared_index() -> None:
    key = derive_key(b"k")
    builder = LeakIndexBuilder()
    leaked = "alpha beta gamma delta epsilon zeta eta theta"
    builder.add(builder.owner("a"), text_hashes([leaked], 8, key))
    index = pickle.loads(pickle.dumps(builder.build()))
    texts = ["nothing to see here at all today my friend", f"so {leaked} end", leaked]
    env = ShardEnv(cache=Cache(), shared=index)
    got = _ProbeTask(key=key, k=8, client_id="b", common_min_owners=None, max_examples=1).map(
        iter([_records(texts)]), env
    )
    assert (got.probed, got.leaking, dict(got.spans_from)) == (3, 2, {"a": 2})
    assert [(e.location, e.excerpt) for e in got.examples["a"]] == [
        ("d.jsonl:2", "so <LEAKED_FROM:a> end")
    ]
    own = _ProbeTask(key=key, k=8, client_id="a", common_min_owners=None, max_examples=1).map(
        iter([_records(texts)]), env
    )
    assert (own.probed, own.leaking, dict(own.spans_from)) == (3, 0, {})
