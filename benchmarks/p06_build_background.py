"""Build `rules/background/english_ngrams.npz`, FMFL-P06's common-phrase table.

    python benchmarks/p06_build_background.py

Text (pinned snapshots, see `_stereodata.py`; licences in `rules/background/NOTICE.md`):
WikiSplit's `tune` and `validation` files (Wikipedia sentences, CC-BY-SA-4.0) and the `train`
documents of UD English-EWT (web text: blogs, newsgroups, e-mail, reviews, answers; CC-BY-SA-4.0).
WikiSplit `test` and EWT `dev`/`test` are left out: `p06_common_phrases.py` measures on them.

Counts word 1- to 4-grams of each sentence (`_shingles.normalised_words`); keeps every unigram and
the longer n-grams seen at least twice, as hashed keys (`_commonness.ngram_key`).
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from _stereodata import ewt_sentences, wikisplit_sentences

from fmfl_audit.checkers.privacy._commonness import (
    MIN_COUNT,
    ORDER,
    ngram_key,
    save_background,
)
from fmfl_audit.checkers.privacy._shingles import normalised_words

OUT = Path(__file__).resolve().parents[1] / "rules" / "background" / "english_ngrams.npz"


def background_sentences() -> list[str]:
    """The table's text: WikiSplit tune + validation, EWT train (deduplicated)."""
    seen: dict[str, None] = {}
    for s in wikisplit_sentences("tune") + wikisplit_sentences("validation"):
        seen.setdefault(s, None)
    for s in ewt_sentences("train"):
        seen.setdefault(s, None)
    return list(seen)


def main() -> None:
    counts: Counter[tuple[str, ...]] = Counter()
    total = 0
    sents = background_sentences()
    for s in sents:
        w = normalised_words(s)
        total += len(w)
        for n in range(1, ORDER + 1):
            for i in range(len(w) - n + 1):
                counts[tuple(w[i : i + n])] += 1
    kept = [(g, c) for g, c in counts.items() if len(g) == 1 or c >= MIN_COUNT]
    keys = [ngram_key(g) for g, _ in kept]
    if len(set(keys)) != len(keys):
        raise SystemExit("hash collision in the background table")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    save_background(OUT, keys, [c for _, c in kept], total)
    print(
        f"{OUT}: {len(sents)} sentences, {total} words, {len(kept)} n-grams kept "
        f"({OUT.stat().st_size / 1e6:.2f} MB)"
    )


if __name__ == "__main__":
    main()
