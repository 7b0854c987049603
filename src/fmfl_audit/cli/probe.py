"""`fmfl-audit probe`: send the probe suites to the FM endpoint the manifest names and append the
answers to its transcript (the only command that uses the network).

Prints an estimate before sending; `--dry-run` lists the requests instead of sending them;
`--max-requests` caps what one run sends (a later run resumes). Exit 0 when every request of the
run was sent, 2 when an endpoint cannot be used (unreachable, refused key, rejected requests).
"""

from __future__ import annotations

import sys
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from fmfl_audit.probe import Estimate, ProbePlan, Request


def register(app: typer.Typer) -> None:
    """Add the `probe` command to the CLI."""
    from fmfl_audit.cli.main import guarded

    app.command(name="probe")(guarded(probe))


def probe(
    manifest: Annotated[Path, typer.Argument(help="Deployment manifest (YAML).")],
    max_requests: Annotated[
        int | None,
        typer.Option(min=0, help="Send at most this many requests in this run (resume later)."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="List the requests that would be sent; send none.")
    ] = False,
    suite: Annotated[
        list[str] | None,
        typer.Option("--suite", help="Only this suite (repeatable); default: the manifest's."),
    ] = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar on stderr.")] = True,
) -> None:
    """Probe the live FM through its OpenAI-compatible endpoint; write the transcript."""
    from fmfl_audit.manifest import load_manifest
    from fmfl_audit.probe import plan_probes, run_probes

    deployment = load_manifest(manifest)
    plan = plan_probes(deployment, suites=tuple(suite or ()))
    for note in plan.notes:
        typer.echo(f"note: {note}", err=True)
    typer.echo(_summary(plan, plan.estimate(max_requests), max_requests), err=True)
    if dry_run:
        for req in plan.to_send(max_requests):
            typer.echo(_request_line(req))
        return
    if not plan.to_send(max_requests):
        typer.echo("nothing to send: the transcript already answers every probe", err=True)
        return
    if progress and sys.stderr.isatty():
        from fmfl_audit.cli.main import _stderr

        with _RichProbeObserver(_stderr()) as observer:
            run = run_probes(plan, max_requests=max_requests, observer=observer)
    else:
        run = run_probes(plan, max_requests=max_requests)
    typer.echo(
        f"{plan.transcript}: {run.ok} answer(s) written, {run.failed} request(s) failed "
        "after retries (recorded; sent again next run)",
        err=True,
    )
    for err in run.errors:
        typer.echo(f"  {err}", err=True)
    if run.left:
        typer.echo(f"{run.left} request(s) left by --max-requests: run again to resume", err=True)


def _summary(plan: ProbePlan, est: Estimate, max_requests: int | None) -> str:
    targets = sorted({f"{r.role.value} {r.endpoint.chat_url}" for r in plan.requests})
    lines = [
        f"{len(plan.probes)} probe(s) in {len(plan.suites)} suite(s) "
        f"({', '.join(plan.suites)}) -> {len(plan.requests)} request(s) to " + "; ".join(targets),
        f"{plan.answered} already answered in {plan.transcript}; "
        f"{len(plan.pending)} pending"
        + (f", {est.requests} within --max-requests {max_requests}" if max_requests else ""),
        f"estimate for {est.requests} request(s): about {est.prompt_tokens} prompt token(s), "
        f"at most {est.max_completion_tokens} completion token(s)"
        + (
            f", at least {est.min_seconds / 60:.1f} min at the rate limits"
            if est.min_seconds
            else ""
        ),
    ]
    return "\n".join(lines)


def _request_line(req: Request) -> str:
    user = req.body["messages"][-1]["content"].replace("\n", " ")
    mode = "greedy" if req.body["temperature"] == 0 else f"t={req.body['temperature']:g}"
    return f"{req.role.value}\t{req.probe.probe_id}\t{mode}\t{user[:100]}"


class _RichProbeObserver:
    """A Rich progress bar on stderr for `run_probes`."""

    def __init__(self, console: Any) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self._progress = Progress(
            TextColumn("probing"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[failed]} failed"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=True,
        )
        self._task: Any = None
        self._failed = 0

    def __enter__(self) -> _RichProbeObserver:
        self._progress.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._progress.stop()

    def started(self, total: int) -> None:
        self._task = self._progress.add_task("probing", total=total, failed=0)

    def answered(self, request: Request, ok: bool) -> None:
        self._failed += 0 if ok else 1
        self._progress.update(self._task, advance=1, failed=self._failed)
