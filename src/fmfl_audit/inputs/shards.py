"""Split a data file into shards that can be read independently (by local workers or Ray tasks).

- JSONL: byte ranges cut just after a newline. One sequential pass counts the newlines before each
  cut, so every record keeps its `path:line` location wherever it is read.
- CSV: byte ranges cut at record boundaries found by parsing the file once (a quoted field may
  hold newlines, so a cut after any newline could split a record); the header travels with the
  shard.
- Parquet: runs of consecutive row groups, with the number of the first row.

Reading every shard of a plan in order yields exactly the records, locations and malformed-record
counts of one pass over the whole file (tested), so results merged in shard order do not depend on
how the file was cut. The planning pass reads the file once at I/O speed and keeps nothing but
the cut points.
"""

from __future__ import annotations

import csv
from pathlib import Path

from fmfl_audit.inputs.records import CsvLines, Shard, csv_reader, file_errors
from fmfl_audit.manifest.model import DataSource

DEFAULT_SHARD_BYTES = 32 * 1024 * 1024
"""Upper bound of a shard's size; smaller files are cut finer to keep every worker busy."""
MIN_SHARD_BYTES = 1024 * 1024
"""Below this, a shard is not worth a task."""
_CHUNK = 16 * 1024 * 1024


def shard_bytes_for(size: int, workers: int, max_bytes: int = DEFAULT_SHARD_BYTES) -> int:
    """The target shard size of a `size`-byte file for `workers` workers (about 4 shards each)."""
    return max(min(max_bytes, -(-size // (4 * workers))), MIN_SHARD_BYTES)


def plan_shards(source: DataSource, display: str, *, target_bytes: int) -> list[Shard]:
    """Shards of about `target_bytes` each (Parquet: of row groups), in file order."""
    if target_bytes < 1:
        raise ValueError("target_bytes must be positive")
    path = source.path
    with file_errors(display):
        fmt = source.resolved_format
        if fmt == "parquet":
            return _parquet_plan(source, display, target_bytes)
        size = path.stat().st_size
        if size <= target_bytes:
            return [Shard.of_file(source, display)]
        if fmt == "jsonl":
            return _jsonl_plan(source, display, target_bytes, size)
        return _csv_plan(source, display, target_bytes)


def _ranges(
    source: DataSource, display: str, cuts: list[tuple[int, int]], header: tuple[str, ...] | None
) -> list[Shard]:
    """Shards between consecutive cuts; `cuts` holds (byte offset, line number) of each start."""
    out = []
    for i, (start, line) in enumerate(cuts):
        end = cuts[i + 1][0] if i + 1 < len(cuts) else None
        out.append(
            Shard(
                source=source,
                display=display,
                index=i,
                start=start,
                end=end,
                first_line=line,
                header=header if start > 0 else None,
            )
        )
    return out


def _jsonl_plan(source: DataSource, display: str, target: int, size: int) -> list[Shard]:
    path: Path = source.path
    offsets: list[int] = []
    with path.open("rb") as fh:
        for guess in range(target, size, target):
            fh.seek(guess - 1)
            fh.readline()  # to the start of the line after the one holding byte guess-1
            cut = fh.tell()
            if cut < size and (not offsets or cut > offsets[-1]):
                offsets.append(cut)
        # Line numbers of the cuts: one counting pass over the bytes.
        cuts = [(0, 1)]
        fh.seek(0)
        pos, lines = 0, 0
        for cut in offsets:
            while pos < cut:
                chunk = fh.read(min(_CHUNK, cut - pos))
                if not chunk:
                    break
                lines += chunk.count(b"\n")
                pos += len(chunk)
            cuts.append((cut, lines + 1))
    return _ranges(source, display, cuts, None)


def _csv_plan(source: DataSource, display: str, target: int) -> list[Shard]:
    cuts = [(0, 1)]
    header: tuple[str, ...] | None = None
    with source.path.open("rb") as fh:
        lines = CsvLines(fh, 0)
        reader = csv_reader(lines)
        next_cut = target
        try:
            for row in reader:
                if header is None:
                    header = tuple(row)
                    continue
                if lines.consumed >= next_cut:
                    cuts.append((lines.consumed, lines.lines_read + 1))
                    next_cut = lines.consumed + target
        except csv.Error:  # unparseable CSV: one whole-file reader reports it in order
            return [Shard.of_file(source, display)]
    size = source.path.stat().st_size
    if cuts[-1][0] >= size:
        cuts.pop()
    return _ranges(source, display, cuts, header)


def _parquet_plan(source: DataSource, display: str, target: int) -> list[Shard]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        meta = pq.ParquetFile(source.path).metadata
    except (pa.ArrowException, OSError):
        return [Shard.of_file(source, display)]  # the reader reports it
    shards: list[Shard] = []
    groups: list[int] = []
    first_row = rows = size = 0
    for g in range(meta.num_row_groups):
        rg = meta.row_group(g)
        groups.append(g)
        rows += rg.num_rows
        size += rg.total_byte_size
        if size >= target or g == meta.num_row_groups - 1:
            shards.append(
                Shard(
                    source=source,
                    display=display,
                    index=len(shards),
                    row_groups=tuple(groups),
                    first_row=first_row,
                )
            )
            first_row += rows
            groups, rows, size = [], 0, 0
    if len(shards) <= 1:
        return [Shard.of_file(source, display)]
    return shards
