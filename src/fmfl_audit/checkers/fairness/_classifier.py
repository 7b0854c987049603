"""Batched inference with a manifest's sequence classifier, shared by F03, F04, F05 and F08.

The model is loaded once per scan through `ctx.cache` (safe loading: safetensors only, no remote
code) and run under `torch.inference_mode` on length-sorted batches, so padding stays short.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from fmfl_audit.checkers.base import CheckContext
from fmfl_audit.errors import CheckerError
from fmfl_audit.manifest.model import ModelSpec


@dataclass(frozen=True)
class LoadedClassifier:
    """A loaded sequence classifier and what its outputs mean."""

    model: Any
    tokenizer: Any
    device: str
    id2label: dict[int, str]

    @property
    def num_labels(self) -> int:
        """Number of output classes."""
        return len(self.id2label)

    def label_index(self, value: Any) -> int | None:
        """The class index a data label stands for (`1`, `"1"`, or a label name); None if none."""
        if isinstance(value, bool):
            value = int(value)
        text = str(value).strip()
        for idx, name in self.id2label.items():
            if text == name:
                return idx
        try:
            idx = int(float(text))
        except ValueError:
            return None
        return idx if 0 <= idx < self.num_labels else None


def sequence_classifiers(ctx: CheckContext) -> list[ModelSpec]:
    """The manifest's models of kind `sequence-classifier`, in manifest order."""
    return [m for m in ctx.deployment.manifest.models if m.kind == "sequence-classifier"]


def load_classifier(ctx: CheckContext, model: ModelSpec) -> LoadedClassifier:
    """The classifier of `model`'s checkpoint (the weights are loaded once per scan)."""
    from fmfl_audit.inputs.checkpoints import resolve_device

    assert model.checkpoint is not None
    net, tok = ctx.model(model.checkpoint.path, "sequence-classifier")
    raw = getattr(net.config, "id2label", None) or {}
    id2label = {int(k): str(v) for k, v in raw.items()}
    if not id2label:
        id2label = {i: str(i) for i in range(int(net.config.num_labels))}
    return LoadedClassifier(net, tok, resolve_device(ctx.device), id2label)


def predict_proba(
    clf: LoadedClassifier,
    texts: Sequence[str],
    *,
    batch_size: int = 32,
    max_length: int = 256,
) -> Any:
    """Class probabilities, shape (len(texts), num_labels), in the order of `texts`."""
    import numpy as np
    import torch

    out = np.zeros((len(texts), clf.num_labels), dtype=np.float64)
    if not texts:
        return out
    # Length-sorted batches: similar lengths pad little. Character length is a cheap proxy.
    order = sorted(range(len(texts)), key=lambda i: (len(texts[i]), i))
    with torch.inference_mode():
        for lo in range(0, len(order), batch_size):
            idx = order[lo : lo + batch_size]
            enc = clf.tokenizer(
                [texts[i] for i in idx],
                padding=True,
                truncation=True,
                max_length=max_length,
                return_tensors="pt",
            )
            enc = {
                k: v.to(clf.device) for k, v in enc.items() if k in ("input_ids", "attention_mask")
            }
            logits = clf.model(**enc).logits.float()
            if logits.shape[-1] != clf.num_labels:
                raise CheckerError(
                    f"classifier returned {logits.shape[-1]} scores, config says {clf.num_labels}"
                )
            out[idx] = torch.softmax(logits, dim=-1).cpu().numpy()
    return out
