"""FMFL-P06 on real text: false client pairs from common phrases, recall of planted leaks.

    python benchmarks/p06_common_phrases.py [--leaks 300] [--seed 0]

Corpus (held out from the background table, see `p06_build_background.py`): the sentences of
WikiSplit `test` (Wikipedia; a sentence that is a revision of an earlier one, sharing half its word
trigrams, is dropped: it is the same text, not unrelated text) and the documents of UD English-EWT
`dev` + `test` (web text; all documents of one blog, mailbox or newsgroup stay with one client,
since e-mail threads quote each other and blogs repeat their signature lines). Records are
paragraphs of three consecutive sentences. Six clients get the documents round robin; each client's
records alternate between its prompts (the indexed sources) and its synthetic data. No text is
shared across clients on purpose, so every reported client pair is a false one.

Planted leaks, each in its own receiving client (so detection is read per leak from the report):
`--leaks` verbatim spans of 12-20 words (normalised words, as P06 reads them) of an owner's prompt
record, appended to a filler sentence; and `--leaks` near-verbatim passages of 45 words (normalised
words, as P06 reads them) of an owner's prompt record with one word in every 9 replaced by another
corpus word. A text posted verbatim in two EWT sources (an advert in two newsgroups) is a real copy
and is kept once (12+ shared words, the planted-leak length). Run with the default
`common_phrase_bits` and with the discount off (`null`), the figures side by side.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from _stereodata import ewt_documents, wikisplit_sentences

from fmfl_audit.checkers.privacy._shingles import normalised_words

OWNERS = 6
SPAN_WORDS = 12


def corpus() -> list[list[str]]:
    """Held-out documents of unrelated text (see the module doc): each EWT document whole (an
    e-mail thread quotes itself), each WikiSplit sentence alone, minus revisions of an earlier
    sentence (half or more of its word trigrams seen in one sentence before)."""
    docs: list[list[str]] = []
    seen: dict[str, set[int]] = {}
    for s in wikisplit_sentences("test"):
        w = normalised_words(s)
        tri = {" ".join(w[i : i + 3]) for i in range(len(w) - 2)}
        if len(w) < 3:
            continue
        overlap: dict[int, int] = {}
        for t in tri:
            for d in seen.get(t, ()):
                overlap[d] = overlap.get(d, 0) + 1
        if any(n >= len(tri) / 2 for n in overlap.values()):
            continue
        for t in tri:
            seen.setdefault(t, set()).add(len(docs))
        docs.append([s])
    # A text in two sources that shares 12+ words verbatim (an advert posted to two newsgroups,
    # a mail provider's footer) is a copy, which P06 must report (the planted-leak length), not a
    # coincidence: keep the first source only.
    posted: set[str] = set()
    for d in ewt_documents("dev", "test", by_source=True):
        w = normalised_words(" ".join(d))
        grams = {" ".join(w[i : i + SPAN_WORDS]) for i in range(len(w) - SPAN_WORDS + 1)}
        if not d or grams & posted:
            continue
        posted |= grams
        docs.append(d)
    return docs


def paragraphs(docs: list[list[str]], per: int = 3) -> list[str]:
    """Records of `per` consecutive sentences (of one document where a document has several)."""
    out: list[str] = []
    pending: list[str] = []
    for d in docs:
        if len(d) == 1:
            pending.append(d[0])
            if len(pending) == per:
                out.append(" ".join(pending))
                pending = []
            continue
        out.extend(" ".join(d[i : i + per]) for i in range(0, len(d), per))
    if pending:
        out.append(" ".join(pending))
    return out


def write(root: Path, rows: dict[str, list[str]]) -> None:
    for rel, texts in rows.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts), encoding="utf-8")


def build(root: Path, docs: list[list[str]], leaks: int, seed: int) -> dict[str, str]:
    """Write the deployment; return receiving client -> the owner whose text it holds. Each
    document goes to one client (half its records prompts, half synthetic data)."""
    rng = random.Random(seed)
    docs = list(docs)
    rng.shuffle(docs)
    fillers = [d[0] for d in docs[: 2 * leaks]]
    docs = docs[2 * leaks :]
    files: dict[str, list[str]] = {}
    prompts: dict[str, list[str]] = {}
    for i in range(OWNERS):
        recs = paragraphs(docs[i::OWNERS])
        prompts[f"c{i}"] = recs[0::2]
        files[f"c{i}/prompts.jsonl"] = recs[0::2]
        files[f"c{i}/synthetic.jsonl"] = recs[1::2]
    vocab = sorted({w for p in prompts["c0"][:500] for w in p.split() if w.isalpha()})
    truth: dict[str, str] = {}
    for j in range(leaks):
        owner = f"c{j % OWNERS}"
        long = [p for p in prompts[owner] if len(normalised_words(p)) >= 45]
        w = normalised_words(rng.choice(long))
        n = rng.randint(SPAN_WORDS, 20)
        at = rng.randint(0, len(w) - n)
        files[f"v{j}/synthetic.jsonl"] = [f"{fillers[j]} {' '.join(w[at : at + n])}"]
        truth[f"v{j}"] = owner
        w = normalised_words(rng.choice(long))
        at = rng.randint(0, max(0, len(w) - 45))
        passage = w[at : at + 45]
        for pos in range(4, len(passage), 9):
            passage[pos] = rng.choice([v for v in vocab if v.lower() != passage[pos]])
        files[f"n{j}/synthetic.jsonl"] = [f"{fillers[leaks + j]} {' '.join(passage)}"]
        truth[f"n{j}"] = owner
    write(root, files)
    clients = [
        {"id": f"c{i}", "prompts": f"c{i}/prompts.jsonl", "synthetic_data": f"c{i}/synthetic.jsonl"}
        for i in range(OWNERS)
    ] + [{"id": r, "synthetic_data": f"{r}/synthetic.jsonl"} for r in truth]
    import yaml

    manifest = {"version": 1, "deployment": {"name": "p06-bench"}, "clients": clients}
    (root / "manifest.yaml").write_text(yaml.safe_dump(manifest), encoding="utf-8")
    return truth


def score(root: Path, truth: dict[str, str], bits: float | None) -> dict[str, object]:
    """Run P06 with `common_phrase_bits=bits` and read the figures off the report."""
    t0 = time.perf_counter()
    report = _run(root, bits)
    secs = time.perf_counter() - t0
    found = {
        (f.subject.split(":", 1)[1], f.message.split("client ", 1)[1].split("'", 1)[0])
        for f in report.findings  # type: ignore[attr-defined]
        if "client " in f.message and "'s prompts" in f.message
    }
    owners = {f"c{i}" for i in range(OWNERS)}
    false_pairs = sorted((o, r) for r, o in found if r in owners)
    m = report.rule("FMFL-P06").metrics  # type: ignore[attr-defined]
    false_spans = sum(sum(m[f"client:{c}"]["leaked_spans_from"].values()) for c in owners)
    discounted = sum(sum(m[f"client:{c}"]["discounted_common_spans_from"].values()) for c in owners)
    hit = {r for r, o in found if r in truth and truth[r] == o}
    verb = [r for r in truth if r.startswith("v")]
    near = [r for r in truth if r.startswith("n")]
    return {
        "common_phrase_bits": bits,
        "false_client_pairs": len(false_pairs),
        "false_pairs": false_pairs,
        "false_spans": false_spans,
        "discounted_spans_between_owners": discounted,
        "verbatim_recall": round(len(hit & set(verb)) / len(verb), 4),
        "near_verbatim_recall": round(len(hit & set(near)) / len(near), 4),
        "missed": sorted(set(truth) - hit),
        "seconds": round(secs, 1),
    }


def _run(root: Path, bits: float | None) -> object:
    import yaml

    from fmfl_audit import Auditor, load_manifest

    m = yaml.safe_load((root / "manifest.yaml").read_text())
    m["policy"] = {"rules": {"FMFL-P06": {"params": {"common_phrase_bits": bits}}}}
    (root / "manifest.run.yaml").write_text(yaml.safe_dump(m))
    return Auditor(load_manifest(root / "manifest.run.yaml"), only=("FMFL-P06",)).run()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--leaks", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    docs = corpus()
    n = sum(len(d) for d in docs)
    print(
        f"corpus: {n} held-out sentences in {len(docs)} documents; {OWNERS} clients; "
        f"{args.leaks} verbatim + {args.leaks} near-verbatim planted leaks"
    )
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        truth = build(root, docs, args.leaks, args.seed)
        for bits in (70.0, None):
            r = score(root, truth, bits)
            print(json.dumps(r))
            for miss in r["missed"]:  # type: ignore[attr-defined]
                text = json.loads((root / miss / "synthetic.jsonl").read_text())["text"]
                print(f"  missed {miss} (owner {truth[miss]}): {text}")


if __name__ == "__main__":
    main()
