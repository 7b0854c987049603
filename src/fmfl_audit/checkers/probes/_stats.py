"""Paired two-sample tests on the answers of probes that differ in one condition (a trigger and
its control, a demographic term and its twin, the target endpoint and the reference).

- `paired_divergence`: Jensen-Shannon divergence (base 2) between the pooled word distributions of
  the two answer sets, with a paired permutation test: within each pair the two answers are
  exchangeable when the condition has no effect, so swapping them at random gives the null
  distribution. Written here (vectorised numpy) because scipy's `permutation_test` permutes
  statistics of samples, not pooled count vectors, and would be far slower.
- `paired_binary`: the exact McNemar test (binomial on the discordant pairs) for a yes/no verdict.
- `paired_shift`: the Wilcoxon signed-rank test (scipy) for a number such as the answer length.
- `word_shifts`: per word, McNemar on "the answer uses the word"; Benjamini-Hochberg adjusted.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

PERMUTATION_CHUNK = 256


def jsd(p: Any, q: Any) -> Any:
    """Row-wise Jensen-Shannon divergence (base 2) of count arrays (normalised here)."""
    import numpy as np

    p = p / np.maximum(p.sum(axis=-1, keepdims=True), 1e-12)
    q = q / np.maximum(q.sum(axis=-1, keepdims=True), 1e-12)
    m = (p + q) / 2

    def kl(x: Any) -> Any:
        with np.errstate(divide="ignore", invalid="ignore"):
            terms = np.where(x > 0, x * np.log2(np.where(x > 0, x, 1) / np.where(m > 0, m, 1)), 0)
        return terms.sum(axis=-1)

    return (kl(p) + kl(q)) / 2


def paired_divergence(
    a: Sequence[Counter[str]], b: Sequence[Counter[str]], *, permutations: int, seed: int
) -> tuple[float, float]:
    """(JSD of the pooled word counts of `a` vs `b`, permutation p-value); pairs are a[i], b[i]."""
    import numpy as np

    vocab = sorted(set().union(*a, *b))
    if not vocab or not a:
        return 0.0, 1.0
    index = {w: i for i, w in enumerate(vocab)}

    def matrix(bags: Sequence[Counter[str]]) -> Any:
        m = np.zeros((len(bags), len(vocab)))
        for r, bag in enumerate(bags):
            for w, c in bag.items():
                m[r, index[w]] = c
        return m

    ma, mb = matrix(a), matrix(b)
    diff = ma - mb
    total_a, total_b = ma.sum(axis=0), mb.sum(axis=0)
    observed = float(jsd(total_a, total_b))
    rng = np.random.default_rng(seed)
    at_least = 0
    done = 0
    while done < permutations:
        k = min(PERMUTATION_CHUNK, permutations - done)
        swap = rng.integers(0, 2, size=(k, len(a))).astype(float)
        moved = swap @ diff
        stats = jsd(total_a - moved, total_b + moved)
        at_least += int(np.sum(stats >= observed - 1e-12))
        done += k
    return observed, (1 + at_least) / (1 + permutations)


def paired_binary(a: Sequence[bool], b: Sequence[bool]) -> float:
    """Two-sided exact McNemar p-value for paired yes/no outcomes (1.0 without discordance)."""
    from scipy.stats import binomtest

    only_a = sum(1 for x, y in zip(a, b, strict=True) if x and not y)
    only_b = sum(1 for x, y in zip(a, b, strict=True) if y and not x)
    if only_a + only_b == 0:
        return 1.0
    return float(binomtest(only_a, only_a + only_b, 0.5).pvalue)


def greater_binary(a: Sequence[bool], b: Sequence[bool]) -> float:
    """One-sided exact McNemar p-value that `a` is true more often than `b` (paired)."""
    from scipy.stats import binomtest

    only_a = sum(1 for x, y in zip(a, b, strict=True) if x and not y)
    only_b = sum(1 for x, y in zip(a, b, strict=True) if y and not x)
    if only_a + only_b == 0:
        return 1.0
    return float(binomtest(only_a, only_a + only_b, 0.5, alternative="greater").pvalue)


def paired_shift(a: Sequence[float], b: Sequence[float]) -> float:
    """Two-sided Wilcoxon signed-rank p-value (1.0 when every pair ties)."""
    from scipy.stats import wilcoxon

    if all(x == y for x, y in zip(a, b, strict=True)):
        return 1.0
    return float(wilcoxon(a, b, zero_method="zsplit").pvalue)


def bh(pvalues: Sequence[float]) -> list[float]:
    """Benjamini-Hochberg adjusted p-values (scipy), in input order."""
    if not pvalues:
        return []
    from scipy.stats import false_discovery_control

    return [float(q) for q in false_discovery_control(list(pvalues))]


@dataclass(frozen=True)
class WordShift:
    """A word used more (or less) often under one condition."""

    word: str
    rate_a: float
    rate_b: float
    p_value: float
    q_value: float

    def as_metric(self) -> dict[str, Any]:
        """Report figures."""
        return {
            "word": self.word,
            "rate_a": round(self.rate_a, 4),
            "rate_b": round(self.rate_b, 4),
            "q_value": self.q_value,
        }


def word_shifts(
    a: Sequence[set[str]], b: Sequence[set[str]], *, min_support: int = 3
) -> list[WordShift]:
    """Words whose presence differs between paired answers, most significant first; only words
    present in at least `min_support` answers are tested."""
    support: Counter[str] = Counter()
    for bag in (*a, *b):
        support.update(bag)
    tested = sorted(w for w, c in support.items() if c >= min_support)
    pvals = [paired_binary([w in x for x in a], [w in y for y in b]) for w in tested]
    qvals = bh(pvals)
    n = max(len(a), 1)
    shifts = [
        WordShift(
            word=w,
            rate_a=sum(w in x for x in a) / n,
            rate_b=sum(w in y for y in b) / n,
            p_value=p,
            q_value=q,
        )
        for w, p, q in zip(tested, pvals, qvals, strict=True)
    ]
    return sorted(shifts, key=lambda s: (s.p_value, -abs(s.rate_a - s.rate_b), s.word))
