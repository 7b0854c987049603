"""The full demo scan: wall time, peak memory and where the time goes, rule by rule.

    .venv/bin/python benchmarks/demo_scan.py [--manifest PATH] [--workers W] [--executor local|ray]
        [--omp-threads N] [--baseline SRC] [--repeat R]

Runs, in a fresh subprocess, exactly what a user would type:

    fmfl-audit scan <manifest> --format json -o <tmp>/report.json --exit-zero --no-progress

on `examples/reading-tutor/compromised/manifest.yaml` (the quickstart manifest when the demo has
not been built). Measured from outside the scan:

- wall time: `time.perf_counter` around the subprocess, start-up and imports included;
- peak RSS: `ru_maxrss` of that child alone (`os.wait4` on its pid, so earlier children of this
  script cannot leak into it). The kernel reports the largest single process of the child's tree
  (the scan or one of its forked workers, whichever peaked higher), not their sum;
- peak tree PSS: the proportional set size summed over the scan and its live descendants, sampled
  from /proc every 0.1 s (PSS splits pages shared by forked workers between them, so the sum is
  the tree's real footprint; a sample can miss a peak shorter than the interval).

Then it reads the JSON report: each rule's `duration_s` with its share of the wall time, sorted by
time; the report's own `duration_s` (the Auditor's run: planning, checkers, grading, gating); and
what lies outside the rules (CLI start-up, imports, manifest loading, grading and rendering).

The environment is passed through unchanged unless `--omp-threads N` is given, which sets
OMP_NUM_THREADS=N for the scan (torch's intra-op threads among others); the line
"OMP_NUM_THREADS:" says which applied.

Before/after: `--baseline SRC` (the `src` folder of another checkout, e.g. `git archive main src
rules | tar -x -C /tmp/base`) also runs the scan with that code first on PYTHONPATH, and
`--repeat R` runs R rounds, each running the baseline then the current code, so both see the
same machine load. The fastest round of each is tabulated, with the share of FMFL-P03 and every
canary's exposure side by side.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "examples" / "reading-tutor" / "compromised" / "manifest.yaml"
QUICKSTART = REPO / "examples" / "quickstart" / "manifest.yaml"


@dataclass(frozen=True)
class Measured:
    """One child process, measured from outside."""

    returncode: int
    seconds: float
    peak_rss_mib: float
    """ru_maxrss of the child (largest single process of its tree)."""
    peak_tree_pss_mib: float
    """Largest sampled sum of PSS over the child and its live descendants."""


def _descendants(root: int) -> list[int]:
    """`root` and every live process below it (from the ppid field of /proc/*/stat)."""
    parent: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name may hold spaces and parentheses: fields resume after the last ')'.
        fields = stat[stat.rindex(")") + 2 :].split()
        parent[int(entry.name)] = int(fields[1])
    tree = [root]
    for pid in tree:
        tree.extend(child for child, ppid in parent.items() if ppid == pid)
    return tree


def _pss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def run_measured(
    cmd: list[str], *, env: dict[str, str] | None = None, interval: float = 0.1
) -> tuple[Measured, str]:
    """Run `cmd` to completion; its measurements and its combined stdout + stderr."""
    peak = [0]
    done = threading.Event()
    with tempfile.TemporaryFile("w+") as log:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)

        def sample() -> None:
            while not done.is_set():
                total = sum(_pss_kib(p) for p in _descendants(proc.pid))
                peak[0] = max(peak[0], total)
                done.wait(interval)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        # wait4 gives this child's own rusage (its reaped descendants included), not the running
        # maximum over every child this script has had, which RUSAGE_CHILDREN would.
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - t0
        done.set()
        sampler.join()
        proc.returncode = os.waitstatus_to_exitcode(status)
        log.seek(0)
        output = log.read()
    measured = Measured(
        returncode=proc.returncode,
        seconds=seconds,
        peak_rss_mib=usage.ru_maxrss / 1024,  # KiB on Linux
        peak_tree_pss_mib=peak[0] / 1024,
    )
    return measured, output


def console_script() -> Path:
    """The venv's `fmfl-audit` (next to this interpreter)."""
    script = Path(sys.executable).parent / "fmfl-audit"
    if not script.exists():
        sys.exit(f"no console script at {script}: install the package in this environment")
    return script


def scan_env(omp_threads: int | None) -> tuple[dict[str, str], str]:
    """The scan's environment and a line saying what OMP_NUM_THREADS it had."""
    env = dict(os.environ)
    if omp_threads is not None:
        env["OMP_NUM_THREADS"] = str(omp_threads)
        return env, f"OMP_NUM_THREADS: {omp_threads} (set by --omp-threads)"
    inherited = env.get("OMP_NUM_THREADS")
    if inherited is None:
        return env, "OMP_NUM_THREADS: unset (library defaults)"
    return env, f"OMP_NUM_THREADS: {inherited} (inherited from the environment)"


def scan_once(
    manifest: Path, args: argparse.Namespace, env: dict[str, str]
) -> tuple[Measured, dict, list[str]]:
    """One scan in a fresh process: its measurements, its JSON report and the command."""
    with tempfile.TemporaryDirectory(prefix="fmfl-demo-scan-") as tmp:
        report_path = Path(tmp) / "report.json"
        cmd = [str(console_script()), "scan", str(manifest), "--format", "json"]
        cmd += ["-o", str(report_path), "--exit-zero", "--no-progress"]
        cmd += ["--executor", args.executor]
        if args.workers is not None:
            cmd += ["--workers", str(args.workers)]
        m, output = run_measured(cmd, env=env)
        if m.returncode != 0:
            sys.exit(f"scan exited {m.returncode}:\n{output[-4000:]}")
        return m, json.loads(report_path.read_text()), cmd


def rule_table(m: Measured, report: dict) -> None:
    """Each rule's time and share of the wall time, and what lies outside the rules."""
    print(
        f"wall {m.seconds:.2f} s, peak RSS {m.peak_rss_mib:.0f} MiB (largest process), "
        f"peak tree PSS {m.peak_tree_pss_mib:.0f} MiB (sampled); grade {report['grade']}, "
        f"{len(report['findings'])} findings"
    )
    rules = sorted(report["rules"], key=lambda r: (-r["duration_s"], r["id"]))
    print(f"{'rule':<10} {'outcome':<9} {'seconds':>8} {'of wall':>8}")
    for r in rules:
        share = r["duration_s"] / m.seconds
        print(f"{r['id']:<10} {r['outcome']:<9} {r['duration_s']:>8.2f} {share:>8.1%}")
    in_rules = sum(r["duration_s"] for r in rules)
    auditor = report.get("duration_s") or 0.0
    print(f"{'sum of rule times':<29} {in_rules:>8.2f} {in_rules / m.seconds:>8.1%}")
    print(
        f"{'Auditor.run, outside rules':<29} {auditor - in_rules:>8.2f} "
        f"{(auditor - in_rules) / m.seconds:>8.1%}   (planning, grading, gating)"
    )
    print(
        f"{'outside Auditor.run':<29} {m.seconds - auditor:>8.2f} "
        f"{(m.seconds - auditor) / m.seconds:>8.1%}   (start-up, imports, manifest, rendering)"
    )
    print(f"{'wall':<29} {m.seconds:>8.2f} {1:>8.1%}")


def p03_figures(m: Measured, report: dict) -> dict[str, str]:
    """FMFL-P03's time, share of the wall time and each canary's exposure (and method)."""
    rule = next((r for r in report["rules"] if r["id"] == "FMFL-P03"), None)
    if rule is None:
        return {}
    out = {"FMFL-P03 seconds": f"{rule['duration_s']:.2f}"}
    out["FMFL-P03 share of wall"] = f"{rule['duration_s'] / m.seconds:.1%}"
    for subject, figures in sorted(rule.get("metrics", {}).items()):
        for cid, c in sorted(figures.get("canaries", {}).items()):
            out[f"{subject} {cid} exposure (bits)"] = f"{c['exposure_bits']:.4f} ({c['method']})"
    return out


def compare(rounds: dict[str, list[tuple[Measured, dict]]]) -> None:
    """The fastest run of each variant side by side."""
    best = {k: min(v, key=lambda mr: mr[0].seconds) for k, v in rounds.items()}
    rows: dict[str, dict[str, str]] = {}
    for name, (m, report) in best.items():
        rows[name] = {"wall seconds": f"{m.seconds:.2f}", **p03_figures(m, report)}
    keys = list(dict.fromkeys(k for r in rows.values() for k in r))
    names = list(rows)
    print(f"\nfastest of {len(next(iter(rounds.values())))} round(s) each:")
    print(f"{'':<40} " + " ".join(f"{n:>24}" for n in names))
    for k in keys:
        print(f"{k:<40} " + " ".join(f"{rows[n].get(k, '-'):>24}" for n in names))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--manifest", type=Path, default=None, help="Default: the demo, else quickstart."
    )
    ap.add_argument("--workers", type=int, default=None, help="Passed to --workers (default: all).")
    ap.add_argument("--executor", choices=("local", "ray"), default="local")
    ap.add_argument(
        "--omp-threads", type=int, default=None, help="Set OMP_NUM_THREADS for the scan."
    )
    ap.add_argument(
        "--baseline", type=Path, default=None, help="A src folder to run first, for comparison."
    )
    ap.add_argument("--repeat", type=int, default=1, help="Rounds (fastest reported).")
    args = ap.parse_args()

    manifest = args.manifest or (DEMO if DEMO.exists() else QUICKSTART)
    env, omp_line = scan_env(args.omp_threads)
    variants = {"current": env}
    if args.baseline is not None:
        base_env = dict(env)
        base_env["PYTHONPATH"] = os.pathsep.join(
            [str(args.baseline.resolve()), *filter(None, [env.get("PYTHONPATH")])]
        )
        variants = {"baseline": base_env, "current": env}
    rounds: dict[str, list[tuple[Measured, dict]]] = {name: [] for name in variants}
    cmd: list[str] = []
    for _ in range(args.repeat):
        for name, variant_env in variants.items():
            m, report, cmd = scan_once(manifest, args, variant_env)
            rounds[name].append((m, report))

    print(
        f"machine: {platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    )
    print(f"manifest: {manifest.relative_to(REPO) if manifest.is_relative_to(REPO) else manifest}")
    workers = args.workers if args.workers is not None else "default (all cores)"
    print(f"executor: {args.executor}, workers: {workers}; {omp_line}")
    print(f"command: {' '.join(cmd[1:])}")
    if args.baseline is not None:
        print(f"baseline: the same command with PYTHONPATH={args.baseline}")
    for name, runs in rounds.items():
        m, report = min(runs, key=lambda mr: mr[0].seconds)
        print(f"\n[{name}] fastest of {len(runs)}")
        rule_table(m, report)
    compare(rounds)


if __name__ == "__main__":
    main()
