"""The checker contract: declared metadata, a Params model and a pure `run`.

A checker never prints, never keeps state between runs and never reads files except through the
`CheckContext` (which streams records and counts malformed ones). It returns `CheckOutput`: finding
drafts plus, for every subject it measured, its figures, whether or not a finding fired.
"""

from __future__ import annotations

import contextlib
import hashlib
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol

from pydantic import BaseModel, ConfigDict

from fmfl_audit.engine.executors import Cache, Executor, LocalExecutor, ReadOptions, ShardTask
from fmfl_audit.errors import InputError
from fmfl_audit.inputs.records import (
    DEFAULT_BATCH,
    ReadStats,
    Record,
    Shard,
    iter_records,
    merge_stats,
)
from fmfl_audit.inputs.shards import plan_shards
from fmfl_audit.manifest.loader import Deployment
from fmfl_audit.manifest.model import DataSource
from fmfl_audit.models import Area, FindingDraft, InputStats, MetricValue


class CheckerParams(BaseModel):
    """Base of every checker's Params: unknown keys in a pack are errors, values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class NoParams(CheckerParams):
    """For checkers without settings."""


class Progress(Protocol):
    """Per-rule progress handle the engine passes to a checker."""

    def set_total(self, total: int | None) -> None:
        """Declare how many units of work there are (None when unknown)."""

    def advance(self, n: int = 1) -> None:
        """Record `n` units done."""


class _NullProgress:
    def set_total(self, total: int | None) -> None:
        return None

    def advance(self, n: int = 1) -> None:
        return None


NULL_PROGRESS: Progress = _NullProgress()


class InputLedger:
    """Per-scan record of what each data file yielded; the first complete pass is kept."""

    def __init__(self) -> None:
        self._stats: dict[str, InputStats] = {}

    def commit(self, stats: ReadStats) -> None:
        """Keep the counts of a completed pass over a file."""
        if stats.complete and stats.path not in self._stats:
            self._stats[stats.path] = stats.freeze()

    def all(self) -> tuple[InputStats, ...]:
        """Every file read, sorted by path."""
        return tuple(self._stats[k] for k in sorted(self._stats))


class RuleReads:
    """What one rule read from each data file, complete or partial passes alike.

    The engine holds it against the policy's malformed-record threshold after the rule ran: a rule
    that could check none, or too few, of its records has not passed (DESIGN.md, "Trust in the
    verdict").
    """

    def __init__(self) -> None:
        self._by_path: dict[str, ReadStats] = {}

    def add(self, stats: ReadStats) -> None:
        """Keep the widest pass over each file (a second pass of the same file adds nothing)."""
        seen = self._by_path.get(stats.path)
        if seen is None or stats.records + stats.malformed > seen.records + seen.malformed:
            self._by_path[stats.path] = stats

    def all(self) -> list[ReadStats]:
        """Every file the rule read, sorted by path."""
        return [self._by_path[k] for k in sorted(self._by_path)]


class ResourceCache(Cache):
    """Per-scan cache of expensive objects (an NLP engine, a loaded model) shared by checkers.

    Created by the engine for one scan and dropped after it: no global state. Shard tasks run in
    the scan's process use it too (see `engine.executors`).
    """


@dataclass(frozen=True)
class CheckContext:
    """Everything a checker may use besides its params."""

    deployment: Deployment
    rule_id: str
    seed: int = 0
    device: str = "auto"
    progress: Progress = NULL_PROGRESS
    ledger: InputLedger = field(default_factory=InputLedger)
    cache: ResourceCache = field(default_factory=ResourceCache)
    executor: Executor = field(default_factory=LocalExecutor)
    """Where `map_shards` runs record-level work (in this process by default)."""
    reads: RuleReads = field(default_factory=RuleReads)
    """What this rule read from each data file (see `RuleReads`)."""

    def display(self, path: Path) -> str:
        """A path as shown in reports: relative to the manifest folder when inside it."""
        return self.deployment.display_path(path)

    def rule_seed(self, *salt: str) -> int:
        """A seed derived from the scan seed, the rule and `salt`: stable across runs."""
        text = "\x1f".join((str(self.seed), self.rule_id, *salt))
        return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "little")

    def model(self, path: Path, kind: str) -> tuple[Any, Any]:
        """(model, tokenizer) of a checkpoint folder, loaded safely once per scan and device."""
        from fmfl_audit.inputs.checkpoints import load_hf_model, resolve_device

        device = resolve_device(self.device)
        loaded: tuple[Any, Any] = self.cache.get(
            f"hf-model:{kind}:{path}:{device}",
            lambda: load_hf_model(path, kind=kind, device=device),
        )
        return loaded

    def records(
        self,
        source: DataSource,
        *,
        require_text: bool = True,
        required: Sequence[str] = (),
        batch_size: int = DEFAULT_BATCH,
        numeric: Sequence[str] = (),
    ) -> Iterator[list[Record]]:
        """Stream batches of records; malformed ones are counted into the scan's ledger.

        `numeric` fields must be finite non-negative numbers where present (see `iter_records`).
        """
        stats = ReadStats(path=self.display(source.path))
        try:
            yield from iter_records(
                source,
                display=stats.path,
                stats=stats,
                require_text=require_text,
                required=required,
                batch_size=batch_size,
                numeric=numeric,
            )
        finally:
            # A checker that stops early (a sample) still read what it read.
            self.reads.add(stats)
        self.ledger.commit(stats)

    def map_shards(
        self,
        source: DataSource,
        task: ShardTask,
        *,
        require_text: bool = True,
        required: Sequence[str] = (),
        batch_size: int = DEFAULT_BATCH,
        shared: Any = None,
    ) -> Iterator[Any]:
        """Run `task` over the shards of `source` on the scan's executor; the partials in file
        order (fold them in that order). Malformed records are counted into the ledger."""
        for _, partial in self.map_sources(
            [(source, task)],
            require_text=require_text,
            required=required,
            batch_size=batch_size,
            shared=shared,
        ):
            yield partial

    def map_sources(
        self,
        jobs: Sequence[tuple[DataSource, ShardTask]],
        *,
        require_text: bool = True,
        required: Sequence[str] = (),
        batch_size: int = DEFAULT_BATCH,
        shared: Any = None,
    ) -> Iterator[tuple[int, Any]]:
        """`map_shards` over several sources at once, so that small files keep every worker busy
        too: (job index, partial), all of job 0's shards in file order, then job 1's, and so on."""
        items: list[tuple[ShardTask, Shard]] = []
        owner: list[int] = []
        shard_counts: list[int] = []
        for j, (source, task) in enumerate(jobs):
            display = self.display(source.path)
            size = source.path.stat().st_size if source.path.is_file() else 0
            target = self.executor.shard_target(size)
            shards = [Shard.of_file(source, display)]
            if target is not None:
                # A file that cannot be planned is read as one shard, which reports it unreadable.
                with contextlib.suppress(InputError):
                    shards = plan_shards(source, display, target_bytes=target)

            items.extend((task, shard) for shard in shards)
            owner.extend([j] * len(shards))
            shard_counts.append(len(shards))
        opts = ReadOptions(
            require_text=require_text, required=tuple(required), batch_size=batch_size
        )
        parts: list[ReadStats] = []
        results = self.executor.map(items, opts, cache=self.cache, shared=shared)
        for j, (partial, stats) in zip(owner, results, strict=True):
            parts.append(stats)
            yield j, partial
            if len(parts) == shard_counts[j]:
                merged = merge_stats(parts, self.display(jobs[j][0].path))
                self.ledger.commit(merged)
                self.reads.add(merged)
                parts = []


@dataclass
class CheckOutput:
    """What a checker returns."""

    findings: list[FindingDraft] = field(default_factory=list)
    metrics: dict[str, dict[str, MetricValue]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


class Checker(ABC):
    """One rule family's implementation. Subclasses set the class attributes and `run`."""

    id: ClassVar[str]
    """The rule id this checker implements by default (a pack may bind other ids to it)."""
    title: ClassVar[str]
    area: ClassVar[Area]
    threat: ClassVar[str]
    inputs: ClassVar[tuple[str, ...]]
    """Manifest parts the checker needs, as written in THREATS.md (documentation)."""
    Params: ClassVar[type[CheckerParams]] = NoParams
    runtime_skips: ClassVar[tuple[str, ...]] = ()
    """When the rule is still skipped after planning: conditions only reading the data can show
    (`validate` lists them, so that "will run" does not over-promise)."""

    @abstractmethod
    def missing_inputs(self, deployment: Deployment) -> list[str]:
        """Names of required manifest inputs that are absent; empty when the rule can run."""

    @abstractmethod
    def run(self, ctx: CheckContext, params: Any) -> CheckOutput:
        """Measure and report. `params` is an instance of `Params`."""


def missing_classifier(deployment: Deployment, *, evaluation: bool) -> list[str]:
    """Missing inputs of a rule that runs a sequence classifier (over the evaluation data)."""
    m = deployment.manifest
    missing = []
    if not any(x.kind == "sequence-classifier" for x in m.models):
        missing.append("models[] of kind 'sequence-classifier'")
    if evaluation and m.evaluation is None:
        missing.append("evaluation")
    return missing


def clients_with(deployment: Deployment, attr: str) -> list[Any]:
    """Clients whose `attr` (e.g. `synthetic_data`) is set, in manifest order."""
    return [c for c in deployment.manifest.clients if getattr(c, attr) is not None]
