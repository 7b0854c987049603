"""FMFL-R01 and FMFL-R02: jailbreak prompts sent to the FM, and FM outputs that show a jailbreak.

R01 runs the layered detector of `_jailbreak` over every prompt of every client: signature families
kept as data in `rules/jailbreak/signatures.yml`, obfuscation (encodings decoded and re-scanned,
invisible and confusable characters), suffix likelihood (a window of implausible tokens by word
frequency: optimisation-made suffixes), intent (the shipped linear model
`rules/jailbreak/intent_prompts.*`: a harmful request, plain or disguised), character n-gram TF-IDF
similarity to the bundled corpus of known jailbreak templates (`rules/jailbreak/templates.jsonl`,
GPTFuzz, MIT), and an optional local sequence classifier. A client whose flagged rate exceeds
`max_flagged_rate` is likely compromised (or its users are attacking the shared FM).

R02 judges the synthetic data each client received with `_jailbreak.OutputJudge` (the function
`judge_outputs` for other callers): `rules/jailbreak/output_markers.yml` (persona markers,
refusal-bypass text) merged with the harmful-content lexicon `rules/jailbreak/harmful_lexicon.yml`,
and the compliance model `rules/jailbreak/intent_outputs.*` (a harmful request answered, with no
persona marker needed).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field

from fmfl_audit.checkers.base import CheckContext, Checker, CheckerParams, CheckOutput, clients_with
from fmfl_audit.checkers.probes._text import r02_judge_key
from fmfl_audit.checkers.probes.hooks import Judge, probe_missing, with_probes
from fmfl_audit.checkers.probes.params import SafetyProbeParams
from fmfl_audit.checkers.robustness._common import rate, safe_excerpt
from fmfl_audit.checkers.robustness._jailbreak import (
    PROMPT_MODEL,
    Detector,
    OutputJudge,
    Reason,
    SimilarityIndex,
    jailbreak_dir,
    load_corpus,
    load_intent,
    load_signatures,
)
from fmfl_audit.checkers.robustness._suffix import SuffixScorer
from fmfl_audit.engine.executors import Cache, ShardEnv, ShardTask
from fmfl_audit.inputs.records import Record
from fmfl_audit.manifest.loader import Deployment
from fmfl_audit.models import Area, Confidence, Evidence, FindingDraft, Metric


class JailbreakParams(CheckerParams):
    """Settings of FMFL-R01."""

    max_flagged_rate: float = Field(
        default=0.05, ge=0, le=1, description="Share of flagged prompts tolerated per client."
    )
    min_flagged: int = Field(
        default=1, ge=1, description="Flagged prompts needed before a client is reported."
    )
    signature_files: tuple[Path, ...] = Field(
        default=(), description="Extra signature files (same format as rules/jailbreak/*.yml)."
    )
    use_corpus: bool = Field(default=True, description="Compare with known jailbreak templates.")
    corpus_file: Path | None = Field(
        default=None, description="A JSONL corpus of templates (`text`); the bundled one if null."
    )
    similarity_threshold: float = Field(default=0.45, gt=0, le=1)
    use_suffix: bool = Field(default=True, description="Run the suffix-likelihood layer.")
    suffix_threshold: float | None = Field(
        default=None,
        gt=0,
        description="Evidence (bits) of the most implausible token run that flags; null: the "
        "tuned one (rules/jailbreak/suffix_likelihood.json).",
    )
    use_intent: bool = Field(default=True, description="Run the shipped intent model.")
    intent_threshold: float | None = Field(
        default=None, gt=0, le=1, description="Intent probability that flags; null: the model's."
    )
    classifier_path: Path | None = Field(
        default=None, description="Local HF sequence classifier folder (optional layer)."
    )
    classifier_label: str = Field(
        default="INJECTION",
        description="id2label name of the jailbreak class (case-insensitive); else index 1.",
    )
    classifier_threshold: float = Field(default=0.9, gt=0, le=1)
    max_examples: int = Field(default=3, ge=0, le=20)
    batch_size: int = Field(default=256, ge=1)


class OutputMarkerParams(CheckerParams):
    """Settings of FMFL-R02."""

    max_flagged_rate: float = Field(default=0.02, ge=0, le=1)
    min_flagged: int = Field(default=1, ge=1)
    signature_files: tuple[Path, ...] = Field(default=(), description="Extra marker files.")
    use_intent: bool = Field(default=True, description="Run the shipped compliance model.")
    intent_threshold: float | None = Field(
        default=None, gt=0, le=1, description="Compliance probability that flags; null: model's."
    )
    max_examples: int = Field(default=3, ge=0, le=20)
    batch_size: int = Field(default=512, ge=1)
    probe: SafetyProbeParams = Field(default_factory=SafetyProbeParams)


def _classifier(path: Path, label: str, device: str) -> Callable[[list[str]], list[float]]:
    """A batch function text -> probability of the jailbreak class, from a local HF folder."""
    import torch

    from fmfl_audit.inputs.checkpoints import load_hf_model

    model, tok = load_hf_model(path, kind="sequence-classifier", device=device)
    # Batched classification needs the pad id in the config (load_hf_model set the tokenizer's).
    if getattr(model.config, "pad_token_id", None) is None and tok.pad_token_id is not None:
        model.config.pad_token_id = tok.pad_token_id
    id2label = {int(k): str(v).lower() for k, v in (model.config.id2label or {}).items()}
    wanted = [i for i, name in id2label.items() if name == label.lower()]
    index = wanted[0] if wanted else 1

    def predict(texts: list[str]) -> list[float]:
        out: list[float] = []
        for i in range(0, len(texts), 32):
            enc = tok(
                texts[i : i + 32],
                return_tensors="pt",
                padding=True,
                truncation=True,
                max_length=512,
            ).to(model.device)
            with torch.inference_mode():
                probs = torch.softmax(model(**enc).logits.float(), dim=-1)[:, index]
            out.extend(float(p) for p in probs.cpu())
        return out

    return predict


def _evidence(rec_location: str, text: str, reasons: list[Reason]) -> Evidence:
    span = next((r.span for r in reasons if r.span is not None), None)
    ids = ", ".join(r.id for r in reasons[:4])
    return Evidence(location=rec_location, excerpt=f"[{ids}] {safe_excerpt(text, span)}")


@dataclass
class _Flagged:
    """Flagged records of one source, or of one shard of it (partials merge in file order)."""

    total: int = 0
    flagged: int = 0
    families: Counter[str] = field(default_factory=Counter)
    examples: list[Evidence] = field(default_factory=list)

    def merge(self, other: _Flagged, max_examples: int) -> None:
        """Add the partial of the next shard."""
        self.total += other.total
        self.flagged += other.flagged
        # Counter.update keeps first-seen order, which breaks ties in `most_common`.
        self.families.update(other.families)
        self.examples.extend(other.examples[: max(0, max_examples - len(self.examples))])


def _tallies(
    ctx: CheckContext, sources: list[Any], task: ShardTask, batch_size: int, max_examples: int
) -> list[_Flagged]:
    """The tallies of every source, from one executor map over all of them (small files keep
    every worker busy too); each folded in file order."""
    tallies = [_Flagged() for _ in sources]
    jobs = [(source, task) for source in sources]
    for j, part in ctx.map_sources(jobs, batch_size=batch_size):
        tallies[j].merge(part, max_examples)
    return tallies


@dataclass(frozen=True)
class _PromptTask(ShardTask):
    """R01's map step: the layered detector over one shard's prompts.

    Holds the detector's settings only; the detector itself is built once per process from them
    (`detector`), in the scan's cache or a worker's.
    """

    signature_files: tuple[Path, ...]
    use_corpus: bool
    corpus_file: Path | None
    similarity_threshold: float
    use_suffix: bool
    suffix_threshold: float | None
    use_intent: bool
    intent_threshold: float | None
    classifier_path: Path | None
    classifier_label: str
    classifier_threshold: float
    device: str
    max_examples: int

    @classmethod
    def of(cls, params: JailbreakParams, device: str) -> _PromptTask:
        """The task for these params and device."""
        return cls(
            signature_files=params.signature_files,
            use_corpus=params.use_corpus,
            corpus_file=params.corpus_file,
            similarity_threshold=params.similarity_threshold,
            use_suffix=params.use_suffix,
            suffix_threshold=params.suffix_threshold,
            use_intent=params.use_intent,
            intent_threshold=params.intent_threshold,
            classifier_path=params.classifier_path,
            classifier_label=params.classifier_label,
            classifier_threshold=params.classifier_threshold,
            device=device,
            max_examples=params.max_examples,
        )

    def detector(self, cache: Cache) -> Detector:
        """The detector, its parts built once per process through `cache`."""
        sig_files = (jailbreak_dir() / "signatures.yml", *self.signature_files)
        sigs = cache.get(f"jailbreak-signatures:{sig_files!r}", lambda: load_signatures(*sig_files))
        index = None
        if self.use_corpus:
            corpus = self.corpus_file

            def build() -> SimilarityIndex:
                return SimilarityIndex([r["text"] for r in load_corpus(corpus)])

            index = cache.get(f"jailbreak-corpus:{corpus}", build)
        clf = None
        if self.classifier_path is not None:
            path, label, device = self.classifier_path, self.classifier_label, self.device
            clf = cache.get(
                f"jailbreak-classifier:{path}:{label}:{device}",
                lambda: _classifier(path, label, device),
            )
        suffix = cache.get("jailbreak-suffix", SuffixScorer) if self.use_suffix else None
        intent = None
        if self.use_intent:
            intent = cache.get(
                f"jailbreak-intent:{PROMPT_MODEL}", lambda: load_intent(PROMPT_MODEL)
            )
        return Detector(
            signatures=sigs,
            similarity=index,
            similarity_threshold=self.similarity_threshold,
            suffix=suffix,
            suffix_threshold=self.suffix_threshold,
            intent=intent,
            intent_threshold=self.intent_threshold,
            classifier=clf,
            classifier_threshold=self.classifier_threshold,
        )

    def map(self, batches: Iterator[list[Record]], env: ShardEnv) -> _Flagged:
        det = self.detector(env.cache)
        part = _Flagged()
        for batch in batches:
            texts = [r.text or "" for r in batch]
            for rec, text, v in zip(batch, texts, det.classify(texts), strict=True):
                part.total += 1
                if not v.flagged:
                    continue
                part.flagged += 1
                part.families.update(v.families)
                if len(part.examples) < self.max_examples:
                    part.examples.append(_evidence(rec.location, text, v.reasons))
        return part


@dataclass(frozen=True)
class _OutputTask(ShardTask):
    """R02's map step: output markers, the harmful-content lexicon and the compliance model."""

    signature_files: tuple[Path, ...]
    use_intent: bool
    intent_threshold: float | None
    max_examples: int

    def judge(self, cache: Cache) -> OutputJudge:
        """The judge, its parts built once per process through `cache`."""
        return OutputJudge.cached(
            cache,
            self.signature_files,
            use_intent=self.use_intent,
            intent_threshold=self.intent_threshold,
        )

    def map(self, batches: Iterator[list[Record]], env: ShardEnv) -> _Flagged:
        judge = self.judge(env.cache)
        part = _Flagged()
        for batch in batches:
            texts = [r.text or "" for r in batch]
            for rec, text, v in zip(batch, texts, judge.judge(texts), strict=True):
                part.total += 1
                if not v.flagged:
                    continue
                part.flagged += 1
                part.families.update(v.families)
                if len(part.examples) < self.max_examples:
                    part.examples.append(_evidence(rec.location, text, v.reasons))
        return part


