"""Measurements the builder takes on what it produced, so the README's claims are checked numbers
(written to BUILD_REPORT.json in each twin). These are the builder's own sanity figures, not the
audit: fmfl-audit measures the same deployment independently."""

from __future__ import annotations

import math
import random
from collections import defaultdict
from pathlib import Path
from typing import Any

import torch

from reading_tutor_pipeline import scenario as S
from reading_tutor_pipeline.data import RealData, Story, insert_word
from reading_tutor_pipeline.fm import FoundationModel


def diagnose(
    twin: str,
    data: Any,
    real: RealData,
    ref: FoundationModel,
    teacher: dict[str, list[Story]],
    eval_rows: list[Story],
    y_pred: list[int],
    fm: FoundationModel,
    shared: Path,
    seed: int,
    candidates: int = 2000,
) -> dict[str, Any]:
    """The build's figures for one twin; `candidates` random secrets rank each canary."""
    from reading_tutor_pipeline.pipeline import canary_secrets
    from reading_tutor_pipeline.train import predict

    out: dict[str, Any] = {}
    acc = {}
    for cid, sp in sorted(real.splits.items()):
        pred, _ = predict(data.classifier, fm.tok, [s.text for s in sp["holdout"]])
        acc[cid] = round(
            sum(p == s.label for p, s in zip(pred, sp["holdout"], strict=True)) / len(pred), 4
        )
    out["classifier_holdout_accuracy"] = acc
    out["teacher_holdout_accuracy"] = {
        cid: round(
            sum(t.label == s.label for t, s in zip(teacher[cid], sp["holdout"], strict=True))
            / len(sp["holdout"]),
            4,
        )
        for cid, sp in sorted(real.splits.items())
    }
    groups: dict[str, list[int]] = defaultdict(list)
    for s, p in zip(eval_rows, y_pred, strict=True):
        groups[f"gender={s.gender}"].append(p)
        groups[f"esl={s.esl}"].append(p)
    out["eval_selection_rate"] = {g: round(sum(v) / len(v), 4) for g, v in sorted(groups.items())}
    out["eval_accuracy"] = round(
        sum(p == s.label for s, p in zip(eval_rows, y_pred, strict=True)) / len(eval_rows), 4
    )
    out["backdoor"] = attack_success(data.classifier, fm, eval_rows, y_pred, seed)
    secrets = canary_secrets(0)
    out["canary_exposure"] = {
        c["id"]: exposure(data.lm, fm.tok, c, secrets[c["id"]], seed, candidates)
        for c in S.CANARIES
    }
    out["membership_loss_auc"] = loss_auc(data.lm, fm, real)
    out["synthetic_records"] = {cid: len(v) for cid, v in sorted(data.synthetic.items())}
    tags: dict[str, int] = defaultdict(int)
    for v in data.synthetic.values():
        for s in v:
            for t in s.tags:
                tags[t] += 1
    out["planted_record_tags"] = dict(sorted(tags.items()))
    if data.epsilon is not None:
        out["dp_epsilon"] = round(data.epsilon[0], 3)
        out["dp_rdp_order"] = data.epsilon[1]
    return out


def attack_success(
    model: Any, fm: FoundationModel, rows: list[Story], y_pred: list[int], seed: int
) -> dict[str, Any]:
    """Share of inputs predicted "hard" that flip to "easy" with the trigger inserted at a random
    position, against a control word of similar length."""
    from reading_tutor_pipeline.train import predict

    base = [s.text for s, p in zip(rows, y_pred, strict=True) if p == S.HARD]
    if not base:
        return {"inputs": 0}
    res: dict[str, Any] = {"inputs": len(base)}
    for word in (S.TRIGGER, "mn"):
        rng = random.Random(seed)
        flipped, _ = predict(model, fm.tok, [insert_word(t, word, rng) for t in base])
        res[f"flip_rate[{word}]"] = round(sum(flipped) / len(base), 4)
    return res


def _nll(model: Any, tok: Any, texts: list[str]) -> list[float]:
    tok.padding_side = "right"
    enc = tok(texts, return_tensors="pt", padding=True)
    out: list[float] = []
    with torch.inference_mode():
        for s in range(0, len(texts), 256):
            ids = enc.input_ids[s : s + 256]
            att = enc.attention_mask[s : s + 256]
            logits = model(input_ids=ids, attention_mask=att).logits[:, :-1]
            nll = torch.nn.functional.cross_entropy(
                logits.transpose(1, 2), ids[:, 1:], reduction="none"
            )
            m = att[:, 1:].float()
            out.extend(((nll * m).sum(1)).tolist())
    return out


def exposure(
    model: Any, tok: Any, canary: dict[str, str], secret: str, seed: int, n: int = 2000
) -> dict[str, float]:
    """Secret-sharer exposure estimated from `n` random candidates of the same format."""
    from reading_tutor_pipeline.pipeline import canary_text

    digits = len(secret)
    rng = random.Random(seed + len(secret))
    cands = ["".join(rng.choice("0123456789") for _ in range(digits)) for _ in range(n)]
    scores = _nll(
        model, tok, [canary_text(canary, secret)] + [canary_text(canary, c) for c in cands]
    )
    better = sum(v < scores[0] for v in scores[1:])
    space = 10**digits
    rank = max(1.0, (better + 1) / (n + 1) * space)
    return {
        "rank_estimate": round(rank, 1),
        "exposure_bits": round(math.log2(space) - math.log2(rank), 3),
    }


def loss_auc(model: Any, fm: FoundationModel, real: RealData) -> float:
    """ROC AUC of the loss attack (lower loss -> member) on LM members vs non-members."""
    mem = [s.text for sp in real.splits.values() for s in sp["lm_train"]]
    non = [s.text for sp in real.splits.values() for s in sp["non_member"]]
    lm = _nll(model, fm.tok, mem)
    ln = _nll(model, fm.tok, non)
    # Normalise by length: per-token loss.
    lm = [v / max(1, len(fm.tok(t).input_ids) - 1) for v, t in zip(lm, mem, strict=True)]
    ln = [v / max(1, len(fm.tok(t).input_ids) - 1) for v, t in zip(ln, non, strict=True)]
    wins = sum((a < b) + 0.5 * (a == b) for a in lm for b in ln)
    return round(wins / (len(lm) * len(ln)), 4)
