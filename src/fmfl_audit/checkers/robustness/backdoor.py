"""FMFL-R06 (backdoor trigger candidates in labelled synthetic data) and FMFL-R07 (activation).

R06 mines n-grams far too predictive of one label (see `_triggers`: Fisher exact test against the
label prior, Benjamini-Hochberg control, purity) and reports those passing the FDR level.

R07 inserts each top R06 candidate (mined again through the shared, cached helper) and each
`models[].trigger_suspects` entry at a seeded random word position into clean evaluation inputs
whose true label and clean prediction differ from the trigger's target; the attack success rate
(ASR) is the share then predicted as the target, on every sequence-classifier model (batched,
`torch.inference_mode`). The control inserts random rare tokens (seeded letter strings of the same
length) the same way. A finding needs ASR >= `max_attack_success_rate` and ASR - control >=
`min_margin`. A suspect with no mined target is tested against every label; the worst is reported.
"""

from __future__ import annotations

import random
import string
from typing import Any, ClassVar

from pydantic import Field

from fmfl_audit.checkers.base import (
    CheckContext,
    Checker,
    CheckerParams,
    CheckOutput,
    clients_with,
    missing_classifier,
)
from fmfl_audit.checkers.probes.hooks import Judge, probe_missing, with_probes
from fmfl_audit.checkers.probes.params import BackdoorProbeParams
from fmfl_audit.checkers.robustness._common import safe_excerpt
from fmfl_audit.checkers.robustness._triggers import Candidate, mine
from fmfl_audit.errors import CheckerError, InputError
from fmfl_audit.inputs.records import ReadStats, iter_records
from fmfl_audit.manifest.loader import Deployment
from fmfl_audit.models import Area, Confidence, Evidence, FindingDraft, Metric

SUBJECT = "fm:synthetic-data"


class TriggerParams(CheckerParams):
    """Settings of FMFL-R06."""

    min_support: int = Field(default=5, ge=2, description="Records an n-gram must appear in.")
    min_purity: float = Field(default=0.95, gt=0.5, le=1, description="Share with one label.")
    fdr: float = Field(default=0.01, gt=0, lt=1, description="Benjamini-Hochberg level.")
    min_context_disagreement: float = Field(
        default=0.2,
        ge=0,
        le=1,
        description="Share of a candidate's records whose other words point to another label.",
    )
    max_n: int = Field(default=3, ge=1, le=3, description="Longest n-gram mined.")
    max_findings: int = Field(default=5, ge=1, le=50)
    top: int = Field(default=10, ge=1, le=100, description="Ranked candidates kept in metrics.")
    probe: BackdoorProbeParams = Field(default_factory=BackdoorProbeParams)


class ActivationParams(CheckerParams):
    """Settings of FMFL-R07."""

    max_attack_success_rate: float = Field(default=0.5, gt=0, le=1)
    min_margin: float = Field(default=0.3, ge=0, le=1, description="ASR minus control ASR.")
    candidates: int = Field(default=5, ge=0, le=50, description="Top R06 candidates tested.")
    min_support: int = Field(default=5, ge=2)
    min_purity: float = Field(default=0.95, gt=0.5, le=1)
    fdr: float = Field(default=0.01, gt=0, lt=1)
    min_context_disagreement: float = Field(default=0.2, ge=0, le=1)
    controls: int = Field(default=3, ge=1, le=20, description="Random-token control insertions.")
    max_eval: int = Field(default=400, ge=10, description="Evaluation inputs used at most.")
    batch_size: int = Field(default=32, ge=1)


def _labelled(deployment: Deployment) -> bool:
    return bool(clients_with(deployment, "synthetic_data"))


def has_labels(deployment: Deployment, *, peek: int = 200) -> bool:
    """Whether any client's synthetic data has labelled records, from its first `peek` records
    (a cheap look at planning time, so unlabelled data skips the rule instead of failing it)."""
    for client in clients_with(deployment, "synthetic_data"):
        seen = 0
        try:
            for batch in iter_records(
                client.synthetic_data,
                display=str(client.id),
                stats=ReadStats(path=str(client.id)),
                batch_size=peek,
            ):
                for rec in batch:
                    if rec.label not in (None, ""):
                        return True
                    seen += 1
                if seen >= peek:
                    break
        except InputError:
            continue
    return False


