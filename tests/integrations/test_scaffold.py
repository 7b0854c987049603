"""The commented-manifest writer, the participation-log writer and the client-side FM log."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from fmfl_audit.cli.main import app
from fmfl_audit.errors import ManifestError
from fmfl_audit.integrations.fm_log import FMInteractionLog
from fmfl_audit.integrations.scaffold import (
    ClientDraft,
    Comment,
    FMDraft,
    Key,
    ManifestDraft,
    ManifestExistsError,
    ParticipationRow,
    flow,
    render,
    safe_client_id,
    write_manifest,
    write_participation_log,
)
from fmfl_audit.manifest import load_manifest


def test_render_emits_yaml_that_parses_back() -> None:
    nodes = [
        Comment("top\nsecond line"),
        Key("a", "yes", note="quoted, or YAML reads a bool"),
        Key("b", children=(Key("c", [1, "x: y"]), Comment("k: v  # hint"))),
        Key("items", items=((Key("id", "one"), Comment("note"), Key("n", 1.5)), (Key("id", "2"),))),
    ]
    text = "\n".join(render(nodes)) + "\n"
    assert yaml.safe_load(text) == {
        "a": "yes",
        "b": {"c": [1, "x: y"]},
        "items": [{"id": "one", "n": 1.5}, {"id": "2"}],
    }
    assert "  - id: one\n    # note\n    n: 1.5" in text
    assert flow("2024-01-01") == "'2024-01-01'" and flow(None) == "null"


def test_draft_validates_and_says_what_is_missing(tmp_path: Path) -> None:
    (tmp_path / "p.jsonl").write_text('{"text": "hi"}\n')
    draft = ManifestDraft(
        name="d",
        source="a test",
        fm=FMDraft(name="fm-x", roles=("distillation",)),
        aggregator="krum",
        rounds=3,
        clients=[
            ClientDraft(id="a", tier="abundant", fm_access="local", files={"prompts": "p.jsonl"}),
            ClientDraft(id="b"),
        ],
    )
    path = write_manifest(draft, tmp_path / "manifest.yaml")
    dep = load_manifest(path).manifest
    assert dep.foundation_model is not None and dep.foundation_model.roles == ("distillation",)
    assert dep.federation is not None and dep.federation.aggregator == "krum"
    assert dep.client("a").prompts is not None and dep.client("b").resources.tier == "constrained"
    assert draft.unfilled() == [
        "foundation_model.checkpoint: the FM checkpoint folder and its sha256",
        "foundation_model.system_prompt: the deployed system prompt (if any)",
        "evaluation: labelled evaluation data with sensitive features",
        "clients[].resources: tier and FM access of 1 client(s)",
    ]
    text = path.read_text()
    marked = [ln.strip("# ").split(":")[0] for ln in text.splitlines() if "FILL IN" in ln]
    assert marked == [
        "task",
        "checkpoint",
        "reference_checkpoint",
        "system_prompt",
        "provider",
        "differential_privacy",
        "resources",
        "evaluation",
    ]
    with pytest.raises(ManifestExistsError, match="--force"):
        write_manifest(draft, path)
    # An unknown FM is left out entirely (commented), rather than invented.
    draft.fm = FMDraft()
    write_manifest(draft, path, force=True)
    assert load_manifest(path).manifest.foundation_model is None
    assert "# foundation_model:" in path.read_text()


def test_participation_log_weight_column_all_or_nothing(tmp_path: Path) -> None:
    full = [ParticipationRow(1, "a", 10, 0.25), ParticipationRow(1, "b", 30, 0.75, {"x": "y"})]
    assert write_participation_log(tmp_path / "full.csv", full) == (2, True)
    assert (tmp_path / "full.csv").read_text().splitlines() == [
        "round,client_id,num_samples,weight,x",
        "1,a,10,0.25,",
        "1,b,30,0.75,y",
    ]
    partial = [ParticipationRow(1, "a", 10, 0.5), ParticipationRow(1, "b", 30, None)]
    assert write_participation_log(tmp_path / "p.csv", partial) == (2, False)
    with (tmp_path / "p.csv").open() as fh:
        assert list(csv.DictReader(fh)) == [
            {"round": "1", "client_id": "a", "num_samples": "10"},
            {"round": "1", "client_id": "b", "num_samples": "30"},
        ]


@pytest.mark.parametrize(
    ("raw", "safe"),
    [("client-3", "client-3"), ("site 1/a", "site-1-a"), ("_x", "c_x"), ("école", "c-cole")],
)
def test_safe_client_id(raw: str, safe: str) -> None:
    assert safe_client_id(raw) == safe


def test_fm_log_writes_our_input_shapes(tmp_path: Path) -> None:
    log = FMInteractionLog.for_client(tmp_path, "client-7")
    pid = log.prompt("Write about the sea.", round=1)
    log.output("The sea was calm.", label=1, prompt_id=pid)
    log.teacher_prediction(label=1, pred=1, prob=0.9)
    # A new process (Flower starts a ClientApp per message) continues the numbering.
    again = FMInteractionLog.for_client(tmp_path, "client-7")
    assert again.prompt("Write about rain.") == "client-7-p2"
    folder = tmp_path / "clients" / "client-7"
    prompts = [json.loads(x) for x in (folder / "prompts.jsonl").read_text().splitlines()]
    assert prompts == [
        {"id": "client-7-p1", "text": "Write about the sea.", "round": 1},
        {"id": "client-7-p2", "text": "Write about rain."},
    ]
    assert json.loads((folder / "synthetic.jsonl").read_text()) == {
        "id": "client-7-s1",
        "text": "The sea was calm.",
        "label": 1,
        "prompt_id": "client-7-p1",
    }
    assert json.loads((folder / "teacher_predictions.jsonl").read_text())["client_id"] == "client-7"
    with pytest.raises(ValueError, match="reserved"):
        log.prompt("x", client_id="someone-else")
    with pytest.raises(ValueError, match="prob"):
        log.teacher_prediction(label=0, pred=0, prob=1.5)


def test_teacher_log_feeds_fmfl_r10(tmp_path: Path) -> None:
    """Teacher predictions logged on a client are read by R10 with the accuracy they imply."""
    log = FMInteractionLog.for_client(tmp_path, "c1")
    for i in range(20):
        log.teacher_prediction(label=i % 2, pred=0, prob=0.95)  # right on the 10 zeros only
    draft = ManifestDraft(
        name="t",
        source="a test",
        fm=FMDraft(
            name="teacher",
            roles=("distillation",),
            teacher_predictions=("clients/c1/teacher_predictions.jsonl"),
        ),
        clients=[ClientDraft(id="c1")],
    )
    manifest = write_manifest(draft, tmp_path / "manifest.yaml")
    out = tmp_path / "r.json"
    res = CliRunner().invoke(
        app,
        ["scan", str(manifest), "--only", "FMFL-R10", "-f", "json", "-o", str(out), "--exit-zero"],
    )
    assert res.exit_code == 0, res.output
    rule = next(r for r in json.loads(out.read_text())["rules"] if r["id"] == "FMFL-R10")
    assert rule["metrics"]["client:c1"]["accuracy"] == 0.5


@pytest.mark.parametrize("files", [[], ["data/x.jsonl"]])
def test_init_without_clients_writes_a_placeholder_that_validates(
    tmp_path: Path, files: list[str]
) -> None:
    folder = tmp_path / "i2"
    folder.mkdir()
    for name in files:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text('{"text": "hello"}\n')
    res = CliRunner().invoke(app, ["init", str(folder)])
    assert res.exit_code == 0, res.output
    manifest = load_manifest(folder / "manifest.yaml").manifest
    assert [c.id for c in manifest.clients] == ["client-1"]
    assert (
        "clients: no client found; replace the placeholder 'client-1' with your clients and "
        "their data files"
    ) in res.stdout
    text = (folder / "manifest.yaml").read_text()
    assert "  - id: client-1  # FILL IN: the client's id\n" in text
    assert "    # synthetic_data: clients/client-1/synthetic.jsonl  # FILL IN\n" in text
    assert CliRunner().invoke(app, ["validate", str(folder / "manifest.yaml")]).exit_code == 0


def test_a_draft_that_does_not_validate_leaves_no_file(tmp_path: Path) -> None:
    draft = ManifestDraft(
        name="d", source="a test", clients=[ClientDraft(id="a", files={"prompts": "gone.jsonl"})]
    )
    target = tmp_path / "manifest.yaml"
    with pytest.raises(ManifestError) as err:
        write_manifest(draft, target)
    assert str(err.value).startswith(f"{target}:"), str(err.value)
    assert "gone.jsonl" in str(err.value)
    assert list(tmp_path.iterdir()) == []
    # An existing manifest survives a failed --force rewrite untouched.
    target.write_text("keep me\n")
    with pytest.raises(ManifestError):
        write_manifest(draft, target, force=True)
    assert target.read_text() == "keep me\n"
    assert [p.name for p in tmp_path.iterdir()] == ["manifest.yaml"]
