"""Build `rules/lexicons/stereotypes/associations.json` from the public resources.

    python benchmarks/f02_build_associations.py            # rewrites the shipped file

Resources (pinned in `_stereodata.py`) and how each becomes (axis, group, attribute, counters):

- SeeGULL (CC-BY-4.0): an (identity, attribute) pair whose in-region or North-American raters
  marked it a stereotype by majority (2 of 3). Identities are demonyms: the `nationality` axis,
  HolisticBias's bucket where it has one (Mexican -> mexico), else a group named after the
  country (mledoze/countries, ODbL-1.0, gives demonyms and country names).
- StereoSet (CC-BY-SA-4.0), intrasentence gender / race / religion: the word filling the BLANK in
  the gold stereotype sentence is the attribute, the anti-stereotype sentence's word its counter;
  the group is the one lexicon mention in the context (contexts with none or several are skipped).
- RedditBias (MIT): each demographic's stereotype attribute list, counters from its aligned
  `_pos` list (entries marked `*****` have none).
- ABC U.S. stereotypes (Cao et al. 2022, MIT): per group, a trait pair scored <= 30 or >= 70 (of
  100) makes that pole the stereotype and the other pole its counter.
- WinoBias (MIT): female / male occupations for the two gender groups, each the other's counter.
- Choenni et al. 2021 (MIT): search-engine autocompletions of "why are {group} so ...": each
  completion is an attribute of its group, for the groups the lexicon names (age: old people,
  elders, boomers, millennials, teenagers; socio-economic: poor, rich and homeless people; races,
  religions, genders, nationalities, immigrants). Family roles (kids, children, sons, daughters)
  and professions, lifestyles and politics the lexicon has no group for are left out. No
  counters; like ToxiGen's words they never make an association *attested*.
- Kamruzzaman et al. 2024 (MIT), ageism and beauty items of the SAI direction ("the 64 years old
  people might be BLANK"; "she looks dull; she is BLANK"): the stereotype answer is an attribute
  of the item's group (ages 60 and over: old people; 35 and under: young people; the look word
  decides attractive or unattractive people), the anti-stereotype answer its counter. The items
  state the authors' hypotheses of ageism and the beauty halo, not elicited stereotypes, so they
  never make an association attested either.
- ToxiGen (MIT code, CDLA-Permissive-2.0 data): the human-written hateful seed statements per
  target group (`prompts/hate_*`). In each, the group mentions of the file's target (`women`,
  `mentally ill`, `blind people`, `bisexual`, ...) and the content words at most 3 tokens before or
  6 after them (the matcher's window): a word is an attribute of that group when it is not in the
  group's neutral seed statements, not an everyday word, and stated of at most two of ToxiGen's 16
  targets (a word said of every group is hate in general, not a stereotype of one). ToxiGen has no
  counter-statements, so its rows have no counters; like StereoSet's fill-ins they are not
  *attested* alone (the FM probes do not use them).

Attributes are lower-cased phrases of at most three words; a small stoplist drops words that say
nothing about a group. A StereoSet (or ToxiGen, or Choenni) attribute no other resource names is
dropped when it is one everyday word (at least `EVERYDAY` occurrences in FMFL-P06's background
table, about 1 in 12,000 words of general English: `take`, `home`, `car`, `college`): a single
crowd-worker's fill-in (or autocompletion) that common is too ambiguous to count as a stereotype.
Groups not in HolisticBias get their own terms (`groups` section).
"""

from __future__ import annotations

import json
import re
import sys
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from _stereodata import (
    ABC,
    COUNTRIES,
    KAMRUZZAMAN,
    REDDITBIAS,
    SEEGULL,
    STEREOSET_TYPES,
    WINOBIAS,
    blank_fill,
    choenni_rows,
    oewn,
    stereoset_pairs,
    toxigen_sentences,
)

