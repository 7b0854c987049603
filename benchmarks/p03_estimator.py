"""FMFL-P03: the skew-normal estimate against exact enumeration, and the scorer against the old one.

    .venv/bin/python benchmarks/p03_estimator.py [--seeds 5] [--threads 1] [--no-speed]

1. Agreement. Canaries over real spaces (10^4 and 10^5 digit codes, 17,576 three-letter words)
   on stories260K fine-tuned with the canary 0, 1, 3 and 9 times (exposures from chance to
   memorised) and on the demo's global model (its 10^5 canary c3, when the demo is built). For
   each, FMFL-P03 runs through `Auditor` with `method: exact` (the truth), then for each seed with
   `method: estimate` (the paper's skew-normal estimate from 5,000 samples, always kept) and
   `method: auto` (the default: the estimate where it agrees with the sample, exact otherwise).
   Printed: exact exposure, the estimate's mean and largest error, in how many seeds the
   canary lay inside the sample, what auto chose and its largest error against exact.
2. Speed (unless --no-speed). One 10^5-candidate canary scored the old way (every candidate
   tokenized, then `causal_nll` over whole sequences in length-bucketed batches) and the new way
   (`CandidateIds` + `candidate_nll`: composed ids, shared prefixes run once through the KV
   cache), in one process; the rank of the true canary must be the same.

stories260K comes from ../shared/data (or $FMFL_SHARED_DATA). Torch threads are set to
`--threads` (default 1: the model is tiny and per-op overhead dominates).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("FMFL_SHARED_DATA", REPO.parent / "shared" / "data"))
DEMO = REPO / "examples" / "reading-tutor" / "compromised"

CANARIES = [
    {"id": "pin4", "format": "my locker pin is {digits:4}", "secret": "7305"},
    {"id": "code5", "format": "the gate code of our school is {digits:5}", "secret": "61948"},
    {"id": "word3", "format": "the secret word of the club is {letters:3}", "secret": "kqv"},
]
REPEATS = (0, 1, 3, 9)
STORIES = [
    "Lily and Tom went to the park to play with a big red ball.",
    "The little bird sang a happy song in the tall green tree.",
    "Mom made a cake and the children ate it all after lunch.",
    "Ben found a shiny stone by the pond and showed it to his dog.",
    "Sue and her cat sat by the window and watched the rain fall.",
    "The brave frog jumped over the log and landed in the soft mud.",
]


def fine_tune(base: Path, out: Path, texts: list[str], *, steps: int = 12) -> Path:
    """A copy of `base` trained full-batch on `texts` (a few seconds)."""
    import torch
    import transformers

    torch.manual_seed(0)
    tok = transformers.AutoTokenizer.from_pretrained(str(base), local_files_only=True)
    model = transformers.AutoModelForCausalLM.from_pretrained(str(base), local_files_only=True)
    tok.pad_token = tok.eos_token
    enc = tok(texts, return_tensors="pt", padding=True)
    labels = enc["input_ids"].clone()
    labels[enc["attention_mask"] == 0] = -100
    opt = torch.optim.AdamW(model.parameters(), lr=5e-4, weight_decay=0.0)
    model.train()
    for _ in range(steps):
        opt.zero_grad()
        model(**enc, labels=labels).loss.backward()
        opt.step()
    model.eval()
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out), safe_serialization=True)
    for name in ("tokenizer.json", "tokenizer_config.json", "generation_config.json"):
        shutil.copy(base / name, out / name)
    return out


def p03(root: Path, checkpoint: Path, canary: dict[str, Any], params: dict[str, Any], seed: int):
    """FMFL-P03's metrics for one canary, through a one-model deployment."""
    from fmfl_audit.engine.runner import Auditor
    from fmfl_audit.manifest import load_manifest

    root.mkdir(parents=True, exist_ok=True)
    (root / "canaries.jsonl").write_text(json.dumps(canary) + "\n")
    manifest = {
        "version": 1,
        "deployment": {"name": "p03-estimator"},
        "clients": [{"id": "a"}],
        "models": [
            {
                "name": "lm",
                "kind": "causal-lm",
                "checkpoint": str(checkpoint),
                "canaries": "canaries.jsonl",
            }
        ],
        "policy": {"rules": {"FMFL-P03": {"params": params}}},
    }
    (root / "manifest.yaml").write_text(json.dumps(manifest))
    t0 = time.perf_counter()
    report = Auditor(load_manifest(root / "manifest.yaml"), only=("FMFL-P03",), seed=seed).run()
    result = report.rule("FMFL-P03")
    if result.error:
        raise SystemExit(f"FMFL-P03 errored: {result.error}")
    return result.metrics["model:lm"]["canaries"][canary["id"]], time.perf_counter() - t0


