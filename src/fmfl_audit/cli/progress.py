"""Progress on stderr implementing the library's `Observer`: Rich bars on a terminal, one plain
line per rule start and finish elsewhere (CI logs), where bars would be noise or invisible."""

from __future__ import annotations

import time
from types import TracebackType
from typing import Any, TextIO

from fmfl_audit.models import Outcome


def _count_column() -> Any:
    from rich.progress import ProgressColumn
    from rich.text import Text

    class CountColumn(ProgressColumn):
        """`12/40` when the total is known, `12` when only a count is, nothing before any."""

        def render(self, task: Any) -> Text:
            done = int(task.completed)
            if task.total is not None:
                return Text(f"{done}/{int(task.total)}")
            return Text(str(done) if done else "")

    return CountColumn()


class RichObserver:
    """One progress bar per running rule; finished rules leave a one-line status."""

    def __init__(self, console: Any) -> None:
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        self._console = console
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            _count_column(),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
        self._tasks: dict[str, Any] = {}
        self._started: dict[str, float] = {}

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
        self._started[rule_id] = time.perf_counter()
        self._tasks[rule_id] = self._progress.add_task(f"{rule_id} {title}", total=None)

    def rule_progress(self, rule_id: str, completed: int, total: int | None) -> None:
        task = self._tasks.get(rule_id)
        if task is not None:
            self._progress.update(task, completed=completed, total=total)

    def rule_finished(self, rule_id: str, outcome: Outcome) -> None:
        task = self._tasks.pop(rule_id, None)
        if task is not None:
            self._progress.remove_task(task)
        style = {"passed": "green", "failed": "red", "errored": "magenta"}.get(outcome.value, "dim")
        took = _elapsed(self._started.pop(rule_id, None))
        self._console.print(f"  {rule_id} [{style}]{outcome.value}[/]{took}")


class LineObserver:
    """Plain lines for logs: `FMFL-P01 started: ...` and `FMFL-P01 passed in 2.3s`."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._started: dict[str, float] = {}

    def _line(self, text: str) -> None:
        self._stream.write(f"fmfl-audit: {text}\n")
        self._stream.flush()

    def rule_started(self, rule_id: str, title: str) -> None:
        self._started[rule_id] = time.perf_counter()
        self._line(f"{rule_id} started: {title}")

    def rule_progress(self, rule_id: str, completed: int, total: int | None) -> None:
        return None

    def rule_finished(self, rule_id: str, outcome: Outcome) -> None:
        self._line(f"{rule_id} {outcome.value}{_elapsed(self._started.pop(rule_id, None))}")


def _elapsed(t0: float | None) -> str:
    return "" if t0 is None else f" in {time.perf_counter() - t0:.1f}s"
