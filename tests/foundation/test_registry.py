"""Contract test over the whole checker registry and the default pack."""

from __future__ import annotations

import importlib

import pytest

from fmfl_audit.checkers.base import Checker, CheckerParams
from fmfl_audit.checkers.registry import CHECKERS, checker_map, not_implemented
from fmfl_audit.models import Area
from fmfl_audit.rulepacks.loader import load_ruleset

DEFAULT = load_ruleset(["default"])


def test_checker_ids_are_unique() -> None:
    ids = [c.id for c in CHECKERS]
    assert len(ids) == len(set(ids))


def test_implemented_and_not_implemented_are_disjoint() -> None:
    assert not set(checker_map()) & not_implemented()


@pytest.mark.parametrize("checker", CHECKERS, ids=lambda c: c.id)
def test_checker_metadata_and_defaults(checker: type[Checker]) -> None:
    assert checker.title.startswith("Ensure ")
    assert isinstance(checker.area, Area)
    assert checker.threat and checker.inputs
    assert issubclass(checker.Params, CheckerParams)
    checker.Params()  # every param has a usable default
    module = importlib.import_module(checker.__module__)
    assert module.__doc__ and module.__doc__.strip(), "the module docstring is the rule's doc page"
    assert checker.__doc__
    rule = DEFAULT.get(checker.id)
    assert rule.spec.area is checker.area
    assert rule.spec.threat == checker.threat
    # The pack's params for the rule validate against the checker's Params model.
    checker.Params.model_validate(rule.spec.params)


@pytest.mark.parametrize("rule", DEFAULT.rules, ids=lambda r: r.id)
def test_every_pack_rule_is_bound_or_marked_not_implemented(rule) -> None:
    assert (rule.spec.checker_id in checker_map()) != (rule.spec.checker_id in not_implemented())


def test_checker_modules_import_no_heavy_library() -> None:
    import subprocess
    import sys

    code = (
        "import sys, fmfl_audit.checkers.registry, fmfl_audit.cli.main;"
        "heavy = [m for m in ('torch', 'transformers', 'presidio_analyzer', 'spacy', 'sklearn',"
        " 'fairlearn', 'scipy', 'pandas') if m in sys.modules]; print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
