"""FMFL-F02 settings that would measure nothing are refused, not passed (review finding:
`resources: []` passed with `axes_tested: 0`)."""

from __future__ import annotations

import pytest

from fmfl_audit.checkers.base import ResourceCache
from fmfl_audit.checkers.fairness._stereotypes import shared_knowledge
from fmfl_audit.checkers.fairness.stereotype import StereotypeParams


@pytest.mark.parametrize("field", ["axes", "resources"])
def test_an_empty_list_is_refused(field: str) -> None:
    with pytest.raises(ValueError, match="at least 1 item"):
        StereotypeParams.model_validate({field: []})
    assert getattr(StereotypeParams.model_validate({field: None}), field) is None


def test_all_resources_and_an_explicit_choice_are_cached_apart() -> None:
    cache = ResourceCache()
    every = shared_knowledge(cache, None)
    one = shared_knowledge(cache, ("seegull",))
    assert one is not every
    assert shared_knowledge(cache, None) is every and shared_knowledge(cache, ("seegull",)) is one
