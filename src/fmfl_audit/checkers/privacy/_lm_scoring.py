"""Batched model scoring shared by FMFL-P03 (canaries), P04 (extraction) and P05 (membership).

- `load_model`: a checkpoint loaded once per scan (through the scan cache) on the scan's device.
- `causal_nll`: per-sequence summed negative log-likelihood and token count for a causal LM, in
  length-bucketed batches (sequences sorted by length so padding is small, and batches capped by a
  token budget so memory stays bounded for long records and large vocabularies), under
  `torch.inference_mode`.
- `classifier_nll`: cross-entropy of the true label for a sequence classifier, batched the same way.
- `greedy_continue`: left-padded batched greedy decoding of `m` tokens after each prefix.

Log-likelihoods are in nats. The first token (BOS when the tokenizer adds one) is context only.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from fmfl_audit.checkers.base import CheckContext
from fmfl_audit.errors import CheckerError

T = TypeVar("T")


@dataclass(frozen=True)
class LoadedModel:
    """A model in eval mode, its tokenizer and the device it sits on."""

    model: Any
    tokenizer: Any
    device: str
    kind: str


def load_model(ctx: CheckContext, path: Path, kind: str) -> LoadedModel:
    """A causal LM or sequence classifier on the scan's device (loaded once per scan)."""
    from fmfl_audit.inputs.checkpoints import resolve_device

    model, tok = ctx.model(path, kind)
    return LoadedModel(model=model, tokenizer=tok, device=resolve_device(ctx.device), kind=kind)


def encode(lm: LoadedModel, texts: Sequence[str], *, max_length: int) -> list[list[int]]:
    """Token ids of each text (special tokens as the tokenizer adds them), truncated."""
    enc = lm.tokenizer(list(texts), add_special_tokens=True, truncation=True, max_length=max_length)
    return [list(ids) for ids in enc["input_ids"]]


