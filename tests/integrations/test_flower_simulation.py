"""A real Flower simulation (Ray backend) of `examples/flower`, recorded by `AuditedStrategy`, then
validated and scanned: the report's F06, F07 and R12 figures must equal what this test computes
from the replies Flower delivered to the strategy (captured by a FedAvg subclass it wraps).

Five clients, five rounds, a small torch MLP: client-0 holds 10x the records of the others,
client-4 fails in rounds 2-4. Ray's driver, GCS and workers talk over TCP, so this test allows
sockets to 127.0.0.1 (`allow_hosts`); every other test keeps sockets disabled.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

pytest.importorskip("flwr", reason="the flower extra is not installed (pip install '.[flower]')")
pytest.importorskip("ray", reason="Flower's simulation engine needs ray (pip install '.[flower]')")

from flwr.app import ConfigRecord, Context, Message
from flwr.serverapp.strategy import FedAvg
from safetensors.numpy import load_file
from tests.conftest import ray_exclusive

from fmfl_audit.cli.main import app
from fmfl_audit.integrations.flower import fmfl_audit_mod

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "flower"
ROUNDS, CLIENTS = 5, 5
SPY_RECORD = "test-spy"


def partition_spy_mod(msg: Message, ctxt: Context, call_next: Any) -> Message:
    """Tags each reply with the node's partition id, independently of fmfl-audit's mod."""
    reply = call_next(msg, ctxt)
    if not reply.has_error():
        reply.content[SPY_RECORD] = ConfigRecord({"pid": int(ctxt.node_config["partition-id"])})
    return reply


class SpyFedAvg(FedAvg):
    """FedAvg that keeps a copy of what Flower hands it: global arrays, sampled nodes, replies,
    and the aggregate it returns."""

    def __init__(self) -> None:
        # `min_train_nodes` too: FedAvg sizes the sample from the nodes connected before it waits
        # for `min_available_nodes`, so a slow start (a loaded machine) sampled 2 nodes in round 1.
        super().__init__(
            fraction_train=1.0,
            fraction_evaluate=0.0,
            min_available_nodes=CLIENTS,
            min_train_nodes=CLIENTS,
        )
        self.seen: dict[int, dict[str, Any]] = {}

    def configure_train(self, server_round, arrays, config, grid):  # type: ignore[no-untyped-def]
        messages = list(super().configure_train(server_round, arrays, config, grid))
        self.seen[server_round] = {
            "global": {k: v.numpy().copy() for k, v in arrays.items()},
            "sampled": sorted(int(m.metadata.dst_node_id) for m in messages),
            "replies": {},
            "failed": [],
        }
        return messages

    def aggregate_train(self, server_round, replies):  # type: ignore[no-untyped-def]
        replies = list(replies)
        seen = self.seen[server_round]
        for m in replies:
            if m.has_error():
                seen["failed"].append(int(m.metadata.src_node_id))
                continue
            pid = int(m.content[SPY_RECORD]["pid"])
            seen["replies"][f"client-{pid}"] = {
                "node": int(m.metadata.src_node_id),
                "n": float(m.content["metrics"]["num-examples"]),
                "arrays": {k: v.numpy().copy() for k, v in m.content["arrays"].items()},
            }
        arrays, metrics = super().aggregate_train(server_round, replies)
        seen["aggregate"] = {k: v.numpy().copy() for k, v in arrays.items()}
        return arrays, metrics


@pytest.fixture(scope="module")
def flower_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, SpyFedAvg]:
    """Run the simulation once for the module; returns (out_dir, spy)."""
    mp = pytest.MonkeyPatch()
    mp.setenv("FLWR_TELEMETRY_ENABLED", "0")  # no usage events to Flower's servers
    mp.setenv("RAY_USAGE_STATS_ENABLED", "0")
    mp.setenv("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")  # Ray's future default; silences a warning
    mp.syspath_prepend(str(EXAMPLE))
    from flwr.simulation import run_simulation
    from fmfl_flower_example.client_app import make_client_app
    from fmfl_flower_example.server_app import make_server_app

    out = tmp_path_factory.mktemp("flower") / "audit-run"
    spy = SpyFedAvg()
    # `ray stop --force` in the Ray executor test would kill this run's Ray: never overlap.
    try:
        with ray_exclusive():
            run_simulation(
                server_app=make_server_app(out_dir=str(out), num_rounds=ROUNDS, inner=spy),
                client_app=make_client_app(
                    out_dir=str(out), mods=(fmfl_audit_mod, partition_spy_mod)
                ),
                num_supernodes=CLIENTS,
                backend_config={
                    "client_resources": {"num_cpus": 1, "num_gpus": 0.0},
                    "init_args": {
                        # A new instance for this test, never another process's cluster.
                        "address": "local",
                        "num_cpus": 2,
                        "_node_ip_address": "127.0.0.1",
                        "include_dashboard": False,
                        "log_to_driver": False,
                    },
                },
            )
    finally:
        mp.undo()
    return out, spy


def expected_shares(spy: SpyFedAvg) -> dict[str, float]:
    """F06's weight share: per-round FedAvg weights n_i / sum(n), summed over rounds, normalised."""
    totals: dict[str, float] = {}
    for seen in spy.seen.values():
        n_round = sum(r["n"] for r in seen["replies"].values())
        for cid, r in seen["replies"].items():
            totals[cid] = totals.get(cid, 0.0) + r["n"] / n_round
    grand = sum(totals.values())
    return {cid: w / grand for cid, w in totals.items()}


