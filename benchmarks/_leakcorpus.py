"""Shared FMFL-P06 benchmark corpus: four clients' sources and synthetic data with planted leaks.

For N records: 4 clients, each with N/16 prompts and N/16 private records (the sources, N/2 in
all) and N/8 synthetic records (N/2 in all), 24 words each from a 20,000-word vocabulary. Every
100th synthetic record of a client carries, at words 5..14, a 10-word span of one of the first
1,000 prompts of another client (1% of the synthetic records). `write_deployment` writes the files
and the manifest and returns where each leak was planted, so a tool's findings can be checked leak
by leak. The data depend only on N and the seed.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

CLIENTS = ("a", "b", "c", "d")
WORDS_PER_RECORD = 24
VOCAB = 20_000
SPAN = 10
"""Words per planted leak."""


@dataclass(frozen=True)
class Planted:
    """One planted leak: `owner`'s prompt `prompt_row` (0-based line of `owner/prompts.jsonl`)
    has a 10-word span copied into line `line` (0-based) of `client/synthetic.jsonl`."""

    owner: str
    client: str
    line: int
    prompt_row: int


def write_deployment(root: Path, n: int, seed: int = 0) -> list[Planted]:
    """Write the data and `root/manifest.yaml`; return the planted leaks in file order."""
    rng = random.Random(seed)
    vocab = [f"w{i}" for i in range(VOCAB)]
    per_source = n // (2 * 2 * len(CLIENTS))  # prompts and private per client = half of N
    per_synth = n // (2 * len(CLIENTS))
    planted: list[Planted] = []
    clients = []
    prompts_of: dict[str, list[list[str]]] = {}
    for c in CLIENTS:
        (root / c).mkdir(parents=True, exist_ok=True)
        for kind in ("prompts", "private"):
            rows = []
            with (root / c / f"{kind}.jsonl").open("w") as fh:
                for _ in range(per_source):
                    words = rng.choices(vocab, k=WORDS_PER_RECORD)
                    if kind == "prompts" and len(rows) < 1000:
                        rows.append(words)
                    fh.write(json.dumps({"text": " ".join(words)}) + "\n")
            if kind == "prompts":
                prompts_of[c] = rows
    for c in CLIENTS:
        others = [o for o in CLIENTS if o != c]
        with (root / c / "synthetic.jsonl").open("w") as fh:
            for i in range(per_synth):
                words = rng.choices(vocab, k=WORDS_PER_RECORD)
                if i % 100 == 0:
                    owner = rng.choice(others)
                    # choice() over a range draws exactly as choice() over the rows did.
                    row = rng.choice(range(len(prompts_of[owner])))
                    src = prompts_of[owner][row]
                    start = rng.randrange(0, WORDS_PER_RECORD - SPAN)
                    words[5 : 5 + SPAN] = src[start : start + SPAN]
                    planted.append(Planted(owner=owner, client=c, line=i, prompt_row=row))
                fh.write(json.dumps({"text": " ".join(words)}) + "\n")
        clients.append(
            {
                "id": c,
                "prompts": f"{c}/prompts.jsonl",
                "private_sample": f"{c}/private.jsonl",
                "synthetic_data": f"{c}/synthetic.jsonl",
            }
        )
    manifest = {"version": 1, "deployment": {"name": "p06-bench"}, "clients": clients}
    (root / "manifest.yaml").write_text(json.dumps(manifest))
    return planted
