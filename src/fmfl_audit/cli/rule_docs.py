"""`fmfl-audit rules docs`: write the Markdown page of every rule (see `report.rule_docs`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    """Add `rules docs` to the `rules` group of the CLI."""
    from fmfl_audit.cli.main import guarded, rules_app

    rules_app.command(name="docs")(guarded(rules_docs))


def rules_docs(
    out: Annotated[Path, typer.Option("--out", help="Folder for the pages.")] = Path("docs/rules"),
    check: Annotated[
        bool,
        typer.Option("--check", help="Write nothing; exit 1 when the pages in --out are stale."),
    ] = False,
) -> None:
    """Write one Markdown page per rule of the default pack, plus an index."""
    from fmfl_audit.report.rule_docs import stale_rule_docs, write_rule_docs

    if check:
        problems = stale_rule_docs(out)
        for line in problems:
            typer.echo(f"{out / line}", err=True)
        if problems:
            typer.echo(f"regenerate with: fmfl-audit rules docs --out {out}", err=True)
            raise typer.Exit(1)
        typer.echo(f"{out}: every rule page is current")
        return
    written = write_rule_docs(out)
    typer.echo(f"{out}: wrote {len(written)} page(s)")
