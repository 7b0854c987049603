"""Streaming readers for JSONL, CSV and Parquet records.

Records are read in batches and never whole into memory. A record that cannot be used (invalid JSON,
not an object, a missing or non-string text field, a short CSV row) is counted with its location in
`ReadStats` and skipped; it is never silently dropped and never crashes the scan.
"""

from __future__ import annotations

import contextlib
import csv
import json
import math
import re
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
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

    def bad(self, location: str, reason: str, *, count: int = 1) -> None:
        """Count `count` malformed records (from `location` on) and keep the first few reasons."""
        self.malformed += count
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


@dataclass(frozen=True)
class Shard:
    """A contiguous part of one data file, readable on its own (see `inputs.shards`).

    JSONL and CSV shards are byte ranges that start and end on record boundaries; Parquet shards
    are runs of row groups. The whole file is one shard with `start=0, end=None`.
    """

    source: DataSource
    display: str
    """The file's path as shown in locations."""
    index: int = 0
    start: int = 0
    """First byte (JSONL, CSV) of the shard."""
    end: int | None = None
    """Byte after the shard (JSONL, CSV); None reads to the end of the file."""
    first_line: int = 1
    """Line number of the shard's first byte (JSONL, CSV)."""
    header: tuple[str, ...] | None = None
    """The CSV header when the shard does not start the file."""
    row_groups: tuple[int, ...] | None = None
    """Parquet row groups of the shard; None reads all."""
    first_row: int = 0
    """Row number of the shard's first Parquet row."""

    @staticmethod
    def of_file(source: DataSource, display: str) -> Shard:
        """The whole file as one shard."""
        return Shard(source=source, display=display)


def merge_stats(parts: Sequence[ReadStats], path: str) -> ReadStats:
    """The counts of a whole file from those of its shards, in shard order."""
    out = ReadStats(path=path, complete=all(p.complete for p in parts))
    for part in parts:
        out.records += part.records
        out.malformed += part.malformed
        room = MAX_ISSUES - len(out.issues)
        out.issues.extend(part.issues[: max(room, 0)])
    return out


_COLUMN_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_ .\-]{0,63}$")


@contextlib.contextmanager
def file_errors(display: str) -> Iterator[None]:
    """Opening or reading the data file `display`: the OS errors a user can cause become located
    input errors (every reader of data files goes through this)."""
    try:
        yield
    except FileNotFoundError:
        raise InputError(f"{display}: file not found") from None
    except IsADirectoryError:
        raise InputError(f"{display}: is a folder, expected a data file") from None
    except PermissionError:
        raise InputError(f"{display}: permission denied") from None


def describe_columns(names: Sequence[str]) -> str:
    """The columns of a file for an error message. Only names that look like column names are
    quoted: a file that is not the table it was said to be (`/etc/shadow` named as a CSV log) must
    not have its first line echoed into a report."""
    shown = [n for n in names if _COLUMN_NAME.match(n)]
    hidden = len(names) - len(shown)
    parts = [f"columns: {', '.join(shown)}"] if shown else []
    if hidden:
        parts.append(f"{hidden} column name(s) not shown: not plain identifiers")
    return "; ".join(parts) or "no columns"


