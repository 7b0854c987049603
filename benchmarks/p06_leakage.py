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
import random
import resource
import subprocess
import sys
import time
from pathlib import Path

CLIENTS = ("a", "b", "c", "d")
WORDS_PER_RECORD = 24
VOCAB = 20_000


def _write_deployment(root: Path, n: int, seed: int = 0) -> int:
    """Write the data and manifest; return the number of planted leaks."""
    rng = random.Random(seed)
    vocab = [f"w{i}" for i in range(VOCAB)]
    per_source = n // (2 * 2 * len(CLIENTS))  # prompts and private per client = half of N
    per_synth = n // (2 * len(CLIENTS))
    planted = 0
    clients = []
    prompts_of: dict[str, list[list[str]]] = {}
    for c in CLIENTS:
        (root / c).mkdir(parents=True, exist_ok=True)
        for kind in ("prompts", "private"):
            rows = []
            with (root / c / f"{kind}.jsonl").open("w") as fh:
                for _ in range(per_source):
                    words = rng.choices(vocab, k=WORDS_PER_RECORD)
                    if kind == "prompts" and len(rows) < 1000:
                        rows.append(words)
                    fh.write(json.dumps({"text": " ".join(words)}) + "\n")
            if kind == "prompts":
                prompts_of[c] = rows
    for c in CLIENTS:
        others = [o for o in CLIENTS if o != c]
        with (root / c / "synthetic.jsonl").open("w") as fh:
            for i in range(per_synth):
                words = rng.choices(vocab, k=WORDS_PER_RECORD)
                if i % 100 == 0:
                    src = rng.choice(prompts_of[rng.choice(others)])
                    start = rng.randrange(0, WORDS_PER_RECORD - 10)
                    words[5:15] = src[start : start + 10]
                    planted += 1
                fh.write(json.dumps({"text": " ".join(words)}) + "\n")
        clients.append(
            {
                "id": c,
                "prompts": f"{c}/prompts.jsonl",
                "private_sample": f"{c}/private.jsonl",
                "synthetic_data": f"{c}/synthetic.jsonl",
            }
        )
    manifest = {"version": 1, "deployment": {"name": "p06-bench"}, "clients": clients}
    (root / "manifest.yaml").write_text(json.dumps(manifest))
    return planted


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
