"""Issue 16.11: model-inference threads are set on purpose, never one per core behind workers."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.foundation.builders import smoke_deployment
from typer.testing import CliRunner

from fmfl_audit.cli.main import app
from fmfl_audit.engine import threads as threads_mod
from fmfl_audit.engine.runner import Auditor
from fmfl_audit.engine.threads import apply_threads, default_threads
from fmfl_audit.manifest import load_manifest


@pytest.mark.parametrize(
    ("cores", "workers", "env", "expected"),
    [
        (2, None, None, 1),  # default workers = every core: inference gets one thread
        (8, None, None, 1),
        (8, 2, None, 4),
        (8, 1, None, 8),
        (2, 4, None, 1),
        (8, None, "3", 3),  # an explicit OMP_NUM_THREADS wins
        (8, None, "zero", 1),
    ],
)
def test_default_threads(
    monkeypatch: pytest.MonkeyPatch, cores: int, workers: int | None, env: str | None, expected: int
) -> None:
    monkeypatch.setattr(threads_mod, "available_cpus", lambda: cores)
    if env is None:
        monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    else:
        monkeypatch.setenv("OMP_NUM_THREADS", env)
    assert default_threads(workers) == expected


def test_the_scan_sets_torch_threads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    torch = pytest.importorskip("torch")
    for var in threads_mod.THREAD_VARS:
        monkeypatch.setenv(var, "1")  # restored after the test
    before = torch.get_num_threads()
    try:
        Auditor(load_manifest(smoke_deployment(tmp_path)), only=("FMFL-F06",), threads=2).run()
        assert torch.get_num_threads() == 2
        assert threads_mod.os.environ["OMP_NUM_THREADS"] == "2"
    finally:
        apply_threads(before)


def test_cli_threads_option(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[int | None] = []
    original = Auditor.run

    def spy(self: Auditor):  # type: ignore[no-untyped-def]
        seen.append(self.threads)
        return original(self)

    monkeypatch.setattr(Auditor, "run", spy)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(threads_mod, "available_cpus", lambda: 4)
    manifest = str(smoke_deployment(tmp_path))
    base = ["scan", manifest, "--only", "FMFL-F06", "--no-progress", "--exit-zero"]
    runner = CliRunner()
    assert runner.invoke(app, [*base, "--threads", "3"]).exit_code == 0
    # apply_threads exports OMP_NUM_THREADS for a later torch import: start clean again.
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert runner.invoke(app, [*base, "--workers", "2"]).exit_code == 0
    assert runner.invoke(app, [*base, "--threads", "0"]).exit_code == 2
    assert seen == [3, 2]


def test_default_wait_policy_only_for_several_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    from fmfl_audit.engine.threads import default_wait_policy

    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    default_wait_policy(1)
    assert "OMP_WAIT_POLICY" not in threads_mod.os.environ
    default_wait_policy(4)
    assert threads_mod.os.environ["OMP_WAIT_POLICY"] == "PASSIVE"
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    default_wait_policy(4)
    assert threads_mod.os.environ["OMP_WAIT_POLICY"] == "ACTIVE"  # the user's setting stays
