"""Executors: partials in shard order, errors that cross processes unchanged, and scans whose
report does not depend on where the record-level work ran (inline, forked workers, Ray)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import minimal_manifest, report_without_timing
from typer.testing import CliRunner

from fmfl_audit.cli.main import app
from fmfl_audit.engine.executors import (
    Cache,
    LocalExecutor,
    ReadOptions,
    ShardEnv,
    ShardTask,
    make_executor,
)
from fmfl_audit.engine.runner import Auditor
from fmfl_audit.errors import InputError, UsageError
from fmfl_audit.inputs.records import Record
from fmfl_audit.inputs.shards import plan_shards
from fmfl_audit.manifest import load_manifest
from fmfl_audit.manifest.model import DataSource
from fmfl_audit.report.baseline import load_report

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "reading-tutor" / "compromised" / "manifest.yaml"
RECORD_LEVEL = (
    "FMFL-P01",
    "FMFL-P02",
    "FMFL-P06",
    "FMFL-P07",
    "FMFL-R01",
    "FMFL-R02",
    "FMFL-R09",
    "FMFL-F01",
    "FMFL-F02",
)


@dataclass(frozen=True)
class _Ids(ShardTask):
    """Collects the ids of a shard, with the process it ran in."""

    fail_on: str | None = None

    def map(self, batches: Iterator[list[Record]], env: ShardEnv) -> Any:
        import os

        ids = []
        for batch in batches:
            for r in batch:
                if r.record_id == self.fail_on:
                    raise InputError(f"{r.location}: refused")
                ids.append(r.record_id)
        return os.getpid(), ids, env.shared


def _jsonl(tmp_path: Path, n: int) -> DataSource:
    path = tmp_path / "d.jsonl"
    path.write_text(
        "".join(f'{{"id": "{i}", "text": "record number {i}"}}\n' for i in range(n)),
        encoding="utf-8",
    )
    return DataSource.model_validate({"path": str(path)})


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_local_executor_returns_partials_in_shard_order(tmp_path: Path, workers: int) -> None:
    import os

    src = _jsonl(tmp_path, 300)
    shards = plan_shards(src, "d.jsonl", target_bytes=256)
    assert len(shards) > 20
    out = list(
        LocalExecutor(workers).map(
            [(_Ids(), s) for s in shards], ReadOptions(), cache=Cache(), shared="S"
        )
    )
    ids = [i for (_, part, _), _ in out for i in part]
    assert ids == [str(i) for i in range(300)]
    assert sum(stats.records for _, stats in out) == 300
    assert {shared for (_, _, shared), _ in out} == {"S"}
    pids = {pid for (pid, _, _), _ in out}
    if workers == 1:
        assert pids == {os.getpid()}
    else:
        assert os.getpid() not in pids and len(pids) >= 2


@pytest.mark.parametrize("workers", [1, 2])
def test_errors_from_workers_arrive_unchanged(tmp_path: Path, workers: int) -> None:
    src = _jsonl(tmp_path, 100)
    shards = plan_shards(src, "d.jsonl", target_bytes=256)
    with pytest.raises(InputError, match=r"^d\.jsonl:57: refused$"):
        list(
            LocalExecutor(workers).map(
                [(_Ids(fail_on="56"), s) for s in shards], ReadOptions(), cache=Cache()
            )
        )


def test_make_executor_validates_its_arguments() -> None:
    assert make_executor("local", workers=3, address=None).parallelism == 3
    assert make_executor("local", workers=None, address=None).parallelism >= 1
    with pytest.raises(UsageError):
        make_executor("dask", workers=None, address=None)
    with pytest.raises(UsageError):
        LocalExecutor(0)


PII_ROWS = [
    {"text": f"Story {i}: the fox ran home and slept."}
    if i % 7
    else {"text": f"Write to pupil{i}@example.org or call 212-555-{1000 + i:04d}."}
    for i in range(240)
]


def test_p01_report_is_identical_for_every_executor(
    make_deployment: Callable[..., Path],
) -> None:
    manifest = make_deployment(
        minimal_manifest(
            clients=[
                {"id": "a", "synthetic_data": "a/synthetic.jsonl"},
                {"id": "b", "synthetic_data": "b/synthetic.csv"},
            ]
        ),
        {"a/synthetic.jsonl": PII_ROWS, "b/synthetic.csv": PII_ROWS[::-1]},
    )
    deployment = load_manifest(manifest)
    src = deployment.manifest.clients[0].synthetic_data
    assert src is not None and len(plan_shards(src, "x", target_bytes=512)) > 10
    reports = [
        report_without_timing(Auditor(deployment, only=["FMFL-P01"], executor=ex).run())
        for ex in (
            LocalExecutor(1),
            LocalExecutor(1, shard_bytes=512),
            LocalExecutor(2, shard_bytes=512),
        )
    ]
    assert reports[0]["rules"][0]["outcome"] == "failed"
    # Per client: 35 e-mails, 35 phone numbers, and 3 of those numbers pass the UK NHS checksum.
    assert sorted(f["message"].split(" value")[0] for f in reports[0]["findings"]) == sorted(
        ["35 EMAIL_ADDRESS", "35 PHONE_NUMBER", "3 UK_NHS"] * 2
    )
    assert reports[1] == reports[0]
    assert reports[2] == reports[0]


def test_cli_rejects_ray_address_without_ray(make_deployment: Callable[..., Path]) -> None:
    manifest = make_deployment(minimal_manifest())
    result = CliRunner().invoke(app, ["scan", str(manifest), "--ray-address", "auto"])
    assert result.exit_code == 2
    assert "--ray-address needs --executor ray" in result.output


def test_cli_names_the_extra_when_ray_is_missing(
    make_deployment: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    manifest = make_deployment(minimal_manifest())
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    result = CliRunner().invoke(app, ["scan", str(manifest), "--executor", "ray"])
    assert result.exit_code == 2
    assert "pip install 'fmfl-audit[ray]'" in result.output
    assert "Traceback" not in result.output


@pytest.mark.slow
@pytest.mark.enable_socket
def test_ray_scan_equals_local_scan(ray_lock: None) -> None:
    """The record-level rules of the compromised example on a local Ray cluster (2 CPUs, files cut
    into 16 KiB shards) give the same report as one inline pass."""
    pytest.importorskip("ray", reason="the ray extra is not installed (pip install '.[ray]')")
    from fmfl_audit.engine.executors import RayExecutor

    deployment = load_manifest(EXAMPLE)
    local = report_without_timing(
        Auditor(deployment, only=list(RECORD_LEVEL), executor=LocalExecutor(1)).run()
    )
    ray_ex = RayExecutor(workers=2, shard_bytes=16 * 1024)
    try:
        assert ray_ex.parallelism == 2
        remote = report_without_timing(
            Auditor(deployment, only=list(RECORD_LEVEL), executor=ray_ex).run()
        )
    finally:
        ray_ex.close()
    ran = [r["id"] for r in local["rules"] if r["outcome"] in ("passed", "failed")]
    assert sorted(ran) == sorted(RECORD_LEVEL)
    assert len(local["findings"]) >= 10
    assert remote == local


@pytest.mark.slow
@pytest.mark.enable_socket
def test_cli_scan_joins_an_existing_ray_cluster(tmp_path: Path, ray_lock: None) -> None:
    """`fmfl-audit scan --executor ray --ray-address` on a cluster started with `ray start` writes
    the same JSON report (timing aside) as a local scan."""
    pytest.importorskip("ray", reason="the ray extra is not installed (pip install '.[ray]')")
    import os
    import random
    import subprocess

    bin_dir = Path(sys.executable).parent
    port = random.randint(20000, 40000)
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    start = [
        str(bin_dir / "ray"),
        "start",
        "--head",
        f"--port={port}",
        "--num-cpus=2",
        "--node-ip-address=127.0.0.1",
        "--include-dashboard=false",
        "--disable-usage-stats",
    ]
    subprocess.run(start, check=True, env=env, capture_output=True, timeout=180)
    try:
        scan = [
            str(bin_dir / "fmfl-audit"),
            "scan",
            str(EXAMPLE),
            *(a for rule in RECORD_LEVEL[:4] for a in ("--only", rule)),
            "--format",
            "json",
            "--exit-zero",
            "--no-progress",
        ]
        local = tmp_path / "local.json"
        remote = tmp_path / "ray.json"
        subprocess.run([*scan, "-o", str(local), "--workers", "1"], check=True, env=env)
        ray_args = ["--executor", "ray", "--ray-address", f"127.0.0.1:{port}"]
        subprocess.run(
            [*scan, "-o", str(remote), *ray_args, "--shard-bytes", "16384"], check=True, env=env
        )
    finally:
        subprocess.run([str(bin_dir / "ray"), "stop", "--force"], env=env, capture_output=True)

    got, want = (
        report_without_timing(load_report(remote)),
        report_without_timing(load_report(local)),
    )
    assert len(want["findings"]) >= 5
    assert got == want
