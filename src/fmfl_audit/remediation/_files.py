"""Stream one data file into its redacted copy, in the same format and record order.

Only the text field of a record is redacted; every other field is kept. A record whose text is
unchanged is copied byte for byte (JSONL and CSV), so a copy differs from its input only where
something was replaced. A record that cannot be read as a record (invalid JSON, not an object, a
missing or non-string text field, a short CSV row, bytes that are not UTF-8) is also copied
unchanged, and counted and listed as *not checked*: dropping it would lose data the user may need,
rewriting it would guess at its meaning, and the summary says it may still hold what `redact`
removes elsewhere.

JSONL and CSV are read line by line here rather than through `inputs.records.iter_records`,
which yields parsed records only: a byte-for-byte copy needs the raw lines. CSV parsing uses the
same `CsvLines` / `csv_reader` as the scan. Parquet is rewritten row group by row group with the
input's schema (and its metadata) and compression.
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from fmfl_audit.errors import InputError
from fmfl_audit.inputs.records import (
    MAX_ISSUES,
    CsvLines,
    csv_reader,
    describe_columns,
    file_errors,
)
from fmfl_audit.manifest.model import DataSource
from fmfl_audit.models import InputIssue

RedactFn = Callable[[list[str]], list[tuple[str, Counter[str]]]]
"""Redacts a batch of texts: (new text, placeholders by type) per text."""


@dataclass
class FileTally:
    """What happened to one file's records."""

    records: int = 0
    redacted: int = 0
    without_text: int = 0
    not_checked: int = 0
    issues: list[InputIssue] = field(default_factory=list)
    replaced: Counter[str] = field(default_factory=Counter)

    def skip(self, location: str, reason: str) -> None:
        """A record copied unchanged without being checked."""
        self.not_checked += 1
        if len(self.issues) < MAX_ISSUES:
            self.issues.append(InputIssue(location=location, reason=reason))


@dataclass
class _Item:
    """One unit of output: a record (or a blank line) of the input, in order."""

    raw: bytes
    location: str
    text: str | None = None
    """The text to redact; None when there is nothing to check."""
    payload: Any = None
    """Format-specific: the JSON object, or the CSV row."""


@dataclass(frozen=True)
class FileJob:
    """One file to redact."""

    source: DataSource
    display: str
    text_optional: bool = False
    """A record without a string text field has no text (teacher outputs), not a defect."""


def redact_file(job: FileJob, out: Path, redact: RedactFn, *, batch_size: int) -> FileTally:
    """Write the redacted copy of `job.source` to `out`; InputError for whole-file problems."""
    fmt = job.source.resolved_format
    tally = FileTally()
    with file_errors(job.display):
        if fmt == "parquet":
            _redact_parquet(job, out, redact, tally, batch_size)
            return tally
        with job.source.path.open("rb") as fh, out.open("wb") as dst:
            items = _jsonl_items(job, fh, tally) if fmt == "jsonl" else _csv_items(job, fh, tally)
            emit = _jsonl_emit(job) if fmt == "jsonl" else _csv_emit
            for chunk in _chunks(items, batch_size):
                _process(chunk, redact, tally)
                for item, new in chunk:
                    dst.write(item.raw if new is None or new == item.text else emit(item, new))
    return tally


def _chunks(items: Iterator[_Item], size: int) -> Iterator[list[tuple[_Item, str | None]]]:
    chunk: list[tuple[_Item, str | None]] = []
    for item in items:
        chunk.append((item, None))
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _process(chunk: list[tuple[_Item, str | None]], redact: RedactFn, tally: FileTally) -> None:
    """Fill in each checked item's new text (in place), counting what was replaced."""
    todo = [i for i, (item, _) in enumerate(chunk) if item.text is not None]
    texts = [chunk[i][0].text or "" for i in todo]
    for i, (new, counts) in zip(todo, redact(texts) if texts else [], strict=True):
        chunk[i] = (chunk[i][0], new)
        if counts:
            tally.redacted += 1
            tally.replaced.update(counts)


def _text_of(obj: dict[str, Any], job: FileJob, loc: str, tally: FileTally) -> str | None:
    """The record's text, or None after counting why it has none."""
    name = job.source.text_field
    value = obj.get(name)
    if isinstance(value, str):
        return value
    if job.text_optional:
        tally.without_text += 1
    elif value is None:
        tally.skip(loc, f"missing text field {name!r}")
    else:
        tally.skip(loc, f"text field {name!r} is {type(value).__name__}")
    return None


def _jsonl_items(job: FileJob, fh: BinaryIO, tally: FileTally) -> Iterator[_Item]:
    for lineno, raw in enumerate(fh, start=1):
        loc = f"{job.display}:{lineno}"
        if not raw.strip():
            yield _Item(raw=raw, location=loc)
            continue
        tally.records += 1
        try:
            obj = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError:
            tally.skip(loc, "not UTF-8")
            obj = None
        except (json.JSONDecodeError, RecursionError) as exc:
            reason = exc.msg if isinstance(exc, json.JSONDecodeError) else "nested too deeply"
            tally.skip(loc, f"invalid JSON: {reason}")
            obj = None
        if obj is not None and not isinstance(obj, dict):
            tally.skip(loc, f"expected a JSON object, found {type(obj).__name__}")
            obj = None
        text = None if obj is None else _text_of(obj, job, loc, tally)
        yield _Item(raw=raw, location=loc, text=text, payload=obj)


