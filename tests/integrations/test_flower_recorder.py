"""`AuditedStrategy` driven round by round without a simulation: Flower's real strategies and
Message objects, a stand-in Grid that only lists node ids. Covers what the simulation test does
not: weights under Krum and the median, Flower's DP wrappers and mods, the size cap, the last-N
rounds option, global snapshots, clients without the mod."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("flwr", reason="the flower extra is not installed (pip install '.[flower]')")

from flwr.app import (
    Array,
    ArrayRecord,
    ConfigRecord,
    Context,
    Error,
    Message,
    MetricRecord,
    RecordDict,
)
from flwr.serverapp import strategy as flwr_strategies
from flwr.serverapp.strategy import DifferentialPrivacyServerSideFixedClipping, FedAvg
from safetensors.numpy import load_file

from fmfl_audit.integrations.flower import (
    AuditedStrategy,
    ClientInfo,
    FMInfo,
    audit_mods,
    fmfl_audit_mod,
)
from fmfl_audit.manifest import load_manifest

NODES = [101, 202, 303, 404]


@pytest.fixture(autouse=True)
def _task_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    """Flower >= 1.42 stamps messages with the running task's identity; give it one."""
    try:
        from flwr.supercore.task_identity import TaskIdentity
    except ImportError:  # older Flower builds messages without it
        return
    monkeypatch.setattr(TaskIdentity, "_run_id", 1)
    monkeypatch.setattr(TaskIdentity, "_node_id", 0)
    monkeypatch.setattr(TaskIdentity, "_task_id", 1)


class Grid:
    """The part of Flower's Grid the strategies' sampling uses."""

    def get_node_ids(self) -> list[int]:
        return list(NODES)


def arrays(*values: float) -> ArrayRecord:
    return ArrayRecord({"w": Array(np.asarray(values, dtype=np.float32))})


def reply(
    msg: Message, sent: ArrayRecord, n: int, pid: int | None, *, mods: list[Any] | None = None
) -> Message:
    """The reply a ClientApp with fmfl-audit's mod (when `pid` is given) would send."""
    content = RecordDict({"arrays": sent, "metrics": MetricRecord({"num-examples": n})})

    def client(m: Message, ctx: Context) -> Message:
        return Message(content=content, reply_to=m)

    if pid is None:
        return client(msg, None)  # type: ignore[arg-type]
    ctx = Context(
        run_id=1,
        node_id=msg.metadata.dst_node_id,
        node_config={"partition-id": pid},
        state=RecordDict(),
        run_config={},
    )
    chain = mods or [fmfl_audit_mod]
    call = client
    for mod in reversed(chain):
        call = lambda m_, c_, mod=mod, nxt=call: mod(m_, c_, nxt)  # noqa: E731
    return call(msg, ctx)


def run_round(
    strategy: AuditedStrategy,
    rnd: int,
    glob: ArrayRecord,
    sent: dict[int, tuple[list[float], int] | str],
    **kw: Any,
) -> Any:
    """Configure a round, answer each node as `sent` says (values and examples, or an error)."""
    messages = list(strategy.configure_train(rnd, glob, ConfigRecord(), Grid()))
    replies = []
    for m in messages:
        node = m.metadata.dst_node_id
        spec = sent[node]
        if isinstance(spec, str):
            replies.append(Message(Error(code=0, reason=spec), reply_to=m))
        else:
            values, n = spec
            replies.append(reply(m, arrays(*values), n, NODES.index(node), **kw))
    return strategy.aggregate_train(rnd, replies)


def rows(out: Path) -> list[dict[str, str]]:
    with (out / "participation.csv").open() as fh:
        return list(csv.DictReader(fh))


