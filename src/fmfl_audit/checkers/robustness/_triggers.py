"""Backdoor trigger mining in labelled synthetic data, shared by FMFL-R06, R07 and R12.

For every 1- to 3-gram (counted once per record) with at least `min_support` records: its majority
label, purity (share of its records carrying that label), and a one-sided Fisher exact test
(`scipy.stats.fisher_exact`, alternative="greater"; exact duplicate records count once) of
"record has the n-gram" against "record has
the label", i.e. against the label prior. p-values are Benjamini-Hochberg adjusted
(`scipy.stats.false_discovery_control`) over every n-gram tested. A natural label word ("wonderful"
in positive reviews) can be just as pure, so a candidate must also sit in records whose other
words point away from its label by more than the prior does (context disagreement: naive Bayes
posterior on the same counts, minus the prior): dirty-label poison is inserted into records of any
content. A significant n-gram that never occurs in the deployment's real text (clients' private
samples and holdouts, the evaluation data) is kept whatever its context: an inserted trigger is a
rare or unnatural token, while a natural label word also turns up in real writing (this catches
triggers whose carrier records were chosen to agree with the target label). Stopword-only n-grams
and n-grams
containing a word that names a label ("positive" for label `positive`) are not tested. Of nested
n-grams that always co-occur the longest is kept (a two-word trigger is reported once).
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass, replace
from typing import Any

from fmfl_audit.checkers.base import CheckContext, clients_with
from fmfl_audit.checkers.robustness._common import STOPWORDS, tokens


@dataclass(frozen=True)
class Candidate:
    """An n-gram far too predictive of one label."""

    ngram: str
    label: str
    support: int
    """Records containing the n-gram."""
    hits: int
    """Of those, records with `label`."""
    purity: float
    p_value: float
    q_value: float
    clients: tuple[str, ...]
    """Clients whose synthetic data carries it."""
    first_location: str
    context_disagreement: float | None = None
    """How much more than the prior the rest of its records points to another label (naive Bayes
    posterior): a dirty-label trigger sits in records of any content (high), a natural label word
    in agreeing or neutral ones (<= 0)."""
    in_real_data: bool | None = None
    """Whether it occurs in the deployment's real text; None when there is none to check."""

    def as_metric(self) -> dict[str, Any]:
        """The candidate as report figures."""
        return {
            "ngram": self.ngram,
            "label": self.label,
            "support": self.support,
            "purity": round(self.purity, 4),
            "p_value": self.p_value,
            "q_value": self.q_value,
            "clients": list(self.clients),
            "context_disagreement": None
            if self.context_disagreement is None
            else round(self.context_disagreement, 4),
            "in_real_data": self.in_real_data,
        }


@dataclass(frozen=True)
class Mining:
    """The result of one mining pass."""

    records: int
    unlabelled: int
    labels: dict[str, int]
    tested: int
    candidates: tuple[Candidate, ...]
    """Every tested n-gram passing `purity >= min_purity` and `q <= fdr`, best first."""
    ranked: tuple[Candidate, ...]
    """The best-ranked n-grams regardless of the thresholds (for metrics), at most `top`."""
    significant: tuple[Candidate, ...] = ()
    """Passing purity and FDR, not the context-disagreement floor (likely natural label words)."""


def _label_words(labels: list[str]) -> set[str]:
    words: set[str] = set()
    for lab in labels:
        words.update(t for t in tokens(lab) if len(t) > 1)
    return words


def _names_label(tok: str, label_words: set[str]) -> bool:
    # "positive" names label "positive"; "positively" too (shared 5-letter stem).
    return any(tok == w or (len(w) >= 5 and tok[:5] == w[:5]) for w in label_words)


def ngrams(toks: list[str], max_n: int) -> set[str]:
    """Distinct 1..max_n-grams of a token list, without stopword-only ones."""
    out = set()
    for n in range(1, max_n + 1):
        for i in range(len(toks) - n + 1):
            gram = toks[i : i + n]
            if all(t in STOPWORDS for t in gram):
                continue
            out.add(" ".join(gram))
    return out