def _buckets(lengths: Sequence[int], batch_size: int, max_batch_tokens: int) -> Iterator[list[int]]:
    """Indices grouped into batches of similar length, within the count and token budgets."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    batch: list[int] = []
    for i in order:
        longest = lengths[i]  # ascending order: the newest index is the longest
        if batch and (len(batch) >= batch_size or longest * (len(batch) + 1) > max_batch_tokens):
            yield batch
            batch = []
        batch.append(i)
    if batch:
        yield batch


def _pad_id(lm: LoadedModel) -> int:
    pad = lm.tokenizer.pad_token_id
    return int(pad if pad is not None else 0)


def causal_nll(
    lm: LoadedModel,
    ids: Sequence[Sequence[int]],
    *,
    batch_size: int = 64,
    max_batch_tokens: int = 16384,
) -> tuple[Any, Any]:
    """(summed NLL, number of predicted tokens) per sequence, as float64 / int64 numpy arrays."""
    import numpy as np
    import torch

    n = len(ids)
    sums = np.zeros(n, dtype=np.float64)
    counts = np.zeros(n, dtype=np.int64)
    pad = _pad_id(lm)
    lengths = [len(x) for x in ids]
    with torch.inference_mode():
        for idx in _buckets(lengths, batch_size, max_batch_tokens):
            width = max(lengths[i] for i in idx)
            if width < 2:
                continue
            inp = torch.full((len(idx), width), pad, dtype=torch.long)
            att = torch.zeros((len(idx), width), dtype=torch.long)
            for row, i in enumerate(idx):
                inp[row, : lengths[i]] = torch.tensor(ids[i], dtype=torch.long)
                att[row, : lengths[i]] = 1
            inp, att = inp.to(lm.device), att.to(lm.device)
            logits = lm.model(input_ids=inp, attention_mask=att).logits[:, :-1, :]
            target = inp[:, 1:]
            mask = att[:, 1:].bool()
            nll = torch.nn.functional.cross_entropy(
                logits.float().reshape(-1, logits.shape[-1]), target.reshape(-1), reduction="none"
            ).view(target.shape)
            sums[idx] = (nll * mask).sum(dim=1).double().cpu().numpy()
            counts[idx] = mask.sum(dim=1).cpu().numpy()
    return sums, counts


def label_index(lm: LoadedModel, label: Any) -> int:
    """A record's label as the classifier's class index (ints, numeric strings or label names)."""
    if isinstance(label, bool):
        return int(label)
    if isinstance(label, int):
        return label
    if isinstance(label, str):
        l2i = {str(k): int(v) for k, v in (lm.model.config.label2id or {}).items()}
        if label in l2i:
            return l2i[label]
        if label.strip().lstrip("-").isdigit():
            return int(label)
    raise CheckerError(f"label {label!r} is not a class of the classifier")


def classifier_nll(
    lm: LoadedModel,
    ids: Sequence[Sequence[int]],
    labels: Sequence[int],
    *,
    batch_size: int = 64,
    max_batch_tokens: int = 16384,
) -> Any:
    """Cross-entropy of the true label per sequence (numpy float64)."""
    import numpy as np
    import torch

    out = np.zeros(len(ids), dtype=np.float64)
    pad = _pad_id(lm)
    lengths = [max(1, len(x)) for x in ids]
    with torch.inference_mode():
        for idx in _buckets(lengths, batch_size, max_batch_tokens):
            width = max(lengths[i] for i in idx)
            inp = torch.full((len(idx), width), pad, dtype=torch.long)
            att = torch.zeros((len(idx), width), dtype=torch.long)
            for row, i in enumerate(idx):
                inp[row, : len(ids[i])] = torch.tensor(ids[i], dtype=torch.long)
                att[row, : lengths[i]] = 1
            logits = lm.model(input_ids=inp.to(lm.device), attention_mask=att.to(lm.device)).logits
            y = torch.tensor([labels[i] for i in idx], dtype=torch.long, device=logits.device)
            if int(y.max()) >= logits.shape[-1] or int(y.min()) < 0:
                raise CheckerError("a label is outside the classifier's classes")
            ce = torch.nn.functional.cross_entropy(logits.float(), y, reduction="none")
            out[idx] = ce.double().cpu().numpy()
    return out


def greedy_continue(
    lm: LoadedModel, prefixes: Sequence[Sequence[int]], m: int, *, batch_size: int = 32
) -> list[list[int]]:
    """The `m` greedily decoded tokens after each prefix (shorter when the model emits EOS)."""
    import torch

    pad = _pad_id(lm)
    eos = lm.tokenizer.eos_token_id
    out: list[list[int]] = [[] for _ in prefixes]
    lengths = [len(p) for p in prefixes]
    with torch.inference_mode():
        for idx in _buckets(lengths, batch_size, 1 << 30):
            width = max(lengths[i] for i in idx)
            inp = torch.full((len(idx), width), pad, dtype=torch.long)
            att = torch.zeros((len(idx), width), dtype=torch.long)
            for row, i in enumerate(idx):
                # Left padding: every row's last prefix token sits in the last column.
                inp[row, width - lengths[i] :] = torch.tensor(prefixes[i], dtype=torch.long)
                att[row, width - lengths[i] :] = 1
            gen = lm.model.generate(
                input_ids=inp.to(lm.device),
                attention_mask=att.to(lm.device),
                max_new_tokens=m,
                do_sample=False,
                num_beams=1,
                pad_token_id=pad,
                eos_token_id=eos,
            )
            new = gen[:, width:].cpu().tolist()
            for row, i in enumerate(idx):
                toks = new[row]
                if eos is not None and eos in toks:
                    toks = toks[: toks.index(eos)]
                out[i] = toks
    return out


def reservoir(items: Iterable[T], k: int, seed: int) -> tuple[list[T], int]:
    """A uniform sample of at most `k` items of a stream (kept in stream order) and the count."""
    rng = random.Random(seed)
    sample: list[tuple[int, T]] = []
    n = 0
    for n, item in enumerate(items, start=1):
        if len(sample) < k:
            sample.append((n, item))
        else:
            j = rng.randrange(n)
            if j < k:
                sample[j] = (n, item)
    return [it for _, it in sorted(sample, key=lambda p: p[0])], n
