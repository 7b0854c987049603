"""CLI start-up: wall time of `fmfl-audit --help` against a bare interpreter and against the heavy
imports it must not pay (target: `--help` in at most 0.3 s).

    .venv/bin/python benchmarks/cli_start.py [--repeat 10]

Three commands run as subprocesses, each once as a warm-up (page cache, .pyc files) and then
`--repeat` times, timed with `time.perf_counter` around `subprocess.run` (output discarded):

- `python -c pass`: the floor, an interpreter that starts and exits;
- `fmfl-audit --help`: the venv's console script (`fmfl-audit` next to `sys.executable`);
- `python -c "import torch, transformers"`: what a CLI that imported its model stack up front
  would pay before printing anything.

The table gives the median and the minimum of each, and the median's ratio to the bare
interpreter; the goal line judges the median of `fmfl-audit --help`.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

GOAL_S = 0.3


def _time(cmd: list[str], repeat: int) -> list[float]:
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        out.append(time.perf_counter() - t0)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=10, help="Timed runs per command.")
    args = ap.parse_args()

    script = Path(sys.executable).parent / "fmfl-audit"
    if not script.exists():
        sys.exit(f"no console script at {script}: install the package in this environment")
    runs = [
        ("python -c pass", [sys.executable, "-c", "pass"]),
        ("fmfl-audit --help", [str(script), "--help"]),
        (
            'python -c "import torch, transformers"',
            [sys.executable, "-c", "import torch, transformers"],
        ),
    ]
    times = {name: _time(cmd, args.repeat) for name, cmd in runs}

    print(
        f"machine: {platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    )
    print(f"{args.repeat} timed runs each after 1 warm-up; console script {script}")
    floor = statistics.median(times["python -c pass"])
    print(f"{'command':<40} {'median s':>9} {'min s':>8} {'vs python':>10}")
    for name, _ in runs:
        med = statistics.median(times[name])
        print(f"{name:<40} {med:>9.3f} {min(times[name]):>8.3f} {med / floor:>9.1f}x")
    help_med = statistics.median(times["fmfl-audit --help"])
    heavy = statistics.median(times['python -c "import torch, transformers"'])
    holds = "holds" if help_med <= GOAL_S else "FAILS"
    print(
        f"goal: --help at most {GOAL_S} s: {holds} (median {help_med:.3f} s; "
        f"{heavy / help_med:.1f}x faster than importing torch + transformers)"
    )


if __name__ == "__main__":
    main()
