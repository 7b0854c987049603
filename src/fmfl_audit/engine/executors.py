"""Where record-level work runs: in this process, in forked local workers, or as Ray tasks.

The contract (the map/reduce shape every record-level checker uses, through
`CheckContext.map_shards`):

- a data file is cut into `Shard`s (`inputs.shards`); reading the shards in order yields exactly
  the records of one pass over the file;
- a checker's `ShardTask` is the *map* step: a small picklable object holding only settings; its
  `map(batches, env)` consumes the record batches of one shard and returns a small picklable
  *partial* (counts, the first few evidence items, hashes); heavy per-process objects (an NLP
  engine, a compiled detector) are built once per process through `env.cache`, and one large
  read-only object per map (a leakage index) travels as `env.shared`;
- the executor returns the partials **in shard order**, and the checker folds them in that order
  (the *reduce*). Because reduction is in file order and every partial keeps record order, the
  findings and the JSON report do not depend on the executor, the number of workers or where the
  file was cut (tested: local inline, local forked workers and a local Ray cluster give the same
  report, timing aside).

At most `2 x workers` shards are in flight, so a slow shard never lets finished partials pile up:
memory stays bounded by the partials in the window, not by the size of the file.
"""

from __future__ import annotations

import os
import sys
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from fmfl_audit.errors import FmflAuditError, InputError, MissingDependencyError, UsageError
from fmfl_audit.inputs.records import DEFAULT_BATCH, ReadStats, Record, Shard, iter_shard
from fmfl_audit.inputs.shards import shard_bytes_for


class Cache:
    """Per-process cache of expensive objects (see `checkers.base.ResourceCache`)."""

    def __init__(self) -> None:
        self._items: dict[str, Any] = {}

    def get(self, key: str, factory: Callable[[], Any]) -> Any:
        """The cached object for `key`, built by `factory` on first use."""
        if key not in self._items:
            self._items[key] = factory()
        return self._items[key]


@dataclass(frozen=True)
class ShardEnv:
    """What a `ShardTask` may use besides its settings."""

    cache: Cache
    """Objects built once per process (the scan's cache when the shard runs in the scan)."""
    shared: Any = None
    """The read-only object passed to `map_shards(shared=...)`, if any."""


class ShardTask(ABC):
    """The map step of a record-level checker: picklable, holding settings only."""

    @abstractmethod
    def map(self, batches: Iterator[list[Record]], env: ShardEnv) -> Any:
        """Consume every batch of one shard; return a small picklable partial result."""


@dataclass(frozen=True)
class ReadOptions:
    """How the records of a shard are read (see `iter_records`)."""

    require_text: bool = True
    required: tuple[str, ...] = ()
    batch_size: int = DEFAULT_BATCH


def run_shard(task: ShardTask, shard: Shard, opts: ReadOptions, env: ShardEnv) -> Any:
    """Run `task` over one shard: (partial, ReadStats), or the FmflAuditError it raised.

    Errors are returned rather than raised so that they cross process boundaries unchanged (a Ray
    task error would otherwise arrive wrapped, with a remote traceback in its message).
    """
    stats = ReadStats(path=shard.display)
    batches = iter_shard(
        shard,
        stats=stats,
        require_text=opts.require_text,
        required=opts.required,
        batch_size=opts.batch_size,
    )
    try:
        partial = task.map(batches, env)
        for _ in batches:  # a task that stopped early still gets the file's counts right
            pass
    except InputError as exc:
        if stats.records:
            return _Failure(type(exc).__name__, str(exc))
        # A whole-file problem before any record (the file cannot be opened, a required column
        # is missing): that file is an unreadable input of the rule, which goes on with its
        # other files instead of erroring and hiding what they hold.
        prefix = f"{shard.display}: "
        message = str(exc)
        stats.bad(shard.display, message.removeprefix(prefix))
        return task.map(iter(()), env), stats
    except FmflAuditError as exc:
        return _Failure(type(exc).__name__, str(exc))
    return partial, stats


