"""FMFL-F01 and FMFL-F02 as shard tasks: the report does not depend on how the files are cut.

Every deployment is scanned whole (one worker, one shard per file), cut into many small shards
read inline, and cut into many small shards read by two forked workers; the reports must be
identical apart from timing.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.conftest import minimal_manifest, same_report_on_every_executor

from fmfl_audit.inputs.shards import plan_shards
from fmfl_audit.manifest import load_manifest
from fmfl_audit.manifest.loader import Deployment
from fmfl_audit.models import AuditReport

SHARD_BYTES = 300


def run_everywhere(deployment: Deployment, rule: str) -> tuple[AuditReport, dict[str, Any]]:
    """The whole-file report, after checking that every executor gives the same one."""
    report, dump = same_report_on_every_executor(deployment, (rule,), shard_bytes=SHARD_BYTES)
    assert report.rule(rule).error is None
    return report, dump


def assert_sharded(deployment: Deployment) -> None:
    """Every data file of the deployment is cut into several shards at SHARD_BYTES."""
    for c in deployment.manifest.clients:
        for src in (c.synthetic_data, c.private_sample):
            if src is not None:
                assert len(plan_shards(src, "x", target_bytes=SHARD_BYTES)) > 3, src.path


def rows(*parts: tuple[str, int]) -> list[dict[str, str]]:
    """Rows of the given texts, interleaved (so that every shard holds a mix of them)."""
    out: list[dict[str, str]] = []
    left = [n for _, n in parts]
    while any(left):
        for i, (text, _) in enumerate(parts):
            if left[i]:
                out.append({"text": text})
                left[i] -= 1
    return out


def with_malformed(good: list[dict[str, str]]) -> str:
    """JSONL text of `good` with a broken line and a record without text in the middle."""
    import json

    lines = [json.dumps(r) for r in good]
    mid = len(lines) // 2
    lines[mid:mid] = ["{not json", json.dumps({"other": 1})]
    return "\n".join(lines) + "\n"


def deployment(
    make: Callable[..., Path],
    clients: list[dict[str, Any]],
    files: dict[str, Any],
    rules: dict[str, Any] | None = None,
) -> Deployment:
    sections: dict[str, Any] = {"clients": clients}
    if rules:
        sections["policy"] = {"rules": rules}
    return load_manifest(make(minimal_manifest(**sections), files))


# -- FMFL-F01 ------------------------------------------------------------------------------------


def test_f01_skew_is_the_same_whatever_the_shards(make_deployment: Callable[..., Path]) -> None:
    balanced_real = rows(("A girl read a book.", 40), ("A boy read a book.", 40))
    dep = deployment(
        make_deployment,
        [
            {"id": "a", "synthetic_data": "a/syn.jsonl", "private_sample": "a/real.jsonl"},
            {"id": "b", "synthetic_data": "b/syn.csv"},
        ],
        {
            # Skewed against the client's own balanced real data (a reference read in shards).
            "a/syn.jsonl": with_malformed(
                rows(("The old woman smiled.", 70), ("The boy smiled.", 8))
            ),
            "a/real.jsonl": balanced_real,
            # Skewed against the pooled real data of the other clients (client b has none).
            "b/syn.csv": rows(("A young woman sang.", 60), ("A man sang.", 6)),
        },
    )
    assert_sharded(dep)
    report, dump = run_everywhere(dep, "FMFL-F01")
    keys = sorted((f.subject, f.message.split(" is skewed")[0]) for f in report.findings)
    assert keys == [
        ("client:a", "gender_and_sex"),
        ("client:b", "gender_and_sex"),
        ("overall", "gender_and_sex"),
    ]
    metrics = dump["rules"][0]["metrics"]
    assert metrics["client:a"]["records"] == 78
    assert metrics["client:a"]["gender_and_sex"]["counts"] == {"female": 70, "male": 8}
    assert metrics["client:a"]["gender_and_sex"]["reference"] == "client-private-sample"
    assert metrics["client:b"]["gender_and_sex"]["reference"] == "pooled-private-samples"
    assert metrics["overall"]["records"] == 144
    # The malformed lines were counted once, whatever the cut.
    (syn,) = [i for i in dump["inputs"] if i["path"] == "a/syn.jsonl"]
    assert (syn["records"], syn["malformed"]) == (78, 2)


def test_f01_balanced_data_passes_whatever_the_shards(
    make_deployment: Callable[..., Path],
) -> None:
    dep = deployment(
        make_deployment,
        [{"id": "a", "synthetic_data": "a/syn.csv"}, {"id": "b", "synthetic_data": "b/syn.jsonl"}],
        {
            "a/syn.csv": rows(("The girl smiled.", 40), ("The boy smiled.", 38)),
            "b/syn.jsonl": rows(("Her sister laughed.", 30), ("His brother laughed.", 33)),
        },
    )
    assert_sharded(dep)
    report, dump = run_everywhere(dep, "FMFL-F01")
    assert report.findings == ()
    overall = dump["rules"][0]["metrics"]["overall"]["gender_and_sex"]
    assert overall["graded"] is True
    assert overall["counts"] == {"female": 100, "male": 104}  # pronouns count in F01


# -- FMFL-F02 ------------------------------------------------------------------------------------


def test_f02_statements_are_the_same_whatever_the_shards(
    make_deployment: Callable[..., Path],
) -> None:
    filler = ("The weather was mild that day.", 60)
    dep = deployment(
        make_deployment,
        [{"id": "a", "synthetic_data": "a/syn.jsonl"}, {"id": "b", "synthetic_data": "b/syn.csv"}],
        {
            # The stereotype statements are spread over the file: the evidence comes from
            # several shards and must still be the first ones in file order.
            "a/syn.jsonl": with_malformed(
                rows(
                    filler,
                    ("The Germans were efficient, as always.", 30),
                    ("Two Italians were kind to everyone.", 30),
                )
            ),
            "b/syn.csv": rows(("Black people are criminals.", 30), ("White people are calm.", 30)),
        },
        # Ten examples per finding: more than one shard holds them.
        rules={"FMFL-F02": {"params": {"max_examples": 10, "fm_preference": False}}},
    )
    assert_sharded(dep)
    report, dump = run_everywhere(dep, "FMFL-F02")
    assert {(f.subject, f.message.split(":")[0]) for f in report.findings} == {
        ("client:a", "nationality"),
        ("client:b", "race_ethnicity"),
        ("overall", "nationality"),
        ("overall", "race_ethnicity"),
    }
    (nat,) = [f for f in report.findings if f.subject == "client:a"]
    locs = [e.location for e in nat.evidence]
    assert len(locs) == 10
    assert locs == sorted(locs, key=lambda s: int(s.rsplit(":", 1)[1]))
    shards = plan_shards(
        dep.manifest.clients[0].synthetic_data, "a/syn.jsonl", target_bytes=SHARD_BYTES
    )
    starts = [s.first_line for s in shards]
    lines = [int(loc.rsplit(":", 1)[1]) for loc in locs]
    assert len({sum(1 for s in starts if s <= n) for n in lines}) > 1
    metrics = dump["rules"][0]["metrics"]
    assert metrics["client:a"]["records"] == 120
    assert metrics["client:a"]["nationality"]["consistent"] == 30
    assert metrics["client:a"]["nationality"]["group_mentions"] == 60


def test_f02_even_treatment_passes_whatever_the_shards(
    make_deployment: Callable[..., Path],
) -> None:
    dep = deployment(
        make_deployment,
        [{"id": "a", "synthetic_data": "a/syn.csv"}],
        {
            "a/syn.csv": rows(
                ("The girl was emotional.", 20),
                ("The boy was emotional.", 20),
                ("The girl was tough.", 20),
                ("The boy was tough.", 20),
            ),
        },
    )
    assert_sharded(dep)
    report, dump = run_everywhere(dep, "FMFL-F02")
    assert report.findings == ()
    cell = dump["rules"][0]["metrics"]["overall"]["gender_and_sex"]
    assert (cell["consistent"], cell["counter"]) == (40, 40)
    assert cell["lift"] < 1.5
