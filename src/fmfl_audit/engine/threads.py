"""How many threads model inference uses, set on purpose.

torch (and the BLAS under numpy) start one thread per core by default. On a machine where anything
else runs (our own record-level workers, a CI neighbour), OpenMP threads that spin-wait for
each other at every operator oversubscribe the cores: a demo scan ran 4.6x slower on a busy 2-core
machine (issue 16; benchmarks/RESULTS.md). The default here gives inference the cores the
record-level workers do not claim: `cores // workers`, so 1 with the default `--workers` (every
core); with more than one thread, OpenMP threads wait passively (`OMP_WAIT_POLICY=PASSIVE` unless
set) so that they do not spin on a busy machine. Measured in `benchmarks/threads_load.py`.
"""

from __future__ import annotations

import os
import sys

from fmfl_audit.engine.executors import available_cpus

THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def default_threads(workers: int | None) -> int:
    """Threads for model inference when none are asked for: an explicit `OMP_NUM_THREADS` in the
    environment wins; else the cores left per worker (at least 1)."""
    env = os.environ.get("OMP_NUM_THREADS", "")
    if env.isdigit() and int(env) > 0:
        return int(env)
    cores = available_cpus()
    return max(1, cores // max(1, workers or cores))


def default_wait_policy(threads: int) -> None:
    """With the default of several threads, let OpenMP threads sleep instead of spin while they
    wait (`OMP_WAIT_POLICY=PASSIVE`, unless set): beside other work on the machine, spinning
    threads steal the cores the others wait for. Takes effect before torch is imported."""
    if threads > 1:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def apply_threads(threads: int) -> None:
    """Use `threads` for torch and BLAS from now on in this process.

    Before torch is imported the environment decides its pool size (OpenMP reads it once); after,
    `torch.set_num_threads` changes it.
    """
    for var in THREAD_VARS:
        os.environ[var] = str(threads)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(threads)