from fmfl_audit.checkers.fairness._lexicon import (
    load_demographic_lexicon,
    term_tokens,
    tokenize,
)
from fmfl_audit.checkers.fairness._stereotypes import FORMAT, VERSION, extend_lexicon

OUT = (
    Path(__file__).resolve().parents[1] / "rules" / "lexicons" / "stereotypes" / "associations.json"
)
EVERYDAY = 40
"""Background-table count from which a StereoSet-only single-word attribute is an everyday word."""

STOP = frozenset(
    """
    a an the and or of to in on at for with from by as is are was were be been being it its this
    that these those they them their he she his her him i you we us our my your me people person
    man men woman women thing things very really so too more most less least much many some any
    all one two good bad nice great big small new other same different lot lots kind such just
    also only well way like can could would should will do does did have has had not no yes
    there here what which who whom when where why how blank
    """.split()  # noqa: SIM905 (a word list reads better as text)
)

ABC_GROUPS = {
    "women": ("gender_and_sex", "female"),
    "men": ("gender_and_sex", "male"),
    "transgender people": ("gender_and_sex", "transgender"),
    "cis people": ("gender_and_sex", "cisgender"),
    "non-binary people": ("gender_and_sex", "non_binary_or_gnc"),
    "working class people": ("socioeconomic_class", "working_class"),
    "wealthy people": ("socioeconomic_class", "upper_class"),
    "unemployed people": ("characteristics", "job_status"),
    "immigrants": ("characteristics", "immigration_status"),
    "Jewish people": ("religion", "jewish"),
    "Christian people": ("religion", "christian"),
    "Muslim people": ("religion", "muslim"),
    "Buddhist people": ("religion", "buddhist"),
    "Mormon people": ("religion", "mormon"),
    "White people": ("race_ethnicity", "white"),
    "Hispanic people": ("race_ethnicity", "latinx"),
    "Asian people": ("race_ethnicity", "asian"),
    "Blacks/African Americans": ("race_ethnicity", "black"),
    "Native Americans": ("race_ethnicity", "indigenous"),
    "teenagers": ("age", "child"),
    "elderly people": ("age", "old"),
    "blind people": ("ability", "visual"),
    "autistic people": ("ability", "neurological"),
    "neurodivergent people": ("ability", "neurological"),
}

REDDITBIAS_SETS = (
    # folder, attribute file, counter file, groups
    ("race", "race_black.txt", "race_black_pos.txt", [("race_ethnicity", "black")]),
    ("religion1", "religion1_jews.txt", "religion1_jews_pos.txt", [("religion", "jewish")]),
    ("religion2", "religion2_muslims.txt", "religion2_muslims_pos.txt", [("religion", "muslim")]),
    (
        "orientation",
        "orientation_lgbtq.txt",
        "orientation_lgbtq_pos.txt",
        [("sexual_orientation", g) for g in ("gay", "lesbian", "bi", "queer")],
    ),
    ("gender", "gender_female.txt", "gender_female_pos.txt", [("gender_and_sex", "female")]),
)

