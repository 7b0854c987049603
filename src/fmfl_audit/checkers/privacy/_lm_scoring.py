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
import re
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


_CLASS_NAME = re.compile(r"[\w .:-]+")


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
    raise CheckerError(f"label {_shown(label)} is not a class of the classifier")


def _shown(label: Any) -> str:
    """A label for an error message: quoted only when it looks like a class name, so a text
    field read as the label by mistake is not echoed into the report."""
    if isinstance(label, str) and len(label) <= 40 and _CLASS_NAME.fullmatch(label):
        return repr(label)
    size = f" of {len(label)} characters" if isinstance(label, str) else ""
    return f"(a {type(label).__name__}{size}, not shown)"


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


@dataclass(frozen=True)
class CandidateScoring:
    """How `candidate_nll` scored a candidate set (reported in FMFL-P03's metrics)."""

    candidates: int
    positions: int
    """Token positions the model ran: each distinct token prefix once."""
    naive_positions: int
    """Token positions of scoring every candidate whole (what `causal_nll` would run)."""
    kv_cache: bool
    """True when shared prefixes were reused through the model's KV cache; False when the
    model's cache could not be used or failed the check, and every candidate was run whole."""

    def plus(self, other: CandidateScoring) -> CandidateScoring:
        """Both runs together."""
        return CandidateScoring(
            self.candidates + other.candidates,
            self.positions + other.positions,
            self.naive_positions + other.naive_positions,
            self.kv_cache and other.kv_cache,
        )


_KV_TOLERANCE = 1e-3
"""Largest NLL difference (nats) between the cached and the whole-sequence pass."""
_KV_CHECKS = 8


