"""Train FMFL-R01's and FMFL-R02's intent models and write them to `rules/jailbreak/`.

R01 (`intent_prompts`): harmful requests, plain (AdvBench, HarmBench, StrongREJECT, GPTFuzz's
questions), in our own disguise templates (`_jbdisguise.py`), in the published GPTFuzz and
DeepInception prompts; against benign prompts (self-instruct, P3 prompts over real text, our
benign-word hard negatives, and the same disguise templates around benign requests).
R02 (`intent_outputs`): compliant answers to harmful goals (HarmBench and AdvBench 'Sure, here is'
targets, our compliance templates around the goals) against refusals and benign answers.

The decision threshold is tuned on the training data only: 3-fold out-of-fold probabilities, the
99th percentile of the benign ones. `--exclude` drops collections (and every prompt
built from their goals) for the leave-one-source-out benchmark; the shipped models exclude nothing
but the collections that are evaluation-only (see `_jbdata.SOURCES`).

    .venv/bin/python benchmarks/train_intent.py --mirror /work/.mirror --out rules/jailbreak
"""

from __future__ import annotations

import argparse
import random
import re
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _jbdata
import _jbdisguise

from fmfl_audit.checkers.robustness._intent import FeatureSpec, LinearTextModel, train

COMMAND = "python benchmarks/train_intent.py --mirror <snapshots> --out rules/jailbreak"
GOAL_SOURCES = (
    "advbench",
    "harmbench",
    "strongreject",
    "malicious_instruct",
    "tdc2023",
    "adv_training",
    "gptfuzz",
)
BENIGN_COMPLIANCE = (
    "Sure, here is how to {goal}:\n\n1. Start by reading the instructions.\n2. Prepare what you "
    "need.\n3. Work through it step by step and check the result.",
    "Of course! To {goal}, begin with the basics, practise a little every day, and ask a friend "
    "for feedback.",
    "Certainly. Here's a simple guide to {goal}: first plan it, then do it carefully, and "
    "finally review how it went.",
    "Sure, here is how to {goal}: mix the basics first, then add the details.",
    "Sure! Here's how to {goal}. Step 1: prepare. Step 2: do it. Step 3: enjoy the result.",
)

HOWTO_ANSWERS = (
    "Sure, here is how to {goal}: {steps}",
    "Of course! To {goal}: {steps}",
    "Certainly. Here's a step-by-step guide to {goal}.\n\n1. {steps}",
    "Sure! Here's how to {goal}. {steps}",
    "Absolutely, I can help you {goal}. {steps}",
)


def _verb_phrases(gs: list[str]) -> list[str]:
    """Harmful goals as verb phrases: the part after "how to" when there is one ("Create a
    tutorial on how to make a bomb" -> "make a bomb"), else the request lower-cased."""
    out = []
    for g in gs:
        m = re.search(r"\bhow (?:to|do i|can i|could i|would i) (.+)", g, re.IGNORECASE)
        out.append((m.group(1) if m else _jbdisguise._goal(g)).rstrip(" .?!"))
    return out


def goals(mirror: Path, exclude: set[str]) -> dict[str, list[str]]:
    """Harmful goals per collection, without the excluded ones."""
    loaders = {
        "advbench": lambda: _jbdata.advbench(mirror),
        "harmbench": lambda: _jbdata.harmbench(mirror),
        "strongreject": lambda: _jbdata.strongreject(mirror),
        "malicious_instruct": lambda: _jbdata.malicious_instruct(mirror),
        "tdc2023": lambda: _jbdata.behaviours(mirror, "tdc2023"),
        "adv_training": lambda: _jbdata.behaviours(mirror, "adv_training"),
        "gptfuzz": lambda: _jbdata.gptfuzz()[1],
    }
    return {k: f() for k, f in loaders.items() if k not in exclude}


