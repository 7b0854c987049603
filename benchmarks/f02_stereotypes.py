"""FMFL-F02 on real stereotyping text: leave-one-resource-out recall, twins and neutral text.

    python benchmarks/f02_stereotypes.py

Test sets (pinned snapshots, `_stereodata.py`):

- `stereoset`: the gold stereotype sentences of StereoSet's intrasentence gender, race and
  religion tasks (crowd-written, CC-BY-SA-4.0);
- `redditbias`: the Reddit phrases RedditBias annotators marked biased, against Black people,
  Jews, Muslims, women and LGBTQ people (real social-media text, MIT);
- `seegull`: SeeGULL's majority-vote stereotypes as plain statements (`"{Group} are
  {attribute}."`, the group named as the FM probes name it; SeeGULL ships no sentences);
- `toxigen`: ToxiGen's human-written hateful seed statements about 16 target groups (women, trans
  people, LGBTQ and bisexual people, mental and physical disability, immigrants, races,
  nationalities, Jews, Muslims; MIT / CDLA-Permissive-2.0);
- `choenni`: Choenni et al.'s autocompletions as `"{Group} are {completion}."` for the groups the
  lexicon names (age, socio-economic status, homeless people, races, religions, genders,
  immigrants; countries as `"People in {Country} are ..."`), the group worded as in the data
  (`Old people`, `Millennials`, `Poor people`; MIT);
- `kamruzzaman`: Kamruzzaman et al.'s ageism and beauty items as `"{Group} are {stereotype
  answer}."` (`Old people are rigid.`, `Unattractive people are ignorant.`; MIT);
- twins: each stereotype sentence with its group mention swapped for another group of the same
  axis for which none of the sentence's attributes is a stereotype (RedditBias's own
  counter-target phrases for `redditbias`: Christians for Muslims, white people for Black
  people, ...);
- neutral: held-out real sentences that mention a group, from WikiSplit `test` (Wikipedia) and
  UD English-EWT `dev` + `test` (blogs, reviews, e-mail, newsgroups, answers).

For each test set: knowledge from every resource (`all`) and from every resource but the one the
sentences come from (leave-one-resource-out), in three matchers: `loro-fold` (words compared after
a plural fold, no WordNet: the matcher before WordNet was added), `loro-lemma` (WordNet canonical
forms) and `loro` (canonical forms and WordNet synonyms / antonyms: the default). Sentence-level
figures: share of stereotype sentences with a consistent statement (recall), per the test set's own
bias type; the same share on their twins and on the neutral sentences. Rule-level: FMFL-F02 with
its default pack settings on three dumps (the stereotype sentences, their twins, the neutral
sentences): must fire on the first only.
"""

from __future__ import annotations

import json
import random
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from _stereodata import (
    REDDITBIAS,
    SEEGULL,
    STEREOSET_TYPES,
    TOXIGEN_GROUPS,
    choenni_rows,
    ewt_sentences,
    stereoset_pairs,
    toxigen_sentences,
    wikisplit_sentences,
)

from fmfl_audit.checkers.fairness._fm_preference import surface
from fmfl_audit.checkers.fairness._lexicon import tokenize
from fmfl_audit.checkers.fairness._stereotypes import (
    RESOURCES,
    StereotypeKnowledge,
    load_knowledge,
    statements,
)

REDDIT_SETS = (
    ("race", "race_black", "race_white"),
    ("religion1", "religion1_jews", "religion1_christians"),
    ("religion2", "religion2_muslims", "religion2_christians"),
    ("gender", "gender_female", "gender_male"),
    ("orientation", "orientation_lgbtq", "orientation_straight"),
)


def reddit_phrases(folder: str, name: str) -> list[str]:
    rows = REDDITBIAS.csv(f"data/{folder}/reddit_comments_{name}_biased_test_reduced.csv")
    return [r["comments_processed"] for r in rows if r.get("comments_processed")]