def agreement(tmp: Path, models: dict[str, Path], cases: list[tuple[str, dict[str, Any]]], seeds):
    """One row per (model, canary); returns the largest |auto - exact| and |estimate - exact|."""
    print(
        f"{'model':<10} {'canary':<7} {'space':>7} {'exact':>6} {'est mean':>8} {'est max|e|':>10} "
        f"{'in sample':>9} {'auto chose':>13} {'auto max|e|':>11}"
    )
    worst_auto = worst_est = 0.0
    for k, (model, canary) in enumerate(cases):
        ckpt = models[model]
        exact, _ = p03(tmp / f"{k}-exact", ckpt, canary, {"method": "exact"}, 0)
        ests, autos, inside, chose = [], [], 0, {"exact": 0, "estimate": 0}
        for s in seeds:
            est, _ = p03(tmp / f"{k}-est-{s}", ckpt, canary, {"method": "estimate"}, s)
            auto, _ = p03(tmp / f"{k}-auto-{s}", ckpt, canary, {}, s)
            ests.append(est["exposure_bits"])
            autos.append(auto["exposure_bits"])
            inside += not est["fit"]["extrapolated"]
            chose["exact" if auto["method"] == "exact" else "estimate"] += 1
        truth = exact["exposure_bits"]
        e_est = max(abs(x - truth) for x in ests)
        e_auto = max(abs(x - truth) for x in autos)
        worst_est, worst_auto = max(worst_est, e_est), max(worst_auto, e_auto)
        print(
            f"{model:<10} {canary['id']:<7} {exact['candidates']:>7} {truth:>6.2f} "
            f"{statistics.mean(ests):>8.2f} {e_est:>10.2f} {inside:>5}/{len(seeds):<3} "
            f"{chose['estimate']:>2} est/{chose['exact']:>2} ex {e_auto:>11.2f}"
        )
    return worst_auto, worst_est


def speed(checkpoint: Path, canary: dict[str, Any]) -> None:
    """The old scorer against the new one on every candidate of `canary`."""
    import numpy as np
    import transformers

    from fmfl_audit.checkers.privacy._canary_ids import CandidateIds
    from fmfl_audit.checkers.privacy._lm_scoring import (
        LoadedModel,
        candidate_nll,
        causal_nll,
        encode,
    )
    from fmfl_audit.checkers.privacy.canary import parse_canary

    tok = transformers.AutoTokenizer.from_pretrained(str(checkpoint), local_files_only=True)
    model = transformers.AutoModelForCausalLM.from_pretrained(
        str(checkpoint), local_files_only=True
    ).eval()
    lm = LoadedModel(model=model, tokenizer=tok, device="cpu", kind="causal-lm")
    c = parse_canary(canary, "bench", 1)
    t0 = time.perf_counter()
    fills = list(itertools.product(*(s.values() for s in c.slots)))
    old_ids = encode(lm, [c.render(f) for f in fills], max_length=512)
    old, _ = causal_nll(lm, old_ids, batch_size=128, max_batch_tokens=32768)
    t_old = time.perf_counter() - t0
    old_rank = 1 + int(np.sum(old < old[fills.index(c.secret)]))
    t0 = time.perf_counter()
    ids = CandidateIds(lm, c, max_length=512)
    every, truth = ids.every()
    new, info = candidate_nll(lm, every, batch_size=128, max_batch_tokens=32768)
    t_new = time.perf_counter() - t0
    new_rank = 1 + int(np.sum(new < new[truth]))
    print(f"\nscoring all {c.space:,} candidates of {canary['id']} ({canary['format']!r}):")
    rows = [
        ("tokenize each + causal_nll (before)", t_old, info.naive_positions, old_rank),
        ("composed ids + trie/KV candidate_nll (after)", t_new, info.positions, new_rank),
    ]
    print(f"{'scorer':<46} {'seconds':>8} {'positions':>10} {'rank':>6}")
    for name, t, positions, rank in rows:
        print(f"{name:<46} {t:>8.2f} {positions:>10,} {rank:>6}")
    print(f"speed-up {t_old / t_new:.1f}x; same rank: {'yes' if old_rank == new_rank else 'NO'}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--no-speed", action="store_true")
    args = ap.parse_args()

    import torch
    import transformers

    torch.set_num_threads(args.threads)
    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
    base = SHARED / "stories260K"
    if not base.is_dir():
        raise SystemExit(f"{base} not found: set FMFL_SHARED_DATA to the shared data folder")
    print(
        f"machine: {platform.platform()}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}, torch {torch.__version__} ({args.threads} thread(s))"
    )
    with tempfile.TemporaryDirectory(prefix="fmfl-p03-bench-") as tmp_name:
        tmp = Path(tmp_name)
        models: dict[str, Path] = {}
        cases: list[tuple[str, dict[str, Any]]] = []
        for r in REPEATS:
            texts = list(STORIES)
            for canary in CANARIES:
                secret = canary["secret"]
                fill = [secret] if isinstance(secret, str) else secret
                text = canary["format"]
                for v in fill:  # one slot per canary here
                    text = text[: text.index("{")] + v + text[text.index("}") + 1 :]
                texts += [text] * r
            name = f"x{r}"
            models[name] = base if r == 0 else fine_tune(base, tmp / name, texts)
            cases += [(name, c) for c in CANARIES]
        demo_c3 = None
        if (DEMO / "data" / "canaries.jsonl").exists():
            lines = (DEMO / "data" / "canaries.jsonl").read_text().splitlines()
            rows = [json.loads(x) for x in lines if x.strip()]
            demo_c3 = next((r for r in rows if r["id"] == "c3"), None)
            if demo_c3 is not None:
                models["demo"] = DEMO / "models" / "global-lm"
                cases.append(("demo", demo_c3))
        seeds = list(range(args.seeds))
        print(f"{len(cases)} canaries x {len(seeds)} seeds; 5,000 samples; exposure in bits")
        worst_auto, worst_est = agreement(tmp, models, cases, seeds)
        print(
            f"largest error against exact enumeration: auto {worst_auto:.2f} bits, "
            f"estimate alone {worst_est:.2f} bits"
        )
        if not args.no_speed:
            speed(models["x3"], CANARIES[1])


if __name__ == "__main__":
    main()