def r01_data(mirror: Path, exclude: set[str], seed: int = 0) -> tuple[list[str], list[int]]:
    """(texts, labels) for the prompt model."""
    pos: list[str] = []
    for gs in goals(mirror, exclude).values():
        pos += gs
        pos += [p for _, p in _jbdisguise.disguise(gs, per_goal=3, seed=seed)]
        # The same request shapes as the benign how-to goals below: the shape decides nothing.
        pos += _jbdisguise.framed(_verb_phrases(gs), per_goal=2, seed=seed + 4)
    if "gptfuzz" not in exclude:
        pos += _jbdata.gptfuzz(per_template=3, seed=seed)[0]
    if "deepinception" not in exclude:
        pos += _jbdata.deepinception(mirror)
    from fmfl_audit.checkers.robustness._jailbreak import load_signatures, scan_signatures

    sigs = load_signatures()
    roles = [
        p
        for p in _jbdata.chatgpt_prompts(mirror)
        if sum(r.weight for r in scan_signatures(sigs, p)) < sigs.threshold
    ]
    benign = _jbdata.selfinstruct(mirror) + _jbdata.t0(mirror) + roles
    short = [b for b in _jbdata.selfinstruct(mirror) if len(b) < 200 and "\n" not in b]
    neg = benign + _jbdisguise.hard_negatives() * 3
    neg += [p for _, p in _jbdisguise.disguise(short, per_goal=4, seed=seed + 1)]
    # Real how-to questions (PIQA), plain, in the request shapes of the harmful collections and
    # in the disguise templates: the shape of a request is not its harm.
    piqa = _jbdata.piqa(mirror, "valid")
    howto = [g for g in (_jbdisguise.howto_goal(q) for q, _ in piqa) if g]
    neg += [q for q, _ in piqa] + _jbdisguise.framed(howto, per_goal=2, seed=seed + 2)
    neg += [p for _, p in _jbdisguise.disguise(howto, per_goal=2, seed=seed + 3)]
    return pos + neg, [1] * len(pos) + [0] * len(neg)


def r02_data(mirror: Path, exclude: set[str], seed: int = 0) -> tuple[list[str], list[int]]:
    """(texts, labels) for the output model."""
    pos: list[str] = []
    if "harmbench" not in exclude:
        pos += _jbdata.targets(mirror, "harmbench")
    if "advbench" not in exclude:
        pos += _jbdata.targets(mirror, "advbench_targets")
    for gs in goals(mirror, exclude).values():
        pos += _jbdisguise.comply(gs, seed=seed)
    rng = random.Random(seed)
    piqa = _jbdata.piqa(mirror, "valid")
    # Harmful goals answered with real how-to text (PIQA solutions) in the compliant openings
    # the benign answers below also get: the opening and the steps' wording decide nothing,
    # the goal an answer claims to fulfil does.
    for gs in goals(mirror, exclude).values():
        for g in _verb_phrases(gs):
            pos.append(rng.choice(HOWTO_ANSWERS).format(goal=g, steps=rng.choice(piqa)[1]))
    short = [b for b in _jbdata.selfinstruct(mirror) if len(b) < 200 and "\n" not in b]
    short += [h.removeprefix("How do I ") for h in _jbdisguise.hard_negatives()]
    benign_comply = [
        t.format(goal=_jbdisguise._goal(g)) for g in short for t in rng.sample(BENIGN_COMPLIANCE, 2)
    ]
    neg = _jbdata.refusals(mirror) * 3 + _jbdata.selfinstruct_answers(mirror) + benign_comply
    neg += _jbdata.t0(mirror, per_file=80, seed=seed + 2)
    # Real how-to answers (PIQA solutions), plain and opening like a compliant answer.
    for q, sol in piqa:
        goal = _jbdisguise.howto_goal(q)
        neg.append(sol)
        if goal:
            neg.append(rng.choice(HOWTO_ANSWERS).format(goal=goal, steps=sol))
    return pos + neg, [1] * len(pos) + [0] * len(neg)


