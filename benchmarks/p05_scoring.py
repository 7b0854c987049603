"""Batched, length-bucketed LM scoring (FMFL-P03/P04/P05) vs a naive per-record loop.

    .venv/bin/python benchmarks/p05_scoring.py [--model ../shared/data/stories260K] [--n 2000]

Scores the same N texts (1 to 6 TinyStories-like sentences, so lengths vary) twice on CPU:
- naive: one `model(ids, labels=ids)` call per record under `torch.inference_mode`;
- fmfl-audit: `_lm_scoring.causal_nll` (sorted by length, padded batches, token budget).
Prints tokens/s of each, the speed-up, and the largest per-record difference of summed NLL (the two
must agree). Target: >= 5x on CPU.
"""

from __future__ import annotations

import argparse
import random
import time
from pathlib import Path

SENTENCES = [
    "Once upon a time, there was a little girl named Lily.",
    "She loved to play outside in the park with her friends.",
    "One day, she saw a big red ball near the old tree.",
    "Tom was sad because his toy boat was broken.",
    "The sun was warm and the birds sang a happy song.",
    "Mom said they could bake a cake after lunch.",
    "The little dog ran fast and jumped over the fence.",
    "They laughed and played until it was time to go home.",
]
DEFAULT = Path(__file__).resolve().parents[2] / "shared/data/stories260K"


def texts(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choices(SENTENCES, k=rng.randint(1, 6))) for _ in range(n)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=DEFAULT)
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--batch-size", type=int, default=64)
    args = ap.parse_args()

    import numpy as np
    import torch

    from fmfl_audit.checkers.privacy._lm_scoring import LoadedModel, causal_nll, encode
    from fmfl_audit.inputs.checkpoints import load_hf_model

    model, tok = load_hf_model(args.model, kind="causal-lm", device="cpu")
    lm = LoadedModel(model=model, tokenizer=tok, device="cpu", kind="causal-lm")
    data = texts(args.n)
    ids = encode(lm, data, max_length=512)
    n_tokens = sum(len(x) - 1 for x in ids)
    print(f"{args.n} records, {n_tokens} predicted tokens, torch threads {torch.get_num_threads()}")

    causal_nll(lm, ids[:64], batch_size=args.batch_size)  # warm-up
    t0 = time.perf_counter()
    naive = np.zeros(len(ids))
    with torch.inference_mode():
        for i, x in enumerate(ids):
            t = torch.tensor([x])
            naive[i] = float(model(input_ids=t, labels=t).loss) * (len(x) - 1)
    t_naive = time.perf_counter() - t0

    t0 = time.perf_counter()
    batched, _ = causal_nll(lm, ids, batch_size=args.batch_size)
    t_batched = time.perf_counter() - t0

    print(f"naive per-record loop : {t_naive:7.2f}s  {n_tokens / t_naive:10.0f} tokens/s")
    print(f"fmfl-audit batched     : {t_batched:7.2f}s  {n_tokens / t_batched:10.0f} tokens/s")
    print(
        f"speed-up {t_naive / t_batched:.1f}x; max |difference| of summed NLL "
        f"{np.max(np.abs(naive - batched)):.2e} nats"
    )


if __name__ == "__main__":
    main()
