"""FMFL-P01 throughput against Presidio's own BatchAnalyzerEngine, same engine and recognizers.

Both sides get the same Presidio AnalyzerEngine object (offline spaCy pipeline, the recognizers
of the default rule pack's FMFL-P01, custom ones included), the same entity list and score
threshold, on the same records, in one run; findings must be identical. The records are
synthetic-data-like: stories sampled from stories260K-style templates, with a share of records
carrying real PII sentences from the Presidio synthetic PII set (../shared/data, or
$FMFL_SHARED_DATA).

    python benchmarks/p01_throughput.py [--records 20000] [--pii-share 0.05] [--workers 1 2]
        [--repeat 1]

- anchor: `BatchAnalyzerEngine(engine).analyze_iterator(texts, ...)` over the texts in memory;
- fmfl-audit: the texts written as a JSONL `synthetic_data` file of a one-client deployment, and
  `Auditor(deployment, only=["FMFL-P01"], executor=LocalExecutor(w)).run()` for each w in
  `--workers` (with 2 or more workers the file is cut into shards that forked workers scan).

Build time is excluded from both clocks: the analyzer is built once through `shared_analyzer`
into a scan cache before any clock starts, and each path is warmed on two short texts first (the
anchor with one `analyze_iterator` call; fmfl-audit with one whole `Auditor.run()` over a
two-record deployment, which also compiles P01's prefilter, kept per analyzer). The Auditor
creates a fresh cache per scan, so the benchmark hands it that prepared cache (it replaces
`ResourceCache` in `engine.runner` with a factory returning it); forked workers inherit it as
they would in a real scan. Writing the JSONL file is not timed; the fmfl-audit clock covers the
whole `Auditor.run()` (planning, reading and parsing the file, sharding and forking, the scan,
the report).

Each row is reported with its wall time and its CPU time (this process plus its reaped children,
i.e. forked workers: `getrusage`), each as a ratio to the anchor's: on a machine shared with other
jobs the CPU ratio moves much less than the wall ratio. `--repeat R` runs R rounds, each running
every row once in turn, and keeps each row's fastest.

"Identical" compares P01's figures in the report (records scanned, records with PII, and the
count of every entity type) with the same figures computed from the anchor's results.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("FMFL_SHARED_DATA", REPO.parent / "shared" / "data"))
CLIENT = "bench"

STORY_PARTS = [
    "Once upon a time, there was a little girl named Lily.",
    "She loved to play outside in the park with her friends.",
    "One day, she saw a big red ball under a tree.",
    "Tom and his dog went to the market to buy some apples.",
    "The sun was shining and the birds were singing happy songs.",
    "Mom said they could have cake after they cleaned their room.",
    "The little bird was sad because it could not fly very high.",
    "They played together all day and went home when it was dark.",
]
WARM_UP = [
    "Warm-up: call 212-555-0187 or write to lily.smith@example.org, card 4111111111111111.",
    "Once upon a time, there was a little girl named Lily.",
]


def corpus(n: int, pii_share: float, seed: int) -> list[str]:
    rng = random.Random(seed)
    path = SHARED / "pii_presidio_synth" / "synth_dataset_v2.json"
    if not path.exists():
        raise SystemExit(f"{path} not found: set FMFL_SHARED_DATA to the shared data folder")
    pii = [" ".join(r["full_text"].split()) for r in json.loads(path.read_text())]
    out = []
    for _ in range(n):
        text = " ".join(rng.sample(STORY_PARTS, 4))
        if rng.random() < pii_share:
            text += " " + rng.choice(pii)
        out.append(text)
    return out


def write_deployment(root: Path, texts: list[str]) -> Path:
    """A one-client deployment whose synthetic data is `texts`; the manifest's path."""
    with (root / "synthetic.jsonl").open("w", encoding="utf-8") as fh:
        for i, text in enumerate(texts):
            fh.write(json.dumps({"id": i, "text": text}) + "\n")
    manifest = {
        "version": 1,
        "deployment": {"name": "p01-throughput"},
        "clients": [{"id": CLIENT, "synthetic_data": "synthetic.jsonl"}],
    }
    path = root / "manifest.yaml"
    path.write_text(json.dumps(manifest))
    return path


