"""`AuditedStrategy`: wraps any Flower Message-API strategy and records the run as it happens.

Per round: the nodes the strategy sampled (the train messages it built), every reply received
(and whether it carries an error), each reply's example count and the weight Flower gave it
(`_inspect.aggregation_weights`), and each client's update: what it sent minus the global arrays
of that round, written before the wrapped strategy sees the replies (Flower's server-side DP
wrappers clip the replies in place). At the end of `start()` (or on `finish()`) it writes the
participation log, a round log, a run summary and `manifest.yaml` (`_writer`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from logging import INFO, WARNING
from pathlib import Path
from typing import Any, Literal

from flwr.app import ArrayRecord, ConfigRecord, Message, MetricRecord
from flwr.serverapp import Grid
from flwr.serverapp.strategy import Result, Strategy

from fmfl_audit.integrations._updates import DEFAULT_MAX_UPDATE_BYTES, UpdateStore, difference
from fmfl_audit.integrations.flower import _inspect
from fmfl_audit.integrations.flower._client import RECORD
from fmfl_audit.integrations.scaffold import safe_client_id

Tier = Literal["abundant", "constrained"]
FMAccess = Literal["local", "shared-api"]
# Flower's own logger, so the recorder's lines appear with the run's log (same on every flwr).
log = logging.getLogger("flwr").log


@dataclass(frozen=True)
class ClientInfo:
    """What the operator knows about a client: its resource tier and FM access mode."""

    tier: Tier | None = None
    fm_access: FMAccess | None = None

    def __post_init__(self) -> None:
        if self.tier not in (None, "abundant", "constrained"):
            raise ValueError(f"tier must be 'abundant' or 'constrained', got {self.tier!r}")
        if self.fm_access not in (None, "local", "shared-api"):
            raise ValueError(f"fm_access must be 'local' or 'shared-api', got {self.fm_access!r}")


@dataclass(frozen=True)
class FMInfo:
    """The foundation model, as far as the operator wants it in the manifest."""

    name: str
    placement: Literal["server", "client", "third-party-api"] = "server"
    roles: tuple[Literal["synthetic-data", "distillation", "initialization"], ...] = ()
    checkpoint: str | None = None
    system_prompt: str | None = None


@dataclass
class ReplyRecord:
    """One sampled node in one round and what came of it."""

    node_id: int
    status: Literal["aggregated", "failed", "no-reply", "discarded"]
    client_id: str | None = None
    num_examples: float | None = None
    weight: float | None = None
    update: Path | None = None
    update_note: str | None = None
    error: str | None = None
    info: dict[str, Any] = field(default_factory=dict)


@dataclass
class RoundRecord:
    """One training round."""

    round: int
    sampled: list[int]
    replies: dict[int, ReplyRecord] = field(default_factory=dict)
    weight_basis: str = ""
    aggregated: bool = False
    completed: bool = False  # its replies reached the strategy (False: the run ended before)


class AuditedStrategy(Strategy):
    """Wrap a Flower strategy; record the run under `out_dir` and write `manifest.yaml` there.

    Wrap outermost (a DP wrapper goes inside), so the recorder sees the replies as clients sent
    them and can read the DP settings along the chain of wrapped strategies.

    `client_ids` maps node ids (int) or client-reported ids (str, from `fmfl_audit_mod`) to the
    ids the manifest uses. `clients` gives tier and FM access per (final) client id. Updates are
    saved unless `save_updates` is false; one over `max_update_bytes` is skipped and logged;
    `keep_last_rounds` keeps only the last N rounds of updates (and global snapshots, written
    when `save_global`).
    """

    def __init__(
        self,
        strategy: Strategy,
        out_dir: str | Path,
        *,
        deployment_name: str = "flower-federation",
        task: str | None = None,
        client_ids: Mapping[int | str, str] | None = None,
        clients: Mapping[str, ClientInfo] | None = None,
        fm: FMInfo | None = None,
        save_updates: bool = True,
        max_update_bytes: int | None = DEFAULT_MAX_UPDATE_BYTES,
        keep_last_rounds: int | None = None,
        save_global: bool = False,
        overwrite: bool = False,
    ) -> None:
        self.strategy = strategy
        self.out_dir = Path(out_dir)
        if not overwrite and (self.out_dir / "manifest.yaml").exists():
            raise FileExistsError(
                f"{self.out_dir / 'manifest.yaml'} exists: record into a new folder or pass "
                "overwrite=True"
            )
        self.deployment_name = deployment_name
        self.task = task
        self.client_ids = dict(client_ids or {})
        self.clients = dict(clients or {})
        self.fm = fm
        self.save_updates = save_updates
        self.save_global = save_global
        self.store = UpdateStore(
            self.out_dir, max_update_bytes=max_update_bytes, keep_last_rounds=keep_last_rounds
        )
        self.rounds: dict[int, RoundRecord] = {}
        self.node_clients: dict[int, str] = {}
        self.num_rounds: int | None = None
        self.manifest_path: Path | None = None
        self._global: dict[str, Any] = {}
        self._saved_initial = False

    # --- Strategy interface -------------------------------------------------------------------

    def summary(self) -> None:
        """Log the wrapped strategy's summary and where the audit trail goes."""
        log(INFO, "\t├──> fmfl-audit recorder: writing the audit trail to %s", self.out_dir)
        self.strategy.summary()

    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        """Delegate, and remember the sampled nodes and the round's global arrays."""
        messages = list(self.strategy.configure_train(server_round, arrays, config, grid))
        self._global = {k: v.numpy() for k, v in arrays.items()}
        if self.save_global and not self._saved_initial:
            self.store.save_global(server_round - 1, self._global)
            self._saved_initial = True
        self.rounds[server_round] = RoundRecord(
            round=server_round, sampled=[int(m.metadata.dst_node_id) for m in messages]
        )
        return messages

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        """Record the replies (and updates), then delegate the aggregation."""
        replies = list(replies)
        record = self.rounds.setdefault(server_round, RoundRecord(server_round, sampled=[]))
        self._record_replies(record, replies)
        record.completed = True
        arrays, metrics = self.strategy.aggregate_train(server_round, replies)
        record.aggregated = arrays is not None
        if arrays is None:
            for r in record.replies.values():
                if r.status == "aggregated":
                    r.status, r.weight = "discarded", 0.0
        elif self.save_global:
            self.store.save_global(server_round, {k: v.numpy() for k, v in arrays.items()})
        self.store.prune(server_round)
        return arrays, metrics

    def configure_evaluate(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        """Delegate (evaluation is not recorded)."""
        return self.strategy.configure_evaluate(server_round, arrays, config, grid)

    def aggregate_evaluate(
        self, server_round: int, replies: Iterable[Message]
    ) -> MetricRecord | None:
        """Delegate (evaluation is not recorded)."""
        return self.strategy.aggregate_evaluate(server_round, replies)

    def start(
        self,
        grid: Grid,
        initial_arrays: ArrayRecord,
        num_rounds: int = 3,
        timeout: float = 3600,
        train_config: ConfigRecord | None = None,
        evaluate_config: ConfigRecord | None = None,
        evaluate_fn: Callable[[int, ArrayRecord], MetricRecord | None] | None = None,
    ) -> Result:
        """Run the wrapped strategy's rounds; write the audit trail when they end (or fail)."""
        self.num_rounds = num_rounds
        try:
            result = super().start(
                grid,
                initial_arrays,
                num_rounds=num_rounds,
                timeout=timeout,
                train_config=train_config,
                evaluate_config=evaluate_config,
                evaluate_fn=evaluate_fn,
            )
        except BaseException:
            # Keep what the failed run recorded; the run's own error is the one to raise.
            try:
                self.finish()
            except Exception as exc:  # noqa: BLE001 - never mask the run's error
                log(WARNING, "fmfl-audit: could not write the audit trail: %s", exc)
            raise
        self.finish()
        return result

    def finish(self) -> Path:
        """Write the participation log, round log, run summary and manifest; returns the
        manifest's path. Call it yourself when you drive the rounds without `start()`."""
        from fmfl_audit.integrations.flower._writer import write_run

        self.manifest_path = write_run(self)
        log(INFO, "fmfl-audit: audit manifest written to %s", self.manifest_path)
        return self.manifest_path

    # --- recording ----------------------------------------------------------------------------

    def client_id(self, node_id: int, reported: str | None = None) -> str:
        """The manifest id of a node: the user mapping, else the id the client reported, else
        an id learned from an earlier reply, else `node-<id>`."""
        if node_id in self.client_ids:
            return safe_client_id(self.client_ids[node_id])
        if reported:
            return safe_client_id(self.client_ids.get(reported, reported))
        return self.node_clients.get(node_id, f"node-{node_id}")

    def _record_replies(self, record: RoundRecord, replies: list[Message]) -> None:
        valid: list[Message] = []
        for msg in replies:
            node = int(msg.metadata.src_node_id)
            if msg.has_error():
                reason = (msg.error.reason or "")[:300]
                record.replies[node] = ReplyRecord(node_id=node, status="failed", error=reason)
                continue
            info = dict(msg.content.config_records.get(RECORD, {}))
            cid = self.client_id(node, str(info.get("client-id") or "") or None)
            self.node_clients[node] = cid
            record.replies[node] = ReplyRecord(
                node_id=node, status="aggregated", client_id=cid, info=info
            )
            valid.append(msg)
        for node in record.sampled:
            record.replies.setdefault(node, ReplyRecord(node_id=node, status="no-reply"))
        self._weigh(record, valid)
        if self.save_updates:
            for msg in valid:
                self._save_update(record, msg)

    def _weigh(self, record: RoundRecord, valid: list[Message]) -> None:
        key = _inspect.weighted_by_key(self.strategy)
        counts: list[float] = []
        for msg in valid:
            metrics = next(iter(msg.content.metric_records.values()), None)
            value = None if metrics is None else metrics.get(key)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                record.replies[int(msg.metadata.src_node_id)].num_examples = float(value)
                counts.append(float(value))
        if len(counts) < len(valid):
            record.weight_basis = f"a reply lacks a numeric {key!r}: weights unknown"
            return
        weights, record.weight_basis = _inspect.aggregation_weights(
            self.strategy, [m.content for m in valid], counts
        )
        if weights is not None:
            for msg, w in zip(valid, weights, strict=True):
                record.replies[int(msg.metadata.src_node_id)].weight = w

    def _save_update(self, record: RoundRecord, msg: Message) -> None:
        reply = record.replies[int(msg.metadata.src_node_id)]
        arrays = _reply_arrays(msg, self.strategy)
        if arrays is None:
            reply.update_note = "the reply holds no single ArrayRecord"
            return
        diff, left_out = difference(arrays, self._global)
        assert reply.client_id is not None
        meta = {
            "round": record.round,
            "client_id": reply.client_id,
            "node_id": reply.node_id,
            "num_examples": reply.num_examples,
            "kind": "update = client arrays - global arrays of the round",
        }
        saved = self.store.save_update(record.round, reply.client_id, diff, meta)
        reply.update, reply.update_note = saved.path, saved.skipped
        if left_out:
            note = f"left out: {', '.join(left_out[:5])}" + (" ..." if len(left_out) > 5 else "")
            reply.update_note = "; ".join(x for x in (reply.update_note, note) if x)


def _reply_arrays(msg: Message, strategy: Strategy) -> dict[str, Any] | None:
    records = msg.content.array_records
    if not records:
        return None
    key = str(getattr(_inspect.chain(strategy)[-1], "arrayrecord_key", ""))
    record = records.get(key)
    if record is None:
        if len(records) != 1:
            return None
        record = next(iter(records.values()))
    return {k: v.numpy() for k, v in record.items()}