@dataclass(frozen=True)
class _Failure:
    kind: str
    message: str

    def raise_(self) -> None:
        from fmfl_audit import errors

        cls = getattr(errors, self.kind, None)
        if isinstance(cls, type) and issubclass(cls, FmflAuditError):
            if cls is MissingDependencyError:
                raise errors.CheckerError(self.message)
            raise cls(self.message)
        raise errors.CheckerError(self.message)


def _unwrap(result: Any) -> tuple[Any, ReadStats]:
    if isinstance(result, _Failure):
        result.raise_()
    partial, stats = result
    return partial, stats


def _in_order(
    items: Sequence[tuple[ShardTask, Shard]],
    limit: int,
    *,
    submit: Callable[[tuple[ShardTask, Shard]], Any],
    result: Callable[[Any], Any],
    cancel: Callable[[Any], Any],
) -> Iterator[tuple[Any, ReadStats]]:
    """Submit items with at most `limit` in flight; yield their results in item order."""
    window: deque[Any] = deque()
    todo = iter(items)
    try:
        while True:
            while len(window) < limit and (nxt := next(todo, None)) is not None:
                window.append(submit(nxt))
            if not window:
                return
            yield _unwrap(result(window.popleft()))
    finally:
        for pending in window:
            cancel(pending)


class Executor(ABC):
    """Runs the map step of a sharded scan and returns the partials in shard order."""

    shard_bytes: int | None = None
    """Fixed shard size; None sizes shards by file size and parallelism (`shard_bytes_for`)."""

    @property
    @abstractmethod
    def parallelism(self) -> int:
        """How many shards can run at once."""

    def shard_target(self, size: int) -> int | None:
        """Target shard size for a `size`-byte file; None reads the file as one shard."""
        if self.shard_bytes is not None:
            return self.shard_bytes
        if self.parallelism <= 1:
            return None
        return shard_bytes_for(size, self.parallelism)

    @abstractmethod
    def map(
        self,
        items: Sequence[tuple[ShardTask, Shard]],
        opts: ReadOptions,
        *,
        cache: Cache,
        shared: Any = None,
    ) -> Iterator[tuple[Any, ReadStats]]:
        """(partial, stats) of every (task, shard) item, in the order of `items`."""

    def close(self) -> None:
        """Release what the executor holds (worker processes, a Ray connection)."""
        return None