def mine(
    ctx: CheckContext,
    *,
    min_support: int = 5,
    min_purity: float = 0.95,
    fdr: float = 0.01,
    min_context_disagreement: float = 0.2,
    max_n: int = 3,
    top: int = 10,
    max_records: int = 200_000,
) -> Mining:
    """Mine every client's labelled synthetic data (cached per scan and settings)."""
    key = (
        f"trigger-mining:{min_support}:{min_purity}:{fdr}:{min_context_disagreement}:{max_n}:"
        f"{top}:{max_records}"
    )
    result: Mining = ctx.cache.get(
        key,
        lambda: _mine(
            ctx, min_support, min_purity, fdr, min_context_disagreement, max_n, top, max_records
        ),
    )
    return result


def _mine(
    ctx: CheckContext,
    min_support: int,
    min_purity: float,
    fdr: float,
    min_disagree: float,
    max_n: int,
    top: int,
    max_records: int,
) -> Mining:
    import numpy as np
    from scipy.stats import false_discovery_control, fisher_exact

    df: Counter[str] = Counter()
    by_label: dict[str, Counter[str]] = defaultdict(Counter)
    where: dict[str, set[str]] = defaultdict(set)
    first: dict[str, str] = {}
    label_n: Counter[str] = Counter()
    total = unlabelled = 0
    # Exact duplicates are one piece of evidence, not many (FMFL-R09 reports them separately).
    distinct: set[tuple[str, str]] = set()
    for client in clients_with(ctx.deployment, "synthetic_data"):
        for batch in ctx.records(client.synthetic_data):
            for rec in batch:
                if total >= max_records:
                    break
                if rec.label is None or rec.label == "":
                    unlabelled += 1
                    continue
                key = (" ".join((rec.text or "").lower().split()), str(rec.label))
                if key in distinct:
                    continue
                distinct.add(key)
                total += 1
                lab = str(rec.label)
                label_n[lab] += 1
                for g in ngrams(tokens(rec.text or ""), max_n):
                    df[g] += 1
                    by_label[g][lab] += 1
                    if len(where[g]) < 50:
                        where[g].add(client.id)
                    first.setdefault(g, rec.location)
    label_words = _label_words(list(label_n))
    tests = []
    for g, n in df.items():
        if n < min_support or any(_names_label(t, label_words) for t in g.split()):
            continue
        lab, a = max(by_label[g].items(), key=lambda kv: (kv[1], kv[0]))
        n_lab = label_n[lab]
        table = [[a, n - a], [n_lab - a, total - n_lab - (n - a)]]
        p = float(fisher_exact(table, alternative="greater").pvalue)
        tests.append((g, lab, n, a, p))
    qs = false_discovery_control(np.array([t[4] for t in tests])) if tests else []
    cands = [
        Candidate(
            ngram=g,
            label=lab,
            support=n,
            hits=a,
            purity=a / n,
            p_value=p,
            q_value=float(q),
            clients=tuple(sorted(where[g])),
            first_location=first[g],
        )
        for (g, lab, n, a, p), q in zip(tests, qs, strict=True)
    ]
    cands.sort(key=lambda c: (c.p_value, -c.purity, -c.support, c.ngram))
    significant = _keep_longest([c for c in cands if c.purity >= min_purity and c.q_value <= fdr])
    ranked = _keep_longest(cands[: top * 5])[:top]
    checked = {c.ngram for c in significant} | {c.ngram for c in ranked}
    disagreement = _context_disagreement(ctx, checked, by_label, label_n, max_n, max_records)
    significant = [replace(c, context_disagreement=disagreement.get(c.ngram)) for c in significant]
    ranked = [replace(c, context_disagreement=disagreement.get(c.ngram)) for c in ranked]
    real = _seen_in_real_text(ctx, checked, max_n, max_records)
    if real is not None:
        significant = [replace(c, in_real_data=c.ngram in real) for c in significant]
        ranked = [replace(c, in_real_data=c.ngram in real) for c in ranked]
    passing = [
        c
        for c in significant
        if (c.context_disagreement or 0.0) >= min_disagree or c.in_real_data is False
    ]
    return Mining(
        records=total,
        unlabelled=unlabelled,
        labels=dict(sorted(label_n.items())),
        tested=len(tests),
        candidates=tuple(passing),
        ranked=tuple(ranked),
        significant=tuple(c for c in significant if c not in passing),
    )