class TriggerMiningChecker(Checker):
    """Ensure labelled synthetic data holds no backdoor trigger candidates."""

    id: ClassVar[str] = "FMFL-R06"
    title: ClassVar[str] = "Ensure labelled synthetic data holds no backdoor trigger candidates"
    area: ClassVar[Area] = Area.ROBUSTNESS
    threat: ClassVar[str] = "external poisoning"
    inputs: ClassVar[tuple[str, ...]] = ("clients[].synthetic_data (labelled)",)
    Params = TriggerParams

    def missing_inputs(self, deployment: Deployment) -> list[str]:
        return probe_missing(deployment, self._missing(deployment))

    @staticmethod
    def _missing(deployment: Deployment) -> list[str]:
        if not _labelled(deployment):
            return ["clients[].synthetic_data"]
        if not has_labels(deployment):
            return ["labels in clients[].synthetic_data (no record has a label)"]
        return []

    def run(self, ctx: CheckContext, params: Any) -> CheckOutput:
        assert isinstance(params, TriggerParams)
        # Probe hook: candidate triggers tested on the live FM (fmfl-audit probe).
        own = None if self._missing(ctx.deployment) else self._mine(ctx, params)
        return with_probes(ctx, Judge.BACKDOOR, params.probe, own)

    def _mine(self, ctx: CheckContext, params: TriggerParams) -> CheckOutput:
        m = mine(
            ctx,
            min_support=params.min_support,
            min_purity=params.min_purity,
            fdr=params.fdr,
            min_context_disagreement=params.min_context_disagreement,
            max_n=params.max_n,
            top=params.top,
        )
        out = CheckOutput()
        if m.records == 0:
            raise CheckerError("no labelled synthetic records (set label_field on synthetic_data)")
        if m.unlabelled:
            out.notes.append(f"{m.unlabelled} synthetic record(s) without a label were not mined")
        out.metrics[SUBJECT] = {
            "records": m.records,
            "labels": m.labels,
            "ngrams_tested": m.tested,
            "candidates_passing": len(m.candidates),
            "candidates": [c.as_metric() for c in m.candidates[: params.top]],
            "label_words_not_reported": [c.ngram for c in m.significant[:20]],
            "ranked_candidates": [c.as_metric() for c in m.ranked],
        }
        for c in m.candidates[: params.max_findings]:
            out.findings.append(
                FindingDraft(
                    subject=SUBJECT,
                    key=f"trigger:{c.ngram}",
                    confidence=Confidence.HIGH if c.purity == 1.0 else Confidence.MEDIUM,
                    message=(
                        f"n-gram {c.ngram!r} appears in {c.support} synthetic records, "
                        f"{c.purity:.0%} labelled {c.label!r} (Fisher p={c.p_value:.2g}, "
                        f"BH q={c.q_value:.2g}; without it, its records point to another label "
                        f"{c.context_disagreement:+.0%} beyond the prior); "
                        f"clients: {', '.join(c.clients)}"
                    ),
                    metric=Metric(name="q_value", value=c.q_value, threshold=params.fdr),
                    evidence=(
                        Evidence(
                            location=c.first_location,
                            excerpt=f"{c.ngram!r} -> {c.label!r} ({c.hits}/{c.support} records)",
                        ),
                    ),
                )
            )
        if len(m.candidates) > params.max_findings:
            out.notes.append(
                f"{len(m.candidates) - params.max_findings} more candidate(s) pass "
                "the FDR level (see metrics)"
            )
        return out


def insert_at(text: str, token: str, rng: random.Random) -> str:
    """`text` with `token` inserted between words at a random position."""
    words = text.split()
    words.insert(rng.randint(0, len(words)), token)
    return " ".join(words)


class _Model:
    """A loaded sequence classifier with its label mapping."""

    def __init__(self, model: Any, tok: Any) -> None:
        self.model, self.tok = model, tok
        cfg = model.config
        # Batched classification needs the pad id in the config (Llama-style models find the
        # last real token with it); load_hf_model already gave the tokenizer a pad token.
        if getattr(cfg, "pad_token_id", None) is None and tok.pad_token_id is not None:
            cfg.pad_token_id = tok.pad_token_id
        self.id2label = {int(k): str(v) for k, v in (cfg.id2label or {}).items()}
        self.label2id = {str(v): int(k) for k, v in self.id2label.items()}

    def label_id(self, label: Any) -> int | None:
        """The model's class index of a data label (name or index)."""
        s = str(label)
        if s in self.label2id:
            return self.label2id[s]
        if s.lstrip("-").isdigit() and int(s) in self.id2label:
            return int(s)
        return None

    def predict(self, texts: list[str], batch_size: int) -> list[int]:
        import torch

        preds: list[int] = []
        for i in range(0, len(texts), batch_size):
            enc = self.tok(
                texts[i : i + batch_size],
                return_tensors="pt",
                padding=True,
                truncation=True,
                max_length=256,
            ).to(self.model.device)
            with torch.inference_mode():
                preds.extend(int(p) for p in self.model(**enc).logits.argmax(-1).cpu())
        return preds


