"""The wheel ships the rule packs as package data, and the built-in packs load from it."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_wheel_contains_rule_packs_and_data(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            str(REPO),
            "--no-deps",
            "--no-build-isolation",
            "--quiet",
            "-w",
            str(tmp_path),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("fmfl_audit-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for path in ("pack.yaml", "robustness.yaml", "privacy.yaml", "fairness.yaml"):
        assert f"fmfl_audit/rules/default/{path}" in names
    assert any(n.startswith("fmfl_audit/rules/jailbreak/") for n in names)
    assert any(n.startswith("fmfl_audit/rules/lexicons/") for n in names)
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "fmfl-audit = fmfl_audit.cli.main:run" in text