def _line_ending(raw: bytes) -> bytes:
    if raw.endswith(b"\r\n"):
        return b"\r\n"
    return b"\n" if raw.endswith(b"\n") else b""


def _jsonl_emit(job: FileJob) -> Callable[[_Item, str], bytes]:
    def emit(item: _Item, new: str) -> bytes:
        obj = {**item.payload, job.source.text_field: new}
        return json.dumps(obj, ensure_ascii=False).encode("utf-8") + _line_ending(item.raw)

    return emit


class _Tee:
    """A binary file whose lines, once read, can be taken back as raw bytes."""

    def __init__(self, fh: BinaryIO) -> None:
        self._fh = fh
        self._lines: list[bytes] = []

    def readline(self) -> bytes:
        raw = self._fh.readline()
        if raw:
            self._lines.append(raw)
        return raw

    def take(self) -> bytes:
        """The raw bytes read since the last call."""
        out = b"".join(self._lines)
        self._lines = []
        return out

    def rest(self) -> bytes:
        """Everything not read yet, plus what was read since the last `take`."""
        return self.take() + self._fh.read()


def _csv_items(job: FileJob, fh: BinaryIO, tally: FileTally) -> Iterator[_Item]:
    tee = _Tee(fh)
    lines = CsvLines(tee, 0)
    reader = csv_reader(lines)
    try:
        header = next(reader)
    except StopIteration:
        return
    yield _Item(raw=tee.take(), location=f"{job.display}:1")
    name = job.source.text_field
    if name not in header:
        raise InputError(
            f"{job.display}:1: column {name!r} not in the header ({describe_columns(header)})"
        )
    try:
        yield from _csv_rows(job, reader, lines, tee, header, tally)
    except csv.Error as exc:
        loc = f"{job.display}:{lines.lines_read}"
        tally.records += 1
        tally.skip(loc, f"unreadable CSV: {exc}; the rest of the file is copied unchanged")
        yield _Item(raw=tee.rest(), location=loc)


def _csv_rows(
    job: FileJob, reader: Any, lines: CsvLines, tee: _Tee, header: list[str], tally: FileTally
) -> Iterator[_Item]:
    column = header.index(job.source.text_field)
    first = lines.lines_read + 1
    for row in reader:
        raw = tee.take()
        last = lines.lines_read
        loc = f"{job.display}:{last}"
        bad = [n for n in range(first, last + 1) if n in lines.bad_lines]
        first = last + 1
        if not row or (len(row) == 1 and not row[0].strip()):
            yield _Item(raw=raw, location=loc)
            continue
        tally.records += 1
        if bad:
            lines.bad_lines.difference_update(bad)
            tally.skip(loc, "not UTF-8")
            yield _Item(raw=raw, location=loc)
        elif len(row) != len(header):
            tally.skip(loc, f"expected {len(header)} fields, found {len(row)}")
            yield _Item(raw=raw, location=loc)
        else:
            obj = dict(zip(header, row, strict=True))
            text = _text_of(obj, job, loc, tally)
            yield _Item(raw=raw, location=loc, text=text, payload=(row, column))


def _csv_emit(item: _Item, new: str) -> bytes:
    row, column = item.payload
    row = list(row)
    row[column] = new
    buf = io.StringIO()
    ending = _line_ending(item.raw).decode("ascii") or "\n"
    csv.writer(buf, lineterminator=ending).writerow(row)
    return buf.getvalue().encode("utf-8")


def _redact_parquet(
    job: FileJob, out: Path, redact: RedactFn, tally: FileTally, batch_size: int
) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(job.source.path)
    except (pa.ArrowException, OSError) as exc:
        raise InputError(f"{job.display}: not a readable Parquet file ({exc})") from None
    schema = pf.schema_arrow
    name = job.source.text_field
    if name not in schema.names:
        raise InputError(
            f"{job.display}: column {name!r} not in the Parquet schema "
            f"({describe_columns(schema.names)})"
        )
    col = schema.names.index(name)
    if not (
        pa.types.is_string(schema.field(col).type)
        or pa.types.is_large_string(schema.field(col).type)
    ):
        raise InputError(f"{job.display}: column {name!r} is {schema.field(col).type}, not text")
    meta = pf.metadata
    codec = meta.row_group(0).column(col).compression.lower() if meta.num_row_groups else "snappy"
    row = 0
    with pq.ParquetWriter(out, schema, compression=codec) as writer:
        # One row group at a time: memory is bounded by the input's row-group size.
        for g in range(pf.num_row_groups):
            table = pf.read_row_group(g)
            values = table.column(col).to_pylist()
            items = []
            for i, value in enumerate(values):
                tally.records += 1
                obj = {name: value}
                loc = f"{job.display}#{row + i}"
                items.append(_Item(raw=b"", location=loc, text=_text_of(obj, job, loc, tally)))
            new_values = list(values)
            for start in range(0, len(items), batch_size):
                chunk: list[tuple[_Item, str | None]] = [
                    (it, None) for it in items[start : start + batch_size]
                ]
                _process(chunk, redact, tally)
                for j, (_, new) in enumerate(chunk):
                    if new is not None:
                        new_values[start + j] = new
            row += len(values)
            table = table.set_column(
                col, schema.field(col), pa.array(new_values, schema.field(col).type)
            )
            writer.write_table(table, row_group_size=max(1, len(values)))
