"""FMFL-P02 and FMFL-P07 as shard tasks: the same report whatever the executor and shard cut.

Each case runs one rule three ways: the whole file inline, many small shards inline, and many
small shards on two forked workers; the reports must be identical apart from timing.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import report_without_timing, same_report_on_every_executor

from fmfl_audit.inputs.shards import plan_shards
from fmfl_audit.manifest import load_manifest
from fmfl_audit.manifest.model import DataSource
from fmfl_audit.models import AuditReport, Outcome

SHARD_BYTES = 400
CLEAN = [
    "Lily had a little cat. They went to the park and played with a red ball.",
    "Tom found a key under the mat and opened the old door to the garden.",
    "The password game was fun: Ben said the secret word and everyone laughed.",
    "Mia and Sam built a boat from a box and sailed it on the pond all day.",
]


def _run_all(manifest: Path, rule: str) -> AuditReport:
    """Run `rule` on every executor; assert the reports agree and return the first."""
    report, _ = same_report_on_every_executor(
        load_manifest(manifest), (rule,), shard_bytes=SHARD_BYTES, device="cpu"
    )
    return report


def _sources(manifest: Path) -> list[DataSource]:
    clients = load_manifest(manifest).manifest.clients
    return [s for c in clients for s in (c.prompts, c.synthetic_data) if s is not None]


def _assert_sharded(manifest: Path) -> None:
    """Every data file of the deployment is cut into several shards at SHARD_BYTES."""
    for source in _sources(manifest):
        n = len(plan_shards(source, "x", target_bytes=SHARD_BYTES))
        assert n > 2, f"{source.path.name}: {n} shard(s)"


def _jsonl(texts: list[str], *, broken_at: int | None = None) -> str:
    """JSONL of {"text": ...} rows; a broken line (counted as malformed) after row `broken_at`."""
    lines = [json.dumps({"text": t, "label": i % 2}) for i, t in enumerate(texts)]
    if broken_at is not None:
        lines.insert(broken_at, '{"text": "cut short')
    return "\n".join(lines) + "\n"


def _csv(texts: list[str]) -> list[dict[str, Any]]:
    return [{"id": i, "text": t} for i, t in enumerate(texts)]


def _clients(*specs: dict[str, Any]) -> dict[str, Any]:
    return {
        "version": 1,
        "deployment": {"name": "sharded", "task": "text-classification"},
        "clients": list(specs),
    }


# -- FMFL-P02 -----------------------------------------------------------------------------------------


def _aws(i: int) -> str:
    return f"AKIA{i:04d}ABCDEFGHIJKL"


def _ghp(i: int) -> str:
    return f"ghp_{i:04d}aBcdEfGhIjKlMnOpQrStUvWxYz012345"


def _p02_kind(i: int) -> str | None:
    """The secret type planted in synthetic record `i` (None: a clean record)."""
    if i % 5 == 1:
        return "AWS Access Key"
    if i % 7 == 3:
        return "GitHub Token"
    if i % 11 == 4:
        return "Secret Keyword"
    return None


def _p02_text(i: int) -> str:
    kind = _p02_kind(i)
    if kind == "AWS Access Key":
        return f"Story {i}: use the key {_aws(i)} to open the shed."
    if kind == "GitHub Token":
        return f"Story {i}: the robot said token {_ghp(i)} twice."
    if kind == "Secret Keyword":
        return f'Story {i}: config password = "Tr0ub4dor&{i}xyz" was set.'
    return f"Story {i}: {CLEAN[i % len(CLEAN)]}"


def test_p02_same_report_for_any_shard_cut(make_deployment: Callable[..., Path]) -> None:
    secret_texts = [_p02_text(i) for i in range(48)]
    prompts = [
        f"Connect with https://admin:Hunter{i}Secret@db.example.com/prod and summarise"
        if i % 6 == 2
        else f"Prompt {i}: {CLEAN[i % len(CLEAN)]}"
        for i in range(36)
    ]
    manifest = make_deployment(
        _clients(
            {"id": "a", "synthetic_data": "a/syn.jsonl", "prompts": "a/prompts.csv"},
            {"id": "b", "synthetic_data": "b/syn.csv", "prompts": "b/prompts.jsonl"},
        ),
        {
            "a/syn.jsonl": _jsonl(secret_texts, broken_at=20),
            "a/prompts.csv": _csv(prompts),
            "b/syn.csv": _csv([f"Row {i}: {CLEAN[i % 4]}" for i in range(30)]),
            "b/prompts.jsonl": _jsonl([f"Ask {i}: {CLEAN[i % 4]}" for i in range(30)]),
        },
    )
    _assert_sharded(manifest)
    rep = _run_all(manifest, "FMFL-P02")
    keys = sorted(f.subject + " " + f.message.split(" secret")[0] for f in rep.findings)
    planted = Counter(k for i in range(48) if (k := _p02_kind(i)) is not None)
    assert min(planted.values()) == 3 and max(planted.values()) > 3  # evidence cut across shards
    assert keys == sorted(
        [f"client:a {n} {kind}" for kind, n in planted.items()]
        + ["client:a 6 Basic Auth Credentials"]
    )
    aws = next(f for f in rep.findings if "AWS" in f.message)
    assert [e.location for e in aws.evidence] == [
        "a/syn.jsonl:2",
        "a/syn.jsonl:7",
        "a/syn.jsonl:12",
    ]
    m = rep.rule("FMFL-P02").metrics
    assert m["client:a"]["synthetic_records_scanned"] == 48
    assert m["client:b"]["synthetic_records_scanned"] == 30
    assert [(s.path, s.records, s.malformed) for s in rep.inputs if s.path == "a/syn.jsonl"] == [
        ("a/syn.jsonl", 48, 1)
    ]


def test_p02_clean_sharded_data_passes(make_deployment: Callable[..., Path]) -> None:
    manifest = make_deployment(
        _clients({"id": "a", "synthetic_data": "a/syn.jsonl", "prompts": "a/prompts.csv"}),
        {
            "a/syn.jsonl": _jsonl([f"Story {i}: {CLEAN[i % 4]}" for i in range(30)]),
            "a/prompts.csv": _csv([f"Prompt {i}: {CLEAN[i % 4]}" for i in range(30)]),
        },
    )
    _assert_sharded(manifest)
    rep = _run_all(manifest, "FMFL-P02")
    assert rep.findings == () and rep.rule("FMFL-P02").outcome is Outcome.PASSED
    assert rep.rule("FMFL-P02").metrics["client:a"]["prompts_records_scanned"] == 30


# -- FMFL-P07 -----------------------------------------------------------------------------------------


def _email(i: int) -> str:
    return f"parent{i}.mail@example.org"


def _phone(i: int, dotted: bool = False) -> str:
    return f"212.555.01{i:02d}" if dotted else f"(212) 555-01{i:02d}"


@pytest.mark.slow
def test_p07_same_report_for_any_shard_cut(make_deployment: Callable[..., Path]) -> None:
    shared_email = "shared.family@example.org"  # in the prompts of both a and b
    a_prompts = [
        f"Write to {_email(i)} or call {_phone(i)} about the trip."
        if i % 3 == 0
        else f"Prompt {i}: {CLEAN[i % 4]}"
        for i in range(30)
    ]
    a_prompts[7] = f"Also copy {shared_email} please."
    b_prompts = [f"Ask {i}: {CLEAN[i % 4]}" for i in range(24)]
    b_prompts[13] = f"Reply to {shared_email} and to {_email(90)}."
    # b receives a's values (again and again, in other spellings) and its own values (ignored).
    b_syn = []
    for i in range(40):
        if i % 4 == 1:
            b_syn.append(f"Story {i}: call {_phone((i * 3) % 30, dotted=True)}.")
        elif i % 6 == 2:
            b_syn.append(f"Story {i}: mail {_email((i * 3) % 30).upper()} now.")
        elif i % 9 == 5:
            b_syn.append(f"Story {i}: write to {shared_email} and {_email(90)}.")
        else:
            b_syn.append(f"Story {i}: {CLEAN[i % 4]}")
    c_syn = [f"Row {i}: {CLEAN[i % 4]}" for i in range(30)]
    c_syn[4] = f"Row 4: mail {shared_email} today."
    c_syn[22] = f"Row 22: call {_phone(3)} or {_phone(99)}."
    manifest = make_deployment(
        _clients(
            {"id": "a", "prompts": "a/prompts.jsonl"},
            {"id": "b", "prompts": "b/prompts.csv", "synthetic_data": "b/syn.jsonl"},
            {"id": "c", "synthetic_data": "c/syn.csv"},
        ),
        {
            "a/prompts.jsonl": _jsonl(a_prompts, broken_at=11),
            "b/prompts.csv": _csv(b_prompts),
            "b/syn.jsonl": _jsonl(b_syn),
            "c/syn.csv": _csv(c_syn),
        },
    )
    _assert_sharded(manifest)
    rep = _run_all(manifest, "FMFL-P07")
    got = sorted(
        (
            f.subject,
            "from:" + f.message.split("from client ")[1].split("'")[0],
            f.metric.value if f.metric else None,
        )
        for f in rep.findings
    )
    b_values = {
        v
        for i in range(40)
        for v, hit in (
            (f"phone{(i * 3) % 30}", i % 4 == 1),
            (f"email{(i * 3) % 30}", i % 4 != 1 and i % 6 == 2),
        )
        if hit
    }
    assert len(b_values) > 3
    assert got == [
        ("client:b", "from:a", len(b_values)),
        ("client:c", "from:a", 2),  # the shared e-mail and phone 3
        ("client:c", "from:b", 1),  # the shared e-mail
    ]
    from_a = next(f for f in rep.findings if f.subject == "client:b")
    assert len(from_a.evidence) == 3
    assert [e.location for e in from_a.evidence] == [
        "b/syn.jsonl:2",
        "b/syn.jsonl:3",
        "b/syn.jsonl:6",
    ]
    m = rep.rule("FMFL-P07").metrics
    assert m["client:a"]["prompt_pii_values"] == 2 * 10 + 1  # 10 rows of two, the shared e-mail
    assert m["client:b"]["prompt_pii_values"] == 2
    assert m["client:b"]["synthetic_records_scanned"] == 40
    text = json.dumps(report_without_timing(rep))
    for raw in (shared_email, _email(0), _phone(3), _phone(3, dotted=True)):
        assert raw not in text


@pytest.mark.slow
def test_p07_silent_without_cross_client_values(make_deployment: Callable[..., Path]) -> None:
    a_prompts = [
        f"Call {_phone(i)} about the trip." if i % 3 == 0 else f"Prompt {i}: {CLEAN[i % 4]}"
        for i in range(30)
    ]
    a_syn = [f"Story {i}: ring {_phone(i, dotted=True)}." for i in range(0, 30, 3)]
    b_syn = [f"Story {i}: ring {_phone(i + 40)} or {CLEAN[i % 4]}" for i in range(24)]
    manifest = make_deployment(
        _clients(
            {"id": "a", "prompts": "a/prompts.jsonl", "synthetic_data": "a/syn.csv"},
            {"id": "b", "synthetic_data": "b/syn.jsonl"},
        ),
        {
            "a/prompts.jsonl": _jsonl(a_prompts),
            "a/syn.csv": _csv(a_syn * 3),
            "b/syn.jsonl": _jsonl(b_syn),
        },
    )
    _assert_sharded(manifest)
    rep = _run_all(manifest, "FMFL-P07")
    assert rep.findings == () and rep.rule("FMFL-P07").outcome is Outcome.PASSED
    m = rep.rule("FMFL-P07").metrics
    assert m["client:a"]["prompt_pii_values"] == 10
    assert m["client:a"]["propagated_values_from"] == {}
    assert m["client:b"]["propagated_values_from"] == {}
