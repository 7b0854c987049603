"""FMFL-P01 throughput against Presidio's own BatchAnalyzerEngine, same engine and recognizers.

Both sides get the same Presidio AnalyzerEngine (offline spaCy pipeline, the same recognizers),
the same entity list and score threshold, on the same records, in one run; findings must be
identical. The records are synthetic-data-like: stories sampled from stories260K-style templates,
with a share of records carrying real PII sentences from the Presidio synthetic PII set.

    python benchmarks/p01_throughput.py [--records 20000] [--pii-share 0.05] [--workers 1 2]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("FMFL_SHARED_DATA", REPO.parent / "shared" / "data"))

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


def corpus(n: int, pii_share: float, seed: int) -> list[str]:
    rng = random.Random(seed)
    pii = [
        " ".join(r["full_text"].split())
        for r in json.loads((SHARED / "pii_presidio_synth" / "synth_dataset_v2.json").read_text())
    ]
    out = []
    for _ in range(n):
        text = " ".join(rng.sample(STORY_PARTS, 4))
        if rng.random() < pii_share:
            text += " " + rng.choice(pii)
        out.append(text)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--records", type=int, default=20000)
    ap.add_argument("--pii-share", type=float, default=0.05)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    from presidio_analyzer import BatchAnalyzerEngine

    from fmfl_audit.checkers.privacy._presidio import analyze_texts, build_analyzer
    from fmfl_audit.checkers.privacy.pii import PiiParams

    params = PiiParams()
    analyzer = build_analyzer(lang="en")
    entities = analyzer.requested_entities(params.entities, params.exclude_entities)
    texts = corpus(args.records, args.pii_share, args.seed)

    t0 = time.perf_counter()
    anchor = BatchAnalyzerEngine(analyzer_engine=analyzer.engine).analyze_iterator(
        texts,
        language="en",
        batch_size=params.batch_size,
        entities=entities,
        score_threshold=params.min_score,
    )
    t_anchor = time.perf_counter() - t0
    expected = [
        sorted((r.start, r.end, r.entity_type, round(r.score, 6)) for r in rs) for rs in anchor
    ]

    rows = [("presidio BatchAnalyzerEngine", t_anchor, 1.0, True)]
    for workers in args.workers:
        t0 = time.perf_counter()
        got = []
        for i in range(0, len(texts), params.batch_size * 8):
            chunk = texts[i : i + params.batch_size * 8]
            got.extend(
                analyze_texts(
                    analyzer,
                    chunk,
                    language="en",
                    min_score=params.min_score,
                    entities=params.entities,
                    exclude=params.exclude_entities,
                    batch_size=params.batch_size,
                    workers=workers,
                )
            )
        t = time.perf_counter() - t0
        same = [
            sorted((r.start, r.end, r.entity_type, round(r.score, 6)) for r in rs) for rs in got
        ] == expected
        rows.append((f"fmfl-audit P01 (workers={workers})", t, t_anchor / t, same))

    n_found = sum(len(e) for e in expected)
    share = f"{args.pii_share:.0%}"
    print(f"{args.records} records, {share} with a PII sentence, {n_found} entities found")
    print(
        f"machine: {platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    )
    print(f"engine: {analyzer.description}")
    print(f"{'run':<34} {'seconds':>9} {'records/s':>10} {'speed-up':>9} identical")
    for name, t, ratio, same in rows:
        print(f"{name:<34} {t:>9.2f} {args.records / t:>10.0f} {ratio:>8.2f}x {same}")


if __name__ == "__main__":
    main()
