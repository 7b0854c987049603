"""Builders for the privacy checker tests: run one rule, render the JSON, fine-tune stories260K."""

from __future__ import annotations

import random
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from fmfl_audit.engine.runner import Auditor
from fmfl_audit.manifest import load_manifest
from fmfl_audit.models import AuditReport
from fmfl_audit.report.formats import OutputFormat, renderer_for


def audit(manifest: Path, rule: str, **kwargs: Any) -> AuditReport:
    """Scan one rule of the default pack on CPU."""
    return Auditor(load_manifest(manifest), only=(rule,), device="cpu", **kwargs).run()


def report_json(report: AuditReport) -> str:
    """The canonical JSON report."""
    return renderer_for(OutputFormat.JSON).render(report)


def findings(report: AuditReport) -> set[tuple[str, str]]:
    """(subject, message-independent key) pairs are not public; use (subject, metric name)."""
    return {(f.subject, f.metric.name if f.metric else "") for f in report.findings}


NAMES = ["Lily", "Tom", "Ben", "Mia", "Sam", "Anna", "Max", "Lucy", "Tim", "Sue", "Jack", "Kim"]
ANIMALS = ["cat", "dog", "bird", "frog", "bunny", "fish", "bear", "duck", "mouse", "pony"]
ADJS = ["big", "little", "happy", "red", "kind", "shy", "brave", "silly", "small", "soft"]
PLACES = ["park", "garden", "forest", "house", "pond", "school", "yard", "shop", "barn", "hill"]
TOYS = ["ball", "kite", "car", "doll", "block", "boat", "drum", "book", "hat", "cake"]


def story_texts(n: int, seed: int) -> list[str]:
    """TinyStories-like sentences from one template family (members and non-members alike)."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        name, friend = rng.sample(NAMES, 2)
        out.append(
            f"{name} had a {rng.choice(ADJS)} {rng.choice(ANIMALS)}. They went to the "
            f"{rng.choice(PLACES)} with {friend} and played with a {rng.choice(ADJS)} "
            f"{rng.choice(TOYS)}."
        )
    return out


def fine_tune(
    base: Path, out: Path, texts: Sequence[str], *, steps: int, lr: float, seed: int
) -> Path:
    """A copy of `base` trained full-batch on `texts` (real gradient steps, a few seconds)."""
    import torch
    import transformers

    transformers.utils.logging.disable_progress_bar()
    torch.manual_seed(seed)
    tok = transformers.AutoTokenizer.from_pretrained(str(base), local_files_only=True)
    model = transformers.AutoModelForCausalLM.from_pretrained(str(base), local_files_only=True)
    tok.pad_token = tok.eos_token
    enc = tok(list(texts), return_tensors="pt", padding=True)
    labels = enc["input_ids"].clone()
    labels[enc["attention_mask"] == 0] = -100
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    model.train()
    for _ in range(steps):
        opt.zero_grad()
        loss = model(**enc, labels=labels).loss
        loss.backward()
        opt.step()
    model.eval()
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out), safe_serialization=True)
    for name in ("tokenizer.json", "tokenizer_config.json", "generation_config.json"):
        shutil.copy(base / name, out / name)
    return out


@pytest.fixture(scope="session")
def lm_setup(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """stories260K and three fine-tuned copies of it.

    - `once` / `many`: the same 8 stories plus the canary once vs 12 times, 12 gentle steps (the
      canary's repetitions are the only difference);
    - `overfit`: 30 hard steps on the 24 member stories (memorises them).
    """
    import torch

    # One thread: the model is tiny (per-op overhead dominates) and CI cores are shared; two
    # contending threads made these tests several times slower.
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("lm")
    base = shared_data / "stories260K"
    members = story_texts(24, seed=1)
    non_members = story_texts(24, seed=2)
    canary = "my student code is 472"
    stories = story_texts(8, seed=3)
    once = fine_tune(base, root / "once", [*stories, canary], steps=12, lr=5e-4, seed=0)
    many = fine_tune(base, root / "many", [*stories, *[canary] * 12], steps=12, lr=5e-4, seed=0)
    overfit = fine_tune(base, root / "overfit", members, steps=30, lr=5e-3, seed=0)
    return {
        "base": base,
        "once": once,
        "many": many,
        "overfit": overfit,
        "members": members,
        "non_members": non_members,
        "canary": canary,
        "root": root,
    }


def fine_tune_classifier(
    base: Path, out: Path, texts: Sequence[str], labels: Sequence[int], *, steps: int, lr: float
) -> Path:
    """A 2-class sequence classifier on top of `base`, trained full-batch on (text, label)."""
    import torch
    import transformers

    transformers.utils.logging.disable_progress_bar()
    torch.manual_seed(0)
    tok = transformers.AutoTokenizer.from_pretrained(str(base), local_files_only=True)
    tok.pad_token = tok.eos_token
    model = transformers.AutoModelForSequenceClassification.from_pretrained(
        str(base), local_files_only=True, num_labels=2
    )
    model.config.pad_token_id = tok.pad_token_id
    enc = tok(list(texts), return_tensors="pt", padding=True)
    y = torch.tensor(list(labels))
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    model.train()
    for _ in range(steps):
        opt.zero_grad()
        model(**enc, labels=y).loss.backward()
        opt.step()
    model.eval()
    model.save_pretrained(str(out), safe_serialization=True)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(base / name, out / name)
    return out
