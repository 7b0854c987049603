"""Federated training in torch: local training, FedAvg, DP-SGD, pairwise-masked secure aggregation.

Two regimes, one per twin:
- plain: full fine-tuning on each client, FedAvg of the clients' weight deltas by sample count;
- private (clean twin): the LM, trained on the clients' private writing, uses record-level DP-SGD
  on each client (per-example clipping, Gaussian noise, full-batch steps) over its RMSNorm gains
  only (with five clients and a few dozen records each, noise over all 260K weights would drown
  the signal); every model is aggregated through pairwise additive masks so the server only sees
  the sum. The privacy loss is accounted with Renyi DP of the Gaussian mechanism.

The RDP accountant is written out because the mechanism here is the plain (non-subsampled)
Gaussian one, whose RDP curve is the closed form alpha / (2 sigma^2) (Mironov 2017, Prop. 7); no
accountant library is installed in the project's environment.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

State = dict[str, torch.Tensor]


def gaussian_rdp_epsilon(noise_multiplier: float, steps: int, delta: float) -> tuple[float, float]:
    """(epsilon, best order) of `steps` Gaussian mechanisms with the given noise multiplier."""
    best = (math.inf, 0.0)
    for i in range(1, 2000):
        alpha = 1.0 + i / 20.0
        rdp = steps * alpha / (2.0 * noise_multiplier**2)
        eps = rdp + math.log(1.0 / delta) / (alpha - 1.0)
        if eps < best[0]:
            best = (eps, alpha)
    return best


@dataclass(frozen=True)
class DPConfig:
    """DP-SGD settings of the private regime."""

    clip: float
    noise_multiplier: float
    steps_per_round: int
    lr: float


def delta_of(local: Mapping[str, torch.Tensor], base: Mapping[str, torch.Tensor]) -> State:
    """local - base for every trainable tensor that changed shape-compatibly."""
    return {k: (local[k].detach() - base[k]).clone() for k in base}


def fedavg(
    base: Mapping[str, torch.Tensor], deltas: Sequence[State], weights: Sequence[float]
) -> State:
    """base + the weighted mean of the deltas (FedAvg, weights normalised here)."""
    total = float(sum(weights))
    out = {k: v.clone() for k, v in base.items()}
    for k in out:
        acc = torch.zeros_like(out[k], dtype=torch.float64)
        for d, w in zip(deltas, weights, strict=True):
            acc += d[k].double() * (w / total)
        out[k] = (out[k].double() + acc).to(out[k].dtype)
    return out


def secure_fedavg(
    base: Mapping[str, torch.Tensor],
    deltas: Sequence[State],
    weights: Sequence[float],
    *,
    round_seed: int,
) -> State:
    """FedAvg where the server only sees masked updates whose masks cancel in the sum.

    Client i adds PRG(seed_ij) for every j > i and subtracts PRG(seed_ji) for every j < i (the
    pairwise-masking core of Bonawitz et al. 2017, without dropout recovery: every client of a
    round reports). The server sums the masked, pre-weighted updates in float64.
    """
    total = float(sum(weights))
    n = len(deltas)
    masked: list[dict[str, torch.Tensor]] = []
    for i in range(n):
        m = {k: d.double() * (weights[i] / total) for k, d in deltas[i].items()}
        for j in range(n):
            if i == j:
                continue
            lo, hi = min(i, j), max(i, j)
            gen = torch.Generator().manual_seed(round_seed * 1009 + lo * 31 + hi)
            sign = 1.0 if i == lo else -1.0
            for k in sorted(m):
                m[k] += sign * torch.randn(m[k].shape, generator=gen, dtype=torch.float64)
        masked.append(m)
    out = {k: v.clone() for k, v in base.items()}
    for k in out:
        s = sum(m[k] for m in masked)
        out[k] = (out[k].double() + s).to(out[k].dtype)
    return out


def batches(n: int, size: int, gen: torch.Generator) -> Iterable[torch.Tensor]:
    """Shuffled index batches."""
    perm = torch.randperm(n, generator=gen)
    for s in range(0, n, size):
        yield perm[s : s + size]


def train_lm_plain(
    model: Any, enc: Mapping[str, torch.Tensor], *, epochs: int, lr: float, batch: int, seed: int
) -> None:
    """Full fine-tuning of a causal LM on tokenised texts (pads masked out of the loss)."""
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    gen = torch.Generator().manual_seed(seed)
    ids, att = enc["input_ids"], enc["attention_mask"]
    for _ in range(epochs):
        for idx in batches(len(ids), batch, gen):
            labels = ids[idx].masked_fill(att[idx] == 0, -100)
            loss = model(input_ids=ids[idx], attention_mask=att[idx], labels=labels).loss
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()


def train_lm_dp(model: Any, enc: Mapping[str, torch.Tensor], *, dp: DPConfig, seed: int) -> None:
    """DP-SGD on the RMSNorm gains only: per-example clipped gradients plus Gaussian noise."""
    params = {n: p for n, p in model.named_parameters() if "norm" in n}
    for n, p in model.named_parameters():
        p.requires_grad_(n in params)
    gen = torch.Generator().manual_seed(seed)
    ids, att = enc["input_ids"], enc["attention_mask"]
    model.train()
    for _ in range(dp.steps_per_round):
        total = {n: torch.zeros_like(p) for n, p in params.items()}
        for i in range(len(ids)):
            keep = att[i] == 1
            x = ids[i][keep].unsqueeze(0)
            loss = model(input_ids=x, labels=x).loss
            grads = torch.autograd.grad(loss, list(params.values()))
            norm = torch.sqrt(sum((g * g).sum() for g in grads))
            factor = min(1.0, dp.clip / (float(norm) + 1e-12))
            for (n, _), g in zip(params.items(), grads, strict=True):
                total[n] += g * factor
        with torch.no_grad():
            for n, p in params.items():
                noise = torch.randn(p.shape, generator=gen) * dp.noise_multiplier * dp.clip
                p -= dp.lr * (total[n] + noise) / len(ids)
    for p in model.parameters():
        p.requires_grad_(True)
    model.eval()


def train_classifier_plain(
    model: Any,
    enc: Mapping[str, torch.Tensor],
    labels: torch.Tensor,
    *,
    epochs: int,
    lr: float,
    batch: int,
    seed: int,
) -> None:
    """Full fine-tuning of a sequence classifier."""
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    gen = torch.Generator().manual_seed(seed)
    ids, att = enc["input_ids"], enc["attention_mask"]
    for _ in range(epochs):
        for idx in batches(len(ids), batch, gen):
            loss = model(input_ids=ids[idx], attention_mask=att[idx], labels=labels[idx]).loss
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()