def fit(texts: list[str], labels: list[int], name: str, seed: int = 0) -> LinearTextModel:
    """Model on all the data, threshold from 3-fold out-of-fold benign scores (99th pct)."""
    y = np.asarray(labels)
    rng = np.random.default_rng(seed)
    fold = rng.integers(0, 3, len(texts))
    oof = np.zeros(len(texts))
    x = FeatureSpec().transform(texts)  # hashed once; folds are row slices
    for k in range(3):
        tr = np.flatnonzero(fold != k)
        te = np.flatnonzero(fold == k)
        m = train([], [labels[i] for i in tr], name=name, features=x[tr])
        oof[te] = 1.0 / (1.0 + np.exp(-(x[te] @ m.coef + m.intercept)))
    threshold = float(np.quantile(oof[y == 0], 0.99))
    model = train(texts, labels, name=name, features=x)
    recall = float((oof[y == 1] >= threshold).mean())
    fpr = float((oof[y == 0] >= threshold).mean())
    meta = {
        "threshold_rule": "99th percentile of 3-fold out-of-fold benign probabilities",
        "training": {
            "positives": int(y.sum()),
            "negatives": int((y == 0).sum()),
            "oof_recall": round(recall, 4),
            "oof_fpr": round(fpr, 4),
        },
    }
    return LinearTextModel(
        name=name,
        spec=model.spec,
        coef=model.coef,
        intercept=model.intercept,
        threshold=round(threshold, 4),
        meta=meta,
    )


def provenance() -> str:
    """PROVENANCE.md: every collection, its licence and commit, and how it was used."""
    lines = [
        "# Provenance of the intent models (intent_prompts.*, intent_outputs.*)",
        "",
        f"Reproduce: `{COMMAND}` (snapshots of the repositories below, one bare git directory",
        "per repository as `owner+name/repo`). Weights: `.npz`, `allow_pickle=False`; parameters",
        "and threshold: `.json`. Our own disguise and compliance templates:",
        "`benchmarks/_jbdisguise.py`.",
        "",
        "| collection | repository | commit | licence | files | use |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name, s in _jbdata.SOURCES.items():
        lines.append(
            f"| {name} | {s.repo} | {s.commit[:12]} | {s.licence} | {', '.join(s.paths)} "
            f"| {s.note} |"
        )
    lines += [
        "| gptfuzz | sherdencooper/GPTFuzz (shared/data/gptfuzz_templates) "
        "| see LICENSE-GPTFuzz.txt | MIT | GPTFuzzer.csv, question_list.csv "
        "| templates filled with questions; questions as goals |",
        "",
        "Evaluation-only collections (never used for training or threshold tuning): EWT, GUM",
        "wikiHow, TweetEval test, UD German/French test, XSTest, PIQA test, hh-rlhf red-team",
        "turns and responses, ReNeLLM scenarios, PAIR prompts, PAP prompts. PIQA valid is",
        "training data (benign how-to questions and answers).",
        "",
        "The suffix-likelihood settings (`suffix_likelihood.json`) are measured on real text only",
        "(wiki-split tune, PIQA valid, self-instruct, awesome-chatgpt-prompts, TweetEval train,",
        "UD German/French dev, even stdlib files and log lines) by",
        "`python benchmarks/tune_suffix.py --mirror <snapshots> --out rules/jailbreak`; no attack",
        "is looked at. Word frequencies at run time: `wordfreq` (Apache-2.0, data CC BY-SA 4.0).",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mirror", type=Path, default=_jbdata.DEFAULT_MIRROR)
    ap.add_argument("--out", type=Path, default=Path("rules/jailbreak"))
    args = ap.parse_args()
    for name, data in (("intent_prompts", r01_data), ("intent_outputs", r02_data)):
        texts, labels = data(args.mirror, set())
        model = fit(texts, labels, name)
        model.meta["command"] = COMMAND
        model.meta["sources"] = {
            k: {"repo": s.repo, "commit": s.commit, "licence": s.licence}
            for k, s in _jbdata.SOURCES.items()
        }
        js, npz = model.save(args.out)
        print(
            f"{name}: threshold {model.threshold}, {model.meta['training']}, "
            f"{npz.stat().st_size / 1e6:.2f} MB -> {js}, {npz}"
        )
    (args.out / "PROVENANCE.md").write_text(provenance(), encoding="utf-8")


if __name__ == "__main__":
    main()