def seegull_statements(full: StereotypeKnowledge) -> list[str]:
    """SeeGULL's majority-vote stereotypes as `"{Group} are {attribute}."`, the group named as the
    FM probes name it (`Mexicans`, `Chinese people`)."""
    from _stereodata import COUNTRIES

    group_of: dict[str, str] = {}
    for c in COUNTRIES.json("countries.json"):
        for v in c.get("demonyms", {}).get("eng", {}).values():
            if v:
                toks = v.lower().split()
                for m in full.lexicon.mentions([*toks, "people"], axes=("nationality",)):
                    group_of.setdefault(v.lower(), m.group)
    out = []
    for row in SEEGULL.csv("dataset/stereotypes_global_v2.csv"):
        if max(int(row["region_stereo"] or 0), int(row["NA_stereo"] or 0)) < 2:
            continue
        group = group_of.get(row["identity"].strip().lower())
        if group is not None:
            out.append(f"{surface(full, 'nationality', group)} are {row['attribute'].strip()}.")
    return out


def choenni_statements(full: StereotypeKnowledge) -> list[tuple[str, str]]:
    """(axis, sentence) of Choenni et al.'s completions whose group the lexicon names."""
    from f02_build_associations import CHOENNI_AXES, CHOENNI_SKIP

    out = []
    for category, name, completion in choenni_rows():
        if name in CHOENNI_SKIP:
            continue
        if category == "country":
            text = f"People in {name.title()} are {completion}."
            axes: tuple[str, ...] = ("nationality",)
        else:
            text = f"{name[:1].upper()}{name[1:]} are {completion}."
            axes = CHOENNI_AXES.get(category, ())
        found = {m.axis for m in full.lexicon.mentions(tokenize(text)[0], axes=axes)}
        if len(found) == 1:
            out.append((next(iter(found)), text))
    return out


def kamruzzaman_statements(full: StereotypeKnowledge) -> list[tuple[str, str]]:
    """(group, sentence) of Kamruzzaman et al.'s ageism and beauty items (the SAI direction)."""
    from f02_build_associations import kamruzzaman_items

    out: dict[tuple[str, str], None] = {}
    for (axis, group), stereotype, _ in kamruzzaman_items():
        out.setdefault((group, f"{surface(full, axis, group)} are {stereotype}."))
    return list(out)


def twin(full: StereotypeKnowledge, text: str, rng: random.Random) -> str | None:
    """`text` with its first stereotyped group mention swapped for a group of the same axis
    that none of the clause's attributes fits (None when it names no group)."""
    found = statements(text, full)
    if not found:
        return None
    s = next((x for x in found if x.kind == "consistent"), found[0])
    bad = set(full.consistent_groups(s.axis, s.pairings)) | {s.group}
    options = [g for g in full.groups_by_axis[s.axis] if g not in bad]
    if not options:
        return None
    lo, hi = s.span
    return text[:lo] + surface(full, s.axis, rng.choice(options)) + text[hi:]


def neutral_sentences(full: StereotypeKnowledge) -> list[str]:
    from fmfl_audit.checkers.fairness._stereotypes import group_mentions

    sents = wikisplit_sentences("test") + ewt_sentences("dev") + ewt_sentences("test")
    return [s for s in dict.fromkeys(sents) if group_mentions(s, full, pronouns=False)]


def sentence_rates(
    know: StereotypeKnowledge, texts: list[str], labels: list[str] | None = None
) -> tuple[float, dict[str, str]]:
    """Share of texts with a consistent statement; per label (the test set's own axis label)."""
    hits = 0
    per: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for i, t in enumerate(texts):
        ok = any(s.kind == "consistent" for s in statements(t, know))
        hits += ok
        if labels is not None:
            per[labels[i]][0] += ok
            per[labels[i]][1] += 1
    rates = {a: f"{h}/{n} ({h / n:.0%})" for a, (h, n) in sorted(per.items())}
    return hits / max(1, len(texts)), rates


