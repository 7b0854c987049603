"""The demo scan on an idle and on a loaded machine, with torch's old default threads and ours.

    .venv/bin/python benchmarks/threads_load.py [--manifest PATH] [--hogs N] [--repeat R]
        [--only RULE ...]

Four runs (R times each, median reported), each a fresh `fmfl-audit scan <manifest> --format
json:<tmp> --exit-zero --no-progress` subprocess:

- before / idle:   `--threads <cores>` (what torch did by default: one thread per core);
- before / loaded: the same with N CPU hogs (`while True: pass` processes) running beside it;
- after / idle:    the CLI default (`--threads` unset: cores / workers, 1 on the default workers);
- after / loaded:  the same with the hogs;
- and, for comparison, `--threads <cores>` with `OMP_WAIT_POLICY=PASSIVE` (OpenMP threads sleep
  instead of spinning while they wait), idle and loaded.

OMP_NUM_THREADS is removed from the scan's environment so the CLI decides. The "before" rows use
`--threads <cores>`, which reproduces torch's default exactly (the CLI exports it before torch is
imported). Ratios are taken within one run of this script; absolute times move with the machine.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "examples" / "reading-tutor" / "compromised" / "manifest.yaml"


def _hog() -> None:  # pragma: no cover - runs in a child process
    while True:
        pass


def _scan(
    manifest: Path, extra: list[str], only: list[str], env_extra: dict[str, str]
) -> tuple[float, dict[str, float]]:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    env.update(env_extra)
    exe = Path(sys.executable).parent / "fmfl-audit"
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "report.json"
        cmd = [str(exe), "scan", str(manifest), "-f", f"json:{out}", "--exit-zero", "--no-progress"]
        cmd += [a for r in only for a in ("--only", r)] + extra
        t0 = time.perf_counter()
        subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)
        wall = time.perf_counter() - t0
        report = json.loads(out.read_text())
    rules = {r["id"]: r["duration_s"] for r in report["rules"] if r["duration_s"] > 1.0}
    return wall, rules


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--manifest", type=Path, default=DEMO)
    ap.add_argument("--hogs", type=int, default=1, help="CPU hog processes in the loaded runs")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--only", action="append", default=[], help="restrict the scan to rules")
    args = ap.parse_args()
    cores = len(os.sched_getaffinity(0))
    print(
        f"machine: {cores} cores, python {sys.version.split()[0]}; hogs in loaded runs: {args.hogs}"
    )
    rows = []
    configs = [
        ("before (threads = cores)", ["--threads", str(cores)], {}),
        (
            "threads = cores, passive wait",
            ["--threads", str(cores)],
            {"OMP_WAIT_POLICY": "PASSIVE"},
        ),
        ("after (default)", [], {}),
    ]
    for label, extra, env_extra in configs:
        for loaded in (False, True):
            hogs = [mp.Process(target=_hog, daemon=True) for _ in range(args.hogs if loaded else 0)]
            for h in hogs:
                h.start()
            try:
                runs = [
                    _scan(args.manifest, extra, args.only, env_extra) for _ in range(args.repeat)
                ]
            finally:
                for h in hogs:
                    h.terminate()
                    h.join()
            wall = statistics.median(w for w, _ in runs)
            rows.append((label, "loaded" if loaded else "idle", wall, runs[0][1]))
            print(f"{label:30} {'loaded' if loaded else 'idle':7} {wall:8.1f} s", flush=True)
    print("\n| torch threads | machine | wall | vs after/idle |")
    print("|---|---|---|---|")
    base = next(w for lab, m, w, _ in rows if lab.startswith("after") and m == "idle")
    for lab, m, w, _ in rows:
        print(f"| {lab} | {m} | {w:.1f} s | {w / base:.2f}x |")
    print("\nslowest rules (s) per run:")
    for lab, m, _, rules in rows:
        top = sorted(rules.items(), key=lambda kv: -kv[1])[:5]
        print(f"  {lab} / {m}: " + ", ".join(f"{k} {v:.1f}" for k, v in top))


if __name__ == "__main__":
    main()
