"""Directional stereotype knowledge and the statement matcher behind FMFL-F02 and FMFL-F05.

**Knowledge** (`rules/lexicons/stereotypes/associations.json`, built by
`benchmarks/f02_build_associations.py` from SeeGULL, StereoSet, RedditBias, the ABC U.S.
stereotypes, WinoBias, ToxiGen, Choenni et al.'s autocompletions and Kamruzzaman et al.'s ageism
and beauty items; provenance and licences in the folder's `NOTICE.md`): for groups on the
HolisticBias axes, the attributes each is stereotyped with, the *counter* attributes that
contradict them, and which resource said so. Where resources disagree about an attribute of a
group, the majority of their rows decides; attributes stereotyped for every group of an axis are
dropped. Groups missing from HolisticBias (most nationalities, `arab`) are added with their own
terms; the shipped HolisticBias lexicon itself is not changed (F01 and F04 read it as it is).

**Statements.** A text is cut into clauses (sentence ends, semicolons, and contrast words such as
`but`, `while`, `although`). In a clause, every group mention (HolisticBias rules: a descriptor
needs a person noun after it) is paired with the known attribute phrases at most `BEFORE` tokens
before it or `AFTER` tokens after it. The statement is *consistent* when more of them are that
group's stereotypes (or counter attributes under negation: "Mexicans are not hard-working") than
its counter attributes (or negated stereotypes: "Mexicans are not lazy"), *counter* in the
opposite case, and neutral otherwise. Negation: `not`, `no`, `never`, `n't`, ... within four
tokens before the attribute. Words are compared in a canonical form: their WordNet lemma, and for
abstract nouns and adverbs the adjective they derive from (`criminals` -> `criminal`, `stole` ->
`steal`, `laziness`, `lazily` -> `lazy`; `wordnet.json`, built by
`benchmarks/f02_build_wordnet.py` from the Open English WordNet), else after a light plural fold
(`cities` -> `city`).

**WordNet expansion** (`expand`): an attribute a resource ties to a group also ties its WordNet
synonyms to it (`lazy` -> `indolent`, `slothful`), and makes its antonyms counter attributes
(`lazy` -> `busy`), each with `EXPANSION_WEIGHT` of a resource's vote, so a resource's own word
always wins over an expansion. Everyday words are never expansions (see the builder).

**Direction.** Whether a corpus's statements are evidence of bias depends on what the same
statements would be about another group of the axis: `consistent_groups` gives, for a statement's
attribute pairings, the groups for which it would be consistent, from which F02 computes the count
expected if groups were interchangeable (`stereotype.assess_axis`).

**Attested** associations (named by two resources, or by one whose lists are curated) are what the
FM preference probes use (`_fm_preference`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from fmfl_audit.checkers.fairness._lexicon import (
    DemographicLexicon,
    Mention,
    Term,
    TermKind,
    lexicon_dir,
    load_demographic_lexicon,
    term_tokens,
    tokenize,
)
from fmfl_audit.engine.executors import Cache
from fmfl_audit.errors import CheckerError

FORMAT = "fmfl-audit-stereotypes"
VERSION = 1
WORDNET_FORMAT = "fmfl-audit-wordnet-slice"
WORDNET_VERSION = 1
EXPANSION_WEIGHT = 0.4
"""Vote of a WordNet synonym (or antonym, as a counter) relative to one resource's vote."""
RESOURCES = (
    "seegull",
    "stereoset",
    "redditbias",
    "abc",
    "winobias",
    "toxigen",
    "choenni",
    "kamruzzaman",
)
"""Every resource the shipped knowledge was built from (the `resources` param picks among them)."""
UNCURATED = frozenset({"stereoset", "toxigen", "choenni", "kamruzzaman"})
"""Resources whose attributes are single fill-ins or words extracted from statements: alone they do
not make an association *attested* (the FM probes use attested ones)."""
NEVER_ATTEST = frozenset({"toxigen", "choenni", "kamruzzaman"})
"""Resources that never count towards attestation: words extracted from hateful statements
(ToxiGen), search-engine autocompletions (Choenni et al.) and the ageism / beauty-halo hypotheses
of Kamruzzaman et al.'s items."""

NEGATORS = frozenset(
    {"not", "no", "never", "nor", "neither", "hardly", "barely", "cannot", "without", "t", "none"}
)
"""Negation tokens (`isn't` tokenises to `isn`, `t`)."""
NEGATION_WINDOW = 4
BEFORE, AFTER = 3, 6
"""How far from a group mention (in tokens) an attribute of its clause may stand: a modifier just
before it, a predicate after it. Farther words in a long clause are usually about something else."""

