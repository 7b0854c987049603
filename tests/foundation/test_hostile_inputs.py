"""Issue 16.8 and 16.9: hostile manifests, baselines and data files give a clear error (exit 2) or
a counted malformed record, never a crash (exit 3), a hang or a rule error.

Each reproducer from the issue is rebuilt here, so this file is the regression corpus.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from tests.conftest import minimal_manifest, write_manifest
from typer.testing import CliRunner

from fmfl_audit.cli.main import app
from fmfl_audit.engine.runner import Auditor
from fmfl_audit.manifest import load_manifest
from fmfl_audit.models import Outcome
from fmfl_audit.report.formats import OutputFormat, renderer_for

runner = CliRunner()
BASE = "version: 1\ndeployment: {name: x}\nclients: [{id: a}]\n"
STORY = "Once upon a time a small dog found a red ball in the park and played all day."
STORIES = [
    STORY,
    "The old fisherman mended his nets while gulls circled above the harbour.",
    "Mia planted tomatoes in spring and by August the garden smelled of leaves.",
    "A train rattled through the valley, carrying coal and a sleepy conductor.",
    "Grandpa told us how the river froze solid in the winter of his childhood.",
    "The library opened late on Thursdays, so the twins read until nine.",
    "Snow fell on the village and every chimney puffed a thin grey line.",
    "Leo built a kite from newspaper and string and flew it over the dunes.",
    "The baker's cat slept on warm flour sacks behind the counter each morning.",
]
DATA_RULES = ("FMFL-R02", "FMFL-R09", "FMFL-P01", "FMFL-P02", "FMFL-F01", "FMFL-F02")


def _cli(*args: str) -> Any:
    return runner.invoke(app, [*args])


def _laughs() -> str:
    text = "zz: &a [" + ",".join(["x"] * 10) + "]\n"
    prev = "a"
    for i in range(1, 12):
        text += f"l{i}: &l{i} [" + ",".join([f"*{prev}"] * 10) + "]\n"
        prev = f"l{i}"
    return text


MANIFESTS = {
    "deep-nesting": (BASE + "policy: " + "[" * 5000 + "]" * 5000 + "\n", "nested too deeply"),
    "unknown-user": (
        BASE.replace("[{id: a}]", "[{id: a, synthetic_data: '~nosuchuser9/x.jsonl'}]"),
        "cannot expand the home folder",
    ),
    "long-path": (
        BASE.replace("[{id: a}]", "[{id: a, synthetic_data: '" + "a" * 5000 + ".jsonl'}]"),
        "File name too long",
    ),
    "bad-timestamp": (
        BASE + "policy: {waivers: [{rule: FMFL-P01, subject: '*', reason: abc, "
        "expires: !!timestamp 'garbage'}]}\n",
        "not a valid !!timestamp value",
    ),
    "billion-laughs": (BASE + _laughs(), "alias expansion"),
    "python-tag": (BASE + "x: !!python/object/apply:os.system ['true']\n", "unsupported"),
    # Found by tests/foundation/test_fuzz.py: PyYAML's constructors raise IndexError/ValueError.
    # Path params are resolved before the scan: an unknown ~user or an over-long name.
    "param-unknown-user": (
        BASE
        + "policy: {rules: {FMFL-R01: {params: {signature_files: ['~nosuchuser123/s.yml']}}}}\n",
        "params.signature_files: ~nosuchuser123/s.yml: not a usable path",
    ),
    "param-long-path": (
        BASE + "policy: {rules: {FMFL-R01: {params: {signature_files: ['" + "a" * 5000 + "']}}}}\n",
        "not a usable path",
    ),
    "empty-int-tag": ("!!int \n", "not a valid !!int value"),
    "int-tag-key": (BASE + "? !!int '<<'\n: 1\n", "not a valid !!int key"),
}


@pytest.mark.parametrize("name", list(MANIFESTS))
def test_hostile_manifests_exit_2_with_a_message(name: str, tmp_path: Path) -> None:
    text, expected = MANIFESTS[name]
    path = tmp_path / "m.yaml"
    path.write_text(text, encoding="utf-8")
    for command in ("validate", "scan"):
        res = (
            _cli(command, str(path), "--no-progress")
            if command == "scan"
            else _cli(command, str(path))
        )
        assert res.exit_code == 2, (name, command, res.output)
        assert expected in res.stderr, res.stderr
        assert "Traceback" not in res.output and "internal error" not in res.output


def test_a_bad_rule_param_in_the_manifest_points_at_its_line(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(
        BASE + "policy:\n  rules:\n    FMFL-P01:\n      params:\n        min_score: 7\n"
    )
    res = _cli("validate", str(path))
    assert res.exit_code == 2
    assert (
        f"{path}:8:9: rule FMFL-P01: params.min_score: Input should be less than or equal to 1"
        in (res.stderr)
    )


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (
            '{"schema_version": "1.1", "x": ' + "[" * 100_000 + "]" * 100_000 + "}",
            "nested too deeply",
        ),
        ('{"schema_version": "1.1", "x": ' + "9" * 5000 + "}", "not a readable JSON report"),
        ('{"schema_version": ' + "[" * 50 + "]" * 50 + "}", "schema version unrecognised"),
    ],
    ids=["deep", "huge-int", "odd-version"],
)
def test_hostile_baselines_exit_2(content: str, expected: str, tmp_path: Path) -> None:
    path = tmp_path / "old.json"
    path.write_text(content)
    res = _cli("diff", str(path), str(path))
    assert res.exit_code == 2 and expected in res.stderr, res.output


def _scan(tmp_path: Path, synthetic: Any) -> Any:
    manifest = minimal_manifest(clients=[{"id": "school-a", "synthetic_data": synthetic}])
    return Auditor(load_manifest(write_manifest(tmp_path, manifest)), only=DATA_RULES).run()


def _assert_no_rule_broke(report: Any) -> None:
    for r in report.rules:
        assert r.outcome is not Outcome.ERRORED, (r.id, r.error)
    for fmt in OutputFormat:  # every format renders and encodes
        renderer_for(fmt, color=False).render(report).encode("utf-8")


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ('{"text": "a", "n": ' + "1" * 5000 + "}", "invalid JSON: a number too long to read"),
        (
            '{"text": "bad \\ud800 text"}',
            "invalid JSON: a lone surrogate escape (not Unicode text)",
        ),
        ('{"text": "' + "[" * 0 + '", "x": ' + "[" * 100_000 + "]" * 100_000 + "}", "invalid JSON"),
    ],
    ids=["huge-int", "lone-surrogate", "deep"],
)
def test_one_hostile_record_is_counted_not_a_rule_error(
    line: str, reason: str, tmp_path: Path
) -> None:
    good = [json.dumps({"text": t}) for t in STORIES]
    (tmp_path / "syn.jsonl").write_text("\n".join([*good, line]) + "\n", encoding="utf-8")
    report = _scan(tmp_path, "syn.jsonl")
    _assert_no_rule_broke(report)
    (stats,) = report.inputs
    assert (stats.records, stats.malformed) == (9, 1)
    assert stats.issues[0].location == "syn.jsonl:10"
    assert stats.issues[0].reason.startswith(reason)
    assert all(r.outcome is Outcome.PASSED for r in report.rules if r.id != "FMFL-F01")


def test_a_utf8_bom_on_jsonl_is_accepted(tmp_path: Path) -> None:
    body = "\n".join(json.dumps({"text": STORY}) for _ in range(5)) + "\n"
    (tmp_path / "syn.jsonl").write_bytes(b"\xef\xbb\xbf" + body.encode())
    report = _scan(tmp_path, "syn.jsonl")
    (stats,) = report.inputs
    assert (stats.records, stats.malformed) == (5, 0)


def test_a_non_utf8_file_name_is_read_and_shown(tmp_path: Path) -> None:
    name = b"syn\xff.jsonl"
    with open(os.path.join(os.fsencode(tmp_path), name), "w", encoding="utf-8") as fh:
        fh.write(json.dumps({"text": STORY}) + "\n")
    # YAML cannot hold the byte; its surrogate escape names the same file (PEP 383).
    (tmp_path / "manifest.yaml").write_text(
        BASE.replace("[{id: a}]", '[{id: a, synthetic_data: "syn\\udcff.jsonl"}]')
    )
    report = Auditor(load_manifest(tmp_path / "manifest.yaml"), only=DATA_RULES).run()
    _assert_no_rule_broke(report)
    assert [s.path for s in report.inputs] == ["syn\\udcff.jsonl"]


def test_a_corrupt_parquet_page_loses_its_row_group_only(tmp_path: Path) -> None:
    table = pa.table({"text": [f"{STORY} number {i}" for i in range(40)]})
    path = tmp_path / "syn.parquet"
    pq.write_table(table, path, row_group_size=20, compression="NONE", use_dictionary=False)
    meta = pq.ParquetFile(path).metadata
    col = meta.row_group(0).column(0)
    start = col.data_page_offset
    raw = bytearray(path.read_bytes())
    # Scribble over the first page's header and values: the page cannot be decoded.
    raw[start : start + 64] = b"\xff" * 64
    path.write_bytes(bytes(raw))
    report = _scan(tmp_path, "syn.parquet")
    _assert_no_rule_broke(report)
    (stats,) = report.inputs
    assert (stats.records, stats.malformed) == (20, 20)
    assert stats.issues[0].location == "syn.parquet#0"
    assert stats.issues[0].reason.startswith("unreadable Parquet row group 0")
    # Half the file could not be read: no rule reading it passed, and each says why.
    for r in report.rules:
        assert r.outcome in (Outcome.SKIPPED, Outcome.FAILED) and r.unreadable_inputs, r.id
    assert not report.gate.passed


def test_a_bare_carriage_return_in_csv_is_one_malformed_record(tmp_path: Path) -> None:
    # Found by the fuzzer: csv raised "new-line character seen in unquoted field" and the rest
    # of the file was silently not read.
    rows = [f"{t}".replace(",", " ") for t in STORIES]
    body = "text\n" + "\n".join([rows[0], "bad\r\x00field", *rows[1:]]) + "\n"
    (tmp_path / "syn.csv").write_bytes(body.encode())
    report = _scan(tmp_path, "syn.csv")
    _assert_no_rule_broke(report)
    (stats,) = report.inputs
    assert (stats.records, stats.malformed) == (9, 1)
    assert stats.issues[0].reason.startswith("unreadable CSV")
