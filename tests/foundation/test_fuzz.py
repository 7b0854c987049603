"""Issue 16.10: property-based fuzzing of everything a user or an artifact hands the tool.

Whatever the bytes, each loader either succeeds or raises its own located error (exit 2); no other
exception type escapes (the CLI would turn it into exit 3). The budget per property is
`FMFL_FUZZ_EXAMPLES` examples (default 60, so `make test` stays quick); raise it for a longer hunt:
`FMFL_FUZZ_EXAMPLES=5000 pytest tests/foundation/test_fuzz.py`. The reproducers found so far are
kept as explicit cases in `test_hostile_inputs.py`.
"""

from __future__ import annotations

import contextlib
import json
import os
import string
import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fmfl_audit.errors import ManifestError, ReportError, RulePackError
from fmfl_audit.inputs.records import ReadStats, iter_records
from fmfl_audit.manifest import load_manifest
from fmfl_audit.manifest.loader import load_waivers
from fmfl_audit.manifest.model import DataSource
from fmfl_audit.report.baseline import load_report
from fmfl_audit.rulepacks.loader import load_ruleset

FUZZ = settings(
    max_examples=int(os.environ.get("FMFL_FUZZ_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)

# Pieces a hostile YAML document is built from: structure, tags, anchors, odd scalars.
YAML_TOKENS = [
    "{",
    "}",
    "[",
    "]",
    ":",
    ",",
    "- ",
    "\n",
    "  ",
    "&a ",
    "*a",
    "!!str ",
    "!!int ",
    "!!timestamp ",
    "!!binary ",
    "!!python/object:os.system ",
    "<<: ",
    "? ",
    "| ",
    "> ",
    "'",
    '"',
    "#",
    "~",
    "version",
    "1",
    "deployment",
    "name",
    "clients",
    "id",
    "policy",
    "rules",
    "FMFL-P01",
    "params",
    "min_score",
    "waivers",
    "expires",
    "2027-01-01",
    "1e999",
    "-0",
    "nan",
    ".inf",
    "null",
    "\\ud800",
    "x" * 300,
    "9" * 5000,
    "\t",
    "\x00",
    "\ufeff",
    "é",
]
yaml_texts = st.one_of(
    st.lists(st.sampled_from(YAML_TOKENS), max_size=60).map("".join),
    st.text(max_size=400),
)

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=30,
)


def _valid_manifest() -> dict[str, Any]:
    return {
        "version": 1,
        "deployment": {"name": "fuzz"},
        "clients": [{"id": "a", "resources": {"tier": "abundant"}}],
        "federation": {"aggregator": "fedavg", "rounds": 3},
        "policy": {"fail_on": "high", "rules": {"FMFL-P01": {"params": {"min_score": 0.5}}}},
    }


def _mutate(doc: Any, path: list[Any], value: Any) -> Any:
    """`doc` with the node at the (possibly partial) `path` replaced by `value`."""
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(doc, dict) and doc:
        key = sorted(doc)[head % len(doc)]
        return {**doc, key: _mutate(doc[key], rest, value)}
    if isinstance(doc, list) and doc:
        i = head % len(doc)
        return [*doc[:i], _mutate(doc[i], rest, value), *doc[i + 1 :]]
    return value


def _write(text: str, name: str) -> Path:
    folder = Path(tempfile.mkdtemp(prefix="fmfl-fuzz-"))
    path = folder / name
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    return path


@FUZZ
@given(yaml_texts)
def test_manifest_text_never_crashes(text: str) -> None:
    path = _write(text, "manifest.yaml")
    with contextlib.suppress(ManifestError):
        load_manifest(path)


@FUZZ
@given(st.lists(st.integers(min_value=0, max_value=50), max_size=4), JSON)
def test_mutated_manifest_never_crashes(path: list[int], value: Any) -> None:
    doc = _mutate(_valid_manifest(), path, value)
    try:
        text = yaml.safe_dump(doc)
    except (yaml.YAMLError, ValueError):
        return
    file = _write(text, "manifest.yaml")
    try:
        deployment = load_manifest(file)
    except ManifestError:
        return
    from fmfl_audit.engine.runner import Auditor

    with contextlib.suppress(RulePackError):
        Auditor(deployment).plan()


@FUZZ
@given(yaml_texts)
def test_rule_pack_never_crashes(text: str) -> None:
    path = _write(text, "pack.yaml")
    with contextlib.suppress(RulePackError):
        load_ruleset(["default", str(path)])


@FUZZ
@given(st.lists(st.integers(min_value=0, max_value=20), max_size=3), JSON)
def test_mutated_rule_pack_never_crashes(path: list[int], value: Any) -> None:
    pack = {
        "pack": "fuzz",
        "overrides": [{"id": "FMFL-F06", "params": {"max_top1_share": 0.3}, "severity": "high"}],
        "rules": [
            {
                "id": "ACME-P01",
                "title": "t",
                "area": "privacy",
                "threat": "x",
                "severity": "low",
                "checker": "FMFL-P01",
                "params": {"entities": ["EMAIL_ADDRESS"]},
                "remediation": "r",
            }
        ],
    }
    try:
        text = yaml.safe_dump(_mutate(pack, path, value))
    except (yaml.YAMLError, ValueError):
        return
    file = _write(text, "pack.yaml")
    with contextlib.suppress(RulePackError):
        load_ruleset(["default", str(file)])


@FUZZ
@given(yaml_texts)
def test_waivers_file_never_crashes(text: str) -> None:
    with contextlib.suppress(ManifestError):
        load_waivers(_write(text, "waivers.yaml"))


@FUZZ
@given(st.one_of(st.text(max_size=300), JSON.map(json.dumps)))
def test_baseline_never_crashes(text: str) -> None:
    with contextlib.suppress(ReportError):
        load_report(_write(text, "old.json"))


def _golden() -> dict[str, Any]:
    golden = Path(__file__).resolve().parents[1] / "report" / "golden" / "sample.json"
    data: dict[str, Any] = json.loads(golden.read_text(encoding="utf-8"))
    return data


@FUZZ
@given(st.lists(st.integers(min_value=0, max_value=40), max_size=5), JSON)
def test_mutated_baseline_never_crashes(path: list[int], value: Any) -> None:
    text = json.dumps(_mutate(_golden(), path, value))
    with contextlib.suppress(ReportError):
        load_report(_write(text, "old.json"))


LINE_BYTES = st.one_of(
    st.binary(max_size=80),
    st.sampled_from(
        [
            b'{"text": "a story"}',
            b'{"text": 1}',
            b'{"text": "\\ud800"}',
            b'{"text": "x", "n": ' + b"9" * 5000 + b"}",
            b"[" * 3000,
            b"\xef\xbb\xbf" + b'{"text": "bom"}',
            b'"just a string"',
            b"text,label",
            b'"unclosed,quote',
            b"\x00\x00",
        ]
    ),
)


@FUZZ
@given(st.lists(LINE_BYTES, max_size=12), st.sampled_from(["jsonl", "csv"]))
def test_data_files_never_crash_and_count_every_record(lines: list[bytes], fmt: str) -> None:
    folder = Path(tempfile.mkdtemp(prefix="fmfl-fuzz-"))
    path = folder / f"data.{fmt}"
    path.write_bytes(b"\n".join(lines) + b"\n")
    source = DataSource.model_validate({"path": str(path)})
    stats = ReadStats(path=path.name)
    try:
        seen = sum(len(b) for b in iter_records(source, display=path.name, stats=stats))
    except Exception as exc:
        from fmfl_audit.errors import InputError

        # Only whole-file problems (a CSV header without the text column) may stop a read.
        assert isinstance(exc, InputError), repr(exc)
        assert fmt == "csv"
        return
    assert seen == stats.records and stats.complete
    if fmt == "jsonl":
        assert stats.records + stats.malformed <= sum(1 for ln in lines for _ in ln.split(b"\n"))


def test_the_fuzz_alphabet_is_printable() -> None:
    # A sanity check on the strategy itself: the YAML pieces cover the grammar's specials.
    assert set("{}[]:,&*!|>'\"#") <= set("".join(YAML_TOKENS)) | set(string.punctuation)