def flat_update(seen: dict[str, Any], cid: str) -> np.ndarray:
    sent, base = seen["replies"][cid]["arrays"], seen["global"]
    return np.concatenate([(sent[k] - base[k]).astype(np.float64).ravel() for k in sorted(base)])


@pytest.mark.slow
@pytest.mark.allow_hosts(["127.0.0.1"])
def test_recorded_trail_matches_flowers_replies(flower_run: tuple[Path, SpyFedAvg]) -> None:
    out, spy = flower_run
    assert sorted(spy.seen) == list(range(1, ROUNDS + 1))
    rounds = [json.loads(line) for line in (out / "rounds.jsonl").read_text().splitlines()]
    assert [r["round"] for r in rounds] == list(range(1, ROUNDS + 1))
    for rec in rounds:
        seen = spy.seen[rec["round"]]
        assert sorted(r["node_id"] for r in rec["replies"]) == seen["sampled"]
        assert rec["failed"] == len(seen["failed"])
        by_client = {r["client_id"]: r for r in rec["replies"] if r["status"] == "aggregated"}
        assert set(by_client) == set(seen["replies"])
        n_round = sum(r["n"] for r in seen["replies"].values())
        rebuilt = None
        for cid, r in seen["replies"].items():
            assert by_client[cid]["node_id"] == r["node"]
            assert by_client[cid]["num_examples"] == r["n"]
            assert by_client[cid]["weight"] == pytest.approx(r["n"] / n_round, abs=1e-12)
            part = {k: by_client[cid]["weight"] * v for k, v in r["arrays"].items()}
            rebuilt = part if rebuilt is None else {k: rebuilt[k] + part[k] for k in part}
            # The saved update is exactly what the client sent minus the round's global arrays.
            saved = load_file(str(out / by_client[cid]["update"]))
            for k, v in r["arrays"].items():
                np.testing.assert_array_equal(saved[k], v - seen["global"][k])
        # The recorded weights are the ones FedAvg used: they rebuild its aggregate.
        assert rebuilt is not None
        for k, v in seen["aggregate"].items():
            np.testing.assert_allclose(rebuilt[k], v, rtol=1e-5, atol=1e-6)
    # client-4 failed in rounds 2-4 and only there.
    failed = {
        rec["round"]: [r["client_id"] for r in rec["replies"] if r["status"] == "failed"]
        for rec in rounds
    }
    assert failed == {1: [], 2: ["client-4"], 3: ["client-4"], 4: ["client-4"], 5: []}


