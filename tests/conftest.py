"""Shared test builders: real manifests and data files written to a temporary folder."""

from __future__ import annotations

import contextlib
import csv
import json
import os

# pytest-xdist runs two workers on two cores: one torch thread each, or they oversubscribe the
# cores (model tests ran several times slower). Set before anything imports torch.
os.environ.setdefault("OMP_NUM_THREADS", "1")
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import urllib3  # noqa: F401 - probes IPv6 with a local socket at import; do it before sockets are blocked
import yaml

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("FMFL_SHARED_DATA", REPO.parent / "shared" / "data"))


@contextlib.contextmanager
def ray_exclusive() -> Iterator[None]:
    """Hold a machine-wide lock while a test runs Ray: `ray stop --force` (the `ray start`
    cluster test) kills every Ray process of the user, so two Ray tests on two xdist workers, or
    two checkouts' suites, must not overlap."""
    import fcntl
    import tempfile

    with open(Path(tempfile.gettempdir()) / "fmfl-audit-tests-ray.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        yield


@pytest.fixture
def ray_lock() -> Iterator[None]:
    """`ray_exclusive` for one test."""
    with ray_exclusive():
        yield


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The workplace's external data sets (../shared/data); tests needing them skip without it."""
    if not SHARED_DATA.is_dir():
        pytest.skip(
            f"external data folder {SHARED_DATA} is absent (set FMFL_SHARED_DATA to point at it)"
        )
    return SHARED_DATA


def write_jsonl(path: Path, rows: Iterable[Mapping[str, Any]]) -> Path:
    """Write rows as JSONL (creating parent folders)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row) + "\n")
    return path


def write_csv(path: Path, rows: list[Mapping[str, Any]]) -> Path:
    """Write rows as CSV with the first row's keys as header."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def write_manifest(folder: Path, data: Mapping[str, Any], name: str = "manifest.yaml") -> Path:
    """Write a manifest dict as YAML."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(yaml.safe_dump(dict(data), sort_keys=False), encoding="utf-8")
    return path


def minimal_manifest(**sections: Any) -> dict[str, Any]:
    """The smallest valid manifest plus the given top-level sections."""
    base: dict[str, Any] = {
        "version": 1,
        "deployment": {"name": "test-deployment", "task": "text-classification"},
        "clients": [{"id": "school-a"}],
    }
    base.update(sections)
    return base


@pytest.fixture
def make_deployment(tmp_path: Path) -> Callable[..., Path]:
    """Write files {relative path: rows or text} plus a manifest; return the manifest path."""

    def build(manifest: Mapping[str, Any], files: Mapping[str, Any] | None = None) -> Path:
        for rel, content in (files or {}).items():
            target = tmp_path / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, (str, bytes)):
                mode = "wb" if isinstance(content, bytes) else "w"
                with target.open(mode) as fh:
                    fh.write(content)
            elif rel.endswith(".csv"):
                write_csv(target, list(content))
            else:
                write_jsonl(target, content)
        return write_manifest(tmp_path, manifest)

    return build


def report_without_timing(report: Any) -> dict[str, Any]:
    """An `AuditReport`'s JSON form without its timings: equal for scans that found the same."""
    data: dict[str, Any] = report.model_dump(mode="json", exclude={"started_at", "duration_s"})
    for rule in data["rules"]:
        rule.pop("duration_s", None)
    return data


def same_report_on_every_executor(
    deployment: Any, rules: Iterable[str], *, shard_bytes: int, **auditor_kwargs: Any
) -> tuple[Any, dict[str, Any]]:
    """Scan `rules` on the whole files inline, in `shard_bytes` shards inline and in shards on two
    forked workers; assert the three reports agree (timing aside) and return the first with its
    JSON form."""
    from fmfl_audit.engine.executors import LocalExecutor
    from fmfl_audit.engine.runner import Auditor

    only = tuple(rules)
    reports = [
        Auditor(deployment, only=only, executor=executor, **auditor_kwargs).run()
        for executor in (
            LocalExecutor(1),
            LocalExecutor(1, shard_bytes=shard_bytes),
            LocalExecutor(2, shard_bytes=shard_bytes),
        )
    ]
    first = report_without_timing(reports[0])
    for other in reports[1:]:
        assert report_without_timing(other) == first
    return reports[0], first
