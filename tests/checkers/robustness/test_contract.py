"""Every robustness checker honours the checker contract and its rule-pack entry."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from fmfl_audit.checkers.base import Checker
from fmfl_audit.checkers.robustness.catalog import CHECKERS, NOT_IMPLEMENTED
from fmfl_audit.models import Area
from fmfl_audit.rulepacks.loader import builtin_pack_names, builtin_rules_dir


def _pack_rules() -> dict[str, dict[str, object]]:
    data = yaml.safe_load((builtin_rules_dir() / "default/robustness.yaml").read_text())
    return {r["id"]: r for r in data["rules"]}


def test_every_robustness_rule_has_a_checker() -> None:
    assert sorted(c.id for c in CHECKERS) == [f"FMFL-R{i:02d}" for i in range(1, 14)]
    assert NOT_IMPLEMENTED == ()


@pytest.mark.parametrize("checker", CHECKERS, ids=lambda c: c.id)
def test_checker_metadata_and_pack_params(checker: type[Checker]) -> None:
    rule = _pack_rules()[checker.id]
    assert checker.area == Area.ROBUSTNESS and rule["area"] == "robustness"
    assert checker.title == rule["title"] and checker.threat == rule["threat"]
    assert checker.inputs and (checker.__doc__ or "").startswith("Ensure")
    checker.Params()  # defaults are valid
    checker.Params.model_validate(rule.get("params") or {})


def test_jailbreak_data_is_not_taken_for_a_rule_pack() -> None:
    assert "jailbreak" not in builtin_pack_names()
    assert (builtin_rules_dir() / "jailbreak/LICENSE-GPTFuzz.txt").is_file()


def test_importing_the_checkers_loads_no_heavy_library() -> None:
    code = (
        "import sys, fmfl_audit.checkers.robustness\n"
        "heavy = {'torch', 'transformers', 'sklearn', 'scipy', 'datasketch', 'picklescan',"
        " 'safetensors', 'numpy'} & set(sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
