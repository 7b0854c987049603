"""How common a word sequence is in general English: FMFL-P06's common-phrase discount.

Two unrelated texts share an 8-word phrase by chance when the phrase is formulaic ("was listed on
the National Register of Historic Places", "the median income for a household in the city"): a
shared span is evidence of leakage only in proportion to how unlikely it is in general text.

**Background table** (`rules/background/english_ngrams.npz`, built by
`benchmarks/p06_build_background.py` from public English text; sources and licences in the
folder's `NOTICE.md`): hashed counts of word 1- to 4-grams (every unigram, longer n-grams seen at
least twice). A word n-gram is the `_shingles.normalised_words` tokens joined by one space; its key
is the first 8 bytes of BLAKE2b(text, person=`fmfl-bg-ngram-v1`), unkeyed, read as little-endian
uint64. The file holds no text; `total` is the number of words counted.

**Surprisal** of a word sequence: the sum over its words of -log2 P(word | up to 3 previous words
of the sequence) under stupid backoff (Brants et al. 2007): the relative frequency of the longest
n-gram whose count and context count are at least `MIN_COUNT`, times 0.4 for each order backed
off; a word the table never saw gets half a count. A rare 12-word span of ordinary text scores
well over 100 bits; formulaic phrases score far less. The scores use only the *synthetic* record's
words, so they work with fingerprints (no raw client text on the server).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fmfl_audit.errors import CheckerError

ORDER = 4
MIN_COUNT = 2
BACKOFF = 0.4
PERSON = b"fmfl-bg-ngram-v1"
FORMAT = "fmfl-audit-background-ngrams-v1"


def ngram_key(words: Sequence[str]) -> int:
    """The table key of a word n-gram."""
    h = hashlib.blake2b(" ".join(words).encode("utf-8"), digest_size=8, person=PERSON)
    return int.from_bytes(h.digest(), "little")


def background_path() -> Path:
    """The shipped table."""
    from fmfl_audit.rulepacks.loader import builtin_rules_dir

    return builtin_rules_dir() / "background" / "english_ngrams.npz"


@dataclass(frozen=True)
class Background:
    """A loaded n-gram count table."""

    keys: Any
    """Sorted uint64 keys."""
    counts: Any
    """uint32 counts aligned with `keys`."""
    total: int
    """Words counted."""

    def count(self, words: Sequence[str]) -> int:
        """The n-gram's count (0 when absent)."""
        import numpy as np

        k = np.uint64(ngram_key(words))
        i = int(np.searchsorted(self.keys, k))
        return int(self.counts[i]) if i < len(self.keys) and self.keys[i] == k else 0

    def bits(self, words: Sequence[str]) -> float:
        """Surprisal of `words` in bits (stupid backoff, context within `words` only)."""
        cache: dict[tuple[str, ...], int] = {}

        def c(g: tuple[str, ...]) -> int:
            if g not in cache:
                cache[g] = self.count(g)
            return cache[g]

        total = 0.0
        for i in range(len(words)):
            pen = 1.0
            p = 0.0
            for n in range(min(ORDER, i + 1), 1, -1):
                g = tuple(words[i - n + 1 : i + 1])
                cg = c(g)
                if cg >= MIN_COUNT:
                    cc = c(g[:-1])
                    if cc >= MIN_COUNT:
                        p = pen * cg / cc
                        break
                pen *= BACKOFF
            if p == 0.0:
                cw = c((words[i],))
                p = pen * (cw if cw else 0.5) / self.total
            total -= math.log2(min(1.0, p))
        return total


def load_background(path: Path | None = None) -> Background:
    """Read and check a table (CheckerError when it is not one)."""
    import numpy as np

    p = path or background_path()
    try:
        with np.load(p, allow_pickle=False) as z:
            if str(z["format"]) != FORMAT:
                raise CheckerError(f"{p}: not a {FORMAT} table")
            keys = z["keys"].astype(np.uint64)
            counts = z["counts"].astype(np.uint32)
            total = int(z["total"])
    except (OSError, KeyError, ValueError) as exc:
        raise CheckerError(f"the background n-gram table cannot be read: {exc}") from None
    if (
        len(keys) != len(counts)
        or total <= 0
        or (len(keys) > 1 and not (keys[1:] > keys[:-1]).all())
    ):
        raise CheckerError(f"{p}: malformed background n-gram table")
    return Background(keys=keys, counts=counts, total=total)


def save_background(path: Path, keys: Any, counts: Any, total: int) -> None:
    """Write a table (sorted keys, aligned counts) in the documented format."""
    import numpy as np

    order = np.argsort(keys)
    np.savez_compressed(
        path,
        format=np.array(FORMAT),
        keys=np.asarray(keys, dtype="<u8")[order],
        counts=np.asarray(counts, dtype="<u4")[order],
        total=np.array(total, dtype=np.int64),
    )
