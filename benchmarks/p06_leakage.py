"""FMFL-P06 scale: indexing + probing time and peak memory at 10^5 and 10^6 records.

    .venv/bin/python benchmarks/p06_leakage.py [--sizes 100000 1000000] [--workdir /tmp/p06bench]

For each size N, writes a deployment with 4 clients: N/2 source records (prompts and private
samples, N/16 of each per client) and N/2 synthetic records (N/8 per client), 24 words each from a
20,000-word vocabulary, 1% of the synthetic records carrying a 10-word span of another client's
prompt. Then runs FMFL-P06 through the library in a fresh subprocess and reports its wall time
(Presidio, used to scrub evidence excerpts, is imported and warmed before the clock starts), the
process's peak RSS next to its RSS after those imports, and the leaked spans found (must equal
the planted ones). The anchor is linearity: 10x the records should cost at most ~11x the time.
"""

from __future__ import annotations

import argparse
import itertools
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

from _leakcorpus import write_deployment


def _write_deployment(root: Path, n: int, seed: int = 0) -> int:
    """Write the data and manifest (`_leakcorpus`); return the number of planted leaks."""
    return len(write_deployment(root, n, seed))


def _child(manifest: str) -> None:
    from fmfl_audit.checkers.privacy._presidio import build_analyzer
    from fmfl_audit.engine.runner import Auditor
    from fmfl_audit.manifest import load_manifest

    # Evidence excerpts are scrubbed with Presidio: import and warm it before the clock starts so
    # the timing is the scan's, not a one-off library start-up.
    build_analyzer()
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t0 = time.perf_counter()
    rep = Auditor(load_manifest(manifest), only=("FMFL-P06",)).run()
    elapsed = time.perf_counter() - t0
    r = rep.rule("FMFL-P06")
    spans = sum(sum(row.values()) for row in r.metrics["federation"]["leakage_matrix"].values())
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "seconds": elapsed,
                "peak_rss_mib": peak,
                "base_rss_mib": base_rss,
                "spans": spans,
                "outcome": r.outcome.value,
                "error": r.error,
                "distinct_shingles": r.metrics["federation"]["distinct_shingles"],
            }
        )
    )


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        _child(sys.argv[2])
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/p06bench"))
    args = ap.parse_args()
    results = {}
    for n in args.sizes:
        root = args.workdir / str(n)
        t0 = time.perf_counter()
        planted = _write_deployment(root, n)
        gen = time.perf_counter() - t0
        out = subprocess.run(
            [sys.executable, __file__, "--child", str(root / "manifest.yaml")],
            check=True,
            capture_output=True,
            text=True,
        )
        res = json.loads(out.stdout.strip().splitlines()[-1])
        results[n] = res
        print(
            f"N={n:>9,} records: P06 {res['seconds']:7.1f}s, "
            f"peak RSS {res['peak_rss_mib']:5.0f} MiB (after imports {res['base_rss_mib']:.0f}), "
            f"{res['distinct_shingles']:,} distinct shingles, spans found {res['spans']} "
            f"(planted {planted}), outcome {res['outcome']} [data written in {gen:.0f}s]"
        )
    sizes = sorted(results)
    for small, big in itertools.pairwise(sizes):
        ratio = results[big]["seconds"] / results[small]["seconds"]
        print(f"time ratio {big:,}/{small:,} records: {ratio:.2f}x for {big / small:.0f}x records")


if __name__ == "__main__":
    main()