@pytest.mark.slow
@pytest.mark.allow_hosts(["127.0.0.1"])
def test_scan_of_the_recorded_manifest(flower_run: tuple[Path, SpyFedAvg]) -> None:
    out, spy = flower_run
    manifest = out / "manifest.yaml"
    runner = CliRunner()
    validated = runner.invoke(app, ["validate", str(manifest)])
    assert validated.exit_code == 0, validated.output
    report_path = out.parent / "report.json"
    only = ["--only", "FMFL-F06", "--only", "FMFL-F07", "--only", "FMFL-R12"]
    res = runner.invoke(
        app, ["scan", str(manifest), *only, "-f", "json", "-o", str(report_path), "--exit-zero"]
    )
    assert res.exit_code == 0, res.output
    report = json.loads(report_path.read_text())
    rules = {r["id"]: r for r in report["rules"]}
    findings = {(f["rule_id"], f["subject"]): f for f in report["findings"]}
    ids = [f"client-{i}" for i in range(CLIENTS)]

    # F06: weight shares recomputed from Flower's replies; the abundant client dominates.
    shares = expected_shares(spy)
    f06 = rules["FMFL-F06"]["metrics"]
    for cid in ids:
        assert f06[f"client:{cid}"]["weight_share"] == pytest.approx(shares[cid], abs=1e-6)
    top = findings[("FMFL-F06", "client:client-0")]
    assert top["metric"]["value"] == pytest.approx(shares["client-0"], abs=1e-6)
    assert top["metric"]["value"] > 0.7
    assert ("FMFL-F06", "tier:abundant") in findings

    # F07: client-4 took part in 2 of 5 rounds; the others in all five.
    f07 = rules["FMFL-F07"]["metrics"]
    rates = {cid: f07[f"client:{cid}"]["participation_rate"] for cid in ids}
    expected_rates = {
        cid: sum(cid in s["replies"] for s in spy.seen.values()) / ROUNDS for cid in ids
    }
    assert rates == expected_rates == {**dict.fromkeys(ids[:4], 1.0), "client-4": 0.4}
    assert findings[("FMFL-F07", "client:client-4")]["metric"]["value"] == 0.4
    assert not [
        f
        for f in findings
        if f[0] == "FMFL-F07" and f[1].startswith("client:client-") and f[1] != "client:client-4"
    ]

    # R12: every client's round-5 update, statistics recomputed from the replies.
    last = spy.seen[ROUNDS]
    vecs = np.stack([flat_update(last, cid) for cid in ids])
    gram = vecs @ vecs.T
    norms = np.sqrt(np.diag(gram))
    mean = vecs.mean(axis=0)
    r12 = rules["FMFL-R12"]["metrics"]
    assert r12["federation"]["updates"] == CLIENTS
    for i, cid in enumerate(ids):
        m = r12[f"client:{cid}"]
        assert m["norm"] == pytest.approx(norms[i], rel=1e-5)
        cos = float(vecs[i] @ mean / (norms[i] * np.linalg.norm(mean)))
        assert m["cosine_to_mean"] == pytest.approx(cos, abs=1e-5)


def test_example_app_config_names_its_components() -> None:
    """`flwr run examples/flower` reads these; a typo would only show at run time."""
    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib

    conf = tomllib.loads((EXAMPLE / "pyproject.toml").read_text())
    comps = conf["tool"]["flwr"]["app"]["components"]
    for spec in comps.values():
        module, _, attr = spec.partition(":")
        path = EXAMPLE / Path(*module.split(".")).with_suffix(".py")
        assert path.is_file(), spec
        assert f"\n{attr} = " in path.read_text(), spec