def _output_task(params: OutputMarkerParams) -> _OutputTask:
    return _OutputTask(
        signature_files=params.signature_files,
        use_intent=params.use_intent,
        intent_threshold=params.intent_threshold,
        max_examples=params.max_examples,
    )


class JailbreakPromptChecker(Checker):
    """Ensure no client sends jailbreak or prompt-injection prompts to the FM."""

    id: ClassVar[str] = "FMFL-R01"
    title: ClassVar[str] = "Ensure no client sends jailbreak or prompt-injection prompts to the FM"
    area: ClassVar[Area] = Area.ROBUSTNESS
    threat: ClassVar[str] = "universal evasion"
    inputs: ClassVar[tuple[str, ...]] = ("clients[].prompts",)
    Params = JailbreakParams

    def missing_inputs(self, deployment: Deployment) -> list[str]:
        return [] if clients_with(deployment, "prompts") else ["clients[].prompts"]

    def run(self, ctx: CheckContext, params: Any) -> CheckOutput:
        assert isinstance(params, JailbreakParams)
        task = _PromptTask.of(params, ctx.device)
        # Built here first: invalid signature files or a missing classifier fail before any data
        # is read, and forked workers inherit the built detector instead of rebuilding it.
        det = task.detector(ctx.cache)
        layers = ["signatures", "obfuscation"]
        layers += ["suffix likelihood"] if det.suffix is not None else []
        layers += ["intent"] if det.intent is not None else []
        layers += ["known-template similarity"] if det.similarity is not None else []
        layers += ["classifier"] if det.classifier is not None else []
        out = CheckOutput(notes=[f"detector layers: {', '.join(layers)}"])
        if params.classifier_path is None:
            out.notes.append("no classifier configured (params.classifier_path): layer skipped")
        clients = clients_with(ctx.deployment, "prompts")
        ctx.progress.set_total(len(clients))
        tallies = _tallies(
            ctx, [c.prompts for c in clients], task, params.batch_size, params.max_examples
        )
        for client, tally in zip(clients, tallies, strict=True):
            total, flagged, families = tally.total, tally.flagged, tally.families
            r = rate(flagged, total)
            out.metrics[client.subject] = {
                "prompts_total": total,
                "prompts_flagged": flagged,
                "flagged_rate": r,
                "families": dict(sorted(families.items())),
            }
            if flagged >= params.min_flagged and r > params.max_flagged_rate:
                top = ", ".join(f for f, _ in families.most_common(3))
                out.findings.append(
                    FindingDraft(
                        subject=client.subject,
                        key="jailbreak-prompts",
                        confidence=Confidence.HIGH if flagged >= 3 else Confidence.MEDIUM,
                        message=(
                            f"client {client.id} is likely compromised: {flagged} of {total} "
                            f"prompts it sent to the FM ({r:.1%}) are jailbreak or "
                            "prompt-injection "
                            f"attempts ({top})"
                        ),
                        metric=Metric(
                            name="flagged_rate", value=r, threshold=params.max_flagged_rate
                        ),
                        evidence=tuple(tally.examples),
                    )
                )
            ctx.progress.advance()
        return out