TOXIGEN_TARGETS: dict[str, dict[str, tuple[str, ...]]] = {
    # ToxiGen file -> the axes and groups its statements are about (found by their mentions).
    "asian": {"race_ethnicity": ("asian",)},
    "bisexual": {"sexual_orientation": ("bi",)},
    "black": {"race_ethnicity": ("black",)},
    "chinese": {"nationality": ("china",)},
    "immigrant": {"characteristics": ("immigration_status",)},
    "jewish": {"religion": ("jewish",)},
    "latino": {"race_ethnicity": ("latinx",)},
    "lgbtq": {
        "sexual_orientation": ("bi", "gay", "lesbian", "queer"),
        "gender_and_sex": ("transgender",),
    },
    "mental_disability": {"ability": ("mental_health",)},
    "mexican": {"nationality": ("mexico",)},
    "middle_east": {"race_ethnicity": ("arab",)},
    "muslim": {"religion": ("muslim",)},
    "native_american": {"race_ethnicity": ("indigenous",)},
    "physical_disability": {"ability": ("auditory", "mobility", "speech", "unspecific", "visual")},
    "trans": {"gender_and_sex": ("transgender",)},
    "women": {"gender_and_sex": ("female",)},
}
CHOENNI_AXES: dict[str, tuple[str, ...]] = {
    # Choenni et al.'s category -> the axes its groups may fall on (`profession` is no axis).
    "age": ("age",),
    "gender": ("gender_and_sex",),
    # Not body_type: HolisticBias's `hair` bucket lumps redheads with bald and bearded people.
    "lifestyle": ("socioeconomic_class", "characteristics"),
    "political": ("characteristics",),
    "race": ("race_ethnicity", "nationality"),
    "religion": ("religion",),
}
CHOENNI_SKIP = frozenset({"kids", "children", "sons", "daughters"})
"""Family roles, not social groups: "kids are loud" says nothing about a group the audit grades,
and their everyday mentions ("my kids are happy") would fill the neutral text with statements."""
KAMRUZZAMAN_AGES = ((60, ("age", "old")), (0, ("age", "young")))
"""Age of an ageism item -> group (the paper's older group is 60-70, the younger 25-35)."""
TOXIGEN_MAX_TARGETS = 2
"""A ToxiGen word stated of more targets than this is general hate, not one group's stereotype."""

# Extra group terms the resources name that HolisticBias files elsewhere or lacks.
EXTRA_GROUPS: dict[str, dict[str, dict[str, list[str]]]] = {
    "race_ethnicity": {
        "arab": {
            "descriptors": ["Arab", "Arabic", "Middle Eastern"],
            "nouns": ["Arabs", "Middle Easterners"],
        }
    },
    "ability": {
        "mental_health": {
            "descriptors": ["mentally ill", "mentally disabled", "mentally challenged"],
            "nouns": [
                "the mentally ill",
                "the mentally disabled",
                "mental illness",
                "mental illnesses",
                "mental disability",
                "mental disabilities",
                "mentally ill people",
            ],
        },
        "unspecific": {"nouns": ["the disabled", "disabilities", "cripples"]},
        "mobility": {"nouns": ["wheelchairs", "wheelchair users"]},
    },
    "characteristics": {
        "immigration_status": {"nouns": ["immigrants", "migrants", "refugees", "foreigners"]}
    },
    # Choenni et al.'s age groups HolisticBias names only as adjectives.
    "age": {
        "child": {"nouns": ["teenagers", "teens", "adolescents"]},
        "young": {"nouns": ["millennials", "millenials"]},
        "old": {"nouns": ["the elderly", "elders", "boomers", "baby boomers"]},
    },
    "religion": {
        "muslim": {"nouns": ["Islam", "Quran", "Sharia", "Mohammed", "Jihad"]},
        "christian": {"nouns": ["Bible", "Christianity", "Trinity"]},
        "jewish": {"nouns": ["Jews", "Jew", "Judaism", "Torah"]},
        "hindu": {"nouns": ["Brahmin", "Hinduism"]},
    },
}


def kamruzzaman_items() -> list[tuple[tuple[str, str], str, str]]:
    """((axis, group), stereotype answer, anti-stereotype answer) of Kamruzzaman et al.'s ageism
    and beauty items whose group is clear (type2 items ask for the group, not a trait)."""
    looks_file = KAMRUZZAMAN.json("input_attributes/beauty_bias_type1_data.json")
    looks = {w: ("body_type", "unattractive") for w in looks_file["negative_terms"]}
    looks |= {w: ("body_type", "attractive") for w in looks_file["positive_terms"]}
    out = []
    for row in KAMRUZZAMAN.csv("dataset.csv"):
        if row["type_category"] != "type1":
            continue
        found: set[tuple[str, str]] = set()
        if row["bias_type"] == "ageism":
            age = int(re.findall(r"\d+", row["context"])[0])
            if not 35 < age < 60:
                found = {next(g for low, g in KAMRUZZAMAN_AGES if age >= low)}
        elif row["bias_type"] == "beauty":
            found = {looks[w] for w in tokenize(row["context"])[0] if w in looks}
        if len(found) == 1:
            out.append((next(iter(found)), row["stereotype"], row["anti_stereotype"]))
    return out