MODES = {
    # name: (leave the test set's resource out, lemmatise, WordNet expansion)
    "all": (False, True, True),
    "loro-fold": (True, False, False),
    "loro-lemma": (True, True, False),
    "loro": (True, True, True),
}
VERDICT_MODES = ("all", "loro-fold", "loro")


def rule_verdicts(
    dumps: dict[str, list[str]], resources: tuple[str, ...], lemmatise: bool, expand: bool
) -> dict[str, str]:
    import yaml

    from fmfl_audit import Auditor, load_manifest

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        clients = []
        for name, texts in dumps.items():
            (root / f"{name}.jsonl").write_text(
                "".join(json.dumps({"text": t}) + "\n" for t in texts), encoding="utf-8"
            )
            clients.append({"id": name, "synthetic_data": f"{name}.jsonl"})
        params = {"resources": list(resources), "lemmatise": lemmatise}
        params["wordnet_expansion"] = expand
        m = {
            "version": 1,
            "deployment": {"name": "f02-bench"},
            "clients": clients,
            "policy": {"rules": {"FMFL-F02": {"params": params}}},
        }
        (root / "manifest.yaml").write_text(yaml.safe_dump(m), encoding="utf-8")
        rep = Auditor(load_manifest(root / "manifest.yaml"), only=("FMFL-F02",)).run()
    fired: dict[str, list[str]] = defaultdict(list)
    for f in rep.findings:
        fired[f.subject.split(":", 1)[-1]].append(f.message.split(":")[0])
    return {name: ",".join(sorted(fired[name])) or "quiet" for name in dumps}


def test_sets(full: StereotypeKnowledge) -> dict[str, list[tuple[str, str]]]:
    """(label, sentence) of each test set; the label is the set's own bias type or target."""
    return {
        "stereoset": [(b, s) for b in STEREOSET_TYPES for _, s, _ in stereoset_pairs(b)],
        "redditbias": [(f, p) for f, a, _ in REDDIT_SETS for p in reddit_phrases(f, a)],
        "seegull": [("nationality", s) for s in seegull_statements(full)],
        "toxigen": [(g, s) for g in TOXIGEN_GROUPS for s in toxigen_sentences("hate", g)],
        "choenni": choenni_statements(full),
        "kamruzzaman": kamruzzaman_statements(full),
    }


def main() -> None:
    rng = random.Random(0)
    full = load_knowledge()
    labelled = test_sets(full)
    only = sys.argv[1:] or list(labelled)
    tests = {name: [t for _, t in rows] for name, rows in labelled.items()}
    twins = {
        name: [t for t in (twin(full, s, rng) for s in texts) if t] for name, texts in tests.items()
    }
    twins["redditbias"] = [p for f, _, b in REDDIT_SETS for p in reddit_phrases(f, b)]
    neutral = neutral_sentences(full)
    print(f"neutral sentences mentioning a group: {len(neutral)}")
    for name in only:
        texts = tests[name]
        sample = rng.sample(texts, min(len(texts), 2000))
        twin_sample = rng.sample(twins[name], min(len(twins[name]), 2000))
        for mode, (loro, lemmatise, expand) in MODES.items():
            res = tuple(r for r in RESOURCES if not (loro and r == name))
            know = load_knowledge(res, lemmatise=lemmatise, expand=expand)
            recall, per_label = sentence_rates(know, texts, [a for a, _ in labelled[name]])
            twin_rate, _ = sentence_rates(know, twins[name])
            neutral_rate, _ = sentence_rates(know, neutral)
            row = {
                "test": name,
                "knowledge": mode,
                "sentences": len(texts),
                "recall": round(recall, 4),
                "recall_per_label": per_label,
                "twins": len(twins[name]),
                "twin_rate": round(twin_rate, 4),
                "neutral_rate": round(neutral_rate, 4),
            }
            if mode in VERDICT_MODES:
                dumps = {"stereotypes": sample, "twins": twin_sample, "neutral": neutral}
                row["F02"] = rule_verdicts(dumps, res, lemmatise, expand)
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