def test_fedavg_rounds_failures_and_manifest(tmp_path: Path) -> None:
    out = tmp_path / "run"
    s = AuditedStrategy(
        FedAvg(min_available_nodes=4),
        out,
        clients={"client-0": ClientInfo(tier="abundant", fm_access="local")},
        fm=FMInfo(name="tiny-fm", roles=("synthetic-data",)),
        save_global=True,
    )
    glob = arrays(0, 0)
    agg, _ = run_round(
        s, 1, glob, {101: ([1, 1], 30), 202: ([3, 1], 10), 303: ([0, 2], 10), 404: "gone"}
    )
    np.testing.assert_allclose(agg["w"].numpy(), [0.6 + 0.6, 0.6 + 0.2 + 0.4])
    run_round(s, 2, agg, {101: ([2, 2], 30), 202: ([2, 2], 10), 303: "gone", 404: ([2, 3], 20)})
    s.num_rounds = 2
    manifest = s.finish()

    got = [
        (r["round"], r["client_id"], r["num_samples"], r["weight"], r["status"]) for r in rows(out)
    ]
    assert got == [
        ("1", "client-0", "30", "0.6", "aggregated"),
        ("1", "client-1", "10", "0.2", "aggregated"),
        ("1", "client-2", "10", "0.2", "aggregated"),
        ("1", "client-3", "0", "0", "failed"),
        ("2", "client-0", "30", "0.5", "aggregated"),
        ("2", "client-1", "10", repr(10 / 60), "aggregated"),
        ("2", "client-2", "0", "0", "failed"),
        ("2", "client-3", "20", repr(20 / 60), "aggregated"),
    ]
    # Node 404 failed in round 1 before it had ever said who it is; its round-2 reply did, and the
    # log names the earlier failure by that id too.
    update = load_file(str(out / "updates/round-0002/client-3.safetensors"))
    np.testing.assert_array_equal(update["w"], np.float32([2, 3]) - agg["w"].numpy())
    np.testing.assert_array_equal(
        load_file(str(out / "global/round-0000.safetensors"))["w"], [0, 0]
    )
    np.testing.assert_allclose(
        load_file(str(out / "global/round-0002.safetensors"))["w"],
        [(60 + 20 + 40) / 60, (60 + 20 + 60) / 60],
    )
    dep = load_manifest(manifest).manifest
    assert dep.federation is not None and dep.federation.aggregator == "fedavg"
    assert dep.federation.rounds == 2
    assert dep.foundation_model is not None and dep.foundation_model.name == "tiny-fm"
    by_id = {c.id: c for c in dep.clients}
    assert by_id["client-0"].resources.tier == "abundant"
    assert (
        by_id["client-2"].update is not None
        and by_id["client-2"].update.name == "client-2.safetensors"
    )
    assert "round-0001" in str(by_id["client-2"].update)  # its last aggregated round
    rounds = [json.loads(x) for x in (out / "rounds.jsonl").read_text().splitlines()]
    assert [r["failed"] for r in rounds] == [1, 1]
    assert rounds[0]["replies"][-1]["error"] == "gone"


def strategy_class(name: str) -> Any:
    """A Message-API strategy by name; Flower 1.21 has fewer of them than later releases."""
    cls = getattr(flwr_strategies, name, None)
    if cls is None:
        pytest.skip(f"flwr.serverapp.strategy has no {name} in this Flower release")
    return cls


def test_krum_weights_follow_flowers_selection(tmp_path: Path) -> None:
    s = AuditedStrategy(
        strategy_class("Krum")(num_malicious_nodes=1, min_available_nodes=4), tmp_path / "k"
    )
    sent = {101: ([1.0, 1.0], 10), 202: ([1.1, 0.9], 10), 303: ([0.9, 1.0], 10), 404: ([9, 9], 10)}
    agg, _ = run_round(s, 1, arrays(0, 0), sent)
    s.finish()
    weights = {r["client_id"]: float(r["weight"]) for r in rows(tmp_path / "k")}
    chosen = [cid for cid, w in weights.items() if w == 1.0]
    assert len(chosen) == 1 and sorted(weights.values()) == [0.0, 0.0, 0.0, 1.0]
    # The client given weight 1 is the one whose arrays Krum returned.
    node = NODES[int(chosen[0].split("-")[1])]
    np.testing.assert_array_equal(agg["w"].numpy(), np.float32(sent[node][0]))
    assert "aggregator: krum" in (tmp_path / "k" / "manifest.yaml").read_text()


def test_median_has_no_weight_column(tmp_path: Path) -> None:
    s = AuditedStrategy(strategy_class("FedMedian")(min_available_nodes=4), tmp_path / "m")
    sent: dict[int, Any] = {n: ([float(i)], 5 * (i + 1)) for i, n in enumerate(NODES[:3])}
    run_round(s, 1, arrays(0), {**sent, 404: "timed out"})
    manifest = s.finish()
    got = [(r["client_id"], r["num_samples"], r["status"]) for r in rows(tmp_path / "m")]
    assert got == [
        ("client-0", "5", "aggregated"),
        ("client-1", "10", "aggregated"),
        ("client-2", "15", "aggregated"),
        ("node-404", "0", "failed"),  # never replied: no stable id to give it
    ]
    assert list(rows(tmp_path / "m")[0]) == [
        "round",
        "client_id",
        "num_samples",
        "status",
        "node_id",
    ]
    text = manifest.read_text()
    assert "no stable id: add fmfl_audit_mod" in text
    assert "aggregator: median" in text
    assert "FMFL-F06 uses num_samples" in text
    load_manifest(manifest)


def test_server_side_dp_is_recorded_and_updates_are_unclipped(tmp_path: Path) -> None:
    inner = FedAvg(min_available_nodes=4)
    dp = DifferentialPrivacyServerSideFixedClipping(
        inner, noise_multiplier=0.5, clipping_norm=0.1, num_sampled_clients=4
    )
    s = AuditedStrategy(dp, tmp_path / "dp")
    run_round(s, 1, arrays(0, 0), {n: ([3.0, 4.0], 10) for n in NODES})
    manifest = s.finish()
    # What the client sent (norm 5), not the 0.1-clipped copy the DP wrapper aggregated.
    saved = load_file(str(tmp_path / "dp/updates/round-0001/client-0.safetensors"))
    np.testing.assert_array_equal(saved["w"], [3.0, 4.0])
    text = manifest.read_text()
    assert "aggregator: norm-clipping" in text
    assert (
        "DifferentialPrivacyServerSideFixedClipping: noise_multiplier 0.5, clipping_norm 0.1"
        in text
    )
    assert "no privacy accountant on the DP wrapper" in text
    dep = load_manifest(manifest).manifest
    assert dep.federation is not None and dep.federation.differential_privacy is None


