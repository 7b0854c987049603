"""`fmfl-audit init [DIR]`: draft a commented manifest for the inputs found in a folder."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fmfl_audit.errors import UsageError


def register(app: typer.Typer) -> None:
    """Add the `init` command to the CLI."""
    from fmfl_audit.cli.main import guarded

    app.command(name="init")(guarded(init))


def init(
    folder: Annotated[Path, typer.Argument(help="Deployment folder to scan for inputs.")] = Path(),
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Manifest to write [default: DIR/manifest.yaml]."),
    ] = None,
    name: Annotated[
        str | None, typer.Option(help="Deployment name [default: the folder's name].")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing manifest.")] = False,
) -> None:
    """Write a starter manifest naming the files found; say what is left to fill in."""
    from fmfl_audit.integrations.detect import detect
    from fmfl_audit.integrations.scaffold import write_manifest

    if not folder.is_dir():
        raise UsageError(f"{folder}: not a folder")
    target = output or folder / "manifest.yaml"
    detection = detect(folder, target.parent, name=name)
    write_manifest(detection.draft, target, force=force)
    typer.echo(f"{target}: starter manifest for {detection.draft.name!r}")
    report_lists(
        found=detection.found,
        unfilled=detection.draft.unfilled(),
        extra=("not recognised (add by hand if they matter)", detection.unplaced),
    )
    typer.echo(
        f"Next: edit it, then `fmfl-audit validate {target}` and `fmfl-audit scan {target}`."
    )


def report_lists(
    *, found: list[str], unfilled: list[str], extra: tuple[str, list[str]] | None = None
) -> None:
    """Print what was found and what the operator still has to fill in."""
    sections = [("found", found), ("could not fill in (see FILL IN comments)", unfilled)]
    if extra is not None:
        sections.append(extra)
    for title, items in sections:
        if items:
            typer.echo(f"{title}:")
            for item in items:
                typer.echo(f"  - {item}")
