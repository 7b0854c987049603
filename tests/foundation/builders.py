"""A small real deployment on disk for engine, CLI and report tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.conftest import write_csv, write_jsonl, write_manifest

# Fake but well-formed values: Presidio's pattern recognizers must find them.
PII_EMAIL = "maria.gonzalez@example.org"
PII_CARD = "4111 1111 1111 1111"
PII_PHONE = "(212) 555-0187"

CLEAN_STORIES = [
    "Once upon a time, there was a little girl named Lily. She loved to play outside.",
    "Tom saw a big red ball in the park. He was very happy and ran to get it.",
    "The cat and the dog were friends. They played together every day in the sun.",
]


def smoke_deployment(root: Path, **policy: Any) -> Path:
    """Two clients, one with PII in its synthetic data; a skewed participation log; predictions."""
    write_jsonl(root / "clients/a/synthetic.jsonl", [{"text": t} for t in CLEAN_STORIES])
    write_jsonl(
        root / "clients/b/synthetic.jsonl",
        [
            {"text": CLEAN_STORIES[0]},
            {"text": f"Write to {PII_EMAIL} or call {PII_PHONE} for the story."},
            {"text": f"My card is {PII_CARD}, do not tell anyone."},
        ],
    )
    rows = []
    for rnd in (1, 2, 3):
        rows.append({"round": rnd, "client_id": "school-a", "num_samples": 50, "weight": 0.5})
        rows.append({"round": rnd, "client_id": "school-b", "num_samples": 50, "weight": 0.5})
    write_csv(root / "federation/participation.csv", rows)
    preds = []
    for i in range(200):
        gender = "f" if i % 2 else "m"
        preds.append({"y_true": i % 3 == 0, "y_pred": (i % 3 == 0), "gender": gender})
    write_csv(
        root / "eval/predictions.csv",
        [{k: int(v) if isinstance(v, bool) else v for k, v in p.items()} for p in preds],
    )
    manifest = {
        "version": 1,
        "deployment": {"name": "smoke", "task": "text-classification"},
        "federation": {"participation_log": "federation/participation.csv"},
        "clients": [
            {
                "id": "school-a",
                "resources": {"tier": "abundant", "fm_access": "local"},
                "synthetic_data": "clients/a/synthetic.jsonl",
            },
            {"id": "school-b", "synthetic_data": "clients/b/synthetic.jsonl"},
        ],
        "models": [
            {
                "name": "clf",
                "kind": "predictions",
                "predictions": {"path": "eval/predictions.csv", "sensitive_features": ["gender"]},
            },
        ],
        "policy": {"fail_on": "high", "fail_under": "C", **policy},
    }
    return write_manifest(root, manifest)
