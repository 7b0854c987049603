"""The foundation model as the pipeline uses it: generator, scorer (distillation teacher), features.

stories260K is a real pretrained Llama LM; it has no pad token, so the tokenizer's `<unk>` pads
(left-padded for generation, right-padded for scoring and classification).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

GEN_BATCH = 256
SCORE_BATCH = 128


def load_tokenizer(folder: Path) -> Any:
    """The FM tokenizer with a pad token set."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    tok.pad_token = tok.unk_token
    return tok


def load_lm(folder: Path) -> Any:
    """A causal LM from a safetensors checkpoint folder, in eval mode."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(
        str(folder), local_files_only=True, use_safetensors=True
    )
    model.config.pad_token_id = 0
    model.generation_config.pad_token_id = 0
    return model.eval()


@dataclass
class FoundationModel:
    """A loaded FM and its tokenizer."""

    model: Any
    tok: Any

    @classmethod
    def load(cls, folder: Path) -> FoundationModel:
        """Load from a checkpoint folder."""
        return cls(load_lm(folder), load_tokenizer(folder))

    def generate(
        self,
        prompts: Sequence[str],
        *,
        seed: int,
        temperature: float = 0.8,
        max_new_tokens: int = 72,
        top_k: int = 40,
    ) -> list[str]:
        """Sampled continuations (prompt included), batched, reproducible from `seed`."""
        self.tok.padding_side = "left"
        out: list[str] = []
        for start in range(0, len(prompts), GEN_BATCH):
            chunk = list(prompts[start : start + GEN_BATCH])
            torch.manual_seed(seed + start)
            enc = self.tok(chunk, return_tensors="pt", padding=True)
            with torch.inference_mode():
                ids = self.model.generate(
                    **enc,
                    do_sample=True,
                    temperature=temperature,
                    top_k=top_k,
                    max_new_tokens=max_new_tokens,
                    pad_token_id=self.tok.pad_token_id,
                )
            out.extend(_tidy(t) for t in self.tok.batch_decode(ids, skip_special_tokens=True))
        return out

    def mean_nll(self, texts: Sequence[str]) -> list[float]:
        """Mean per-token negative log-likelihood of each text under the FM (nats)."""
        self.tok.padding_side = "right"
        out: list[float] = []
        for start in range(0, len(texts), SCORE_BATCH):
            enc = self.tok(
                list(texts[start : start + SCORE_BATCH]),
                return_tensors="pt",
                padding=True,
                truncation=True,
                max_length=256,
            )
            with torch.inference_mode():
                logits = self.model(**enc).logits[:, :-1]
            target = enc.input_ids[:, 1:]
            mask = enc.attention_mask[:, 1:].float()
            nll = torch.nn.functional.cross_entropy(
                logits.transpose(1, 2), target, reduction="none"
            )
            per = (nll * mask).sum(1) / mask.sum(1).clamp(min=1)
            out.extend(float(v) for v in per)
        return out


def _tidy(text: str) -> str:
    """One story per record: collapse the model's line breaks and cut a dangling sentence."""
    text = " ".join(text.split())
    cut = max(text.rfind("."), text.rfind("!"), text.rfind("?"))
    return text[: cut + 1] if cut > len(text) // 2 else text


@dataclass(frozen=True)
class TeacherPolicy:
    """How the FM, acting as distillation teacher, labels a story's reading level.

    The label is the FM's own judgement of difficulty: a story whose mean per-token NLL under the
    teacher is below `threshold` reads as "easy" (1), otherwise "hard" (0). `prob` is the teacher's
    confidence that the story is easy, a logistic function of the NLL margin.
    """

    threshold: float
    scale: float = 0.05

    def prob_easy(self, nll: float) -> float:
        """Teacher probability of "easy" for a story with this mean NLL."""
        return 1.0 / (1.0 + math.exp(-(self.threshold - nll) / self.scale))

    def label(self, nll: float) -> int:
        """1 (easy) when the NLL is below the threshold."""
        return int(nll < self.threshold)
