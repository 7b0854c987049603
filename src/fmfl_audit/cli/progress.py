"""A Rich progress display on stderr implementing the library's `Observer`."""

from __future__ import annotations

from types import TracebackType
from typing import Any

from fmfl_audit.models import Outcome


class RichObserver:
    """One progress bar per running rule; finished rules leave a one-line status."""

    def __init__(self, console: Any) -> None:
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        self._console = console
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
        self._tasks: dict[str, Any] = {}

    def __enter__(self) -> RichObserver:
        self._progress.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._progress.stop()

    def rule_started(self, rule_id: str, title: str) -> None:
        self._tasks[rule_id] = self._progress.add_task(f"{rule_id} {title}", total=None)

    def rule_progress(self, rule_id: str, completed: int, total: int | None) -> None:
        task = self._tasks.get(rule_id)
        if task is not None:
            self._progress.update(task, completed=completed, total=total)

    def rule_finished(self, rule_id: str, outcome: Outcome) -> None:
        task = self._tasks.pop(rule_id, None)
        if task is not None:
            self._progress.remove_task(task)
            style = {"passed": "green", "failed": "red", "errored": "magenta"}.get(
                outcome.value, "dim"
            )
            self._console.print(f"  {rule_id} [{style}]{outcome.value}[/]")
