"""Build `rules/lexicons/stereotypes/wordnet.json`: the slice of WordNet that F02's matcher uses.

    pip install lemminflect==0.2.3                 # build time only (inflections)
    python benchmarks/f02_build_associations.py    # first: the attributes to cover
    python benchmarks/f02_build_wordnet.py         # rewrites the shipped slice

Source: the Open English WordNet (CC-BY-4.0, derived from Princeton WordNet 3.0 under the WordNet
licence; pinned in `_stereodata.py`); inflected forms from lemminflect (MIT), used here only.

For every one-word attribute or counter attribute of the shipped associations:

- **canonical form**: its WordNet lemma (`criminals` -> `criminal`, `steals` -> `steal`), and the
  adjective its abstract noun or adverb derives from (`laziness`, `lazily` -> `lazy`, `greed` ->
  `greedy`; only an abstract noun, from WordNet's act, attribute, cognition, feeling and state
  files, sharing its stem with the adjective, so `father` does not become `fatherly`); an inflected
  form counts only when it is not a WordNet word of its own (`meaning` is not `mean`), and an
  everyday word is never one form of a rare one (`needs` is not `needy`). `norm` maps every
  inflected or derived form to its canonical form.
- **synonyms** (adjectives only: a noun's or verb's synsets drift far from a trait): the other
  one-word members of the synsets of its first `MAX_SENSES` senses, and for a satellite the members
  of its head (`lazy` -> `indolent`, `slothful`, `idle`). Members that are everyday words (at least
  `EVERYDAY` occurrences in FMFL-P06's background table) are left out: polysemous common words
  (`hot`, `mean`, `wild`) would tie a group to ordinary text.
- **antonyms**: WordNet's antonyms of those senses, and for a satellite its head's (`lazy` ->
  `busy`, `emotional` -> `unemotional`); same everyday filter.

`_stereotypes.load_knowledge` turns a resource's attribute into weaker votes for its synonyms (same
direction) and antonyms (opposite direction); the resource's own votes always outweigh them.
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from _stereodata import OEWN, oewn

from fmfl_audit.checkers.fairness._lexicon import term_tokens
from fmfl_audit.checkers.fairness._stereotypes import WORDNET_FORMAT, WORDNET_VERSION

ROOT = Path(__file__).resolve().parents[1] / "rules" / "lexicons" / "stereotypes"
MAX_SENSES = 2
EVERYDAY = 40
ABSTRACT_FILES = frozenset({"04", "07", "09", "12", "26"})
"""Lexicographer files of abstract nouns: act, attribute, cognition, feeling, state."""
ABSTRACT = ("ness", "ity", "ism", "ence", "ance", "ancy", "ency", "cy", "dom", "hood", "ry")


def word_of(sense_id: str) -> str:
    """`laziness%1:04:01::` -> `laziness`."""
    return sense_id.split("%", 1)[0].replace("_", " ")


def single(word: str) -> bool:
    return word.isalpha() and word.islower() and len(word) > 2


def stem_shared(a: str, b: str) -> bool:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n >= 3 and n >= 0.6 * min(len(a), len(b))


class Slice:
    """Lemmas, synonyms, antonyms and forms for a vocabulary of attribute words."""

    def __init__(self) -> None:
        from fmfl_audit.checkers.privacy._commonness import load_background

        self.entries, self.synsets = oewn()
        self.bg = load_background()
        self.sense_synset: dict[str, str] = {}
        self.sense_antonyms: dict[str, list[str]] = {}
        for by_pos in self.entries.values():
            for entry in by_pos.values():
                for s in entry.get("sense", ()):
                    self.sense_synset[s["id"]] = s["synset"]
                    if s.get("antonym"):
                        self.sense_antonyms[s["id"]] = s["antonym"]
        self.adverbs: dict[str, set[str]] = defaultdict(set)
        for lemma, by_pos in self.entries.items():
            for s in by_pos.get("r", {}).get("sense", ()):
                for other in s.get("pertainym", ()):
                    self.adverbs[word_of(other)].add(lemma)
        self.head_senses: dict[str, list[str]] = defaultdict(list)
        for sid, syn in self.sense_synset.items():
            self.head_senses[syn].append(sid)

    def canonical(self, word: str) -> str | None:
        """The canonical key of `word`: itself when WordNet has it (its abstract noun or adverb:
        the adjective it derives from), else its lemma (`criminals` -> `criminal`)."""
        from lemminflect import getAllLemmas

        if word in self.entries:
            return self.derived_from(word) or word
        lemmas = sorted({x for v in getAllLemmas(word).values() for x in v if x in self.entries})
        return lemmas[0] if lemmas else None

    def derived_from(self, word: str) -> str | None:
        """The adjective an abstract noun (`laziness`) or an adverb (`lazily`) derives from."""
        for pos, entry in self.entries.get(word, {}).items():
            if pos not in ("n", "r"):
                continue
            for s in entry.get("sense", ()):
                for rel in ("derivation", "pertainym"):
                    for other in s.get(rel, ()):
                        w = word_of(other)
                        # `laziness` -> `lazy`, `greed` -> `greedy`, `lazily` -> `lazy`; a
                        # concrete noun keeps its meaning (`father` is not `fatherly`).
                        abstract = s["id"].split("%")[1][2:4] in ABSTRACT_FILES
                        shaped = pos == "r" or (
                            abstract and (word.endswith(ABSTRACT) or w.startswith(word))
                        )
                        if shaped and single(w) and stem_shared(w, word) and self._is_adj(w):
                            return w
        return None

    def derivations(self, adjective: str) -> set[str]:
        """Abstract nouns and adverbs that derive from `adjective` (`laziness`, `lazily`)."""
        out = set()
        for pos, entry in self.entries.get(adjective, {}).items():
            if pos not in ("a", "s"):
                continue
            for s in entry.get("sense", ()):
                for other in s.get("derivation", ()):
                    w = word_of(other)
                    if single(w) and self.derived_from(w) == adjective:
                        out.add(w)
        return out | {w for w in self.adverbs.get(adjective, ()) if single(w)}

    def _is_adj(self, w: str) -> bool:
        return any(p in ("a", "s") for p in self.entries.get(w, {}))

    def common(self, w: str) -> bool:
        return self.bg.count((w,)) >= EVERYDAY

    def related(self, lemma: str) -> tuple[set[str], set[str]]:
        """(synonyms, antonyms) of `lemma`'s first senses (one-word, not everyday)."""
        syn: set[str] = set()
        ant: set[str] = set()
        for pos, entry in self.entries.get(lemma, {}).items():
            if pos not in ("a", "s"):
                continue  # traits are adjectives; a noun's or verb's synsets drift (`cell`)
            for s in entry.get("sense", ())[:MAX_SENSES]:
                synset = self.synsets[s["synset"]]
                syn.update(synset.get("members", ()))
                ant_ids = list(s.get("antonym", ()))
                if pos == "s" or s["synset"].endswith("-s"):
                    for head in synset.get("similar", ())[:1]:
                        syn.update(self.synsets[head].get("members", ()))
                        for hs in self.head_senses.get(head, ()):
                            ant_ids.extend(self.sense_antonyms.get(hs, ()))
                for a in ant_ids:
                    syn_id = self.sense_synset.get(a)
                    if syn_id:
                        ant.update(self.synsets[syn_id].get("members", ()))
        keep = {w for w in syn if single(w) and w != lemma and not self.common(w)}
        return keep, {w for w in ant if single(w) and not self.common(w)} - keep


