"""FMFL-R01 throughput over 100,000 prompts, one core: R01 before issue 12 (signatures,
obfuscation with the glued-token suffix heuristic, template similarity: the detector of
`r01_loso.BASELINE`, loaded from git) against the full detector (plus suffix likelihood and
intent). Both wall-clock and CPU-time rates are printed: on a shared machine the CPU-time rate is
the one-core figure.

Prompts cycle through XSTest (safe and unsafe), filled GPTFuzz templates and, when the snapshots
are there, EWT sentences and self-instruct/P3 prompts, so the mix holds short and long texts.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/r01_throughput.py [--n 100000]
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _jbdata
import r01_loso

from fmfl_audit.checkers.robustness._jailbreak import (
    PROMPT_MODEL,
    Detector,
    SimilarityIndex,
    load_corpus,
    load_intent,
    load_signatures,
)
from fmfl_audit.checkers.robustness._suffix import SuffixScorer


def prompts(n: int, mirror: Path) -> list[str]:
    safe, unsafe = _jbdata.xstest()
    pool = safe + unsafe + _jbdata.gptfuzz(per_template=2)[0]
    try:
        pool += _jbdata.ewt(mirror) + _jbdata.selfinstruct(mirror) + _jbdata.t0(mirror, 100)
    except _jbdata.MissingSource as exc:
        print(f"(without snapshots: {exc})")
    return list(itertools.islice(itertools.cycle(pool), n))


def run(det: Any, texts: list[str], batch: int = 256) -> float:
    """Classify in batches; print wall and CPU rates; return prompts per CPU second."""
    t, c = time.perf_counter(), time.process_time()
    flagged = 0
    for i in range(0, len(texts), batch):
        flagged += sum(v.flagged for v in det.classify(texts[i : i + batch]))
    dt, dc = time.perf_counter() - t, time.process_time() - c
    print(
        f"  {len(texts)} prompts: wall {dt:.1f} s = {len(texts) / dt:.0f} prompts/s, "
        f"CPU {dc:.1f} s = {len(texts) / dc:.0f} prompts/CPU-s, {flagged} flagged"
    )
    return len(texts) / dc


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--mirror", type=Path, default=_jbdata.DEFAULT_MIRROR)
    args = ap.parse_args()
    texts = prompts(args.n, args.mirror)
    print(f"{len(texts)} prompts, mean {sum(map(len, texts)) / len(texts):.0f} characters")
    sigs = load_signatures()
    index = SimilarityIndex([r["text"] for r in load_corpus()])
    before = r01_loso.baseline_detector()
    t = time.perf_counter()
    suffix = SuffixScorer()
    suffix.score("warm up the word lists")
    intent = load_intent(PROMPT_MODEL)
    print(f"new layers loaded in {time.perf_counter() - t:.1f} s")
    after = Detector(signatures=sigs, similarity=index, suffix=suffix, intent=intent)
    print(f"before (R01 at {r01_loso.BASELINE}: signatures, obfuscation, similarity):")
    b = run(before, texts)
    print("after (+ suffix likelihood, intent):")
    a = run(after, texts)
    print(f"ratio after/before: {a / b:.2f}")


if __name__ == "__main__":
    main()