def content_words() -> Callable[[str], bool]:
    """Whether a word is an adjective, noun or verb in WordNet (its lemma via lemminflect): drops
    typos, contractions without their apostrophe (`dont`) and adverbs (`objectively`)."""
    from lemminflect import getAllLemmas

    entries, _ = oewn()

    def ok(word: str) -> bool:
        lemmas = {word} | {x for v in getAllLemmas(word).values() for x in v}
        return any(p in ("a", "s", "n", "v") for x in lemmas for p in entries.get(x, {}))

    return ok


def slug(text: str) -> str:
    return "_".join(term_tokens(text))


def clean_attribute(text: str) -> str | None:
    a = re.sub(r"[*\"]", "", text).strip().lower().replace("-", " ")
    toks = term_tokens(a)
    if not toks or len(toks) > 3 or any(len(t) < 2 for t in toks):
        return None
    if all(t in STOP for t in toks) or not all(t.isalpha() for t in toks):
        return None
    return " ".join(toks)


class Builder:
    """Accumulates associations and extra groups."""

    def __init__(self) -> None:
        self.assoc: dict[tuple[str, str, str], dict[str, set[str]]] = defaultdict(
            lambda: {"counters": set(), "sources": set()}
        )
        self.groups: dict[str, dict[str, dict[str, list[str]]]] = json.loads(
            json.dumps(EXTRA_GROUPS)
        )
        self.hb = load_demographic_lexicon()
        self._terms: set[tuple[str, ...]] | None = None

    def add(self, axis: str, group: str, attr: str, counters: list[str], source: str) -> None:
        a = clean_attribute(attr)
        if a is None or self.is_group_term(a):
            return
        cell = self.assoc[(axis, group, a)]
        cell["sources"].add(source)
        for c in counters:
            cc = clean_attribute(c)
            if cc is not None and cc != a and not self.is_group_term(cc):
                cell["counters"].add(cc)

    def is_group_term(self, phrase: str) -> bool:
        """Whether `phrase` names a group (`boys`, `Chinese`): a group is not an attribute."""
        if self._terms is None:
            lex = extend_lexicon(self.hb, self.groups)
            self._terms = {t.tokens for terms in lex.terms_by_group.values() for t in terms}
            self._terms |= {(w,) for w in lex.person_nouns}
        toks = term_tokens(phrase)
        return tuple(toks) in self._terms or (toks[-1] + "s",) in self._terms

    def add_group(self, axis: str, group: str, kind: str, term: str) -> None:
        spec = self.groups.setdefault(axis, {}).setdefault(group, {})
        lst = spec.setdefault(kind, [])
        if term not in lst:
            lst.append(term)

    # -- nationality groups from the countries table ---------------------------------------------

    def nationality_index(self) -> dict[str, str]:
        """Lower-cased demonym or country name -> nationality group."""
        hb_desc = {
            " ".join(t.tokens): t.group
            for (axis, _), terms in self.hb.terms_by_group.items()
            if axis == "nationality"
            for t in terms
        }
        index: dict[str, str] = {}
        # Sovereign states first: `French` is France's demonym before the French territories'.
        countries = sorted(COUNTRIES.json("countries.json"), key=lambda c: not c.get("independent"))
        for c in countries:
            name = c["name"]["common"]
            dem = c.get("demonyms", {}).get("eng", {})
            forms = sorted({v for v in dem.values() if v})
            group = next((hb_desc[f.lower()] for f in forms if f.lower() in hb_desc), slug(name))
            for f in forms:
                index.setdefault(f.lower(), group)
                if f.lower() not in hb_desc:
                    self.add_group("nationality", group, "descriptors", f)
            index.setdefault(name.lower(), group)
            self.add_group("nationality", group, "nouns", name)
        return index

    # -- resources --------------------------------------------------------------------------------

    def seegull(self, nat: dict[str, str]) -> None:
        for row in SEEGULL.csv("dataset/stereotypes_global_v2.csv"):
            votes = max(int(row["region_stereo"] or 0), int(row["NA_stereo"] or 0))
            group = nat.get(row["identity"].strip().lower())
            if votes >= 2 and group is not None:
                self.add("nationality", group, row["attribute"], [], "seegull")

    def stereoset(self) -> None:
        lex = extend_lexicon(self.hb, self.groups)
        axes = {
            "gender": ("gender_and_sex",),
            "race": ("race_ethnicity", "nationality"),
            "religion": ("religion",),
        }
        for bias in STEREOSET_TYPES:
            for prompt, stereo, anti in stereoset_pairs(bias):
                toks, _ = tokenize(prompt.replace("BLANK", " "))
                found = {
                    (m.axis, m.group)
                    for m in lex.mentions(toks, axes=axes[bias], noun_window=2, pronouns=True)
                }
                if len(found) != 1:
                    continue
                s, a = blank_fill(prompt, stereo), blank_fill(prompt, anti)
                if s and a:
                    axis, group = next(iter(found))
                    self.add(axis, group, s, [a], "stereoset")

    def redditbias(self) -> None:
        for folder, attr_file, pos_file, groups in REDDITBIAS_SETS:
            attrs = REDDITBIAS.lines(f"data/{folder}/{attr_file}")
            pos = REDDITBIAS.lines(f"data/{folder}/{pos_file}")
            for i, attr in enumerate(attrs):
                c = pos[i] if i < len(pos) else ""
                counters = [] if "*****" in c or not c else [c]
                for axis, group in groups:
                    self.add(axis, group, attr, counters, "redditbias")

    def abc(self) -> None:
        scores = ABC.json("dataset/Aggregated_scores.json")
        for name, traits in scores.items():
            if name not in ABC_GROUPS:
                continue
            axis, group = ABC_GROUPS[name]
            for pair, value in traits.items():
                left, right = (p.strip() for p in pair.split(" - "))
                v = float(value)
                if v <= 30:
                    self.add(axis, group, left, [right], "abc")
                elif v >= 70:
                    self.add(axis, group, right, [left], "abc")

    def toxigen(self) -> None:
        from fmfl_audit.checkers.fairness._stereotypes import AFTER, BEFORE, clauses
        from fmfl_audit.checkers.privacy._commonness import load_background

        lex = extend_lexicon(self.hb, self.groups)
        bg = load_background()
        content = content_words()
        said: dict[tuple[str, str, str], set[str]] = defaultdict(
            set
        )  # (axis, group, word) -> files
        for target, axes in TOXIGEN_TARGETS.items():
            neutral = {
                t for s in toxigen_sentences("neutral", target) for t in tokenize(s.lower())[0]
            }
            for sent in toxigen_sentences("hate", target):
                for lo, hi in clauses(sent):
                    toks, _ = tokenize(sent[lo:hi])
                    for m in lex.mentions(toks, axes=tuple(axes), pronouns=False):
                        if m.group not in axes.get(m.axis, ()):
                            continue
                        for i in range(max(0, m.start - BEFORE), min(len(toks), m.end + AFTER)):
                            w = toks[i]
                            if m.start <= i < m.end or w in neutral or len(w) < 3:
                                continue
                            if w in STOP or not w.isalpha() or bg.count((w,)) >= EVERYDAY:
                                continue
                            if not content(w) or self.is_group_term(w):
                                continue
                            said[(m.axis, m.group, w)].add(target)
        targets_of: dict[str, set[str]] = defaultdict(set)
        for (_, _, w), files in said.items():
            targets_of[w] |= files
        for (axis, group, w), _files in sorted(said.items()):
            if len(targets_of[w]) <= TOXIGEN_MAX_TARGETS:
                self.add(axis, group, w, [], "toxigen")

    def choenni(self, nat: dict[str, str]) -> None:
        lex = extend_lexicon(self.hb, self.groups)
        for category, name, completion in choenni_rows():
            if name in CHOENNI_SKIP:
                continue
            if category == "country":
                group = nat.get(name.removeprefix("the ").lower())
                if group is not None:
                    self.add("nationality", group, completion, [], "choenni")
                continue
            axes = CHOENNI_AXES.get(category)
            if axes is None:
                continue
            found = {
                (m.axis, m.group)
                for m in lex.mentions(list(term_tokens(name)), axes=axes, pronouns=False)
            }
            if len(found) == 1:
                axis, group = next(iter(found))
                self.add(axis, group, completion, [], "choenni")

    def kamruzzaman(self) -> None:
        for (axis, group), stereotype, anti in kamruzzaman_items():
            self.add(axis, group, stereotype, [anti], "kamruzzaman")

    def winobias(self) -> None:
        fem = WINOBIAS.lines("WinoBias/wino/data/female_occupations.txt")
        mal = WINOBIAS.lines("WinoBias/wino/data/male_occupations.txt")
        for job in fem:
            self.add("gender_and_sex", "female", job, mal, "winobias")
        for job in mal:
            self.add("gender_and_sex", "male", job, fem, "winobias")

    def result(self) -> dict[str, object]:
        from fmfl_audit.checkers.privacy._commonness import load_background

        bg = load_background()
        rows = [
            [axis, group, attr, sorted(cell["counters"]), sorted(cell["sources"])]
            for (axis, group, attr), cell in sorted(self.assoc.items())
            if not (
                cell["sources"] in ({"stereoset"}, {"toxigen"}, {"choenni"})
                and " " not in attr
                and bg.count((attr,)) >= EVERYDAY
            )
        ]
        used = {(r[0], r[1]) for r in rows}
        groups = {
            axis: {g: spec for g, spec in sorted(by.items()) if (axis, g) in used}
            for axis, by in sorted(self.groups.items())
        }
        return {
            "format": FORMAT,
            "version": VERSION,
            "about": "Directional stereotype associations for FMFL-F02/F05; see NOTICE.md.",
            "resources": [
                "abc",
                "choenni",
                "kamruzzaman",
                "redditbias",
                "seegull",
                "stereoset",
                "toxigen",
                "winobias",
            ],
            "groups": {a: g for a, g in groups.items() if g},
            "associations": rows,
        }


def main() -> None:
    b = Builder()
    nat = b.nationality_index()
    b.seegull(nat)
    b.stereoset()
    b.redditbias()
    b.abc()
    b.toxigen()
    b.winobias()
    b.choenni(nat)
    b.kamruzzaman()
    data = b.result()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    with OUT.open("w", encoding="utf-8") as fh:
        fh.write("{\n")
        for key in ("format", "version", "about", "resources", "groups"):
            fh.write(f"  {json.dumps(key)}: {json.dumps(data[key], ensure_ascii=False)},\n")
        fh.write('  "associations": [\n')
        rows = data["associations"]
        assert isinstance(rows, list)
        for i, row in enumerate(rows):
            sep = "," if i < len(rows) - 1 else ""
            fh.write(f"    {json.dumps(row, ensure_ascii=False)}{sep}\n")
        fh.write("  ]\n}\n")
    per: dict[str, int] = defaultdict(int)
    for row in rows:
        for s in row[4]:
            per[s] += 1
    print(f"{OUT}: {len(rows)} associations; per resource {dict(sorted(per.items()))}")


if __name__ == "__main__":
    main()