def inflections(lemma: str) -> set[str]:
    from lemminflect import getAllInflections

    forms = {lemma}
    for tup in getAllInflections(lemma).values():
        forms.update(f.lower() for f in tup)
    return forms


def build(vocabulary: set[str]) -> dict[str, Any]:
    sl = Slice()
    canon: dict[str, str] = {}
    for w in sorted(vocabulary):
        c = sl.canonical(w)
        if c is not None:
            canon[w] = c
    synonyms: dict[str, set[str]] = {}
    antonyms: dict[str, set[str]] = {}
    for c in sorted(set(canon.values())):
        s, a = sl.related(c)
        if s:
            synonyms[c] = s
        if a:
            antonyms[c] = a
    # Forms: inflections that are not WordNet words of their own (`criminals`, `stole`, but not
    # `meaning`, `dressed`) map to their lemma; abstract nouns and adverbs to their adjective.
    lemmas = set(canon.values()) | {w for v in synonyms.values() for w in v}
    lemmas |= {w for v in antonyms.values() for w in v}
    norm: dict[str, str] = {}
    own = {lemma: sl.canonical(lemma) or lemma for lemma in lemmas}
    for lemma, c in sorted(own.items()):
        for f in sorted(inflections(lemma) | sl.derivations(lemma)):
            if f == c or not single(f):
                continue
            if f in sl.entries and sl.derived_from(f) != c:
                continue
            # An everyday word and a rare one are not one attribute (`needs` is not `needy`,
            # `kindly` not `kind`).
            if sl.common(f) != sl.common(c):
                continue
            norm.setdefault(f, c)
        if lemma != c and sl.common(lemma) == sl.common(c):
            norm[lemma] = c
    for w, c in canon.items():
        if w != c and sl.common(w) == sl.common(c):
            norm.setdefault(w, c)
    cmap = {c: own.get(c, c) for c in set(synonyms) | set(antonyms)}
    return {
        "format": WORDNET_FORMAT,
        "version": WORDNET_VERSION,
        "about": "Open English WordNet slice for FMFL-F02's attributes; see NOTICE.md.",
        "source": f"{OEWN.repo}@{OEWN.commit}",
        "norm": dict(sorted(norm.items())),
        "synonyms": {
            cmap[k]: sorted({own.get(x, x) for x in v}) for k, v in sorted(synonyms.items())
        },
        "antonyms": {
            cmap[k]: sorted({own.get(x, x) for x in v}) for k, v in sorted(antonyms.items())
        },
    }


def vocabulary() -> set[str]:
    data = json.loads((ROOT / "associations.json").read_text("utf-8"))
    words: set[str] = set()
    for _axis, _group, attr, counters, _sources in data["associations"]:
        for phrase in (attr, *counters):
            toks = term_tokens(phrase)
            if len(toks) == 1:
                words.add(toks[0])
    return words


def main() -> None:
    data = build(vocabulary())
    out = ROOT / "wordnet.json"
    out.write_text(json.dumps(data, ensure_ascii=False, separators=(",", ":")) + "\n", "utf-8")
    print(
        f"{out}: {len(data['norm'])} forms, {len(data['synonyms'])} words with synonyms, "
        f"{len(data['antonyms'])} with antonyms, {out.stat().st_size // 1024} KiB"
    )


if __name__ == "__main__":
    main()