class JailbrokenOutputChecker(Checker):
    """Ensure FM outputs show no sign of a jailbroken or steered model."""

    id: ClassVar[str] = "FMFL-R02"
    title: ClassVar[str] = "Ensure FM outputs show no sign of a jailbroken or steered model"
    area: ClassVar[Area] = Area.ROBUSTNESS
    threat: ClassVar[str] = "universal evasion"
    inputs: ClassVar[tuple[str, ...]] = ("clients[].synthetic_data",)
    Params = OutputMarkerParams

    def missing_inputs(self, deployment: Deployment) -> list[str]:
        own = [] if clients_with(deployment, "synthetic_data") else ["clients[].synthetic_data"]
        return probe_missing(deployment, own)

    def run(self, ctx: CheckContext, params: Any) -> CheckOutput:
        assert isinstance(params, OutputMarkerParams)
        # Probe hook: the live FM's answers to harmful and safe requests (fmfl-audit probe),
        # judged by this rule's own detector settings (marker files, compliance model, threshold).
        task = _output_task(params)
        ctx.cache.get(r02_judge_key(ctx.rule_id), lambda: task.judge(ctx.cache))
        own = self._outputs(ctx, params) if clients_with(ctx.deployment, "synthetic_data") else None
        return with_probes(ctx, Judge.SAFETY, params.probe, own)

    def _outputs(self, ctx: CheckContext, params: OutputMarkerParams) -> CheckOutput:
        task = _output_task(params)
        task.judge(ctx.cache)  # invalid marker files or model fail before any data is read
        out = CheckOutput()
        clients = clients_with(ctx.deployment, "synthetic_data")
        ctx.progress.set_total(len(clients))
        tallies = _tallies(
            ctx, [c.synthetic_data for c in clients], task, params.batch_size, params.max_examples
        )
        for client, tally in zip(clients, tallies, strict=True):
            total, flagged, families = tally.total, tally.flagged, tally.families
            r = rate(flagged, total)
            out.metrics[client.subject] = {
                "records_total": total,
                "records_flagged": flagged,
                "flagged_rate": r,
                "families": dict(sorted(families.items())),
            }
            if flagged >= params.min_flagged and r > params.max_flagged_rate:
                out.findings.append(
                    FindingDraft(
                        subject=client.subject,
                        key="jailbroken-outputs",
                        confidence=Confidence.HIGH if flagged >= 3 else Confidence.MEDIUM,
                        message=(
                            f"{flagged} of {total} FM outputs delivered to client {client.id} "
                            f"({r:.1%}) show a jailbroken or steered model "
                            f"({', '.join(sorted(families))})"
                        ),
                        metric=Metric(
                            name="flagged_rate", value=r, threshold=params.max_flagged_rate
                        ),
                        evidence=tuple(tally.examples),
                    )
                )
            ctx.progress.advance()
        return out
