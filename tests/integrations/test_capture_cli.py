"""`fmfl-audit init` on a deployment folder and `fmfl-audit import` on run folders written by the
real frameworks (committed under tests/integrations/data/, see PROVENANCE.md there)."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from safetensors.numpy import save_file
from tests.conftest import write_csv, write_jsonl
from typer.testing import CliRunner

from fmfl_audit.cli.main import app
from fmfl_audit.manifest import load_manifest

DATA = Path(__file__).parent / "data"
NVFLARE = DATA / "nvflare" / "workspace"
OPENFEDLLM = DATA / "openfedllm" / "output"
runner = CliRunner()


def hf_folder(path: Path, arch: str) -> None:
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps({"architectures": [arch]}))
    save_file({"w": np.zeros(2, dtype=np.float32)}, str(path / "model.safetensors"))


def update(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({"w": np.ones(2, dtype=np.float32)}, str(path))


def deployment(root: Path) -> Path:
    hf_folder(root / "fm", "LlamaForCausalLM")
    (root / "fm" / "system_prompt.txt").write_text("You are a helpful tutor.\n")
    hf_folder(root / "fm-reference", "LlamaForCausalLM")
    hf_folder(root / "models" / "global-clf", "BertForSequenceClassification")
    a, b = root / "clients" / "school-a", root / "clients" / "school-b"
    write_jsonl(a / "prompts.jsonl", [{"text": "p"}])
    write_jsonl(a / "synthetic.jsonl", [{"text": "s", "label": 1}])
    write_csv(a / "holdout.csv", [{"text": "h", "label": 0}])
    write_jsonl(a / "private.jsonl", [{"text": "x"}])
    update(a / "update.safetensors")
    (a / "fingerprint.json").write_text("{}")
    write_jsonl(b / "prompts.jsonl", [{"prompt": "p"}])
    write_jsonl(b / "generated.jsonl", [{"text": "s"}])
    update(root / "updates" / "round-0001" / "school-b.safetensors")
    update(root / "updates" / "round-0003" / "school-b.safetensors")
    write_csv(
        root / "federation" / "participation.csv",
        [
            {"round": 1, "client_id": "school-a", "num_samples": 5},
            {"round": 1, "client_id": "school-c", "num_samples": 5},
        ],
    )
    write_jsonl(root / "eval.jsonl", [{"text": "e", "label": 1}])
    write_csv(root / "notes.csv", [{"what": "unrelated"}])
    return root


def test_init_drafts_a_valid_manifest_from_a_folder(tmp_path: Path) -> None:
    root = deployment(tmp_path / "dep")
    res = runner.invoke(app, ["init", str(root)])
    assert res.exit_code == 0, res.output
    manifest = root / "manifest.yaml"
    data = yaml.safe_load(manifest.read_text())
    assert data["foundation_model"] == {
        "name": "fm",
        "placement": "server",
        "checkpoint": {"path": "fm"},
        "reference_checkpoint": {"path": "fm-reference"},
        "system_prompt": {"path": "fm/system_prompt.txt"},
    }
    assert data["federation"] == {
        "differential_privacy": None,
        "secure_aggregation": False,
        "participation_log": "federation/participation.csv",
    }
    assert data["clients"] == [
        {
            "id": "school-a",
            "fingerprint": "clients/school-a/fingerprint.json",
            "holdout": "clients/school-a/holdout.csv",
            "private_sample": "clients/school-a/private.jsonl",
            "prompts": "clients/school-a/prompts.jsonl",
            "synthetic_data": "clients/school-a/synthetic.jsonl",
            "update": "clients/school-a/update.safetensors",
        },
        {
            "id": "school-b",
            "synthetic_data": "clients/school-b/generated.jsonl",
            "prompts": {"path": "clients/school-b/prompts.jsonl", "text_field": "prompt"},
            "update": "updates/round-0003/school-b.safetensors",
        },
        {"id": "school-c"},
    ]
    assert data["models"] == [
        {
            "name": "global-clf",
            "kind": "sequence-classifier",
            "checkpoint": {"path": "models/global-clf"},
        }
    ]
    assert data["evaluation"] == {"data": "eval.jsonl"}
    assert "not recognised (add by hand if they matter):\n  - notes.csv" in res.output
    assert "federation.aggregator: not recognised" in res.output
    assert "tier and FM access of 3 client(s)" in res.output
    assert runner.invoke(app, ["validate", str(manifest)]).exit_code == 0

    before = manifest.read_text()
    again = runner.invoke(app, ["init", str(root)])
    assert again.exit_code == 2 and "use --force" in again.output
    assert manifest.read_text() == before
    assert runner.invoke(app, ["init", str(root), "--force", "--name", "x"]).exit_code == 0
    assert yaml.safe_load(manifest.read_text())["deployment"]["name"] == "x"


def test_init_output_elsewhere_and_bad_folder(tmp_path: Path) -> None:
    root = deployment(tmp_path / "dep")
    target = tmp_path / "audit" / "m.yaml"
    res = runner.invoke(app, ["init", str(root), "-o", str(target)])
    assert res.exit_code == 0, res.output
    dep = load_manifest(target).manifest
    assert dep.client("school-a").prompts is not None
    assert yaml.safe_load(target.read_text())["clients"][0]["prompts"] == (
        "../dep/clients/school-a/prompts.jsonl"
    )
    res = runner.invoke(app, ["init", str(tmp_path / "missing")])
    assert res.exit_code == 2 and "not a folder" in res.output


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open() as fh:
        return list(csv.DictReader(fh))


def scan_json(manifest: Path, *rules: str) -> dict:
    out = manifest.parent / "report.json"
    only = [x for r in rules for x in ("--only", r)]
    res = runner.invoke(
        app, ["scan", str(manifest), *only, "-f", "json", "-o", str(out), "--exit-zero"]
    )
    assert res.exit_code == 0, res.output
    return json.loads(out.read_text())


def test_import_nvflare_simulator_workspace(tmp_path: Path) -> None:
    out = tmp_path / "nv"
    res = runner.invoke(app, ["import", "nvflare", str(NVFLARE), "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert "nvflare does not record:" in res.output and "per-site model updates" in res.output
    rows = read_rows(out / "participation.csv")
    raw = [
        json.loads(x)
        for x in (next(NVFLARE.glob("*/server/simulate_job/metrics")) / "round_metrics.jsonl")
        .read_text()
        .splitlines()
    ]
    expected = []
    for rec in raw:
        total = sum(s["weight"] for s in rec["sites"])
        expected += [(str(rec["round"]), s["name"], s["weight"] / total) for s in rec["sites"]]
    assert [(r["round"], r["client_id"], float(r["weight"])) for r in rows] == expected
    assert len(rows) == 12 and {r["nvflare_weight"] for r in rows} == {"200.0", "20.0"}
    dep = load_manifest(out / "manifest.yaml").manifest
    assert [c.id for c in dep.clients] == ["site-1", "site-2", "site-3", "site-4"]
    assert dep.federation is not None and dep.federation.rounds == 3
    assert dep.federation.aggregator == "fedavg"
    assert "PercentilePrivacy" in (out / "manifest.yaml").read_text()
    report = scan_json(out / "manifest.yaml", "FMFL-F06", "FMFL-F07")
    f06 = next(r for r in report["rules"] if r["id"] == "FMFL-F06")["metrics"]
    assert f06["client:site-1"]["weight_share"] == pytest.approx(200 / 260, abs=1e-6)
    found = {f["subject"]: f["metric"]["value"] for f in report["findings"]}
    assert found == {"client:site-1": round(200 / 260, 6), "federation": pytest.approx(0.519231)}
    # Pointing at the server's job folder itself reads the same run.
    job = next(NVFLARE.glob("*/server/simulate_job"))
    res = runner.invoke(app, ["import", "nvflare", str(job), "-o", str(tmp_path / "nv2")])
    assert res.exit_code == 0, res.output
    assert read_rows(tmp_path / "nv2" / "participation.csv") == rows


def test_import_nvflare_bad_inputs(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    res = runner.invoke(app, ["import", "nvflare", str(empty), "-o", str(tmp_path / "o")])
    assert res.exit_code == 2 and "no NVFlare round metrics file" in res.output
    two = tmp_path / "two"
    shutil.copytree(NVFLARE, two / "a")
    shutil.copytree(NVFLARE, two / "b")
    res = runner.invoke(app, ["import", "nvflare", str(two), "-o", str(tmp_path / "o")])
    assert res.exit_code == 2 and "2 NVFlare round metrics file found" in res.output
    metrics = next((two / "a").glob("*/server/simulate_job/metrics/round_metrics.jsonl"))
    metrics.write_text(metrics.read_text() + "{not json\n")
    res = runner.invoke(
        app, ["import", "nvflare", str(metrics.parent.parent), "-o", str(tmp_path / "o")]
    )
    assert res.exit_code == 2 and "round_metrics.jsonl:4: not valid JSON" in res.output
    assert "Traceback" not in res.output


def test_import_openfedllm_run(tmp_path: Path) -> None:
    out = tmp_path / "ofl"
    res = runner.invoke(app, ["import", "openfedllm", str(OPENFEDLLM), "-o", str(out)])
    assert res.exit_code == 0, res.output
    loss = np.load(next(OPENFEDLLM.glob("*/training_loss.npy")))
    expected = [
        (str(r + 1), f"client-{c}", "8", "0.5", float(loss[c, r]))
        for r in range(loss.shape[1])
        for c in range(loss.shape[0])
        if loss[c, r] != -1
    ]
    rows = read_rows(out / "participation.csv")
    got = [
        (r["round"], r["client_id"], r["num_samples"], r["weight"], float(r["training_loss"]))
        for r in rows
    ]
    assert got == expected and len(got) == 8
    text = (out / "manifest.yaml").read_text()
    assert "Sampled clients match OpenFedLLM's sampler in all 4 round(s)." in text
    dep = load_manifest(out / "manifest.yaml").manifest
    assert dep.foundation_model is not None and dep.foundation_model.roles == ("initialization",)
    assert dep.foundation_model.placement == "client"
    report = scan_json(out / "manifest.yaml", "FMFL-F07")
    f07 = next(r for r in report["rules"] if r["id"] == "FMFL-F07")["metrics"]
    assert {c: f07[f"client:client-{c}"]["participation_rate"] for c in range(4)} == {
        0: 0.25,
        1: 0.75,
        2: 0.5,
        3: 0.5,
    }
    assert [f["subject"] for f in report["findings"]] == ["client:client-0"]
    again = runner.invoke(app, ["import", "openfedllm", str(OPENFEDLLM), "-o", str(out)])
    assert again.exit_code == 2 and "use --force" in again.output
    assert (
        runner.invoke(
            app, ["import", "openfedllm", str(OPENFEDLLM), "-o", str(out), "--force"]
        ).exit_code
        == 0
    )


def test_import_openfedllm_bad_inputs(tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(next(OPENFEDLLM.iterdir()), run)
    args = json.loads((run / "args.json").read_text())
    args["fed_args"]["num_clients"] = 5
    (run / "args.json").write_text(json.dumps(args))
    res = runner.invoke(app, ["import", "openfedllm", str(run), "-o", str(tmp_path / "o")])
    assert res.exit_code == 2 and "4 rows but args.json says num_clients=5" in res.output
    # An object array needs unpickling: refused, never loaded.
    np.save(run / "training_loss.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    res = runner.invoke(app, ["import", "openfedllm", str(run), "-o", str(tmp_path / "o")])
    assert res.exit_code == 2 and "not a numeric .npy array" in res.output
    (run / "args.json").unlink()
    res = runner.invoke(app, ["import", "openfedllm", str(run), "-o", str(tmp_path / "o")])
    assert res.exit_code == 2 and "without args.json" in res.output