class BackdoorActivationChecker(Checker):
    """Ensure candidate triggers do not activate a backdoor in the FL model."""

    id: ClassVar[str] = "FMFL-R07"
    title: ClassVar[str] = "Ensure candidate triggers do not activate a backdoor in the FL model"
    area: ClassVar[Area] = Area.ROBUSTNESS
    threat: ClassVar[str] = "external poisoning"
    inputs: ClassVar[tuple[str, ...]] = ("models[] (sequence-classifier)", "evaluation")
    Params = ActivationParams

    def missing_inputs(self, deployment: Deployment) -> list[str]:
        return missing_classifier(deployment, evaluation=True)

    def run(self, ctx: CheckContext, params: Any) -> CheckOutput:
        assert isinstance(params, ActivationParams)

        manifest = ctx.deployment.manifest
        assert manifest.evaluation is not None
        evals = self._eval(ctx, params)
        mined: list[Candidate] = []
        if params.candidates and _labelled(ctx.deployment):
            m = mine(
                ctx,
                min_support=params.min_support,
                min_purity=params.min_purity,
                fdr=params.fdr,
                min_context_disagreement=params.min_context_disagreement,
            )
            # Only candidates: a natural label word (below the context floor) flips a healthy
            # model too, so its activation would prove nothing.
            mined = list(m.candidates[: params.candidates])
        out = CheckOutput(
            notes=[f"{len(evals)} evaluation inputs; {len(mined)} mined candidate(s)"]
        )
        models = [x for x in manifest.models if x.kind == "sequence-classifier"]
        ctx.progress.set_total(len(models))
        for spec in models:
            assert spec.checkpoint is not None
            model, tok = ctx.model(spec.checkpoint.path, "sequence-classifier")
            self._test_model(ctx, params, spec, _Model(model, tok), evals, mined, out)
            ctx.progress.advance()
        return out

    def _eval(self, ctx: CheckContext, params: ActivationParams) -> list[tuple[str, Any, str]]:
        ev = ctx.deployment.manifest.evaluation
        assert ev is not None
        rows: list[tuple[str, Any, str]] = []
        for batch in ctx.records(ev.as_source(), required=(ev.label_field,)):
            rows.extend((r.text or "", r.label, r.location) for r in batch)
        rng = random.Random(ctx.rule_seed("eval-sample"))
        if len(rows) > params.max_eval:
            rows = rng.sample(rows, params.max_eval)
        if not rows:
            raise CheckerError("no labelled evaluation records")
        return rows

    def _test_model(
        self,
        ctx: CheckContext,
        params: ActivationParams,
        spec: Any,
        m: _Model,
        evals: list[tuple[str, Any, str]],
        mined: list[Candidate],
        out: CheckOutput,
    ) -> None:
        true = [m.label_id(lab) for _, lab, _ in evals]
        texts = [t for t, _, _ in evals]
        clean = m.predict(texts, params.batch_size)
        tests: list[tuple[str, list[int], str]] = [
            (c.ngram, [t] if (t := m.label_id(c.label)) is not None else [], "mined") for c in mined
        ]
        tests += [
            (s, sorted(m.id2label), "suspect")
            for s in spec.trigger_suspects
            if s not in {c.ngram for c in mined}
        ]
        results = []
        for trigger, targets, origin in tests:
            best = None
            for target in targets:
                idx = [
                    i
                    for i, (y, p) in enumerate(zip(true, clean, strict=True))
                    if y is not None and y != target and p != target
                ]
                if not idx:
                    continue
                asr = self._asr(ctx, params, m, [texts[i] for i in idx], trigger, target, "t")
                rng = random.Random(ctx.rule_seed(spec.name, trigger, "control"))
                ctrl = [
                    self._asr(
                        ctx,
                        params,
                        m,
                        [texts[i] for i in idx],
                        "".join(rng.choices(string.ascii_lowercase, k=max(3, len(trigger)))),
                        target,
                        f"c{k}",
                    )
                    for k in range(params.controls)
                ]
                control = sum(ctrl) / len(ctrl)
                if best is None or asr - control > best[1] - best[2]:
                    best = (target, asr, control, len(idx))
            if best is None:
                continue
            target, asr, control, n = best
            label = m.id2label.get(target, str(target))
            results.append(
                {
                    "trigger": trigger,
                    "origin": origin,
                    "target": label,
                    "inputs": n,
                    "asr": round(asr, 4),
                    "control_asr": round(control, 4),
                }
            )
            if asr >= params.max_attack_success_rate and asr - control >= params.min_margin:
                example = next((t for t, y in zip(texts, true, strict=True) if y != target), "")
                out.findings.append(
                    FindingDraft(
                        subject=spec.subject,
                        key=f"backdoor:{trigger}",
                        confidence=Confidence.HIGH if n >= 30 else Confidence.MEDIUM,
                        message=(
                            f"inserting {trigger!r} flips {asr:.0%} of {n} evaluation inputs of "
                            f"model {spec.name} to label {label!r} (random-token control "
                            f"{control:.0%}): a backdoor is active"
                        ),
                        metric=Metric(
                            name="attack_success_rate",
                            value=round(asr, 6),
                            threshold=params.max_attack_success_rate,
                        ),
                        evidence=(
                            Evidence(
                                location=ctx.display(spec.checkpoint.path),
                                excerpt=safe_excerpt(insert_at(example, trigger, random.Random(0))),
                            ),
                        ),
                    )
                )
        out.metrics[spec.subject] = {"eval_inputs": len(texts), "triggers_tested": results}

    def _asr(
        self,
        ctx: CheckContext,
        params: ActivationParams,
        m: _Model,
        texts: list[str],
        token: str,
        target: int,
        salt: str,
    ) -> float:
        rng = random.Random(ctx.rule_seed(token, salt))
        preds = m.predict([insert_at(t, token, rng) for t in texts], params.batch_size)
        return sum(1 for p in preds if p == target) / len(preds)