_CLAUSE_BREAK = re.compile(
    r"[.!?;:\n]+|,?\s+\b(?:but|whereas|while|although|though|however|yet)\b",
    re.IGNORECASE,
)

StatementKind = Literal["consistent", "counter"]


def fold(token: str) -> str:
    """A lower-cased token with a plural ending folded (`cities` -> `city`, `boxes` -> `box`)."""
    t = token
    if len(t) > 4 and t.endswith("ies"):
        return t[:-3] + "y"
    if len(t) > 4 and t.endswith("es") and t[:-2].endswith(("s", "x", "ch", "sh", "z")):
        return t[:-2]
    if len(t) > 3 and t.endswith("s") and not t.endswith(("ss", "us", "is")):
        return t[:-1]
    return t


@dataclass(frozen=True)
class WordnetSlice:
    """Canonical forms, synonyms and antonyms of the attribute words (`wordnet.json`)."""

    norm: dict[str, str]
    synonyms: dict[str, tuple[str, ...]]
    antonyms: dict[str, tuple[str, ...]]

    def canonical(self, token: str) -> str:
        """`token`'s canonical form: its lemma from the slice, else its plural fold."""
        got = self.norm.get(token)
        if got is not None:
            return got
        f = fold(token)
        return self.norm.get(f, f)


NO_WORDNET = WordnetSlice(norm={}, synonyms={}, antonyms={})
"""Plural folding only, no expansion (the `lemmatise: false` setting)."""


def load_wordnet(path: Path | None = None) -> WordnetSlice:
    """The shipped WordNet slice."""
    data = _load_json(
        path or lexicon_dir() / "stereotypes" / "wordnet.json", WORDNET_FORMAT, WORDNET_VERSION
    )
    return WordnetSlice(
        norm=dict(data["norm"]),
        synonyms={k: tuple(v) for k, v in data["synonyms"].items()},
        antonyms={k: tuple(v) for k, v in data["antonyms"].items()},
    )


def attribute_key(text: str, wordnet: WordnetSlice = NO_WORDNET) -> tuple[str, ...]:
    """An attribute phrase as the canonical tokens the matcher compares."""
    return tuple(wordnet.canonical(t) for t in term_tokens(text))


Pairing = tuple[tuple[str, ...], bool]
"""An attribute phrase (folded tokens) met in a clause, and whether it is negated there."""


@dataclass(frozen=True, slots=True)
class Statement:
    """A group mention and the known attribute phrases of its clause."""

    axis: str
    group: str
    kind: StatementKind | None
    """`consistent`, `counter`, or None (the attributes are neither for this group)."""
    pairings: tuple[Pairing, ...]
    """Sorted, so equal clauses give equal keys (the chance of a statement depends on them)."""
    attributes: tuple[str, ...]
    """The attribute phrases that decided the kind (for reports)."""
    span: tuple[int, int]
    """Character span of the group mention in the text."""