def _finite_non_negative(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return False
    return math.isfinite(number) and number >= 0


def _make_record(
    row: Mapping[str, Any],
    location: str,
    source: DataSource,
    *,
    require_text: bool,
    required: Sequence[str],
    stats: ReadStats,
    numeric: Sequence[str] = (),
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
    for col in numeric:
        value = row.get(col)
        if value in (None, ""):
            continue
        if not _finite_non_negative(value):
            # The value itself is not quoted: a report must not echo arbitrary file content.
            stats.bad(location, f"field {col!r} is not a finite non-negative number")
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


def _jsonl_rows(shard: Shard, stats: ReadStats) -> Iterator[tuple[str, Any]]:
    display, end = shard.display, shard.end
    with shard.source.path.open("rb") as fh:
        fh.seek(shard.start)
        pos = shard.start
        for lineno, raw in enumerate(fh, start=shard.first_line):
            if end is not None and pos >= end:
                break
            line_start = pos
            pos += len(raw)
            if line_start == 0 and raw.startswith(_BOM):
                raw = raw[len(_BOM) :]  # a BOM is accepted here as it is for CSV and YAML
            loc = f"{display}:{lineno}"
            if not raw.strip():
                continue
            obj = _json_record(raw, loc, stats)
            if obj is not None:
                yield loc, obj


_BOM = b"\xef\xbb\xbf"


def _json_record(raw: bytes, loc: str, stats: ReadStats) -> dict[str, Any] | None:
    """One JSONL line as an object, or None after counting why it is malformed."""
    try:
        obj = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        stats.bad(loc, "not UTF-8")
        return None
    except json.JSONDecodeError as exc:
        stats.bad(loc, f"invalid JSON: {exc.msg}")
        return None
    except RecursionError:
        stats.bad(loc, "invalid JSON: nested too deeply")
        return None
    except ValueError:
        # An integer of more digits than Python converts (sys.get_int_max_str_digits()).
        stats.bad(loc, "invalid JSON: a number too long to read")
        return None
    if not isinstance(obj, dict):
        stats.bad(loc, f"expected a JSON object, found {type(obj).__name__}")
        return None
    if b"\\u" in raw and _has_lone_surrogate(obj):
        # `"\ud800"` decodes to a lone surrogate: no UTF-8 writer (report, Presidio, tokenizer)
        # can handle it downstream, so the record is malformed here, once.
        stats.bad(loc, "invalid JSON: a lone surrogate escape (not Unicode text)")
        return None
    return obj


def _has_lone_surrogate(value: Any, depth: int = 0) -> bool:
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return True
        return False
    if depth > 64:
        return False
    if isinstance(value, dict):
        return any(
            _has_lone_surrogate(k, depth + 1) or _has_lone_surrogate(v, depth + 1)
            for k, v in value.items()
        )
    if isinstance(value, list):
        return any(_has_lone_surrogate(v, depth + 1) for v in value)
    return False


class CsvLines:
    """The lines of a CSV byte range for `csv.reader`, counting bytes consumed.

    `csv.reader` pulls one line at a time and never reads ahead, so after it yields a row,
    `consumed` is the byte offset just past that row: the boundaries `inputs.shards` plans on.
    A line that is not UTF-8 is passed on decoded with replacement characters and its line number
    kept in `bad_lines`, so the record holding it is reported as malformed.
    """

    def __init__(self, fh: Any, start: int) -> None:
        self._fh = fh
        self.consumed = start
        self.lines_read = 0
        self.bad_lines: set[int] = set()
        self._strip_bom = start == 0

    def __iter__(self) -> CsvLines:
        return self

    def __next__(self) -> str:
        raw = self._fh.readline()
        if not raw:
            raise StopIteration
        self.consumed += len(raw)
        self.lines_read += 1
        if self._strip_bom:
            self._strip_bom = False
            if raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
        try:
            return str(raw.decode("utf-8"))
        except UnicodeDecodeError:
            self.bad_lines.add(self.lines_read)
            return str(raw.decode("utf-8", errors="replace"))


def csv_reader(lines: CsvLines) -> Any:
    """A `csv.reader` over `lines` with the field size limit raised (long generated texts)."""
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    return csv.reader(lines)


def _csv_rows(shard: Shard, stats: ReadStats, needed: Sequence[str]) -> Iterator[tuple[str, Any]]:
    display, end = shard.display, shard.end
    offset = shard.first_line - 1
    with shard.source.path.open("rb") as fh:
        fh.seek(shard.start)
        lines = CsvLines(fh, shard.start)
        reader = csv_reader(lines)
        if shard.header is None:
            try:
                header = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                raise InputError(f"{display}:1: unreadable CSV header ({exc})") from None
        else:
            header = list(shard.header)
        missing = [c for c in needed if c not in header]
        if missing:
            raise InputError(
                f"{display}:1: column(s) {', '.join(map(repr, missing))} not in the header "
                f"({describe_columns(header)})"
            )
        width = len(header)
        first = lines.lines_read + 1
        while end is None or lines.consumed < end:
            try:
                row = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                # The reader starts afresh at the next line: one bad record, not the file's end.
                stats.bad(f"{display}:{offset + lines.lines_read}", f"unreadable CSV: {exc}")
                first = lines.lines_read + 1
                continue
            last = lines.lines_read
            loc = f"{display}:{offset + last}"
            bad = [n for n in range(first, last + 1) if n in lines.bad_lines]
            first = last + 1
            if bad:
                lines.bad_lines.difference_update(bad)
                stats.bad(loc, "not UTF-8")
                continue
            if not row or (len(row) == 1 and not row[0].strip()):
                continue
            if len(row) != width:
                stats.bad(loc, f"expected {width} fields, found {len(row)}")
                continue
            yield loc, dict(zip(header, row, strict=True))


def _parquet_rows(
    shard: Shard, stats: ReadStats, needed: Sequence[str], batch_size: int
) -> Iterator[tuple[str, Any]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    display = shard.display
    try:
        pf = pq.ParquetFile(shard.source.path)
    except (pa.ArrowException, OSError) as exc:
        raise InputError(f"{display}: not a readable Parquet file ({exc})") from None
    names = pf.schema_arrow.names
    missing = [c for c in needed if c not in names]
    if missing:
        raise InputError(
            f"{display}: column(s) {', '.join(map(repr, missing))} not in the Parquet schema "
            f"({describe_columns(names)})"
        )
    row = shard.first_row
    groups = range(pf.num_row_groups) if shard.row_groups is None else shard.row_groups
    for g in groups:
        size = pf.metadata.row_group(g).num_rows
        done = 0
        try:
            for batch in pf.iter_batches(batch_size=batch_size, row_groups=[g]):
                for obj in batch.to_pylist():
                    yield f"{display}#{row + done}", obj
                    done += 1
        except (pa.ArrowException, OSError) as exc:
            # A corrupt page: the rest of its row group is lost; the other groups still read.
            reason = f"unreadable Parquet row group {g} ({type(exc).__name__})"
            stats.bad(f"{display}#{row + done}", reason, count=max(size - done, 1))
        row += size


def iter_records(
    source: DataSource,
    *,
    display: str,
    stats: ReadStats,
    require_text: bool = True,
    required: Sequence[str] = (),
    batch_size: int = DEFAULT_BATCH,
    numeric: Sequence[str] = (),
) -> Iterator[list[Record]]:
    """Yield batches of usable records from `source`; malformed ones go to `stats`.

    Fields named in `numeric` must, when present, be finite non-negative numbers (weights, sample
    counts): NaN, infinities and negative values make the record malformed.

    `display` is the path shown in locations. Raises InputError only for whole-file problems
    (unreadable file, a required column absent from the header or schema).
    """
    yield from iter_shard(
        Shard.of_file(source, display),
        stats=stats,
        require_text=require_text,
        required=required,
        batch_size=batch_size,
        numeric=numeric,
    )


def iter_shard(
    shard: Shard,
    *,
    stats: ReadStats,
    require_text: bool = True,
    required: Sequence[str] = (),
    batch_size: int = DEFAULT_BATCH,
    numeric: Sequence[str] = (),
) -> Iterator[list[Record]]:
    """Yield batches of the usable records of one shard (see `iter_records`)."""
    source, display = shard.source, shard.display
    fmt = source.resolved_format
    needed = [source.text_field, *required] if require_text else list(required)
    with file_errors(display):
        if fmt == "jsonl":
            rows: Iterator[tuple[str, Any]] = _jsonl_rows(shard, stats)
        elif fmt == "csv":
            rows = _csv_rows(shard, stats, needed)
        else:
            rows = _parquet_rows(shard, stats, needed, batch_size)
        batch: list[Record] = []
        for loc, obj in rows:
            rec = _make_record(
                obj,
                loc,
                source,
                require_text=require_text,
                required=required,
                stats=stats,
                numeric=numeric,
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
    stats.complete = True
