"""Shards: reading every shard of a plan in order equals one pass over the whole file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fmfl_audit.errors import InputError
from fmfl_audit.inputs.records import ReadStats, Shard, iter_records, iter_shard, merge_stats
from fmfl_audit.inputs.shards import MIN_SHARD_BYTES, plan_shards, shard_bytes_for
from fmfl_audit.manifest.model import DataSource


def _source(path: Path, **kw: object) -> DataSource:
    return DataSource.model_validate({"path": str(path), **kw})


def _whole(src: DataSource, **kw: object) -> tuple[list[tuple[str, object]], ReadStats]:
    stats = ReadStats(path="f")
    recs = [
        (r.location, dict(r.data))
        for b in iter_records(src, display="f", stats=stats, **kw)
        for r in b
    ]  # type: ignore[arg-type]
    return recs, stats


def _sharded(
    src: DataSource, target: int, **kw: object
) -> tuple[list[tuple[str, object]], ReadStats, int]:
    shards = plan_shards(src, "f", target_bytes=target)
    assert [s.index for s in shards] == list(range(len(shards)))
    recs: list[tuple[str, object]] = []
    parts = []
    for shard in shards:
        stats = ReadStats(path="f")
        for batch in iter_shard(shard, stats=stats, batch_size=3, **kw):  # type: ignore[arg-type]
            recs.extend((r.location, dict(r.data)) for r in batch)
        parts.append(stats)
    return recs, merge_stats(parts, "f"), len(shards)


def _same(a: ReadStats, b: ReadStats) -> None:
    assert a.freeze() == b.freeze()
    assert a.complete and b.complete


JSONL_LINES = [
    b'{"text": "first record"}\n',
    b"\n",
    b'{"text": "second", "n": 2}\r\n',
    b"not json at all\n",
    b'{"text": 5}\n',
    b'["a", "list"]\n',
    b'{"text": "caf\xc3\xa9 ol\xc3\xa9"}\n',
    b'{"text": "bad byte \xff here"}\n',
    b'{"text": "' + b"long " * 60 + b'"}\n',
    b"   \n",
    b'{"text": "no newline at the end"}',
]


@pytest.mark.parametrize("target", [1, 7, 30, 64, 200, 10_000])
def test_jsonl_shards_equal_whole_file(tmp_path: Path, target: int) -> None:
    path = tmp_path / "d.jsonl"
    path.write_bytes(b"".join(JSONL_LINES))
    src = _source(path)
    whole, whole_stats = _whole(src)
    got, stats, n = _sharded(src, target)
    assert got == whole
    _same(stats, whole_stats)
    assert whole_stats.malformed == 4  # not json, text 5, a list, bad UTF-8
    assert [loc for loc, _ in whole][:2] == ["f:1", "f:3"]
    if target <= 30:
        assert n > 3


CSV_TEXT = (
    "\ufeffid,text,label\n"
    '1,"plain",a\n'
    '2,"a field with\nan embedded newline, and a comma",b\n'
    "3,short\n"
    "\n"
    '4,"quote "" inside",c\r\n'
    '5,"two\n\nblank lines inside",d\n'
    "6,last,e"
)


@pytest.mark.parametrize("target", [1, 10, 25, 60, 10_000])
def test_csv_shards_cut_on_record_boundaries(tmp_path: Path, target: int) -> None:
    path = tmp_path / "d.csv"
    path.write_text(CSV_TEXT, encoding="utf-8", newline="")
    src = _source(path)
    whole, whole_stats = _whole(src)
    got, stats, n = _sharded(src, target)
    assert got == whole
    _same(stats, whole_stats)
    assert [r["id"] for _, r in whole] == ["1", "2", "4", "5", "6"]  # type: ignore[index]
    assert [loc for loc, _ in whole] == ["f:2", "f:4", "f:7", "f:10", "f:11"]
    assert whole_stats.malformed == 1 and whole_stats.issues[0].location == "f:5"
    if target <= 25:
        assert n > 2
        assert all(
            s.header == ("id", "text", "label")
            for s in plan_shards(src, "f", target_bytes=target)[1:]
        )


def test_csv_non_utf8_line_is_one_malformed_record(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_bytes(b"id,text\n1,fine\n2,caf\xe9\n3,also fine\n")
    src = _source(path)
    whole, stats = _whole(src)
    assert [r["id"] for _, r in whole] == ["1", "3"]  # type: ignore[index]
    assert [(i.location, i.reason) for i in stats.issues] == [("f:3", "not UTF-8")]
    got, sharded_stats, _ = _sharded(src, 1)
    assert got == whole
    _same(sharded_stats, stats)


def test_csv_missing_column_is_an_input_error_in_every_shard(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text("id,body\n" + "".join(f"{i},x{i}\n" for i in range(20)), encoding="utf-8")
    src = _source(path)
    shards = plan_shards(src, "f", target_bytes=20)
    assert len(shards) > 2
    for shard in shards:
        with pytest.raises(InputError, match=r"f:1: column\(s\) 'text' not in the header"):
            list(iter_shard(shard, stats=ReadStats(path="f")))


def test_parquet_shards_are_row_group_runs(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    path = tmp_path / "d.parquet"
    table = pa.table({"text": [f"record {i}" for i in range(50)], "id": list(range(50))})
    pq.write_table(table, path, row_group_size=7)
    src = _source(path)
    whole, whole_stats = _whole(src)
    got, stats, n = _sharded(src, 1)
    assert n == 8  # ceil(50 / 7) row groups, one per shard at this target
    assert got == whole
    _same(stats, whole_stats)
    assert whole[-1][0] == "f#49"


def test_small_file_is_one_whole_shard(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text('{"text": "x"}\n', encoding="utf-8")
    (shard,) = plan_shards(_source(path), "f", target_bytes=1 << 20)
    assert shard == Shard.of_file(_source(path), "f")  # start 0, no end: the whole file


def test_missing_file_is_an_input_error(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text("", encoding="utf-8")
    src = _source(path)
    path.unlink()
    with pytest.raises(InputError, match="f: file not found"):
        plan_shards(src, "f", target_bytes=10)


def test_shard_size_keeps_workers_busy_within_bounds() -> None:
    assert shard_bytes_for(10 * MIN_SHARD_BYTES, workers=2) == 10 * MIN_SHARD_BYTES // 8
    assert shard_bytes_for(1000, workers=8) == MIN_SHARD_BYTES
    assert shard_bytes_for(10**12, workers=2) == 32 * 1024 * 1024


def test_merge_stats_keeps_the_first_issues_in_order() -> None:
    parts = []
    for p in range(3):
        s = ReadStats(path="f", complete=True)
        for i in range(15):
            s.bad(f"f:{p}-{i}", "x")
        s.records = 2
        parts.append(s)
    merged = merge_stats(parts, "f")
    assert merged.records == 6 and merged.malformed == 45 and merged.complete
    assert [i.location for i in merged.issues] == [f"f:0-{i}" for i in range(15)] + [
        f"f:1-{i}" for i in range(5)
    ]
    parts[1].complete = False
    assert not merge_stats(parts, "f").complete


_line = st.one_of(
    st.builds(lambda t: json.dumps({"text": t}).encode(), st.text(max_size=30)),
    st.sampled_from([b"", b"  ", b"{", b"[1]", b'{"text": null}', b"\xfe\xff"]),
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    lines=st.lists(_line, max_size=25),
    eol=st.sampled_from([b"\n", b"\r\n"]),
    trailing=st.booleans(),
    target=st.integers(min_value=1, max_value=120),
)
def test_any_jsonl_cut_reads_like_the_whole_file(
    tmp_path: Path, lines: list[bytes], eol: bytes, trailing: bool, target: int
) -> None:
    path = tmp_path / "h.jsonl"
    data = eol.join(lines) + (eol if trailing and lines else b"")
    path.write_bytes(data)
    src = _source(path)
    whole, whole_stats = _whole(src)
    got, stats, _ = _sharded(src, target)
    assert got == whole
    _same(stats, whole_stats)