def test_local_dp_and_secagg_mods_reach_the_manifest(tmp_path: Path) -> None:
    try:
        from flwr.clientapp.mod import LocalDpMod
    except ImportError:  # Flower 1.21 keeps its mods in flwr.client.mod
        from flwr.client.mod import LocalDpMod
    from flwr.client.mod import secaggplus_mod

    local_dp = LocalDpMod(clipping_norm=10.0, sensitivity=1.0, epsilon=0.5, delta=1e-6)
    # Only the reporting mod runs here: the privacy mods are described, not executed.
    mods = audit_mods(local_dp, secaggplus_mod)[:1]
    s = AuditedStrategy(FedAvg(min_available_nodes=4), tmp_path / "ldp")
    for rnd in (1, 2, 3):
        run_round(s, rnd, arrays(0), {n: ([1.0], 10) for n in NODES}, mods=mods)
    s.num_rounds = 3
    dep = load_manifest(s.finish()).manifest
    assert dep.federation is not None
    dpc = dep.federation.differential_privacy
    assert (
        dpc is not None and dpc.epsilon == pytest.approx(1.5) and dpc.delta == pytest.approx(3e-6)
    )
    assert dep.federation.secure_aggregation is True
    summary = json.loads((tmp_path / "ldp/run.json").read_text())
    assert summary["client_reports"]["client-0"]["privacy-mods"] == ["LocalDpMod", "secaggplus_mod"]


def test_size_cap_keep_last_and_user_ids(tmp_path: Path) -> None:
    s = AuditedStrategy(
        FedAvg(min_available_nodes=4),
        tmp_path / "cap",
        client_ids={101: "hospital-a", "client-1": "hospital-b"},
        max_update_bytes=8,  # two float32 values
        keep_last_rounds=1,
    )
    glob = arrays(0, 0)
    for rnd in (1, 2):
        glob, _ = run_round(s, rnd, glob, {n: ([1.0, 2.0], 10) for n in NODES})
    assert sorted(p.name for p in (tmp_path / "cap/updates").iterdir()) == ["round-0002"]
    dep = load_manifest(s.finish()).manifest
    assert [c.id for c in dep.clients] == ["client-2", "client-3", "hospital-a", "hospital-b"]
    assert all(c.update is not None and "round-0002" in str(c.update) for c in dep.clients)

    big = AuditedStrategy(FedAvg(min_available_nodes=4), tmp_path / "big", max_update_bytes=4)
    run_round(big, 1, arrays(0, 0), {n: ([1.0, 2.0], 10) for n in NODES})
    dep = load_manifest(big.finish()).manifest
    assert all(c.update is None for c in dep.clients)
    rounds = [json.loads(x) for x in (tmp_path / "big/rounds.jsonl").read_text().splitlines()]
    assert rounds[0]["replies"][0]["update_note"] == "8 bytes is over the cap of 4 bytes"


def test_refuses_to_record_over_a_previous_run(tmp_path: Path) -> None:
    (tmp_path / "manifest.yaml").write_text("version: 1\n")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        AuditedStrategy(FedAvg(), tmp_path)
    with pytest.raises(ValueError, match="tier"):
        ClientInfo(tier="rich")  # type: ignore[arg-type]


class FailingGrid(Grid):
    """Answers round 1's train messages, then loses the connection (evaluation is off)."""

    def __init__(self) -> None:
        self.calls = 0

    def send_and_receive(self, messages: Any, timeout: float = 0) -> list[Message]:
        messages = list(messages)
        if not messages:
            return []
        self.calls += 1
        if self.calls > 1:
            raise ConnectionError("SuperLink went away")
        return [reply(m, arrays(1.0), 10, NODES.index(m.metadata.dst_node_id)) for m in messages]


def test_a_failed_run_still_leaves_its_trail(tmp_path: Path) -> None:
    s = AuditedStrategy(FedAvg(fraction_evaluate=0.0, min_available_nodes=4), tmp_path / "f")
    with pytest.raises(ConnectionError, match="went away"):
        s.start(grid=FailingGrid(), initial_arrays=arrays(0.0), num_rounds=3)  # type: ignore[arg-type]
    dep = load_manifest(tmp_path / "f" / "manifest.yaml").manifest
    assert dep.federation is not None and dep.federation.rounds == 1
    assert "The run stopped after round 1 of 3." in (tmp_path / "f" / "manifest.yaml").read_text()
    assert {r["round"] for r in rows(tmp_path / "f")} == {"1"}
