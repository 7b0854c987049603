"""`fmfl-audit import FRAMEWORK RUN_DIR`: turn another FL framework's run folder into our inputs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fmfl_audit.integrations.importers import Framework


def register(app: typer.Typer) -> None:
    """Add the `import` command to the CLI."""
    from fmfl_audit.cli.main import guarded

    app.command(name="import")(guarded(import_run))


def import_run(
    framework: Annotated[Framework, typer.Argument(help="The framework that wrote RUN_DIR.")],
    run_dir: Annotated[Path, typer.Argument(help="The run folder (it is only read).")],
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", help="Folder to write into [default: ./fmfl-audit-FRAMEWORK]."
        ),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Overwrite an existing manifest there.")
    ] = False,
) -> None:
    """Write a participation log and a starter manifest from a run folder."""
    from fmfl_audit.cli.init import report_lists
    from fmfl_audit.integrations.importers import importer

    out = output or Path(f"fmfl-audit-{framework.value}")
    result = importer(framework)(run_dir, out, force=force)
    typer.echo(f"{result.manifest}: starter manifest from the {framework.value} run {run_dir}")
    report_lists(
        found=[str(p) for p in result.written],
        unfilled=result.unfilled,
        extra=(f"{framework.value} does not record", result.unrecoverable),
    )
    typer.echo(f"Next: `fmfl-audit scan {result.manifest}`.")
