"""Streaming readers for JSONL, CSV and Parquet records.

Records are read in batches and never whole into memory. A record that cannot be used (invalid JSON,
not an object, a missing or non-string text field, a short CSV row) is counted with its location in
`ReadStats` and skipped; it is never silently dropped and never crashes the scan.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fmfl_audit.errors import InputError
from fmfl_audit.manifest.model import DataSource
from fmfl_audit.models import InputIssue, InputStats

MAX_ISSUES = 20
"""How many malformed records are listed per file (all are counted)."""

DEFAULT_BATCH = 512


@dataclass(frozen=True, slots=True)
class Record:
    """One usable record."""

    location: str
    """`path:line` (JSONL, CSV) or `path#row` (Parquet), path relative to the manifest folder."""
    data: Mapping[str, Any]
    """The raw fields."""
    text: str | None
    """The text field; None when the reader was asked for no text."""
    label: Any = None
    record_id: str | None = None
    features: Mapping[str, Any] = field(default_factory=dict)
    """The declared sensitive features (absent ones are None)."""


@dataclass
class ReadStats:
    """Counts for one pass over one file."""

    path: str
    records: int = 0
    malformed: int = 0
    issues: list[InputIssue] = field(default_factory=list)
    complete: bool = False

    def bad(self, location: str, reason: str) -> None:
        """Count a malformed record and keep the first few with their reasons."""
        self.malformed += 1
        if len(self.issues) < MAX_ISSUES:
            self.issues.append(InputIssue(location=location, reason=reason))

    def freeze(self) -> InputStats:
        """The report form."""
        return InputStats(
            path=self.path,
            records=self.records,
            malformed=self.malformed,
            issues=tuple(self.issues),
        )


def _make_record(
    row: Mapping[str, Any],
    location: str,
    source: DataSource,
    *,
    require_text: bool,
    required: Sequence[str],
    stats: ReadStats,
) -> Record | None:
    text: str | None = None
    if require_text:
        value = row.get(source.text_field)
        if value is None:
            stats.bad(location, f"missing text field {source.text_field!r}")
            return None
        if not isinstance(value, str):
            stats.bad(location, f"text field {source.text_field!r} is {type(value).__name__}")
            return None
        text = value
    for col in required:
        if row.get(col) in (None, ""):
            stats.bad(location, f"missing field {col!r}")
            return None
    rid = row.get(source.id_field)
    return Record(
        location=location,
        data=row,
        text=text,
        label=row.get(source.label_field),
        record_id=None if rid is None else str(rid),
        features={f: row.get(f) for f in source.sensitive_features},
    )


def _jsonl_rows(path: Path, display: str, stats: ReadStats) -> Iterator[tuple[str, Any]]:
    with path.open("rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            loc = f"{display}:{lineno}"
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw.decode("utf-8"))
            except UnicodeDecodeError:
                stats.bad(loc, "not UTF-8")
                continue
            except (json.JSONDecodeError, RecursionError) as exc:
                reason = exc.msg if isinstance(exc, json.JSONDecodeError) else "nested too deeply"
                stats.bad(loc, f"invalid JSON: {reason}")
                continue
            if not isinstance(obj, dict):
                stats.bad(loc, f"expected a JSON object, found {type(obj).__name__}")
                continue
            yield loc, obj


def _csv_rows(
    path: Path, display: str, stats: ReadStats, needed: Sequence[str]
) -> Iterator[tuple[str, Any]]:
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    try:
        fh = path.open(newline="", encoding="utf-8-sig")
        with fh:
            reader = csv.reader(fh)
            try:
                header = next(reader)
            except StopIteration:
                return
            missing = [c for c in needed if c not in header]
            if missing:
                raise InputError(
                    f"{display}:1: column(s) {', '.join(map(repr, missing))} not in the header "
                    f"(columns: {', '.join(header)})"
                )
            width = len(header)
            try:
                for row in reader:
                    loc = f"{display}:{reader.line_num}"
                    if not row or (len(row) == 1 and not row[0].strip()):
                        continue
                    if len(row) != width:
                        stats.bad(loc, f"expected {width} fields, found {len(row)}")
                        continue
                    yield loc, dict(zip(header, row, strict=True))
            except csv.Error as exc:
                stats.bad(f"{display}:{reader.line_num}", f"unreadable CSV: {exc}")
    except UnicodeDecodeError as exc:
        stats.bad(display, f"not UTF-8 from byte {exc.start}; the rest of the file was not read")


def _parquet_rows(
    path: Path, display: str, needed: Sequence[str], batch_size: int
) -> Iterator[tuple[str, Any]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as exc:
        raise InputError(f"{display}: not a readable Parquet file ({exc})") from None
    names = pf.schema_arrow.names
    missing = [c for c in needed if c not in names]
    if missing:
        raise InputError(
            f"{display}: column(s) {', '.join(map(repr, missing))} not in the Parquet schema "
            f"(columns: {', '.join(names)})"
        )
    row = 0
    for batch in pf.iter_batches(batch_size=batch_size):
        for obj in batch.to_pylist():
            yield f"{display}#{row}", obj
            row += 1


def iter_records(
    source: DataSource,
    *,
    display: str,
    stats: ReadStats,
    require_text: bool = True,
    required: Sequence[str] = (),
    batch_size: int = DEFAULT_BATCH,
) -> Iterator[list[Record]]:
    """Yield batches of usable records from `source`; malformed ones go to `stats`.

    `display` is the path shown in locations. Raises InputError only for whole-file problems
    (unreadable file, a required column absent from the header or schema).
    """
    path = source.path
    fmt = source.resolved_format
    needed = [source.text_field, *required] if require_text else list(required)
    try:
        if fmt == "jsonl":
            rows: Iterator[tuple[str, Any]] = _jsonl_rows(path, display, stats)
        elif fmt == "csv":
            rows = _csv_rows(path, display, stats, needed)
        else:
            rows = _parquet_rows(path, display, needed, batch_size)
        batch: list[Record] = []
        for loc, obj in rows:
            rec = _make_record(
                obj, loc, source, require_text=require_text, required=required, stats=stats
            )
            if rec is None:
                continue
            stats.records += 1
            batch.append(rec)
            if len(batch) >= batch_size:
                yield batch
                batch = []
        if batch:
            yield batch
    except FileNotFoundError:
        raise InputError(f"{display}: file not found") from None
    except IsADirectoryError:
        raise InputError(f"{display}: is a folder, expected a data file") from None
    except PermissionError:
        raise InputError(f"{display}: permission denied") from None
    stats.complete = True
