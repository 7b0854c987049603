"""FMFL-F02: stereotype-consistent statements in synthetic data, and the FM's own preference.

**Synthetic data.** Every record is read for *statements*: a group mention and, in the same
clause, an attribute that the shipped stereotype knowledge ties to that group (consistent) or that
contradicts it (counter), negation included (`_stereotypes`). Per client and for the pooled
synthetic data (`overall`), per axis:

- `stereotype_rate` = consistent statements / group mentions; `counter_rate` likewise; their
  ratio, with an exact binomial test of consistent vs counter;
- `expected`: the consistent statements expected if the groups of the axis were interchangeable,
  i.e. if each statement's group were drawn from the axis's groups with probability
  `(1 - prior_weight) * (share of the subject's statements about it) + prior_weight / (groups)`.
  `lift` = observed / expected; a one-sided Poisson test gives the chance of seeing as many
  consistent statements under that null (Bonferroni over the axes tested).

A finding needs at least `min_statements` consistent statements, a `stereotype_rate` of at least
`min_rate`, a `lift` of at least `min_lift` and the Poisson test significant at `alpha`. Direction
is what the test measures: the same sentences with the groups swapped (anti-stereotypes) have no
consistent statements, and ordinary text about groups has about as many as chance gives. Examples
are redacted: the group mention is replaced by `<GROUP:axis/group>` and PII and secrets are masked.

**The FM itself** (`foundation_model.checkpoint` set and `fm_preference` on): paired likelihood
(`_fm_preference`), reported under subject `fm`.

`resources` restricts the knowledge to some of the shipped resources (leave-one-resource-out
evaluation; `benchmarks/f02_stereotypes.py`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pydantic import Field

from fmfl_audit.checkers.base import CheckContext, Checker, CheckerParams, CheckOutput, clients_with
from fmfl_audit.checkers.fairness._stereotypes import (
    RESOURCES,
    Pairing,
    StereotypeKnowledge,
    group_mentions,
    shared_knowledge,
    statements,
)
from fmfl_audit.engine.executors import ShardEnv, ShardTask
from fmfl_audit.errors import CheckerError
from fmfl_audit.inputs.records import Record
from fmfl_audit.manifest.loader import Deployment
from fmfl_audit.manifest.model import DataSource
from fmfl_audit.models import Area, Confidence, Evidence, FindingDraft, Metric


class StereotypeParams(CheckerParams):
    """Settings of FMFL-F02."""

    # An empty list would measure nothing and pass: at least one, or null for all.
    axes: tuple[str, ...] | None = Field(
        default=None,
        min_length=1,
        description="Axes to measure; every axis the knowledge covers when null.",
    )
    resources: tuple[str, ...] | None = Field(
        default=None,
        min_length=1,
        description=f"Knowledge resources to use ({', '.join(RESOURCES)}); all when null.",
    )
    lemmatise: bool = Field(
        default=True,
        description="Compare words in their WordNet canonical form (`laziness` -> `lazy`); "
        "false: plural folding only.",
    )
    wordnet_expansion: bool = Field(
        default=True,
        description="Extend each attribute with its WordNet synonyms (same direction) and "
        "antonyms (counter attributes), at a lower vote than the resources' own words.",
    )
    min_statements: int = Field(default=5, ge=1, description="Consistent statements needed.")
    min_rate: float = Field(
        default=0.08, ge=0, le=1, description="Consistent statements per group mention needed."
    )
    min_lift: float = Field(
        default=1.5, ge=1, description="Observed / chance-expected consistent statements needed."
    )
    alpha: float = Field(default=0.01, gt=0, lt=1, description="Family-wise significance level.")
    prior_weight: float = Field(
        default=0.5,
        ge=0,
        le=1,
        description="Weight of the uniform prior over the axis's groups in the chance model.",
    )
    noun_window: int = Field(default=2, ge=1, le=5)
    count_pronouns: bool = Field(
        default=True, description="Count she/he... as gender mentions (the clause bounds them)."
    )
    max_examples: int = Field(default=3, ge=0, le=20)
    batch_size: int = Field(default=512, ge=1)
    fm_preference: bool = Field(
        default=True, description="Measure the FM checkpoint's own stereotype preference."
    )
    fm_max_probes: int = Field(
        default=120, ge=4, description="Probe quadruples per axis for the FM preference."
    )
    fm_min_effect: float = Field(
        default=0.1,
        ge=0,
        description="Lower bound of the FM's mean log-odds preference (nats) that fires.",
    )
    fm_min_probes: int = Field(
        default=20, ge=2, description="Axes with fewer probes are not graded."
    )


StatementKey = tuple[str, str, str, tuple[Pairing, ...]]
"""(axis, group, kind or '', pairings) of a statement."""


@dataclass
class StereoTally:
    """Group mentions and statements of one source or shard (merged in file order)."""

    records: int = 0
    mentions: Counter[tuple[str, str]] = field(default_factory=Counter)
    statements: Counter[StatementKey] = field(default_factory=Counter)
    examples: dict[str, list[Evidence]] = field(default_factory=dict)

    def merge(self, other: StereoTally, max_examples: int) -> None:
        """Add the tally of the next shard (or, for `overall`, of the next client)."""
        self.records += other.records
        self.mentions.update(other.mentions)
        self.statements.update(other.statements)
        for axis, ex in other.examples.items():
            mine = self.examples.setdefault(axis, [])
            mine.extend(ex[: max(0, max_examples - len(mine))])


@dataclass(frozen=True)
class StereotypeTask(ShardTask):
    """F02's map step: group mentions and statements in one shard's texts."""

    axes: tuple[str, ...] | None
    resources: tuple[str, ...] | None
    lemmatise: bool
    expand: bool
    noun_window: int
    pronouns: bool
    max_examples: int

    def map(self, batches: Iterator[list[Record]], env: ShardEnv) -> StereoTally:
        know = shared_knowledge(
            env.cache, self.resources, lemmatise=self.lemmatise, expand=self.expand
        )
        t = StereoTally()
        for batch in batches:
            for rec in batch:
                t.records += 1
                self._record(know, rec, t, env)
        return t

    def _record(
        self, know: StereotypeKnowledge, rec: Record, t: StereoTally, env: ShardEnv
    ) -> None:
        text = rec.text or ""
        opts = {"axes": self.axes, "pronouns": self.pronouns, "noun_window": self.noun_window}
        for m in group_mentions(text, know, **opts):  # type: ignore[arg-type]
            t.mentions[(m.axis, m.group)] += 1
        for s in statements(text, know, **opts):  # type: ignore[arg-type]
            t.statements[(s.axis, s.group, s.kind or "", s.pairings)] += 1
            ex = t.examples.setdefault(s.axis, [])
            if (
                s.kind == "consistent"
                and len(ex) < self.max_examples
                and all(e.location != rec.location for e in ex)
            ):
                ex.append(_example(env, rec, text, s.span, f"GROUP:{s.axis}/{s.group}"))


def _example(env: ShardEnv, rec: Record, text: str, span: tuple[int, int], label: str) -> Evidence:
    """The record with the group mention masked and every PII value or secret masked too."""
    from fmfl_audit.checkers.privacy._evidence import scrub

    return Evidence(location=rec.location, excerpt=scrub(env.cache, text, [(*span, label)]))


@dataclass(frozen=True)
class AxisFigures:
    """One axis of one subject, assessed."""

    mentions: int
    consistent: int
    counter: int
    expected: float
    p_value: float
    binom_p: float
    top_groups: dict[str, int]

    @property
    def rate(self) -> float:
        return self.consistent / self.mentions if self.mentions else 0.0

    @property
    def lift(self) -> float | None:
        return self.consistent / self.expected if self.expected > 0 else None

    def as_dict(self) -> dict[str, Any]:
        lift = self.lift
        return {
            "group_mentions": self.mentions,
            "consistent": self.consistent,
            "counter": self.counter,
            "stereotype_rate": round(self.rate, 6),
            "counter_rate": round(self.counter / self.mentions, 6) if self.mentions else 0.0,
            "consistent_to_counter": round(self.consistent / self.counter, 6)
            if self.counter
            else None,
            "expected_by_chance": round(self.expected, 6),
            "lift": None if lift is None else round(lift, 6),
            "p_value": self.p_value,
            "binomial_p_consistent_vs_counter": self.binom_p,
            "consistent_by_group": self.top_groups,
        }


def assess_axis(
    know: StereotypeKnowledge, t: StereoTally, axis: str, prior_weight: float
) -> AxisFigures:
    """Observed vs chance-expected consistent statements of one axis (see the module doc)."""
    from scipy.stats import binomtest, poisson

    rows = [(g, k, p, n) for (a, g, k, p), n in t.statements.items() if a == axis]
    total = sum(n for *_, n in rows)
    seen: Counter[str] = Counter()
    for g, _, _, n in rows:
        seen[g] += n
    groups = sorted(set(know.groups_by_axis.get(axis, [])) | set(seen))
    share = {
        g: (1 - prior_weight) * (seen[g] / total if total else 0.0) + prior_weight / len(groups)
        for g in groups
    }
    expected = 0.0
    chance: dict[tuple[Pairing, ...], float] = {}
    for _, _, pairings, n in rows:
        if pairings not in chance:
            chance[pairings] = sum(share[g] for g in know.consistent_groups(axis, pairings))
        expected += n * chance[pairings]
    consistent = sum(n for _, k, _, n in rows if k == "consistent")
    counter = sum(n for _, k, _, n in rows if k == "counter")
    by_group: Counter[str] = Counter()
    for g, k, _, n in rows:
        if k == "consistent":
            by_group[g] += n
    p = float(poisson.sf(consistent - 1, expected)) if consistent and expected > 0 else 1.0
    if consistent and expected == 0:
        p = 0.0
    bp = (
        float(binomtest(consistent, consistent + counter, 0.5, alternative="greater").pvalue)
        if consistent + counter
        else 1.0
    )
    return AxisFigures(
        mentions=sum(n for (a, _), n in t.mentions.items() if a == axis),
        consistent=consistent,
        counter=counter,
        expected=expected,
        p_value=p,
        binom_p=bp,
        top_groups=dict(sorted(by_group.items(), key=lambda kv: (-kv[1], kv[0]))[:5]),
    )


def tally_source(
    ctx: CheckContext, source: DataSource, params: StereotypeParams, axes: tuple[str, ...] | None
) -> StereoTally:
    """The stereotype tally of one data file (shard map, merged in file order)."""
    task = StereotypeTask(
        axes=axes,
        resources=params.resources,
        lemmatise=params.lemmatise,
        expand=params.wordnet_expansion,
        noun_window=params.noun_window,
        pronouns=params.count_pronouns,
        max_examples=params.max_examples,
    )
    t = StereoTally()
    for part in ctx.map_shards(source, task, batch_size=params.batch_size):
        t.merge(part, params.max_examples)
    return t


def knowledge_for(ctx: CheckContext, params: StereotypeParams) -> StereotypeKnowledge:
    """The knowledge these settings select, built once per scan."""
    return shared_knowledge(
        ctx.cache,
        params.resources,
        lemmatise=params.lemmatise,
        expand=params.wordnet_expansion,
    )


def resolve_axes(know: StereotypeKnowledge, params: StereotypeParams) -> tuple[str, ...]:
    """The axes to measure (CheckerError for an axis the knowledge does not cover)."""
    if params.axes is None:
        return tuple(know.axes)
    unknown = [a for a in params.axes if a not in know.groups_by_axis]
    if unknown:
        raise CheckerError(
            f"no stereotype knowledge for axis {unknown[0]!r}; known: {', '.join(know.axes)}"
        )
    return tuple(params.axes)


class StereotypeChecker(Checker):
    """Ensure synthetic data (and the FM) does not state or prefer known stereotypes."""

    id: ClassVar[str] = "FMFL-F02"
    title: ClassVar[str] = "Ensure synthetic data does not associate groups with stereotypes"
    area: ClassVar[Area] = Area.FAIRNESS
    threat: ClassVar[str] = "underrepresented attributes"
    inputs: ClassVar[tuple[str, ...]] = ("clients[].synthetic_data", "foundation_model.checkpoint")
    Params = StereotypeParams

    def missing_inputs(self, deployment: Deployment) -> list[str]:
        return [] if clients_with(deployment, "synthetic_data") else ["clients[].synthetic_data"]

    def run(self, ctx: CheckContext, params: Any) -> CheckOutput:
        assert isinstance(params, StereotypeParams)
        from fmfl_audit.checkers.privacy._evidence import warm_scrubber

        know = knowledge_for(ctx, params)
        axes = resolve_axes(know, params)
        warm_scrubber(ctx.cache, ctx.executor)
        out = CheckOutput(notes=[f"stereotype knowledge: {', '.join(know.resources)}"])
        clients = clients_with(ctx.deployment, "synthetic_data")
        ctx.progress.set_total(len(clients) + 1)
        pooled = StereoTally()
        for c in clients:
            tally = tally_source(ctx, c.synthetic_data, params, axes)
            self._assess(c.subject, know, tally, axes, params, out)
            pooled.merge(tally, params.max_examples)
            ctx.progress.advance()
        self._assess("overall", know, pooled, axes, params, out)
        fm = ctx.deployment.manifest.foundation_model
        if params.fm_preference and fm is not None and fm.checkpoint is not None:
            from fmfl_audit.checkers.fairness._fm_preference import fm_preference_findings

            # The probes use the resources' own words, as the FM would be tuned on them.
            words = shared_knowledge(ctx.cache, params.resources, lemmatise=False, expand=False)
            fm_preference_findings(ctx, words, axes, params, out)
        ctx.progress.advance()
        return out

    def _assess(
        self,
        subject: str,
        know: StereotypeKnowledge,
        t: StereoTally,
        axes: tuple[str, ...],
        params: StereotypeParams,
        out: CheckOutput,
    ) -> None:
        figures: dict[str, Any] = {"records": t.records}
        assessed = {a: assess_axis(know, t, a, params.prior_weight) for a in axes}
        tested = [a for a, f in assessed.items() if f.consistent > 0]
        for axis, f in assessed.items():
            if f.mentions or f.consistent or f.counter:
                figures[axis] = f.as_dict()
        figures["axes_tested"] = len(tested)
        out.metrics[subject] = figures
        for axis in tested:
            f = assessed[axis]
            p_adj = min(1.0, f.p_value * len(tested))
            figures[axis]["p_value_bonferroni"] = p_adj
            lift = f.lift
            if (
                f.consistent < params.min_statements
                or f.rate < params.min_rate
                or (lift is not None and lift < params.min_lift)
                or p_adj >= params.alpha
            ):
                continue
            where = "the pooled synthetic data" if subject == "overall" else f"{subject}'s data"
            groups = ", ".join(f"{g} {n}" for g, n in f.top_groups.items())
            out.findings.append(
                FindingDraft(
                    subject=subject,
                    key=f"{axis}:stereotype",
                    confidence=Confidence.HIGH if p_adj < params.alpha / 10 else Confidence.MEDIUM,
                    message=(
                        f"{axis}: {f.consistent} stereotype-consistent statements vs "
                        f"{f.counter} counter-stereotypical in {where} ({f.rate:.1%} of "
                        f"{f.mentions} group mentions; "
                        + (f"{lift:.1f}x" if lift is not None else "above")
                        + f" the {f.expected:.1f} expected if groups were interchangeable, "
                        f"Bonferroni p={p_adj:.2g}); most: {groups}"
                    ),
                    metric=Metric(
                        name="stereotype_rate", value=round(f.rate, 6), threshold=params.min_rate
                    ),
                    evidence=tuple(t.examples.get(axis, ())),
                )
            )
