"""Set FMFL-R01's suffix-likelihood weights and threshold from real text only (never from attacks).

Each token kind (`_suffix.Kind`) weighs log2(q / p) bits: p is how often real text shows that kind
(measured here on tuning collections, each collection weighing the same), q how often optimised
token soup does. q is a stated prior, not fitted (no attack is looked at): a soup token reads as a
real word a third of the time, as an unknown word or glued soup a fifth of the time each, as a
fragment of one or two letters 15% of the time, as a repeated stray mark the rest. The threshold
is the smallest whole number of bits that keeps every tuning collection's flagged share at or under
`--max-fp` (default 0.5%: a quarter of the issue's 2% false-positive budget for the whole
detector, on any one kind of real text).

Tuning collections (disjoint from every evaluation set of `r01_loso.py`): Wikipedia sentences
(wiki-split tune), PIQA valid goals and solutions, self-instruct instructions, awesome-chatgpt
prompts, TweetEval train tweets, UD German/French dev sentences, even-numbered stdlib files, even
log lines.

    .venv/bin/python benchmarks/tune_suffix.py --mirror /work/.mirror --out rules/jailbreak
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _jbdata

from fmfl_audit.checkers.robustness._suffix import (
    SETTINGS_FILE,
    Kind,
    SuffixScorer,
    SuffixSettings,
)

PRIOR = {
    Kind.WORD: 1 / 3,
    Kind.UNKNOWN: 0.2,
    Kind.FRAGMENT: 0.15,
    Kind.SOUP: 0.2,
    Kind.STRAY: 0.1167,
}
COMMAND = "python benchmarks/tune_suffix.py --mirror <snapshots> --out rules/jailbreak"


def tuning_sets(mirror: Path) -> dict[str, list[str]]:
    """The real-text tuning collections."""
    piqa = _jbdata.piqa(mirror, "valid")
    return {
        "wikipedia (wiki-split tune)": _jbdata.wikisplit(mirror),
        "PIQA valid goals + solutions": [g for g, _ in piqa] + [s for _, s in piqa],
        "self-instruct instructions": _jbdata.selfinstruct(mirror),
        "awesome-chatgpt prompts": _jbdata.chatgpt_prompts(mirror),
        "TweetEval train tweets": _jbdata.tweets(mirror, "tweets_tune"),
        "UD German + French dev": _jbdata.foreign(mirror, ("ud_de_dev", "ud_fr_dev")),
        "stdlib code (even files)": _jbdata.code_snippets(part=0),
        "log lines (even lines)": _jbdata.log_lines(part=0),
    }


def kind_rates(scorer: SuffixScorer, sets: dict[str, list[str]]) -> dict[Kind, float]:
    """P(kind | real text): per-collection token shares, averaged over collections (add-one)."""
    rates: Counter[Kind] = Counter()
    for texts in sets.values():
        counts: Counter[Kind] = Counter(k for t in texts for _, k in scorer.kinds(t))
        total = sum(counts.values()) + len(PRIOR)
        for k in PRIOR:
            rates[k] += (counts[k] + 1) / total / len(sets)
    return dict(rates)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mirror", type=Path, default=_jbdata.DEFAULT_MIRROR)
    ap.add_argument("--out", type=Path, default=Path("rules/jailbreak"))
    ap.add_argument("--max-fp", type=float, default=0.005)
    args = ap.parse_args()
    sets = tuning_sets(args.mirror)
    scorer = SuffixScorer(settings=SuffixSettings({}, 0.0))
    rates = kind_rates(scorer, sets)
    weights = {k: round(math.log2(PRIOR[k] / rates[k]), 3) for k in PRIOR}
    scorer = SuffixScorer(settings=SuffixSettings({int(k): v for k, v in weights.items()}, 0.0))
    scores = {}
    for name, texts in sets.items():
        hits = [scorer.score(t) for t in texts]
        scores[name] = sorted((h.score if h else 0.0) for h in hits)
    threshold = 1.0
    while any(sum(s >= threshold for s in v) / len(v) > args.max_fp for v in scores.values()):
        threshold += 1.0
    print("kind rates on real text:", {k.name: round(v, 5) for k, v in rates.items()})
    print("weights (bits):", {k.name: v for k, v in weights.items()})
    for name, v in scores.items():
        print(
            f"  {name}: n={len(v)} max={v[-1]:.1f} p99.9={v[int(0.999 * (len(v) - 1))]:.1f} "
            f"flagged at {threshold:.0f}: {sum(s >= threshold for s in v)}"
        )
    doc = {
        "format": "fmfl-suffix-likelihood-v1",
        "weights": {k.name: v for k, v in weights.items()},
        "threshold": threshold,
        "min_implausible": 3,
        "prior": {k.name: round(v, 4) for k, v in PRIOR.items()},
        "rates_on_real_text": {k.name: round(v, 6) for k, v in rates.items()},
        "threshold_rule": f"smallest whole bits with every tuning collection <= {args.max_fp:.1%}",
        "tuning_collections": {name: len(v) for name, v in sets.items()},
        "command": COMMAND,
    }
    path = args.out / SETTINGS_FILE
    path.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"threshold {threshold:.0f} bits -> {path}")


if __name__ == "__main__":
    main()
