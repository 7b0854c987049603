"""`fmfl-audit fingerprint`: a client-side, privacy-preserving sketch of private data for FMFL-P06.

The client runs this on its own machine and hands the auditor the JSON file instead of raw records.
It holds keyed hashes of word k-grams only (format and what it does and does not reveal: see
`fmfl_audit.checkers.privacy._shingles`). The key comes from `--key-file` or the environment
variable `FMFL_AUDIT_FINGERPRINT_KEY`, shared by the auditor and the clients; it is never written
into the fingerprint.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from fmfl_audit.errors import UsageError


def register(app: typer.Typer) -> None:
    """Add the `fingerprint` command to the CLI."""
    from fmfl_audit.cli.main import guarded

    app.command(name="fingerprint")(guarded(fingerprint))


def fingerprint(
    data: Annotated[Path, typer.Argument(help="Private data file (JSONL, CSV or Parquet).")],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Fingerprint file to write (JSON).")
    ],
    text_field: Annotated[str, typer.Option(help="Column holding the text.")] = "text",
    data_format: Annotated[
        str | None,
        typer.Option("--data-format", help="jsonl, csv or parquet; from the suffix if omitted."),
    ] = None,
    k: Annotated[int, typer.Option(min=3, max=64, help="Words per shingle (FMFL-P06 `k`).")] = 8,
    key_file: Annotated[
        Path | None,
        typer.Option(help="File with the key shared with the auditor (else the env variable)."),
    ] = None,
    key_env: Annotated[
        str, typer.Option(help="Environment variable holding the shared key.")
    ] = "FMFL_AUDIT_FINGERPRINT_KEY",
) -> None:
    """Write a keyed-hash sketch of private data that FMFL-P06 accepts instead of the raw data."""
    from fmfl_audit.checkers.privacy._shingles import build_fingerprint, load_key
    from fmfl_audit.inputs.records import ReadStats, iter_records
    from fmfl_audit.manifest.model import DataSource

    if data_format not in (None, "jsonl", "csv", "parquet"):
        raise UsageError(f"--data-format: expected jsonl, csv or parquet, got {data_format!r}")
    fmt: Literal["jsonl", "csv", "parquet"] | None = data_format  # type: ignore[assignment]
    key = load_key(key_file=key_file, env=key_env)
    if key is None:
        raise UsageError(
            f"no key: give --key-file or set ${key_env} (the key shared with the auditor)"
        )
    try:
        source = DataSource(path=data.resolve(), format=fmt, text_field=text_field)
    except ValueError as exc:
        raise UsageError(f"{data}: {exc}") from None
    stats = ReadStats(path=str(data))
    batches = (
        [r.text or "" for r in batch]
        for batch in iter_records(source, display=str(data), stats=stats)
    )
    fp = build_fingerprint(batches, k=k, key=key)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(fp.to_json() + "\n", encoding="utf-8")
    typer.echo(
        f"{output}: fingerprint of {fp.records} record(s), {len(fp.hashes)} distinct "
        f"{k}-word shingle(s); {stats.malformed} malformed record(s) skipped",
        err=True,
    )
