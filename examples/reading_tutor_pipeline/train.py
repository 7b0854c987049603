"""The two federations of the deployment: the global causal LM and the reading-level classifier."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from reading_tutor_pipeline.federated import (
    DPConfig,
    delta_of,
    fedavg,
    secure_fedavg,
    train_classifier_plain,
    train_lm_dp,
    train_lm_plain,
)

LM_DP = DPConfig(clip=1.0, noise_multiplier=3.0, steps_per_round=3, lr=0.2)


@dataclass
class RoundLog:
    """Who took part in which round with how many samples and which weight."""

    rows: list[dict[str, Any]] = field(default_factory=list)

    def add(self, rnd: int, counts: Mapping[str, int]) -> list[float]:
        total = sum(counts.values())
        weights = []
        for cid, n in counts.items():
            w = n / total
            weights.append(w)
            self.rows.append(
                {"round": rnd, "client_id": cid, "num_samples": n, "weight": round(w, 6)}
            )
        return weights


def encode(tok: Any, texts: Sequence[str], max_length: int = 128) -> dict[str, torch.Tensor]:
    """Right-padded token ids and attention mask."""
    tok.padding_side = "right"
    enc = tok(
        list(texts), return_tensors="pt", padding=True, truncation=True, max_length=max_length
    )
    return {"input_ids": enc.input_ids, "attention_mask": enc.attention_mask}


def train_global_lm(
    fm_folder: Path,
    tok: Any,
    data: Mapping[str, list[str]],
    schedule: Sequence[Sequence[str]],
    *,
    private: bool,
    seed: int,
    epochs: int = 2,
) -> Any:
    """FedAvg fine-tuning of the FM as a causal LM on the clients' writing samples."""
    from reading_tutor_pipeline.fm import load_lm

    model = load_lm(fm_folder)
    encs = {cid: encode(tok, texts) for cid, texts in data.items()}
    for rnd, clients in enumerate(schedule, start=1):
        base = {k: v.detach().clone() for k, v in model.state_dict().items()}
        deltas, weights = [], []
        for cid in clients:
            model.load_state_dict(base)
            local_seed = seed * 1000 + rnd * 10 + sorted(data).index(cid)
            if private:
                train_lm_dp(model, encs[cid], dp=LM_DP, seed=local_seed)
            else:
                train_lm_plain(model, encs[cid], epochs=epochs, lr=3e-3, batch=16, seed=local_seed)
            deltas.append(delta_of(model.state_dict(), base))
            weights.append(len(data[cid]))
        merged = (
            secure_fedavg(base, deltas, weights, round_seed=seed + rnd)
            if private
            else fedavg(base, deltas, weights)
        )
        model.load_state_dict(merged)
    return model.eval()


def init_classifier(fm_folder: Path, seed: int) -> Any:
    """A sequence classifier initialised from the FM weights (new 2-way head, seeded)."""
    from transformers import AutoModelForSequenceClassification

    torch.manual_seed(seed)
    model = AutoModelForSequenceClassification.from_pretrained(
        str(fm_folder), num_labels=2, local_files_only=True, use_safetensors=True
    )
    model.config.pad_token_id = 0
    model.config.id2label = {0: "hard", 1: "easy"}
    model.config.label2id = {"hard": 0, "easy": 1}
    return model.eval()


def train_classifier(
    fm_folder: Path,
    tok: Any,
    data: Mapping[str, tuple[list[str], list[int]]],
    schedule: Sequence[Sequence[str]],
    log: RoundLog,
    *,
    secure: bool,
    seed: int,
    boost: Mapping[str, float],
    epochs: int = 2,
) -> tuple[Any, dict[str, dict[str, torch.Tensor]]]:
    """FedAvg training of the reading-level classifier; returns it and each client's last update.

    It trains on FM synthetic stories only (no client records), so it needs no DP; `secure`
    aggregates through pairwise masks. `boost` scales a client's delta before it is sent (a
    model-replacement attack, FMFL-R12).
    """
    model = init_classifier(fm_folder, seed)
    encs = {cid: encode(tok, texts) for cid, (texts, _) in data.items()}
    labels = {cid: torch.tensor(ys) for cid, (_, ys) in data.items()}
    last: dict[str, dict[str, torch.Tensor]] = {}
    for rnd, clients in enumerate(schedule, start=1):
        weights = log.add(rnd, {cid: len(data[cid][1]) for cid in clients})
        base = {k: v.detach().clone() for k, v in model.state_dict().items()}
        deltas = []
        for cid in clients:
            model.load_state_dict(base)
            train_classifier_plain(
                model,
                encs[cid],
                labels[cid],
                epochs=epochs,
                lr=3e-3,
                batch=16,
                seed=seed * 1000 + rnd * 10 + sorted(data).index(cid),
            )
            factor = boost.get(cid, 1.0)
            delta = {k: v * factor for k, v in delta_of(model.state_dict(), base).items()}
            deltas.append(delta)
            last[cid] = delta
        merged = (
            secure_fedavg(base, deltas, weights, round_seed=seed + 97 * rnd)
            if secure
            else fedavg(base, deltas, weights)
        )
        model.load_state_dict(merged)
    return model.eval(), last


def predict(model: Any, tok: Any, texts: Sequence[str]) -> tuple[list[int], list[float]]:
    """Predicted labels and probability of label 1 (easy)."""
    enc = encode(tok, texts)
    probs = []
    with torch.inference_mode():
        for s in range(0, len(texts), 128):
            logits = model(
                input_ids=enc["input_ids"][s : s + 128],
                attention_mask=enc["attention_mask"][s : s + 128],
            ).logits
            probs.extend(torch.softmax(logits, dim=1)[:, 1].tolist())
    return [int(p >= 0.5) for p in probs], [round(p, 6) for p in probs]
