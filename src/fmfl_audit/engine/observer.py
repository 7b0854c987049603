"""Progress observer: how the library reports progress without printing (the CLI draws bars)."""

from __future__ import annotations

from typing import Protocol

from fmfl_audit.models import Outcome


class Observer(Protocol):
    """Receives progress events from a scan."""

    def rule_started(self, rule_id: str, title: str) -> None:
        """A rule's checker begins."""

    def rule_progress(self, rule_id: str, completed: int, total: int | None) -> None:
        """Units of work done so far for a rule."""

    def rule_finished(self, rule_id: str, outcome: Outcome) -> None:
        """A rule ended with `outcome`."""


class NullObserver:
    """Ignores every event (the library default)."""

    def rule_started(self, rule_id: str, title: str) -> None:
        return None

    def rule_progress(self, rule_id: str, completed: int, total: int | None) -> None:
        return None

    def rule_finished(self, rule_id: str, outcome: Outcome) -> None:
        return None


class ObserverProgress:
    """Adapts an `Observer` to the per-rule `Progress` handle checkers use."""

    def __init__(self, observer: Observer, rule_id: str) -> None:
        self._observer = observer
        self._rule_id = rule_id
        self._done = 0
        self._total: int | None = None

    def set_total(self, total: int | None) -> None:
        self._total = total
        self._observer.rule_progress(self._rule_id, self._done, total)

    def advance(self, n: int = 1) -> None:
        self._done += n
        self._observer.rule_progress(self._rule_id, self._done, self._total)
