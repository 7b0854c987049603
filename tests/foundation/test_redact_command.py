"""`fmfl-audit redact`: typed placeholders in a new folder, inputs byte-identical, re-scan clean.

One deployment with every kind of value (PII, a secret, a canary, a span leaked from another
client's prompts, malformed records, a CSV and a Parquet file) is redacted once per module; the
tests check the exact copies, what was kept, the manifest copy, the summary, a re-scan and the
inputs' hashes. Refusals (unsafe output folders, bad input) exit 2 before any detector is built.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from fmfl_audit.cli.main import app
from fmfl_audit.engine.runner import Auditor
from fmfl_audit.manifest import load_manifest
from fmfl_audit.models import Outcome
from fmfl_audit.remediation.redact import RedactTarget, redact_deployment

runner = CliRunner()

LEAKED = "the secret garden where the old oak tree whispers to the children at night"
SYNTH_A = [
    '{"id": 1, "text": "Write to jane.doe@example.com today.", "label": "pos"}\n',
    '{"id": 2, "text": "Nothing to see here, call me maybe.", "label": "neg"}\n',
    "\n",
    "not json at all\n",
    '{"id": 4, "label": "neg"}\n',
    '{"id": 5,   "text": "my key is AKIAIOSFODNN7EXAMPLE ok", "meta": {"n": 1.50}}\n',
    '{"id": 6, "text": "password = \\"hunter2hunter2\\" in the config"}\n',
]
SYNTH_B = [
    {"text": f"Once upon a time {LEAKED} was quiet."},
    {"text": "my student code is 493027 and that is all"},
    {"text": "the code 493027 again, but ref493027x is another token"},
    {"text": "A story about the garden and a tree."},
]
CSV_C = 'text,label\r\n"Mail bob@example.org, now",1\r\nplain row,0\r\nshort\r\n'
PARQUET_D = [
    {"text": "reach me at 10.1.2.3 please", "n": 1},
    {"text": None, "n": 2},
    {"text": "nothing here", "n": 3},
]
TEACHER = [
    {"client_id": "a", "label": 1, "prob": 0.9},
    {"client_id": "a", "label": 0, "prob": 0.2, "text": "from carol@example.net"},
]


def _write_parquet(path: Path, rows: list[dict[str, Any]]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist(rows), path, row_group_size=2)


def build(root: Path) -> Path:
    """The deployment (files + manifest) under `root`; returns the manifest path."""
    files = {
        "clients/a/synthetic.jsonl": "".join(SYNTH_A),
        "clients/a/prompts.jsonl": json.dumps({"prompt": f"write a story about {LEAKED}"}) + "\n",
        "clients/b/synthetic.jsonl": "".join(json.dumps(r) + "\n" for r in SYNTH_B),
        "clients/b/prompts.jsonl": json.dumps({"prompt": "a poem, email me: ann@example.com"})
        + "\n",
        "clients/c/synthetic.csv": CSV_C,
        "server/teacher.jsonl": "".join(json.dumps(r) + "\n" for r in TEACHER),
        "models/canaries.jsonl": json.dumps(
            {"id": "c1", "format": "my student code is {digits:6}", "secret": "493027"}
        )
        + "\n",
        "models/lm/config.json": "{}\n",
    }
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(text.encode("utf-8"))
    (root / "clients/d").mkdir(parents=True)
    _write_parquet(root / "clients/d/synthetic.parquet", PARQUET_D)
    manifest = {
        "version": 1,
        "deployment": {"name": "redact-test"},
        "foundation_model": {"name": "fm", "teacher_predictions": "server/teacher.jsonl"},
        "clients": [
            {
                "id": "a",
                "prompts": {"path": "clients/a/prompts.jsonl", "text_field": "prompt"},
                "synthetic_data": "clients/a/synthetic.jsonl",
            },
            {
                "id": "b",
                "prompts": {"path": "clients/b/prompts.jsonl", "text_field": "prompt"},
                "synthetic_data": "clients/b/synthetic.jsonl",
            },
            {"id": "c", "synthetic_data": "clients/c/synthetic.csv"},
            {"id": "d", "synthetic_data": "clients/d/synthetic.parquet"},
        ],
        "models": [
            {
                "name": "lm",
                "kind": "causal-lm",
                "checkpoint": "models/lm",
                "canaries": "models/canaries.jsonl",
            }
        ],
        "policy": {
            "waivers": [
                {"rule": "FMFL-F06", "subject": "*", "reason": "pilot", "expires": "2099-01-01"}
            ],
            # The files hold malformed records on purpose (redact copies them unchanged); a third
            # of a small file is over the default threshold, which would skip the rules.
            "max_malformed_share": 0.5,
        },
    }
    path = root / "manifest.yaml"
    path.write_text(yaml.safe_dump(manifest, sort_keys=False), encoding="utf-8")
    return path


def hashes(root: Path) -> dict[str, str]:
    """sha256 of every file under `root` (the inputs), by relative path."""
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def done(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("deploy")
    manifest = build(root)
    before = hashes(root)
    result = runner.invoke(app, ["redact", str(manifest), "--what", "all"])
    out = root / "redacted"
    after = {k: v for k, v in hashes(root).items() if not k.startswith("redacted/")}
    return {"root": root, "out": out, "result": result, "before": before, "after": after}


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines(keepends=True)


def test_exit_code_and_terminal_summary(done: dict[str, Any]) -> None:
    res = done["result"]
    assert res.exit_code == 0, res.output
    assert "Redacted copies in" in res.output
    assert "clients/a/synthetic.jsonl:4: invalid JSON" in res.output
    assert "re-scan the copy with: fmfl-audit scan" in res.output
    for raw in ("jane.doe", "AKIAIOSFODNN7EXAMPLE", "493027", "hunter2", "oak tree"):
        assert raw not in res.output


def test_inputs_are_byte_identical(done: dict[str, Any]) -> None:
    assert done["after"] == done["before"]
    assert len(done["before"]) == 10  # nine data files and the manifest


def test_jsonl_exact_copy(done: dict[str, Any]) -> None:
    assert _lines(done["out"] / "clients/a/synthetic.jsonl") == [
        '{"id": 1, "text": "Write to <EMAIL_ADDRESS> today.", "label": "pos"}\n',
        SYNTH_A[1],  # nothing found: the original bytes
        "\n",
        "not json at all\n",  # malformed: copied unchanged and listed as not checked
        SYNTH_A[4],
        '{"id": 5, "text": "my key is <AWS_ACCESS_KEY> ok", "meta": {"n": 1.5}}\n',
        '{"id": 6, "text": "password = \\"<SECRET_KEYWORD>\\" in the config"}\n',
    ]


def test_canaries_and_leaked_spans(done: dict[str, Any]) -> None:
    rows = [json.loads(line) for line in _lines(done["out"] / "clients/b/synthetic.jsonl")]
    assert [r["text"] for r in rows] == [
        "Once upon a time <LEAKED_SPAN> was quiet.",
        "<CANARY> and that is all",
        # The secret as a whole token goes; a longer token that contains it stays.
        "the code <CANARY> again, but ref493027x is another token",
        "A story about the garden and a tree.",
    ]


def test_csv_exact_copy(done: dict[str, Any]) -> None:
    data = (done["out"] / "clients/c/synthetic.csv").read_bytes()
    assert data == b'text,label\r\n"Mail <EMAIL_ADDRESS>, now",1\r\nplain row,0\r\nshort\r\n'


def test_parquet_copy_keeps_schema_and_row_groups(done: dict[str, Any]) -> None:
    import pyarrow.parquet as pq

    src = pq.ParquetFile(done["root"] / "clients/d/synthetic.parquet")
    dst = pq.ParquetFile(done["out"] / "clients/d/synthetic.parquet")
    assert dst.schema_arrow == src.schema_arrow
    assert dst.metadata.num_row_groups == src.metadata.num_row_groups == 2
    assert dst.read().to_pylist() == [
        {"text": "reach me at <IP_ADDRESS> please", "n": 1},
        {"text": None, "n": 2},
        {"text": "nothing here", "n": 3},
    ]


def test_prompts_and_teacher_outputs_with_what_all(done: dict[str, Any]) -> None:
    b = json.loads((done["out"] / "clients/b/prompts.jsonl").read_text(encoding="utf-8"))
    assert b == {"prompt": "a poem, email me: <EMAIL_ADDRESS>"}
    # A client's prompts are a leak *source*, never cut as leaked spans themselves.
    a = json.loads((done["out"] / "clients/a/prompts.jsonl").read_text(encoding="utf-8"))
    assert a == {"prompt": f"write a story about {LEAKED}"}
    teacher = _lines(done["out"] / "server/teacher.jsonl")
    assert teacher[0] == json.dumps(TEACHER[0]) + "\n"
    assert json.loads(teacher[1])["text"] == "from <EMAIL_ADDRESS>"


def test_summary_counts_and_no_raw_values(done: dict[str, Any]) -> None:
    text = (done["out"] / "redaction-summary.json").read_text(encoding="utf-8")
    for raw in ("jane.doe", "AKIAIOSFODNN7EXAMPLE", "493027", "hunter2", "oak tree", "bob@"):
        assert raw not in text, raw
    summary = json.loads(text)
    assert summary["target"] == "all"
    files = {f["source"]: f for f in summary["files"]}
    assert list(files) == [
        "clients/a/synthetic.jsonl",
        "clients/a/prompts.jsonl",
        "clients/b/synthetic.jsonl",
        "clients/b/prompts.jsonl",
        "clients/c/synthetic.csv",
        "clients/d/synthetic.parquet",
        "server/teacher.jsonl",
    ]
    a = files["clients/a/synthetic.jsonl"]
    assert (a["records"], a["records_redacted"], a["not_checked"]) == (6, 3, 2)
    assert a["replaced"] == {"AWS_ACCESS_KEY": 1, "EMAIL_ADDRESS": 1, "SECRET_KEYWORD": 1}
    assert [i["location"] for i in a["not_checked_issues"]] == [
        "clients/a/synthetic.jsonl:4",
        "clients/a/synthetic.jsonl:5",
    ]
    assert files["clients/b/synthetic.jsonl"]["replaced"] == {"CANARY": 2, "LEAKED_SPAN": 1}
    assert files["clients/c/synthetic.csv"]["not_checked"] == 1
    assert files["clients/d/synthetic.parquet"]["not_checked"] == 1  # the null text
    teacher = files["server/teacher.jsonl"]
    assert (teacher["records_without_text"], teacher["not_checked"]) == (1, 0)
    assert summary["replaced"]["EMAIL_ADDRESS"] == 4
    assert any("NER" in n for n in summary["notes"]) or "NER +" in summary["engine"]


def test_manifest_copy_points_at_copies_and_originals(done: dict[str, Any]) -> None:
    copy = load_manifest(done["out"] / "manifest.yaml")
    root, out = done["root"].resolve(), done["out"].resolve()
    a = copy.manifest.client("a")
    assert a.synthetic_data is not None and a.prompts is not None
    assert a.synthetic_data.path.resolve() == out / "clients/a/synthetic.jsonl"
    assert a.prompts.text_field == "prompt"
    lm = copy.manifest.models[0]
    assert lm.checkpoint is not None and lm.checkpoint.path.resolve() == root / "models/lm"
    assert copy.manifest.policy.waivers[0].expires.isoformat() == "2099-01-01"
    raw = yaml.safe_load((done["out"] / "manifest.yaml").read_text(encoding="utf-8"))
    assert raw["models"][0]["canaries"] == "../models/canaries.jsonl"


def test_rescan_of_the_copy_passes_privacy_rules(done: dict[str, Any]) -> None:
    original = load_manifest(done["root"] / "manifest.yaml")
    rules = ("FMFL-P01", "FMFL-P02", "FMFL-P06")
    before = Auditor(original, only=rules).run()
    assert {f.rule_id for f in before.findings} == set(rules)
    after = Auditor(load_manifest(done["out"] / "manifest.yaml"), only=rules).run()
    assert [(r.id, r.outcome) for r in after.rules] == [(r, Outcome.PASSED) for r in rules]
    assert after.findings == ()


# Refusals: each exits 2 with a message and writes nothing.


def _redact(*args: str) -> Any:
    return runner.invoke(app, ["redact", *args])


def test_refuses_an_output_folder_that_holds_inputs(tmp_path: Path) -> None:
    manifest = build(tmp_path)
    before = hashes(tmp_path)
    res = _redact(str(manifest), "--out", str(tmp_path))
    assert res.exit_code == 2
    assert "holds the input" in res.output
    res = _redact(str(manifest), "--out", str(tmp_path / "models/lm/red"))
    assert res.exit_code == 2 and "lies inside the input" in res.output
    res = _redact(str(manifest), "--out", str(tmp_path / "clients/a/synthetic.jsonl"))
    assert res.exit_code == 2 and "not a folder" in res.output
    assert hashes(tmp_path) == before


def test_refuses_a_non_empty_folder_without_force(tmp_path: Path) -> None:
    manifest = build(tmp_path / "d")
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine\n", encoding="utf-8")
    res = _redact(str(manifest), "--out", str(out))
    assert res.exit_code == 2
    assert "not empty; give --force" in res.output
    assert [p.name for p in out.iterdir()] == ["keep.txt"]


def test_bad_input_exits_2_with_location(tmp_path: Path) -> None:
    res = _redact(str(tmp_path / "missing.yaml"))
    assert res.exit_code == 2 and "file not found" in res.output
    manifest = build(tmp_path)
    (tmp_path / "clients/c/synthetic.csv").write_text("body,label\nx,1\n", encoding="utf-8")
    res = _redact(str(manifest), "--out", str(tmp_path.parent / "out-bad"))
    assert res.exit_code == 2
    assert "clients/c/synthetic.csv:1: column 'text' not in the header" in res.output
    assert "Traceback" not in res.output
    # The file being written when the error struck is not left behind half-written.
    assert not list((tmp_path.parent / "out-bad").rglob("*.partial"))


def test_nothing_to_redact(tmp_path: Path) -> None:
    (tmp_path / "manifest.yaml").write_text(
        "version: 1\ndeployment: {name: x}\nclients: [{id: a}]\n", encoding="utf-8"
    )
    res = _redact(str(tmp_path / "manifest.yaml"), "--what", "prompts")
    assert res.exit_code == 2 and "no prompts data to redact" in res.output


def test_pack_recognizers_and_force(tmp_path: Path) -> None:
    root = tmp_path / "d"
    (root / "c").mkdir(parents=True)
    (root / "c/s.jsonl").write_text(
        '{"text": "pupil STU-123456 and ID QQ-7788-XY"}\n', encoding="utf-8"
    )
    (root / "manifest.yaml").write_text(
        "version: 1\ndeployment: {name: x}\nclients: [{id: a, synthetic_data: c/s.jsonl}]\n",
        encoding="utf-8",
    )
    pack = tmp_path / "acme.yaml"
    pack.write_text(
        yaml.safe_dump(
            {
                "pack": "acme",
                "rules": [
                    {
                        "id": "ACME-P01",
                        "title": "Ensure no internal ids",
                        "area": "privacy",
                        "threat": "top-down disclosure",
                        "severity": "high",
                        "checker": "FMFL-P01",
                        "params": {
                            "entities": ["INTERNAL_ID"],
                            "recognizers": [
                                {
                                    "name": "internal",
                                    "entity": "INTERNAL_ID",
                                    "patterns": [
                                        {"name": "qq", "regex": r"QQ-\d{4}-[A-Z]{2}", "score": 0.9}
                                    ],
                                }
                            ],
                        },
                        "remediation": "Remove internal ids.",
                    }
                ],
            }
        ),
        encoding="utf-8",
    )
    out = root / "redacted"
    out.mkdir()
    (out / "old.txt").write_text("x", encoding="utf-8")
    deployment = load_manifest(root / "manifest.yaml")
    ruleset = Auditor(deployment, extra_packs=(str(pack),)).ruleset()
    summary = redact_deployment(
        deployment, target=RedactTarget.SYNTHETIC, force=True, ruleset=ruleset
    )
    assert (out / "c/s.jsonl").read_text(encoding="utf-8") == (
        '{"text": "pupil <STUDENT_ID> and ID <INTERNAL_ID>"}\n'
    )
    assert summary.replaced == {"INTERNAL_ID": 1, "STUDENT_ID": 1}
    assert "PII: ACME-P01, FMFL-P01" in summary.detectors


def test_unquoted_secret_assignments_are_redacted_and_the_rescan_is_clean(tmp_path: Path) -> None:
    key = "Zx8kQ2vN9pL4mR7tY1wE5uI3oP6aS0dF8gH2jK4l"
    root = tmp_path / "d"
    (root / "c").mkdir(parents=True)
    rows = [
        {"text": "log in with password=Hunter2SuperSecret! today"},
        {"text": f"export AWS_SECRET_ACCESS_KEY={key}"},
        {"text": "send the password reset link; token: 3"},
    ]
    (root / "c/s.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    (root / "manifest.yaml").write_text(
        "version: 1\ndeployment: {name: x}\nclients: [{id: a, synthetic_data: c/s.jsonl}]\n",
        encoding="utf-8",
    )
    res = _redact(str(root / "manifest.yaml"), "--out", str(tmp_path / "out"))
    assert res.exit_code == 0, res.output
    assert _lines(tmp_path / "out/c/s.jsonl") == [
        '{"text": "log in with password=<SECRET_ASSIGNMENT> today"}\n',
        '{"text": "export AWS_SECRET_ACCESS_KEY=<SECRET_ASSIGNMENT>"}\n',
        json.dumps(rows[2]) + "\n",  # nothing found: the original bytes
    ]
    before = Auditor(load_manifest(root / "manifest.yaml"), only=("FMFL-P02",)).run()
    assert [f.message for f in before.findings] == [
        "2 Secret Assignment secret(s) in the synthetic data of client a (2 of 3 records)"
    ]
    after = Auditor(load_manifest(tmp_path / "out/manifest.yaml"), only=("FMFL-P02",)).run()
    assert after.rules[0].outcome is Outcome.PASSED and after.findings == ()


def test_a_header_that_is_not_a_header_is_not_echoed(tmp_path: Path) -> None:
    # A file that is not the table it was said to be (`/etc/shadow`): its first line must not
    # reach the message, as for the scan's readers (`describe_columns`).
    manifest = build(tmp_path)
    shadow = "root:$6$saltsalt$hashhashhash:19000:0:99999:7:::\n"
    (tmp_path / "clients/c/synthetic.csv").write_text(shadow, encoding="utf-8")
    res = _redact(str(manifest), "--out", str(tmp_path.parent / "out-shadow"))
    assert res.exit_code == 2
    assert (
        "clients/c/synthetic.csv:1: column 'text' not in the header (1 column name(s) not "
        "shown: not plain identifiers)" in res.output
    )
    assert "hashhash" not in res.output and "$6$" not in res.output
