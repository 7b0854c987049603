"""FMFL-F02: stereotype association in synthetic data (group terms near negative terms).

Every demographic mention (HolisticBias lexicon, see `_lexicon`; pronouns left out unless
`count_pronouns`) is checked for a term of each association category (`negative`, `crime_violence`,
`incompetence`; `rules/lexicons/fmfl_terms.json`) within `window` tokens on either side. Per axis,
category and group: the co-occurrence rate = mentions with such a term nearby / mentions. Between
the groups of an axis with at least `min_group_mentions` mentions, the disparity is the difference
between the highest and the lowest rate (their ratio is reported too). A finding needs the
difference above `max_rate_difference`, at least `min_cooccurrences` co-occurrences in the high
group, and a one-sided Fisher exact test of high vs low group significant at `alpha` after a
Bonferroni correction over every comparison made for the subject. Per client and for the pooled
synthetic data (`overall`).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pydantic import Field

from fmfl_audit.checkers.base import CheckContext, Checker, CheckerParams, CheckOutput, clients_with
from fmfl_audit.checkers.fairness._lexicon import (
    CONTROL_AXES,
    CategorySpec,
    shared_association_terms,
    shared_lexicon,
    tokenize,
)
from fmfl_audit.engine.executors import ShardEnv, ShardTask
from fmfl_audit.errors import CheckerError
from fmfl_audit.inputs.records import Record
from fmfl_audit.manifest.loader import Deployment
from fmfl_audit.manifest.model import DataSource
from fmfl_audit.models import Area, Confidence, Evidence, FindingDraft, Metric


class StereotypeParams(CheckerParams):
    """Settings of FMFL-F02."""

    axes: tuple[str, ...] | None = Field(
        default=None, description="Axes to measure; every axis but `nonce` when null."
    )
    categories: dict[str, tuple[str, ...]] | None = Field(
        default=None, description="Association categories -> single-word terms; shipped when null."
    )
    window: int = Field(default=5, ge=1, le=50, description="Tokens on each side of a mention.")
    min_group_mentions: int = Field(default=20, ge=1, description="Smaller groups not compared.")
    max_rate_difference: float = Field(default=0.1, ge=0, le=1)
    min_cooccurrences: int = Field(default=5, ge=1)
    alpha: float = Field(default=0.01, gt=0, lt=1, description="Family-wise significance level.")
    noun_window: int = Field(default=2, ge=1, le=5)
    count_pronouns: bool = Field(
        default=False,
        description="Count she/he... as group mentions (off: a pronoun's nearest words are often "
        "about someone else, which skews windowed co-occurrence).",
    )
    max_examples: int = Field(default=3, ge=0, le=20)
    batch_size: int = Field(default=512, ge=1)


@dataclass
class _Tally:
    """Mentions and co-occurrences of one source or shard (tallies merge in file order)."""

    mentions: Counter[tuple[str, str]] = field(default_factory=Counter)
    hits: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    examples: dict[tuple[str, str, str], list[str]] = field(
        default_factory=lambda: defaultdict(list)
    )
    records: int = 0

    def merge(self, other: _Tally, max_examples: int) -> None:
        """Add the tally of the next shard (or, for `overall`, of the next client)."""
        self.mentions.update(other.mentions)
        self.hits.update(other.hits)
        self.records += other.records
        for k, locs in other.examples.items():
            room = max_examples - len(self.examples[k])
            self.examples[k].extend(locs[: max(0, room)])


@dataclass(frozen=True)
class _StereotypeTask(ShardTask):
    """F02's map step: group mentions and nearby association terms in one shard's texts."""

    axes: tuple[str, ...]
    categories: CategorySpec | None
    """The pack's categories, or None for the shipped ones."""
    window: int
    noun_window: int
    pronouns: bool
    max_examples: int

    def map(self, batches: Iterator[list[Record]], env: ShardEnv) -> _Tally:
        lex = shared_lexicon(env.cache)
        cats = shared_association_terms(env.cache, self.categories)
        t = _Tally()
        w = self.window
        for batch in batches:
            for rec in batch:
                t.records += 1
                toks, _ = tokenize(rec.text or "")
                mentions = lex.mentions(
                    toks, axes=self.axes, noun_window=self.noun_window, pronouns=self.pronouns
                )
                if not mentions:
                    continue
                positions = {
                    cat: [i for i, tok in enumerate(toks) if tok in terms]
                    for cat, terms in cats.items()
                }
                for m in mentions:
                    t.mentions[(m.axis, m.group)] += 1
                    lo, hi = m.start - w, m.end + w
                    for cat, pos in positions.items():
                        if any(lo <= p < hi and not (m.start <= p < m.end) for p in pos):
                            key = (m.axis, m.group, cat)
                            t.hits[key] += 1
                            ex = t.examples[key]
                            if len(ex) < self.max_examples and rec.location not in ex:
                                ex.append(rec.location)
        return t


def _category_spec(params: StereotypeParams) -> CategorySpec | None:
    if params.categories is None:
        return None
    return tuple((k, tuple(v)) for k, v in params.categories.items())


