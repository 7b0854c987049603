"""FMFL-F05: bias transmission along the FM path (FM -> synthetic data -> FL model).

**Group gaps.** For one sensitive feature (a column such as `gender`): the positive rate per group,
where "positive" is a label equal to `positive_label`, and its gap = highest group rate - lowest
group rate (the demographic parity difference of that stage), over the groups that have at least
`min_group_size` rows in both the real stage and the stage compared. Stages:

- `real`: the clients' private samples, pooled (their label column), metrics subject `real-data`;
  when no private-sample row carries a label and a sensitive feature, the evaluation data's true
  labels (`evaluation.label_field`) stand in (its source is named in the metrics);
- `synthetic`: the FM's synthetic data, pooled (labels the FM attached), subject
  `fm:synthetic-data`. A record without the feature column gets the group its text names
  (`text_groups`: feature -> lexicon axis, e.g. `gender` -> the group of its female / male
  mentions that outnumbers the other at least twice; other records are left out);
- `teacher`: the FM's distillation outputs (`foundation_model.teacher_predictions`, predicted
  label), subject `fm:teacher`;
- each FL model: a predictions file's `y_pred`, or a sequence classifier's predicted class on
  `evaluation`, subject `model:<name>`.

Rows without the feature (or without a label) are skipped and counted. Amplification factor =
gap(stage) / gap(real). A stage fails when its gap exceeds the real gap by more than
`min_gap_increase` and the factor exceeds `max_amplification` (or the real gap is zero).

**Stereotype chain** (`chain: true`). With the stereotype knowledge of FMFL-F02
(`_stereotypes`): the FM checkpoint's own preference per axis (paired likelihood,
`_fm_preference`; subject `fm`), the stereotype rate of the pooled synthetic data against that of
the clients' real text (private samples and evaluation texts), and the model gaps above are
reported together under the metrics subject `chain`. The synthetic data fails
(`fm:synthetic-data`, key `<axis>:stereotype-rate`) when its stereotype rate exceeds the real
text's by more than `min_rate_increase`, the excess is significant (one-sided Fisher exact test at
`alpha`) and F02's direction test holds on it (lift >= `min_lift`). Every F05 finding names the
upstream links of the chain that are elevated, so a reader sees where the bias entered.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pydantic import Field

from fmfl_audit.checkers.base import CheckContext, Checker, CheckerParams, CheckOutput, clients_with
from fmfl_audit.checkers.fairness._classifier import (
    load_classifier,
    predict_proba,
    sequence_classifiers,
)
from fmfl_audit.checkers.fairness._lexicon import DemographicLexicon, shared_lexicon, tokenize
from fmfl_audit.errors import CheckerError, RuleSkipped
from fmfl_audit.manifest.loader import Deployment
from fmfl_audit.manifest.model import DataSource, ModelSpec
from fmfl_audit.models import Area, Confidence, Evidence, FindingDraft, Metric


class AmplificationParams(CheckerParams):
    """Settings of FMFL-F05."""

    features: tuple[str, ...] | None = Field(
        default=None,
        description="Sensitive columns; evaluation's, else the private samples' when null.",
    )
    positive_label: str | int = Field(default=1, description="The label whose rate is compared.")
    max_amplification: float = Field(default=1.25, ge=1, description="gap(stage)/gap(real) cap.")
    min_gap_increase: float = Field(
        default=0.05, ge=0, le=1, description="Absolute widening needed for a finding."
    )
    min_group_size: int = Field(default=20, ge=1)
    batch_size: int = Field(default=32, ge=1)
    max_length: int = Field(default=256, ge=8)
    text_groups: dict[str, str] = Field(
        default_factory=lambda: {"gender": "gender_and_sex"},
        description="Sensitive feature -> lexicon axis, for synthetic records without the column.",
    )
    chain: bool = Field(
        default=True, description="Measure the stereotype chain FM -> synthetic data -> model."
    )
    min_rate_increase: float = Field(
        default=0.02, ge=0, le=1, description="Synthetic minus real stereotype rate that fires."
    )
    min_lift: float = Field(
        default=1.5, ge=1, description="F02's direction test on synthetic data."
    )
    alpha: float = Field(default=0.01, gt=0, lt=1)


def _text_group(lex: DemographicLexicon, text: str, axis: str) -> str | None:
    """The group of `axis` that `text` is about: the one it names most, at least twice as often
    as any other (None when it names none, or no group dominates)."""
    toks, _ = tokenize(text)
    counts = Counter(m.group for m in lex.mentions(toks, axes=(axis,), pronouns=True))
    top = counts.most_common(2)
    if not top or (len(top) == 2 and top[0][1] < 2 * top[1][1]):
        return None
    return top[0][0]


def _same(value: Any, positive: Any) -> bool:
    if isinstance(value, bool):
        value = int(value)
    return str(value).strip().lower() == str(positive).strip().lower()


@dataclass
class Stage:
    """Rows and positives per feature and group."""

    rows: dict[str, Counter[str]] = field(default_factory=dict)
    positives: dict[str, Counter[str]] = field(default_factory=dict)
    skipped: int = 0
    locations: list[str] = field(default_factory=list)

    def add(self, feature: str, group: str, positive: bool) -> None:
        self.rows.setdefault(feature, Counter())[group] += 1
        if positive:
            self.positives.setdefault(feature, Counter())[group] += 1

    def rates(self, feature: str) -> dict[str, tuple[float, int]]:
        rows = self.rows.get(feature, Counter())
        pos = self.positives.get(feature, Counter())
        return {g: (pos[g] / n, n) for g, n in sorted(rows.items())}


class AmplificationChecker(Checker):
    """Ensure the FM path does not widen the gaps already in the clients' real data."""

    id: ClassVar[str] = "FMFL-F05"
    title: ClassVar[str] = "Ensure the FM path does not amplify group disparities"
    area: ClassVar[Area] = Area.FAIRNESS
    threat: ClassVar[str] = "bias transmission"
    runtime_skips: ClassVar[tuple[str, ...]] = (
        "when no sensitive feature is declared (params.features, evaluation or private samples)",
        "when no private-sample or evaluation record carries a label and a sensitive feature",
    )
    inputs: ClassVar[tuple[str, ...]] = (
        "clients[].private_sample (label + sensitive features)",
        "clients[].synthetic_data, foundation_model.teacher_predictions or models[]",
    )
    Params = AmplificationParams

    def missing_inputs(self, deployment: Deployment) -> list[str]:
        m = deployment.manifest
        missing = []
        if not clients_with(deployment, "private_sample") and m.evaluation is None:
            missing.append("clients[].private_sample or evaluation")
        fm = m.foundation_model
        later = (
            clients_with(deployment, "synthetic_data")
            or (fm is not None and fm.teacher_predictions is not None)
            or any(x.kind == "predictions" for x in m.models)
            or (m.evaluation is not None and any(x.kind == "sequence-classifier" for x in m.models))
        )
        if not later:
            missing.append(
                "clients[].synthetic_data, foundation_model.teacher_predictions or a model"
            )
        return missing

    def run(self, ctx: CheckContext, params: Any) -> CheckOutput:
        assert isinstance(params, AmplificationParams)
        feats = self._features(ctx, params)
        m = ctx.deployment.manifest
        out = CheckOutput()
        real = self._real_stage(ctx, feats, params, out)
        stages: list[tuple[str, str, Stage]] = []
        synth = Stage()
        for c in clients_with(ctx.deployment, "synthetic_data"):
            self._read_labels(ctx, c.synthetic_data, feats, params, synth, from_text=True)
        if synth.rows:
            stages.append(("synthetic", "fm:synthetic-data", synth))
        fm = m.foundation_model
        if fm is not None and fm.teacher_predictions is not None:
            teacher = Stage()
            self._read_labels(ctx, fm.teacher_predictions, feats, params, teacher)
            if teacher.rows:
                stages.append(("teacher", "fm:teacher", teacher))
        for model in m.models:
            st = self._model_stage(ctx, params, model, feats)
            if st is not None and st.rows:
                stages.append((f"model:{model.name}", model.subject, st))
        chain = None
        if params.chain:
            from fmfl_audit.checkers.fairness._chain import stereotype_chain

            chain = stereotype_chain(ctx, params, out)
        if not stages:
            out.notes.append("no later stage carries the sensitive features: nothing to compare")
        for name, subject, st in stages:
            self._compare(name, subject, real, st, feats, params, out)
        if chain is not None:
            chain.annotate(out, real, stages, feats, params)
        return out

    def _real_stage(
        self,
        ctx: CheckContext,
        feats: tuple[str, ...],
        params: AmplificationParams,
        out: CheckOutput,
    ) -> Stage:
        """The clients' private samples; the evaluation data's true labels when those carry no
        label and feature (RuleSkipped when neither does)."""
        real = Stage()
        for c in clients_with(ctx.deployment, "private_sample"):
            self._read_labels(ctx, c.private_sample, feats, params, real)
        source = "clients[].private_sample"
        ev = ctx.deployment.manifest.evaluation
        if not real.rows and ev is not None:
            real = Stage()
            self._read_labels(ctx, ev.as_source(), feats, params, real)
            source = "evaluation (true labels)"
        out.metrics["real-data"] = self._figures(real, feats, params)
        out.metrics["real-data"]["source"] = source
        if not real.rows:
            # The inputs exist but cannot show a gap: nothing measured, so skipped, not errored.
            raise RuleSkipped(
                "no private-sample or evaluation row carries a label and one of " + ", ".join(feats)
            )
        return real

    def _features(self, ctx: CheckContext, params: AmplificationParams) -> tuple[str, ...]:
        if params.features:
            return params.features
        ev = ctx.deployment.manifest.evaluation
        if ev is not None and ev.sensitive_features:
            return ev.sensitive_features
        feats: list[str] = []
        for c in clients_with(ctx.deployment, "private_sample"):
            feats.extend(f for f in c.private_sample.sensitive_features if f not in feats)
        if not feats:
            raise RuleSkipped(
                "no sensitive features: set FMFL-F05 params.features, "
                "evaluation.sensitive_features or private_sample.sensitive_features"
            )
        return tuple(feats)

    def _read_labels(
        self,
        ctx: CheckContext,
        source: DataSource,
        feats: tuple[str, ...],
        params: AmplificationParams,
        stage: Stage,
        *,
        from_text: bool = False,
    ) -> None:
        display = ctx.display(source.path)
        lex = shared_lexicon(ctx.cache) if from_text and params.text_groups else None
        for batch in ctx.records(source, require_text=False):
            for rec in batch:
                if rec.label in (None, ""):
                    stage.skipped += 1
                    continue
                usable = False
                for f in feats:
                    g = rec.data.get(f)
                    if g in (None, "") and lex is not None and f in params.text_groups:
                        text = rec.data.get(source.text_field)
                        if isinstance(text, str):
                            g = _text_group(lex, text, params.text_groups[f])
                    if g in (None, ""):
                        continue
                    stage.add(f, str(g), _same(rec.label, params.positive_label))
                    usable = True
                if not usable:
                    stage.skipped += 1
                elif display not in stage.locations and len(stage.locations) < 5:
                    stage.locations.append(display)

    def _model_stage(
        self,
        ctx: CheckContext,
        params: AmplificationParams,
        model: ModelSpec,
        feats: tuple[str, ...],
    ) -> Stage | None:
        st = Stage()
        if model.kind == "predictions":
            preds = model.predictions
            assert preds is not None
            for batch in ctx.records(
                preds.as_source(), require_text=False, required=(preds.y_pred,)
            ):
                for rec in batch:
                    pos = _same(rec.data[preds.y_pred], preds.positive_label)
                    for f in feats:
                        g = rec.data.get(f)
                        if g not in (None, ""):
                            st.add(f, str(g), pos)
            st.locations.append(ctx.display(preds.path))
            return st
        ev = ctx.deployment.manifest.evaluation
        if (
            model.kind != "sequence-classifier"
            or ev is None
            or model not in sequence_classifiers(ctx)
        ):
            return None
        clf = load_classifier(ctx, model)
        pos_idx = clf.label_index(params.positive_label)
        if pos_idx is None:
            raise CheckerError(
                f"model {model.name!r}: positive_label {params.positive_label!r} is not a class"
            )
        texts: list[str] = []
        groups: list[dict[str, Any]] = []
        for batch in ctx.records(ev.as_source()):
            for rec in batch:
                texts.append(rec.text or "")
                groups.append({f: rec.data.get(f) for f in feats})
        probs = predict_proba(
            clf, texts, batch_size=params.batch_size, max_length=params.max_length
        )
        for idx, g in zip(probs.argmax(axis=1).tolist(), groups, strict=True):
            for f, v in g.items():
                if v not in (None, ""):
                    st.add(f, str(v), idx == pos_idx)
        st.locations.append(ctx.display(ev.data))
        return st

    def _figures(
        self, st: Stage, feats: tuple[str, ...], params: AmplificationParams
    ) -> dict[str, Any]:
        fig: dict[str, Any] = {"skipped_rows": st.skipped}
        for f in feats:
            fig[f] = {
                g: {"positive_rate": round(r, 6), "rows": n} for g, (r, n) in st.rates(f).items()
            }
        return fig

    def _compare(
        self,
        name: str,
        subject: str,
        real: Stage,
        st: Stage,
        feats: tuple[str, ...],
        params: AmplificationParams,
        out: CheckOutput,
    ) -> None:
        fig = self._figures(st, feats, params)
        fig["stage"] = name
        for f in feats:
            r_rates = real.rates(f)
            s_rates = st.rates(f)
            common = sorted(
                g
                for g in r_rates
                if r_rates[g][1] >= params.min_group_size
                and g in s_rates
                and s_rates[g][1] >= params.min_group_size
            )
            cell: dict[str, Any] = {"groups": fig[f], "compared_groups": common}
            fig[f] = cell
            if len(common) < 2:
                cell["note"] = f"fewer than two groups with {params.min_group_size}+ rows in both"
                continue
            gap_r = max(r_rates[g][0] for g in common) - min(r_rates[g][0] for g in common)
            gap_s = max(s_rates[g][0] for g in common) - min(s_rates[g][0] for g in common)
            factor = gap_s / gap_r if gap_r > 0 else None
            cell.update(
                gap_real=round(gap_r, 6),
                gap_stage=round(gap_s, 6),
                amplification=None if factor is None else round(factor, 6),
            )
            widened = gap_s - gap_r > params.min_gap_increase
            if not widened or (factor is not None and factor <= params.max_amplification):
                continue
            hi = max(common, key=lambda g: (s_rates[g][0], g))
            lo = min(common, key=lambda g: (s_rates[g][0], g))
            smallest = min(min(real.rows[f][g], st.rows[f][g]) for g in common)
            out.findings.append(
                FindingDraft(
                    subject=subject,
                    key=f"{f}:amplification",
                    confidence=Confidence.HIGH
                    if smallest >= 5 * params.min_group_size
                    else Confidence.MEDIUM,
                    message=(
                        f"the {f} gap in positive rate widens from {gap_r:.2f} in the clients' "
                        f"real data to {gap_s:.2f} at stage {name} ({f}={hi} "
                        f"{s_rates[hi][0]:.0%} vs {f}={lo} {s_rates[lo][0]:.0%})"
                    ),
                    metric=Metric(
                        name="amplification" if factor is not None else "gap_increase",
                        value=round(factor if factor is not None else gap_s - gap_r, 6),
                        threshold=params.max_amplification
                        if factor is not None
                        else params.min_gap_increase,
                    ),
                    evidence=tuple(Evidence(location=loc) for loc in st.locations),
                )
            )
        out.metrics[subject] = fig