@dataclass
class StereotypeKnowledge:
    """Compiled associations; build with `load_knowledge`."""

    lexicon: DemographicLexicon
    stereo: dict[tuple[str, str], frozenset[tuple[str, ...]]]
    counter: dict[tuple[str, str], frozenset[tuple[str, ...]]]
    resources: tuple[str, ...]
    attested: dict[tuple[str, str], frozenset[tuple[str, ...]]] = field(default_factory=dict)
    """Stereotypes named by two resources, or by one whose lists are curated (every resource but
    StereoSet, whose attributes are single crowd-workers' fill-ins): the FM probes use these."""
    direct: tuple[
        dict[tuple[str, str], frozenset[tuple[str, ...]]],
        dict[tuple[str, str], frozenset[tuple[str, ...]]],
    ] = ({}, {})
    """(stereo, counter) as the resources alone say, without WordNet expansions: the FM probes
    pair an attested attribute with one of these counters."""
    wordnet: WordnetSlice = NO_WORDNET
    """How text tokens are brought to the attributes' canonical form."""
    display: dict[tuple[str, ...], str] = field(default_factory=dict)
    """A resource's own wording of a canonical attribute (`stealing` for `steal`), for probes."""
    groups_by_axis: dict[str, list[str]] = field(default_factory=dict)
    _first: dict[str, list[tuple[str, ...]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        by_axis: dict[str, set[str]] = {}
        for axis, group in (*self.stereo, *self.counter):
            by_axis.setdefault(axis, set()).add(group)
        self.groups_by_axis = {a: sorted(g) for a, g in by_axis.items()}
        first: dict[str, set[tuple[str, ...]]] = {}
        for table in (self.stereo, self.counter):
            for attrs in table.values():
                for a in attrs:
                    first.setdefault(a[0], set()).add(a)
        # Longest first, so `good at math` wins over `good`.
        self._first = {k: sorted(v, key=lambda a: (-len(a), a)) for k, v in first.items()}

    @property
    def axes(self) -> list[str]:
        """Axes with at least one association, sorted."""
        return sorted(self.groups_by_axis)

    def wording(self, attr: tuple[str, ...]) -> str:
        """An attribute as a resource words it (`stealing` for the lemma `steal`), for sentences
        the FM scores; unchanged without canonical forms (the folded words, as before)."""
        if self.wordnet is NO_WORDNET:
            return " ".join(attr)
        return self.display.get(attr, " ".join(attr))

    def associations(self, axis: str, group: str) -> int:
        """How many stereotyped attributes `group` has."""
        return len(self.stereo.get((axis, group), ()))

    def attributes_in(self, folded: list[str]) -> list[tuple[int, tuple[str, ...]]]:
        """(position, attribute) of every known attribute phrase, longest match at a position."""
        out = []
        i = 0
        while i < len(folded):
            for a in self._first.get(folded[i], ()):
                if tuple(folded[i : i + len(a)]) == a:
                    out.append((i, a))
                    i += len(a) - 1
                    break
            i += 1
        return out

    def classify(
        self, axis: str, group: str, pairings: Iterable[Pairing]
    ) -> tuple[StatementKind | None, tuple[str, ...]]:
        """The kind of a statement about `group` with these attribute pairings, and the phrases
        that decided it."""
        stereo = self.stereo.get((axis, group), frozenset())
        counter = self.counter.get((axis, group), frozenset())
        pro: list[str] = []
        con: list[str] = []
        for attr, neg in pairings:
            hit_s, hit_c = attr in stereo, attr in counter
            if (hit_s and not neg) or (hit_c and neg):
                pro.append(" ".join(attr))
            elif (hit_s and neg) or (hit_c and not neg):
                con.append(" ".join(attr))
        if len(pro) > len(con):
            return "consistent", tuple(pro)
        if len(con) > len(pro):
            return "counter", tuple(con)
        return None, ()

    def consistent_groups(self, axis: str, pairings: tuple[Pairing, ...]) -> list[str]:
        """The groups of `axis` for which a statement with these pairings would be consistent."""
        return [
            g
            for g in self.groups_by_axis.get(axis, ())
            if self.classify(axis, g, pairings)[0] == "consistent"
        ]


def _load_json(path: Path, fmt: str = FORMAT, version: int = VERSION) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text("utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise CheckerError(f"the shipped stereotype knowledge cannot be read: {exc}") from None
    if not isinstance(data, dict) or data.get("format") != fmt or data.get("version") != version:
        raise CheckerError(f"{path}: not a version-{version} {fmt} file")
    return data


def knowledge_path() -> Path:
    """The shipped associations file."""
    return lexicon_dir() / "stereotypes" / "associations.json"


def extend_lexicon(base: DemographicLexicon, groups: dict[str, Any]) -> DemographicLexicon:
    """`base` plus the knowledge file's extra groups; an extra term takes its tokens over from a
    HolisticBias group of the same axis (`Arab` is a `white` descriptor in HolisticBias)."""
    extra: dict[tuple[str, str], list[Term]] = {}
    owned: set[tuple[str, tuple[str, ...]]] = set()
    person = set(base.person_nouns)
    for axis, by_group in groups.items():
        for group, spec in by_group.items():
            for kind in ("descriptors", "nouns"):
                for text in spec.get(kind, ()):
                    toks = term_tokens(text)
                    if not toks or (axis, toks) in owned:
                        continue
                    owned.add((axis, toks))
                    tk: TermKind = "descriptor" if kind == "descriptors" else "noun"
                    extra.setdefault((axis, group), []).append(Term(toks, axis, group, tk, text))
                    if tk == "descriptor" and text[:1].isupper() and len(toks) == 1:
                        plural = toks[0] if toks[0].endswith("s") else toks[0] + "s"
                        if (axis, (plural,)) not in owned:
                            owned.add((axis, (plural,)))
                            extra[(axis, group)].append(
                                Term((plural,), axis, group, "plural", plural)
                            )
                            person.add(plural)
    terms: dict[tuple[str, str], list[Term]] = {}
    for key, lst in base.terms_by_group.items():
        kept = [t for t in lst if (t.axis, t.tokens) not in owned]
        if kept:
            terms[key] = kept
    for key, lst in extra.items():
        terms.setdefault(key, []).extend(lst)
    by_axis: dict[str, set[str]] = {}
    for axis, group in terms:
        by_axis.setdefault(axis, set()).add(group)
    return DemographicLexicon(
        groups={a: sorted(g) for a, g in by_axis.items()},
        terms_by_group=terms,
        person_nouns=frozenset(person),
    )


def _drop_undirected(
    stereo: dict[tuple[str, str], set[tuple[str, ...]]], lexicon: DemographicLexicon
) -> None:
    """Drop attributes stereotyped for every group of their axis: they carry no direction."""
    by_axis: dict[str, list[tuple[str, str]]] = {}
    for key in stereo:
        by_axis.setdefault(key[0], []).append(key)
    for axis, keys in by_axis.items():
        if len(keys) < max(2, len(lexicon.groups.get(axis, ()))):
            continue
        common = set.intersection(*(stereo[k] for k in keys))
        for k in keys:
            stereo[k] -= common


Votes = dict[tuple[str, str, tuple[str, ...]], list[float]]
"""(axis, group, attribute) -> [votes for stereotype, votes for counter]."""


Table = dict[tuple[str, str], set[tuple[str, ...]]]


def _directions(votes: Votes) -> tuple[Table, Table]:
    """(stereotypes, counters) per group: where votes disagree the majority decides, and a tie
    says nothing about direction."""
    stereo: Table = {}
    counter: Table = {}
    for (axis, group, attr), (pro, con) in votes.items():
        if pro > con:
            stereo.setdefault((axis, group), set()).add(attr)
        elif con > pro:
            counter.setdefault((axis, group), set()).add(attr)
    return stereo, counter


def _expand(votes: Votes, wordnet: WordnetSlice, group_terms: frozenset[str]) -> None:
    """Add the weaker votes of the WordNet relatives of every one-word attribute: a stereotype's
    synonyms are stereotypes and its antonyms counters; a counter's synonyms are counters (its
    antonyms are not made stereotypes: counter attributes are often arbitrary fill-ins, and their
    antonyms rarely a stereotype). A group term (`straight`, `black`) is never an expansion."""
    extra: Votes = {}

    def add(word: str, key: tuple[str, str], vote: float, slot: int) -> None:
        if vote and word not in group_terms:
            extra.setdefault((*key, (word,)), [0.0, 0.0])[slot] += EXPANSION_WEIGHT * vote

    for (axis, group, attr), (pro, con) in votes.items():
        if len(attr) != 1:
            continue
        for word in wordnet.synonyms.get(attr[0], ()):
            add(word, (axis, group), pro, 0)
            add(word, (axis, group), con, 1)
        for word in wordnet.antonyms.get(attr[0], ()):
            add(word, (axis, group), pro, 1)
    for key, (pro, con) in extra.items():
        cell = votes.setdefault(key, [0.0, 0.0])
        cell[0] += pro
        cell[1] += con


def load_knowledge(
    resources: Iterable[str] | None = None,
    *,
    path: Path | None = None,
    lemmatise: bool = True,
    expand: bool = True,
) -> StereotypeKnowledge:
    """The shipped knowledge, restricted to `resources` (every one when None); `lemmatise`
    compares canonical WordNet forms (else plural folds), `expand` adds WordNet synonyms and
    antonyms (needs `lemmatise`)."""
    data = _load_json(path or knowledge_path())
    wanted = tuple(sorted(set(RESOURCES if resources is None else resources)))
    unknown = [r for r in wanted if r not in data["resources"]]
    if unknown:
        raise CheckerError(
            f"unknown stereotype resource {unknown[0]!r}; known: {', '.join(data['resources'])}"
        )
    wordnet = load_wordnet() if lemmatise else NO_WORDNET
    # Votes: each (resource, row) naming an attribute a stereotype or a counter of a group.
    votes: Votes = {}
    curated: set[tuple[str, str, tuple[str, ...]]] = set()
    display: dict[tuple[str, ...], str] = {}
    for axis, group, attribute, counters, sources in data["associations"]:
        used = set(sources) & set(wanted)
        n = len(used)
        if not n:
            continue
        key = attribute_key(attribute, wordnet)
        display.setdefault(key, attribute)
        # ToxiGen's, Choenni's and Kamruzzaman's words never attest (alone or with another).
        if len(used - NEVER_ATTEST) >= 2 or used - UNCURATED:
            curated.add((axis, group, key))
        votes.setdefault((axis, group, key), [0.0, 0.0])[0] += n
        for c in counters:
            ckey = attribute_key(c, wordnet)
            display.setdefault(ckey, c)
            votes.setdefault((axis, group, ckey), [0.0, 0.0])[1] += n
    lexicon = extend_lexicon(load_demographic_lexicon(), data["groups"])
    direct = _directions(votes)
    if expand and lemmatise:
        terms = {t.tokens[0] for ts in lexicon.terms_by_group.values() for t in ts}
        _expand(votes, wordnet, frozenset(terms | lexicon.person_nouns))
    stereo, counter = _directions(votes)
    _drop_undirected(stereo, lexicon)
    attested: dict[tuple[str, str], set[tuple[str, ...]]] = {}
    for axis, group, attr in curated:
        if attr in stereo.get((axis, group), ()):
            attested.setdefault((axis, group), set()).add(attr)
    return StereotypeKnowledge(
        lexicon=lexicon,
        stereo={k: frozenset(v) for k, v in stereo.items() if v},
        counter={k: frozenset(v) for k, v in counter.items() if v},
        resources=wanted,
        attested={k: frozenset(v) for k, v in attested.items()},
        direct=(
            {k: frozenset(v) for k, v in direct[0].items() if v},
            {k: frozenset(v) for k, v in direct[1].items() if v},
        ),
        wordnet=wordnet,
        display=display,
    )


def shared_knowledge(
    cache: Cache,
    resources: tuple[str, ...] | None,
    *,
    lemmatise: bool = True,
    expand: bool = True,
) -> StereotypeKnowledge:
    """`load_knowledge(...)`, built once per process through `cache`."""
    chosen = "*" if resources is None else ",".join(resources) or "-"
    key = f"fairness:stereotypes:{int(lemmatise)}{int(expand)}:{chosen}"
    know: StereotypeKnowledge = cache.get(
        key, lambda: load_knowledge(resources, lemmatise=lemmatise, expand=expand)
    )
    return know


def clauses(text: str) -> list[tuple[int, int]]:
    """Character spans of the clauses of `text`."""
    out = []
    pos = 0
    for m in _CLAUSE_BREAK.finditer(text):
        if m.start() > pos:
            out.append((pos, m.start()))
        pos = m.end()
    if pos < len(text):
        out.append((pos, len(text)))
    return out


def _negated(folded: list[str], at: int) -> bool:
    return any(t in NEGATORS for t in folded[max(0, at - NEGATION_WINDOW) : at])


def statements(
    text: str,
    know: StereotypeKnowledge,
    *,
    axes: Iterable[str] | None = None,
    pronouns: bool = True,
    noun_window: int = 2,
    before: int = BEFORE,
    after: int = AFTER,
) -> list[Statement]:
    """Every group mention of `text` with a known attribute in its clause, at most `before`
    tokens before the mention (`lazy Mexicans`) or `after` tokens after it (`Mexicans are not
    lazy`)."""
    wanted = None if axes is None else frozenset(axes)
    out: list[Statement] = []
    for lo, hi in clauses(text):
        toks, spans = tokenize(text[lo:hi])
        if not toks:
            continue
        folded = [know.wordnet.canonical(t) for t in toks]
        attrs = know.attributes_in(folded)
        if not attrs:
            continue
        found = [(pos, a, _negated(folded, pos)) for pos, a in attrs]
        for m in know.lexicon.mentions(
            toks, axes=wanted, noun_window=noun_window, pronouns=pronouns
        ):
            if m.axis not in know.groups_by_axis:
                continue
            pairings = tuple(
                sorted(
                    {
                        (a, neg)
                        for pos, a, neg in found
                        if m.start - before <= pos < m.end + after and not m.start <= pos < m.end
                    }
                )
            )
            if not pairings:
                continue
            kind, decided = know.classify(m.axis, m.group, pairings)
            out.append(
                Statement(
                    axis=m.axis,
                    group=m.group,
                    kind=kind,
                    pairings=pairings,
                    attributes=decided,
                    span=(lo + spans[m.start][0], lo + spans[m.end - 1][1]),
                )
            )
    return out


def group_mentions(
    text: str,
    know: StereotypeKnowledge,
    *,
    axes: Iterable[str] | None = None,
    pronouns: bool = True,
    noun_window: int = 2,
) -> list[Mention]:
    """Group mentions of `text` on the knowledge's axes (the denominator of stereotype rates)."""
    toks, _ = tokenize(text)
    wanted = None if axes is None else frozenset(axes)
    return [
        m
        for m in know.lexicon.mentions(
            toks, axes=wanted, noun_window=noun_window, pronouns=pronouns
        )
        if m.axis in know.groups_by_axis
    ]