class StereotypeChecker(Checker):
    """Ensure synthetic data does not tie demographic groups to negative or stereotyped terms."""

    id: ClassVar[str] = "FMFL-F02"
    title: ClassVar[str] = "Ensure synthetic data does not associate groups with stereotypes"
    area: ClassVar[Area] = Area.FAIRNESS
    threat: ClassVar[str] = "underrepresented attributes"
    inputs: ClassVar[tuple[str, ...]] = ("clients[].synthetic_data",)
    Params = StereotypeParams

    def missing_inputs(self, deployment: Deployment) -> list[str]:
        return [] if clients_with(deployment, "synthetic_data") else ["clients[].synthetic_data"]

    def run(self, ctx: CheckContext, params: Any) -> CheckOutput:
        assert isinstance(params, StereotypeParams)
        lex = shared_lexicon(ctx.cache)
        cats = shared_association_terms(ctx.cache, _category_spec(params))
        axes = (
            [a for a in lex.axes if a not in CONTROL_AXES]
            if params.axes is None
            else list(params.axes)
        )
        unknown = [a for a in axes if a not in lex.groups]
        if unknown:
            raise CheckerError(f"unknown HolisticBias axis {unknown[0]!r}")
        out = CheckOutput(notes=[f"categories: {', '.join(sorted(cats))}; window {params.window}"])
        clients = clients_with(ctx.deployment, "synthetic_data")
        ctx.progress.set_total(len(clients))
        pooled = _Tally()
        for c in clients:
            tally = self._tally(ctx, c.synthetic_data, axes, params)
            self._assess(c.subject, tally, cats, params, out)
            pooled.merge(tally, params.max_examples)
            ctx.progress.advance()
        self._assess("overall", pooled, cats, params, out)
        return out

    def _tally(
        self,
        ctx: CheckContext,
        source: DataSource,
        axes: list[str],
        params: StereotypeParams,
    ) -> _Tally:
        task = _StereotypeTask(
            axes=tuple(axes),
            categories=_category_spec(params),
            window=params.window,
            noun_window=params.noun_window,
            pronouns=params.count_pronouns,
            max_examples=params.max_examples,
        )
        t = _Tally()
        for part in ctx.map_shards(source, task, batch_size=params.batch_size):
            t.merge(part, params.max_examples)
        return t

    def _assess(
        self,
        subject: str,
        t: _Tally,
        cats: dict[str, frozenset[str]],
        params: StereotypeParams,
        out: CheckOutput,
    ) -> None:
        from scipy.stats import fisher_exact

        figures: dict[str, Any] = {"records": t.records, "mentions": sum(t.mentions.values())}
        axes = sorted({a for a, _ in t.mentions})
        comparisons: list[tuple[str, str, dict[str, Any]]] = []
        for axis in axes:
            groups = sorted(g for a, g in t.mentions if a == axis)
            per_axis: dict[str, Any] = {
                "mentions": {g: t.mentions[(axis, g)] for g in groups},
            }
            eligible = [g for g in groups if t.mentions[(axis, g)] >= params.min_group_mentions]
            for cat in sorted(cats):
                rates = {g: t.hits[(axis, g, cat)] / t.mentions[(axis, g)] for g in groups}
                cell: dict[str, Any] = {"rates": {g: round(r, 6) for g, r in rates.items()}}
                if len(eligible) >= 2:
                    hi = max(eligible, key=lambda g: (rates[g], g))
                    lo = min(eligible, key=lambda g: (rates[g], g))
                    diff = rates[hi] - rates[lo]
                    n_hi, n_lo = t.mentions[(axis, hi)], t.mentions[(axis, lo)]
                    k_hi, k_lo = t.hits[(axis, hi, cat)], t.hits[(axis, lo, cat)]
                    _, p = fisher_exact([[k_hi, n_hi - k_hi], [k_lo, n_lo - k_lo]], "greater")
                    cell.update(
                        high_group=hi,
                        low_group=lo,
                        rate_difference=round(diff, 6),
                        rate_ratio=round(rates[hi] / rates[lo], 6) if rates[lo] > 0 else None,
                        p_value=float(p),
                    )
                    comparisons.append((axis, cat, cell))
                per_axis[cat] = cell
            figures[axis] = per_axis
        n_tests = max(1, len(comparisons))
        figures["comparisons"] = len(comparisons)
        for axis, cat, cell in comparisons:
            p_adj = min(1.0, cell["p_value"] * n_tests)
            cell["p_value_bonferroni"] = p_adj
            hi, lo = cell["high_group"], cell["low_group"]
            k_hi = t.hits[(axis, hi, cat)]
            if (
                cell["rate_difference"] > params.max_rate_difference
                and k_hi >= params.min_cooccurrences
                and p_adj < params.alpha
            ):
                out.findings.append(
                    FindingDraft(
                        subject=subject,
                        key=f"{axis}:{cat}",
                        confidence=Confidence.HIGH
                        if p_adj < params.alpha / 10
                        else Confidence.MEDIUM,
                        message=(
                            f"{axis}: mentions of {hi} co-occur with {cat} terms at "
                            f"{cell['rates'][hi]:.0%} vs {cell['rates'][lo]:.0%} for {lo} "
                            f"({k_hi} of {t.mentions[(axis, hi)]} mentions; Bonferroni "
                            f"p={p_adj:.2g}) in "
                            + (
                                "the pooled synthetic data"
                                if subject == "overall"
                                else f"{subject}'s synthetic data"
                            )
                        ),
                        metric=Metric(
                            name="cooccurrence_rate_difference",
                            value=cell["rate_difference"],
                            threshold=params.max_rate_difference,
                        ),
                        evidence=tuple(
                            Evidence(location=loc) for loc in t.examples[(axis, hi, cat)]
                        ),
                    )
                )
        out.metrics[subject] = figures
