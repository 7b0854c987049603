"""Precision and recall of FMFL-P01's Presidio analyzer on the Presidio research synthetic set.

    .venv/bin/python benchmarks/pii_accuracy.py \
        [--data ../shared/data/pii_presidio_synth/synth_dataset_v2.json]

Measures the pattern entities (those a pattern recognizer can find without an NER model):
EMAIL_ADDRESS, PHONE_NUMBER, CREDIT_CARD, US_SSN, IBAN_CODE, IP_ADDRESS, US_DRIVER_LICENSE.

Span-level matching rule: a predicted span and a gold span *match* when they have the same entity
type and their character overlap covers at least half of the longer of the two spans; each gold
span matches at most one prediction (greedy, best overlap first). Precision = matched predictions /
predictions of the type; recall = matched gold spans / gold spans of the type. Predictions of types
outside the measured set are ignored (the data set labels PERSON, LOCATION ... which need NER).
The analyzer runs once with threshold 0; each `min_score` is then applied to the same scores, which
is what Presidio's `score_threshold` does (context enhancement happens before the threshold).
Note: the data set is template-made (Faker values), which flatters recall.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from pathlib import Path

from fmfl_audit.checkers.privacy._presidio import build_analyzer
from fmfl_audit.checkers.privacy.pii import PiiParams, analyze_texts

ENTITIES = (
    "EMAIL_ADDRESS",
    "PHONE_NUMBER",
    "CREDIT_CARD",
    "US_SSN",
    "IBAN_CODE",
    "IP_ADDRESS",
    "US_DRIVER_LICENSE",
)
SHORT = {
    "EMAIL_ADDRESS": "EMAIL",
    "PHONE_NUMBER": "PHONE",
    "CREDIT_CARD": "CARD",
    "US_SSN": "SSN",
    "IBAN_CODE": "IBAN",
    "IP_ADDRESS": "IP",
    "US_DRIVER_LICENSE": "DL",
}
THRESHOLDS = (0.0, 0.05, 0.1, 0.2, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 0.7, 0.8, 0.9)
DEFAULT = (
    Path(__file__).resolve().parents[2] / "shared/data/pii_presidio_synth/synth_dataset_v2.json"
)


def _match(gold: list[tuple[int, int, str]], pred: list[tuple[int, int, str]]) -> int:
    """Number of matched pairs under the documented rule."""
    pairs = []
    for gi, (gs, ge, gt) in enumerate(gold):
        for pi, (ps, pe, pt) in enumerate(pred):
            if gt != pt:
                continue
            overlap = min(ge, pe) - max(gs, ps)
            if overlap > 0 and overlap >= 0.5 * max(ge - gs, pe - ps):
                pairs.append((overlap, gi, pi))
    used_g, used_p, n = set(), set(), 0
    for _, gi, pi in sorted(pairs, reverse=True):
        if gi not in used_g and pi not in used_p:
            used_g.add(gi)
            used_p.add(pi)
            n += 1
    return n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT)
    args = ap.parse_args()
    rows = json.loads(args.data.read_text(encoding="utf-8"))
    defaults = PiiParams()
    pack = __import__("yaml").safe_load(
        (Path(__file__).resolve().parents[1] / "rules/default/privacy.yaml").read_text()
    )
    p01 = next(r for r in pack["rules"] if r["id"] == "FMFL-P01")["params"]
    params = PiiParams.model_validate(p01)
    analyzer = build_analyzer(extra=params.recognizers)
    texts = [r["full_text"] for r in rows]
    t0 = time.perf_counter()
    results = analyze_texts(
        analyzer.engine,
        texts,
        language="en",
        min_score=0.0,
        entities=None,
        exclude=defaults.exclude_entities,
        batch_size=256,
    )
    elapsed = time.perf_counter() - t0
    gold = [
        [
            (s["start_position"], s["end_position"], s["entity_type"])
            for s in r["spans"]
            if s["entity_type"] in ENTITIES
        ]
        for r in rows
    ]
    print(f"engine: {analyzer.description}; {len(texts)} texts in {elapsed:.1f}s")
    print(f"gold spans: {dict(Counter(t for g in gold for *_, t in g))}")
    print(f"\n{'min_score':>9} {'P':>6} {'R':>6} {'F1':>6}   per entity precision/recall")
    best = (0.0, 0.0)
    for th in THRESHOLDS:
        tp_e: Counter[str] = Counter()
        np_e: Counter[str] = Counter()
        ng_e: Counter[str] = Counter()
        for g, res in zip(gold, results, strict=True):
            pred = [
                (r.start, r.end, r.entity_type)
                for r in res
                if r.score >= th and r.entity_type in ENTITIES
            ]
            for ent in ENTITIES:
                ge = [x for x in g if x[2] == ent]
                pe = [x for x in pred if x[2] == ent]
                tp_e[ent] += _match(ge, pe)
                np_e[ent] += len(pe)
                ng_e[ent] += len(ge)
        tp, npred, ngold = sum(tp_e.values()), sum(np_e.values()), sum(ng_e.values())
        p = tp / npred if npred else 0.0
        r = tp / ngold if ngold else 0.0
        f1 = 2 * p * r / (p + r) if p + r else 0.0
        best = max(best, (f1, th))
        per = "  ".join(
            f"{SHORT[e]} {tp_e[e] / np_e[e] if np_e[e] else 0:.2f}/"
            f"{tp_e[e] / ng_e[e] if ng_e[e] else 0:.2f}"
            for e in ENTITIES
        )
        print(f"{th:>9.2f} {p:>6.3f} {r:>6.3f} {f1:>6.3f}   {per}")
    print(
        f"\nbest micro F1 {best[0]:.3f} at min_score {best[1]:.2f} (pack uses {params.min_score})"
    )


if __name__ == "__main__":
    main()