def anchor_figures(results: list[list[Any]]) -> dict[str, Any]:
    """P01's figures (see `PiiChecker._report`) computed from per-text analyzer results."""
    counts = Counter(r.entity_type for rs in results for r in rs)
    return {
        "records_scanned": len(results),
        "records_with_pii": sum(1 for rs in results if rs),
        "entities": dict(sorted(counts.items())),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=20000)
    ap.add_argument("--pii-share", type=float, default=0.05)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="Rounds (each runs every row once, in turn); each row's fastest round is reported.",
    )
    args = ap.parse_args()

    from presidio_analyzer import BatchAnalyzerEngine

    import fmfl_audit.engine.runner as runner
    from fmfl_audit.checkers.base import ResourceCache
    from fmfl_audit.checkers.privacy._presidio import shared_analyzer
    from fmfl_audit.checkers.privacy.pii import PiiParams
    from fmfl_audit.engine.executors import LocalExecutor
    from fmfl_audit.inputs.shards import plan_shards
    from fmfl_audit.manifest import load_manifest

    texts = corpus(args.records, args.pii_share, args.seed)
    with tempfile.TemporaryDirectory(prefix="fmfl-p01-bench-") as tmp:
        deployment = load_manifest(write_deployment(Path(tmp), texts))
        # P01's effective settings: the default pack's params (custom recognizers included).
        (planned,) = runner.Auditor(deployment, only=("FMFL-P01",)).plan()
        params = planned.params
        assert isinstance(params, PiiParams)
        cache = ResourceCache()
        analyzer = shared_analyzer(cache, language=params.language, recognizers=params.recognizers)
        entities = analyzer.requested_entities(
            params.entities, params.exclude_entities, params.language
        )
        batch = BatchAnalyzerEngine(analyzer_engine=analyzer.engine)
        kwargs = dict(language=params.language, entities=entities, batch_size=params.batch_size)
        list(batch.analyze_iterator(WARM_UP, score_threshold=params.min_score, **kwargs))
        runner.ResourceCache = lambda: cache
        warm_dir = Path(tmp) / "warm-up"
        warm_dir.mkdir()
        runner.Auditor(load_manifest(write_deployment(warm_dir, WARM_UP)), only=("FMFL-P01",)).run()

        source = deployment.manifest.clients[0].synthetic_data
        assert source is not None
        best: dict[str, float] = {}
        cpu: dict[str, float] = {}
        shards: dict[int, int] = {}
        same: dict[int, bool] = {}
        for _ in range(args.repeat):
            t0, c0 = time.perf_counter(), cpu_seconds()
            anchor = batch.analyze_iterator(texts, score_threshold=params.min_score, **kwargs)
            best["anchor"] = min(best.get("anchor", math.inf), time.perf_counter() - t0)
            cpu["anchor"] = min(cpu.get("anchor", math.inf), cpu_seconds() - c0)
            expected = anchor_figures(anchor)
            for workers in args.workers:
                executor = LocalExecutor(workers)
                target = executor.shard_target(source.path.stat().st_size)
                n = 1 if target is None else len(plan_shards(source, "x", target_bytes=target))
                shards[workers] = n
                t0, c0 = time.perf_counter(), cpu_seconds()
                report = runner.Auditor(deployment, only=("FMFL-P01",), executor=executor).run()
                executor.close()
                t = time.perf_counter() - t0
                best[f"w{workers}"] = min(best.get(f"w{workers}", math.inf), t)
                cpu[f"w{workers}"] = min(cpu.get(f"w{workers}", math.inf), cpu_seconds() - c0)
                result = report.rule("FMFL-P01")
                if result.error:
                    raise SystemExit(f"FMFL-P01 errored: {result.error}")
                figures = result.metrics[f"client:{CLIENT}"]
                got = {k: figures[k] for k in expected}
                same[workers] = same.get(workers, True) and got == expected
                if got != expected:
                    print(f"MISMATCH (workers={workers}): fmfl-audit {got} vs anchor {expected}")
        t_anchor = best["anchor"]
        rows = [("presidio BatchAnalyzerEngine", 1, t_anchor, 1.0, cpu["anchor"], True)]
        for workers in args.workers:
            t, c = best[f"w{workers}"], cpu[f"w{workers}"]
            name = f"fmfl-audit P01 (workers={workers})"
            rows.append((name, shards[workers], t, t_anchor / t, c, same[workers]))

    n_found = sum(expected["entities"].values())
    share = f"{args.pii_share:.0%}"
    print(f"{args.records} records, {share} with a PII sentence, {n_found} entities found")
    print(
        f"machine: {platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    )
    print(f"engine: {analyzer.description}")
    print(f"{len(entities)} entity types requested, min_score {params.min_score}")
    print(f"fastest of {args.repeat} interleaved round(s) per row")
    print(
        f"{'run':<34} {'shards':>6} {'seconds':>9} {'records/s':>10} {'speed-up':>9} "
        f"{'CPU s':>7} {'CPU ratio':>9} identical"
    )
    c_anchor = rows[0][4]
    for name, n, t, ratio, c, same_figures in rows:
        print(
            f"{name:<34} {n:>6} {t:>9.2f} {args.records / t:>10.0f} {ratio:>8.2f}x "
            f"{c:>7.2f} {c_anchor / c:>8.2f}x {'yes' if same_figures else 'NO'}"
        )


def cpu_seconds() -> float:
    """CPU time of this process and its reaped children (forked workers), user + system."""
    import resource

    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


if __name__ == "__main__":
    main()