def candidate_nll(
    lm: LoadedModel,
    ids: Sequence[Sequence[int]],
    *,
    batch_size: int = 128,
    max_batch_tokens: int = 16384,
) -> tuple[Any, CandidateScoring]:
    """Summed NLL per sequence, like `causal_nll`, for candidates that share most of their tokens.

    Canary candidates differ only in a few slot tokens, so scoring each whole repeats most of
    the work. Here the candidates form a trie of token prefixes, and each distinct prefix is run
    once: the tokens all candidates share are run as one sequence, then the trie is walked depth
    by depth, feeding each node's one new token with its parent's keys and values (KV cache), so
    a node costs one position and a candidate's last token costs nothing (its log-probability is
    read off its parent's distribution). A 5-digit slot after a shared prefix costs about
    11,000 positions for 10^5 candidates instead of 10^5 x the canary's length. Nodes of a depth
    are batched (no padding: they all have the same length); depth-first over chunks keeps
    memory bounded.

    Each result is the same sum of the same conditional log-probabilities as `causal_nll`'s, up
    to float rounding; a few candidates are checked against `causal_nll`, and when they differ
    (or the model's cache cannot be used) every candidate is scored by `causal_nll`.
    """
    import numpy as np

    n = len(ids)
    naive = sum(len(x) for x in ids)
    whole = CandidateScoring(n, naive, naive, False)
    if n == 0 or min(len(x) for x in ids) < 2:
        sums, _ = causal_nll(lm, ids, batch_size=batch_size, max_batch_tokens=max_batch_tokens)
        return sums, whole
    trie = _Trie.build(ids)
    sums = trie.score(lm, max(1, max_batch_tokens // 8), max_batch_tokens)
    if sums is not None:
        probe = np.unique(np.linspace(0, n - 1, _KV_CHECKS).round().astype(np.int64))
        ref, _ = causal_nll(lm, [ids[i] for i in probe], batch_size=batch_size)
        if float(np.abs(ref - sums[probe]).max()) <= _KV_TOLERANCE:
            return sums, CandidateScoring(n, trie.positions, naive, True)
    sums, _ = causal_nll(lm, ids, batch_size=batch_size, max_batch_tokens=max_batch_tokens)
    return sums, whole


@dataclass(frozen=True)
class _Trie:
    """Candidates' token ids as a trie below their common prefix.

    Rows of `tokens` are the candidates' ids after the prefix, sorted, padded with -1; at depth
    `t` (1-based), `node[t - 1][i]` is the node of sorted row `i` (-1 past its end). Node ids
    count up in sorted order, so the children of consecutive nodes are consecutive.
    """

    prefix: list[int]
    order: Any
    tokens: Any
    node: list[Any]
    parent: list[Any]
    """parent[t][j]: the depth-t node above node j of depth t + 1 (depth 0: the prefix)."""
    token: list[Any]
    """token[t][j]: the token that node j of depth t + 1 adds."""
    internal: list[Any]
    """internal[t][j]: True when node j of depth t + 1 has children."""
    ends: list[Any]
    """ends[t]: sorted rows whose candidate ends at depth t + 1."""

    @classmethod
    def build(cls, ids: Sequence[Sequence[int]]) -> _Trie:
        import numpy as np

        shortest = min(len(x) for x in ids)
        p = max(1, min(_common_prefix_len(ids), shortest - 1))
        if isinstance(ids, np.ndarray):  # equal lengths (composed canary candidates)
            mat = np.ascontiguousarray(ids[:, p:], dtype=np.int64)
        else:
            mat = np.full((len(ids), max(len(x) for x in ids) - p), -1, dtype=np.int64)
            for i, x in enumerate(ids):
                mat[i, : len(x) - p] = x[p:]
        width = mat.shape[1]
        order = np.lexsort(mat.T[::-1])
        mat = mat[order]
        node, parent, token, internal, ends = [], [], [], [], []
        fresh = np.zeros(len(ids), dtype=bool)
        fresh[0] = True
        prev = np.zeros(len(ids), dtype=np.int64)
        for t in range(width):
            col = mat[:, t]
            valid = col >= 0
            if t:
                fresh[1:] |= col[1:] != col[:-1]
            else:
                fresh[1:] = col[1:] != col[:-1]
            starts = fresh & valid
            ids_t = np.where(valid, np.cumsum(starts) - 1, -1)
            first = np.flatnonzero(starts)
            node.append(ids_t)
            parent.append(prev[first] if t else np.zeros(len(first), dtype=np.int64))
            token.append(col[first])
            nxt = mat[:, t + 1] >= 0 if t + 1 < width else np.zeros(len(ids), dtype=bool)
            has_child = np.zeros(len(first), dtype=bool)
            has_child[ids_t[nxt]] = True
            internal.append(has_child)
            ends.append(np.flatnonzero(valid & ~nxt))
            prev = ids_t
        return cls([int(x) for x in ids[0][:p]], order, mat, node, parent, token, internal, ends)

    @property
    def positions(self) -> int:
        """Token positions run: the prefix and one per internal node."""
        return len(self.prefix) + sum(int(x.sum()) for x in self.internal)

    def score(self, lm: LoadedModel, max_rows: int, max_batch_tokens: int) -> Any | None:
        """Summed NLL per candidate (input order), or None when the cache cannot be used."""
        import numpy as np
        import torch

        with torch.inference_mode():
            inp = torch.tensor([self.prefix], dtype=torch.long, device=lm.device)
            out = lm.model(input_ids=inp, use_cache=True)
            logp = torch.log_softmax(out.logits[0].float(), dim=-1)
            prefix_nll = float(-logp[:-1].gather(1, inp[0, 1:, None]).sum())
            nll = [np.zeros(len(t), dtype=np.float64) for t in self.token]
            nll[0][:] = prefix_nll - logp[-1].double().cpu().numpy()[self.token[0]]
            walk = _TrieWalk(self, lm, nll, max_rows, max_batch_tokens)
            try:
                root = _output_cache(out)
                walk.visit(0, np.flatnonzero(self.internal[0]), root, np.zeros(1, dtype=np.int64))
            except (TypeError, AttributeError, ValueError):
                return None  # this model's forward does not take a cache in this form
        sums = np.zeros(len(self.order), dtype=np.float64)
        for t, rows in enumerate(self.ends):
            sums[self.order[rows]] = nll[t][self.node[t][rows]]
        return sums


@dataclass
class _TrieWalk:
    """Depth-first walk over chunks of a trie's internal nodes, carrying their KV caches."""

    trie: _Trie
    lm: LoadedModel
    nll: list[Any]
    max_rows: int
    max_batch_tokens: int

    def visit(self, t: int, nodes: Any, parent_cache: Any, parent_ids: Any) -> None:
        """Run depth-`t` internal `nodes` (ascending) whose parents' KV cache is `parent_cache`
        (row r holds node parent_ids[r] of depth t), then their children, chunk by chunk."""
        import numpy as np
        import torch

        tr = self.trie
        context = len(tr.prefix) + t + 1
        rows = max(1, min(self.max_rows, self.max_batch_tokens // context))
        for k in range(0, len(nodes), rows):
            chunk = nodes[k : k + rows]
            where = np.searchsorted(parent_ids, tr.parent[t][chunk])
            idx = torch.as_tensor(where, dtype=torch.long, device=self.lm.device)
            cache = _select_rows(parent_cache, idx)
            inp = torch.as_tensor(tr.token[t][chunk], dtype=torch.long, device=self.lm.device)
            kwargs = {_cache_kwarg(self.lm.model): cache}
            out = self.lm.model(input_ids=inp[:, None], use_cache=True, **kwargs)
            logp = torch.log_softmax(out.logits[:, -1, :].float(), dim=-1)
            # Children of this chunk: a contiguous run of depth t + 2 node ids.
            lo, hi = np.searchsorted(tr.parent[t + 1], [chunk[0], chunk[-1] + 1])
            below = np.arange(lo, hi)
            rows_of = np.searchsorted(chunk, tr.parent[t + 1][below])
            picked = logp[
                torch.as_tensor(rows_of, device=logp.device),
                torch.as_tensor(tr.token[t + 1][below], device=logp.device),
            ]
            self.nll[t + 1][below] = self.nll[t][chunk][rows_of] - picked.double().cpu().numpy()
            inner = below[tr.internal[t + 1][below]]
            if len(inner):
                self.visit(t + 1, inner, _output_cache(out), chunk)


def _common_prefix_len(ids: Sequence[Sequence[int]]) -> int:
    import numpy as np

    if isinstance(ids, np.ndarray):
        same = (ids == ids[0]).all(axis=0)
        return int(same.argmin()) if not same.all() else ids.shape[1]
    first = ids[0]
    n = min(len(x) for x in ids)
    for x in ids:
        k = 0
        while k < n and x[k] == first[k]:
            k += 1
        n = k
    return n


def _output_cache(out: Any) -> Any:
    """The KV cache a forward returned (its attribute's name depends on the version)."""
    cache = getattr(out, "cache", None) or getattr(out, "past_key_values", None)
    if cache is None:
        raise ValueError("the model returned no KV cache")
    return cache


def _select_rows(cache: Any, idx: Any) -> Any:
    """A new cache holding rows `idx` of `cache` (left intact: its other children need it).

    Only the row selection copies tensors; building a cache from tensors would copy them once
    more. The per-layer containers differ between transformers versions.
    """
    import copy

    new = copy.copy(cache)
    if hasattr(cache, "layers"):  # transformers >= 4.56
        new.layers = [copy.copy(layer) for layer in cache.layers]
    elif hasattr(cache, "key_cache"):  # earlier DynamicCache
        new.key_cache = list(cache.key_cache)
        new.value_cache = list(cache.value_cache)
    else:
        raise TypeError(f"unsupported cache type {type(cache).__name__}")
    new.batch_select_indices(idx)
    return new


def _cache_kwarg(model: Any) -> str:
    """The name under which this transformers version's forward takes a cache."""
    import inspect

    params = inspect.signature(model.forward).parameters
    return "cache" if "cache" in params else "past_key_values"
