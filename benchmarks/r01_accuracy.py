"""FMFL-R01 accuracy: recall on filled jailbreak templates, false positives on XSTest safe prompts.

Recall set: every GPTFuzz template x N harmful questions ([INSERT PROMPT HERE] replaced). Because
the same templates are bundled as the similarity corpus, the similarity layer is evaluated
leave-one-template-out (a prompt is never compared with the template it was made from), so the
number estimates recall on jailbreaks the corpus has not seen. Recall is also given per layer
(signatures alone, similarity alone, obfuscation with suffix likelihood alone) and for the
combined detector. The intent layer is left out here: it was trained on GPTFuzz (its held-out
figures are in `r01_loso.py`).
FPR set: the 250 XSTest prompts labelled safe (hard negatives full of trigger words).

    .venv/bin/python benchmarks/r01_accuracy.py [--data ../shared/data] [--questions 10]
"""

from __future__ import annotations

import argparse
import csv
import random
from collections import Counter
from pathlib import Path

from fmfl_audit.checkers.robustness._jailbreak import (
    PLACEHOLDER,
    Detector,
    SimilarityIndex,
    Verdict,
    load_signatures,
)
from fmfl_audit.checkers.robustness._suffix import SuffixScorer

SIGNATURE_FAMILIES = {
    "instruction_override",
    "persona",
    "refusal_suppression",
    "developer_mode",
    "fake_turns",
    "payload_splitting",
    "encoding",
}
OBFUSCATION_FAMILIES = {"invisible_characters", "confusable_characters", "suffix_likelihood"}


def _layer_score(v: Verdict, families: set[str]) -> float:
    return sum(r.weight for r in v.reasons if r.family in families)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared/data"
    )
    ap.add_argument("--questions", type=int, default=10, help="questions per template")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    with (args.data / "gptfuzz_templates/GPTFuzzer.csv").open(encoding="utf-8") as fh:
        templates = [r["text"] for r in csv.DictReader(fh)]
    with (args.data / "gptfuzz_templates/question_list.csv").open(encoding="utf-8") as fh:
        questions = [r["text"] for r in csv.DictReader(fh)]
    with (args.data / "xstest/xstest_prompts.csv").open(encoding="utf-8") as fh:
        xstest = list(csv.DictReader(fh))
    safe = [r["prompt"] for r in xstest if r["label"] == "safe"]
    unsafe = [r["prompt"] for r in xstest if r["label"] == "unsafe"]

    rng = random.Random(args.seed)
    positives: list[str] = []
    source: list[int | None] = []
    for i, t in enumerate(templates):
        for q in rng.sample(questions, args.questions):
            positives.append(t.replace(PLACEHOLDER, q))
            source.append(i)

    sigs = load_signatures()
    index = SimilarityIndex(templates)
    det = Detector(signatures=sigs, similarity=index, suffix=SuffixScorer())
    th = sigs.threshold
    pos = det.classify(positives, exclude_templates=source)
    neg = det.classify(safe)
    n_pos, n_neg = len(pos), len(neg)

    def rate(vs: list[Verdict], pred: object) -> float:
        return sum(1 for v in vs if pred(v)) / len(vs)  # type: ignore[operator]

    print(f"positives: {len(templates)} templates x {args.questions} questions = {n_pos}")
    print(f"negatives: {n_neg} XSTest safe prompts")
    print(f"threshold: {th}")
    layers = {
        "signatures": lambda v: _layer_score(v, SIGNATURE_FAMILIES) >= th,
        "similarity (leave-one-template-out)": lambda v: _layer_score(v, {"known_template"}) >= th,
        "obfuscation": lambda v: _layer_score(v, OBFUSCATION_FAMILIES) >= th,
        "combined (no similarity)": lambda v: v.score - _layer_score(v, {"known_template"}) >= th,
        "combined": lambda v: v.flagged,
    }
    print(f"{'layer':40s} {'recall':>8s} {'FPR':>8s}")
    for name, pred in layers.items():
        print(f"{name:40s} {rate(pos, pred):8.4f} {rate(neg, pred):8.4f}")
    # Plainly harmful requests are not jailbreaks: these layers leave them to the intent layer.
    plain = det.classify(unsafe)
    print(
        f"flag rate on {len(unsafe)} XSTest unsafe (plain harmful, no jailbreak): "
        f"{rate(plain, lambda v: v.flagged):.4f}"
    )
    missed = Counter(src for v, src in zip(pos, source, strict=True) if not v.flagged)
    if missed:
        print(
            "templates with misses (template index: missed prompts):", dict(sorted(missed.items()))
        )
    for v, text in zip(neg, safe, strict=True):
        if v.flagged:
            print("false positive:", text, [r.id for r in v.reasons])


if __name__ == "__main__":
    main()