def _context_disagreement(
    ctx: CheckContext,
    grams: set[str],
    by_label: dict[str, Counter[str]],
    label_n: Counter[str],
    max_n: int,
    max_records: int,
) -> dict[str, float]:
    """For each n-gram with majority label L: mean over its records of P(not L | other words)
    minus the prior P(not L), from a Laplace-smoothed Bernoulli-style naive Bayes on the mined
    unigram counts. ~0 when the rest of the record is neutral, < 0 when it agrees with L (a
    natural label word), > 0 when it points elsewhere (a trigger inserted into any content)."""
    if not grams:
        return {}
    labels = sorted(label_n)
    total = sum(label_n.values())
    unigram = {g: c for g, c in by_label.items() if " " not in g}
    prior = {lab: label_n[lab] / total for lab in labels}
    target = {g: max(by_label[g].items(), key=lambda kv: (kv[1], kv[0]))[0] for g in grams}
    seen: Counter[str] = Counter()
    against: dict[str, float] = defaultdict(float)
    count = 0
    for client in clients_with(ctx.deployment, "synthetic_data"):
        for batch in ctx.records(client.synthetic_data):
            for rec in batch:
                if rec.label is None or rec.label == "" or count >= max_records:
                    continue
                count += 1
                toks = tokens(rec.text or "")
                for g in grams & ngrams(toks, max_n):
                    parts = set(g.split())
                    context = {t for t in toks if t not in parts and t not in STOPWORDS}
                    logp = {
                        lab: math.log(prior[lab])
                        + sum(
                            math.log((unigram.get(t, Counter())[lab] + 1) / (label_n[lab] + 2))
                            for t in context
                        )
                        for lab in labels
                    }
                    top = max(logp.values())
                    z = sum(math.exp(v - top) for v in logp.values())
                    seen[g] += 1
                    against[g] += 1 - math.exp(logp[target[g]] - top) / z
    return {g: against[g] / seen[g] - (1 - prior[target[g]]) for g in seen}


def _seen_in_real_text(
    ctx: CheckContext, grams: set[str], max_n: int, max_records: int
) -> set[str] | None:
    """Which of `grams` occur in the real (not FM-generated) text of the deployment; None when
    the manifest names none (clients' private samples and holdouts, the evaluation data)."""
    manifest = ctx.deployment.manifest
    sources = [c.private_sample for c in manifest.clients if c.private_sample is not None]
    sources += [c.holdout for c in manifest.clients if c.holdout is not None]
    if manifest.evaluation is not None:
        sources.append(manifest.evaluation.as_source())
    if not sources:
        return None
    seen: set[str] = set()
    count = 0
    for source in sources:
        for batch in ctx.records(source):
            for rec in batch:
                if count >= max_records:
                    return seen
                count += 1
                seen |= grams & ngrams(tokens(rec.text or ""), max_n)
    return seen


def _keep_longest(cands: list[Candidate]) -> list[Candidate]:
    """Drop an n-gram inside a longer candidate with the same support (they always co-occur),
    and a longer n-gram whose shorter part is a candidate with more support (a sub-case)."""
    keep = []
    for c in cands:
        padded = f" {c.ngram} "
        shadowed = False
        for d in cands:
            if d.ngram == c.ngram:
                continue
            inner, outer = padded in f" {d.ngram} ", f" {d.ngram} " in padded
            if (inner and d.support == c.support) or (outer and d.support > c.support):
                shadowed = True
                break
        if not shadowed:
            keep.append(c)
    return keep