def available_cpus() -> int:
    """CPU cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


class LocalExecutor(Executor):
    """This machine: in process for one worker or one shard, else forked worker processes.

    Forked workers inherit the scan's cache (a Presidio engine built once is not rebuilt) and the
    shared object, so neither is pickled; only shards and partials cross the pipe. Once this
    process has initialised CUDA (a forked child cannot use it), shards run in this process.
    """

    def __init__(self, workers: int = 1, *, shard_bytes: int | None = None) -> None:
        if workers < 1:
            raise UsageError("workers must be at least 1")
        self.workers = workers
        self.shard_bytes = shard_bytes

    @property
    def parallelism(self) -> int:
        return self.workers

    def map(
        self,
        items: Sequence[tuple[ShardTask, Shard]],
        opts: ReadOptions,
        *,
        cache: Cache,
        shared: Any = None,
    ) -> Iterator[tuple[Any, ReadStats]]:
        if self.workers <= 1 or len(items) <= 1 or _cuda_in_use():
            env = ShardEnv(cache=cache, shared=shared)
            for task, shard in items:
                yield _unwrap(run_shard(task, shard, opts, env))
            return
        yield from self._forked(items, opts, ShardEnv(cache=cache, shared=shared))

    def _forked(
        self, items: Sequence[tuple[ShardTask, Shard]], opts: ReadOptions, env: ShardEnv
    ) -> Iterator[tuple[Any, ReadStats]]:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(
            max_workers=min(self.workers, len(items)),
            mp_context=multiprocessing.get_context("fork"),
            initializer=_init_forked,
            initargs=(env,),
        ) as pool:
            yield from _in_order(
                items,
                2 * self.workers,
                submit=lambda item: pool.submit(_forked_run, item[0], item[1], opts),
                result=lambda fut: fut.result(),
                cancel=lambda fut: fut.cancel(),
            )


def _cuda_in_use() -> bool:
    """True when this process has initialised CUDA: a forked child cannot use it, so shards run
    in this process instead."""
    torch = sys.modules.get("torch")
    return bool(torch is not None and torch.cuda.is_initialized())


_FORKED_ENV: list[ShardEnv] = []
"""The env of a forked worker process (set by its initializer; empty in the scan's process)."""


def _init_forked(env: ShardEnv) -> None:
    _FORKED_ENV.append(env)
    torch = sys.modules.get("torch")
    if torch is not None:
        # One thread per worker process (the processes are the parallelism), and OpenMP's thread
        # team inherited from the parent is never used after fork (libgomp is not fork-safe).
        torch.set_num_threads(1)


def _forked_run(task: ShardTask, shard: Shard, opts: ReadOptions) -> Any:
    return run_shard(task, shard, opts, _FORKED_ENV[0])


_RAY_CACHE = Cache()
"""Per-process cache of a Ray worker (a worker process serves many tasks)."""


def _ray_run(task: ShardTask, shard: Shard, opts: ReadOptions, shared: Any) -> Any:
    if not shard.source.path.exists():
        return _Failure(
            "InputError",
            f"{shard.display}: not found on Ray node {os.uname().nodename} at "
            f"{shard.source.path}; Ray workers read shards where they run: put the data on "
            "storage every node mounts at the same path",
        )
    return run_shard(task, shard, opts, ShardEnv(cache=_RAY_CACHE, shared=shared))


class RayExecutor(Executor):
    """Ray tasks on a local Ray instance (started here) or an existing cluster (`address`).

    Every node must have fmfl-audit installed and see the data files at the same paths (shards
    are read where they run; only settings, shard bounds and partials travel).
    """

    def __init__(
        self,
        address: str | None = None,
        *,
        workers: int | None = None,
        shard_bytes: int | None = None,
    ) -> None:
        self.shard_bytes = shard_bytes
        try:
            import ray
        except ImportError:
            raise MissingDependencyError("ray", extra="ray") from None
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # never phone home
        self._ray = ray
        self._owns = not ray.is_initialized()
        if self._owns:
            kwargs: dict[str, Any] = {
                "include_dashboard": False,
                "log_to_driver": False,
                "configure_logging": False,
            }
            if address is None:  # a Ray instance for this scan only, reachable on loopback only
                kwargs["num_cpus"] = workers or available_cpus()
                kwargs["_node_ip_address"] = "127.0.0.1"
            try:
                # "local" starts a new instance: a bare ray.init() would silently join whatever
                # cluster `ray start` last recorded on this machine (someone else's, perhaps).
                ray.init(address=address or "local", **kwargs)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                where = address or "a local Ray instance"
                raise UsageError(f"--executor ray: cannot connect to {where}: {exc}") from None
        cpus = int(ray.cluster_resources().get("CPU", 1))
        self._cpus = max(1, cpus)
        self._remote = ray.remote(num_cpus=1)(_ray_run)

    @property
    def parallelism(self) -> int:
        return self._cpus

    def map(
        self,
        items: Sequence[tuple[ShardTask, Shard]],
        opts: ReadOptions,
        *,
        cache: Cache,
        shared: Any = None,
    ) -> Iterator[tuple[Any, ReadStats]]:
        ray = self._ray
        shared_ref = ray.put(shared)
        yield from _in_order(
            items,
            2 * self._cpus,
            submit=lambda item: self._remote.remote(item[0], item[1], opts, shared_ref),
            result=ray.get,
            cancel=ray.cancel,
        )

    def close(self) -> None:
        if self._owns and self._ray.is_initialized():
            self._ray.shutdown()


def make_executor(
    kind: str, *, workers: int | None, address: str | None, shard_bytes: int | None = None
) -> Executor:
    """The executor named on the command line (`local` or `ray`)."""
    if kind == "local":
        return LocalExecutor(workers or available_cpus(), shard_bytes=shard_bytes)
    if kind == "ray":
        return RayExecutor(address, workers=workers, shard_bytes=shard_bytes)
    raise UsageError(f"unknown executor {kind!r} (choose local or ray)")
