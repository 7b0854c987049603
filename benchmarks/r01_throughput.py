"""FMFL-R01 throughput over 100,000 prompts, one core: the layers R01 had before (signatures,
obfuscation, template similarity) against the full detector (plus suffix likelihood and intent).

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

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _jbdata

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


def run(det: Detector, texts: list[str], batch: int = 256) -> float:
    t = time.perf_counter()
    flagged = 0
    for i in range(0, len(texts), batch):
        flagged += sum(v.flagged for v in det.classify(texts[i : i + batch]))
    dt = time.perf_counter() - t
    print(
        f"  {len(texts)} prompts in {dt:.1f} s = {len(texts) / dt:.0f} prompts/s, {flagged} flagged"
    )
    return len(texts) / dt


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--mirror", type=Path, default=_jbdata.DEFAULT_MIRROR)
    args = ap.parse_args()
    texts = prompts(args.n, args.mirror)
    print(f"{len(texts)} prompts, mean {sum(map(len, texts)) / len(texts):.0f} characters")
    sigs = load_signatures()
    index = SimilarityIndex([r["text"] for r in load_corpus()])
    before = Detector(signatures=sigs, similarity=index)
    t = time.perf_counter()
    suffix = SuffixScorer()
    suffix.score("warm up the word lists")
    intent = load_intent(PROMPT_MODEL)
    print(f"new layers loaded in {time.perf_counter() - t:.1f} s")
    after = Detector(signatures=sigs, similarity=index, suffix=suffix, intent=intent)
    print("before (signatures, obfuscation, similarity):")
    b = run(before, texts)
    print("after (+ suffix likelihood, intent):")
    a = run(after, texts)
    print(f"ratio after/before: {a / b:.2f}")


if __name__ == "__main__":
    main()
