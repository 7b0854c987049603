"""`fmfl-audit redact`: write redacted copies of a deployment's data dumps (a remediation).

The work is `fmfl_audit.remediation.redact`; this module parses the options and prints the
summary table (placeholder counts only: never a raw value).
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from fmfl_audit.remediation.redact import RedactionSummary


class WhatChoice(str, Enum):
    """`--what` values (the names of `RedactTarget`, which is kept out of `--help`'s imports)."""

    synthetic = "synthetic"
    prompts = "prompts"
    all = "all"


def register(app: typer.Typer) -> None:
    """Add the `redact` command to the CLI."""
    from fmfl_audit.cli.main import guarded

    app.command(name="redact")(guarded(redact))


def redact(
    manifest: Annotated[Path, typer.Argument(help="Deployment manifest (YAML).")],
    out: Annotated[
        Path | None,
        typer.Option("--out", help="New folder for the copies [default: MANIFEST_DIR/redacted]."),
    ] = None,
    what: Annotated[
        WhatChoice,
        typer.Option(
            "--what",
            help="synthetic (every client's synthetic data), prompts, or all (both plus the "
            "FM's teacher outputs).",
        ),
    ] = WhatChoice.synthetic,
    force: Annotated[
        bool, typer.Option("--force", help="Write into a non-empty --out folder.")
    ] = False,
    rules: Annotated[
        list[str] | None,
        typer.Option("--rules", help="Extra rule pack (file or folder), as for scan."),
    ] = None,
) -> None:
    """Write copies of the data with PII, secrets, canaries and leaked spans replaced.

    The inputs are never modified: the copies, a manifest.yaml pointing at them and
    redaction-summary.json go to a new folder.
    """
    from fmfl_audit.engine.runner import Auditor
    from fmfl_audit.manifest import load_manifest
    from fmfl_audit.remediation.redact import RedactTarget, redact_deployment

    target = RedactTarget(what.value)
    deployment = load_manifest(manifest)
    ruleset = Auditor(deployment, extra_packs=tuple(rules or ())).ruleset()
    summary = redact_deployment(
        deployment, out_dir=out, target=target, force=force, ruleset=ruleset
    )
    _print_summary(summary)


def _print_summary(summary: RedactionSummary) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False)
    table = Table(title=f"Redacted copies in {summary.out_dir}")
    table.add_column("File", overflow="fold")
    table.add_column("Subject", overflow="fold")
    for col in ("Records", "Redacted", "Unchecked"):
        table.add_column(col, justify="right", no_wrap=True)
    table.add_column("Replaced", no_wrap=True)
    for f in summary.files:
        replaced = "\n".join(f"{k} {n}" for k, n in f.replaced.items()) or "-"
        table.add_row(
            f.source,
            f.subject,
            str(f.records),
            str(f.records_redacted),
            str(f.not_checked),
            replaced,
        )
    console.print(table)
    console.print(f"engine: {summary.engine}")
    for f in summary.files:
        for issue in f.not_checked_issues:
            console.print(f"not checked (copied unchanged): {issue.location}: {issue.reason}")
    for note in summary.notes:
        console.print(f"note: {note}")
    console.print(f"summary: {Path(summary.out_dir) / 'redaction-summary.json'}")
    console.print(f"re-scan the copy with: fmfl-audit scan {summary.manifest_copy}")
