"""Demographic term lookup shared by the fairness checkers (F01, F02, F04, F05).

The HolisticBias v1.1 lexicon (axis -> bucket -> descriptor, plus gendered person nouns) and
fmfl-audit's own term lists are compiled into a token-level lookup: texts are split once into
lower-cased word tokens, and every term is a token sequence keyed by its first token, so matching
costs one dictionary probe per token whatever the lexicon's size, and a term never matches inside a
longer word.

Group of a term: its HolisticBias bucket, with two exceptions. In `gender_and_sex`, terms that carry
a gender (the `female` / `male` descriptors, gendered nouns, pronouns) form the groups `female` and
`male`, since the lexicon's `binary` bucket would lump them together. Axes with a single bucket
(`religion`, `political_ideologies`, `nonce`) use each descriptor as its own group.

A descriptor is an adjective, and most are ambiguous alone (`black cat`, `old house`, `slow car`),
so a descriptor counts only when a person noun follows within `noun_window` tokens (`Black
students`, `an old Deaf man`). Gendered nouns and pronouns count on their own; so do plural forms of
capitalised descriptors (`Muslims`, `Asians`), which are nouns.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from fmfl_audit.engine.executors import Cache
from fmfl_audit.errors import CheckerError

GENDER_AXIS = "gender_and_sex"
CONTROL_AXES = frozenset({"nonce"})
"""Axes of made-up words: counted, never graded."""

_TOKEN = re.compile(r"[^\W_]+")

TermKind = Literal["descriptor", "noun", "pronoun", "plural"]

LEXICON_KEY = "fairness:holistic-bias"
"""Cache key of the compiled shipped lexicon (one per process: the scan's or a worker's)."""


def lexicon_dir() -> Path:
    """The shipped `rules/lexicons` folder."""
    from fmfl_audit.rulepacks.loader import builtin_rules_dir

    return builtin_rules_dir() / "lexicons"


def tokenize(text: str) -> tuple[list[str], list[tuple[int, int]]]:
    """Lower-cased word tokens of `text` and their character spans."""
    toks: list[str] = []
    spans: list[tuple[int, int]] = []
    for m in _TOKEN.finditer(text):
        toks.append(m.group().lower())
        spans.append(m.span())
    return toks, spans


def term_tokens(term: str) -> tuple[str, ...]:
    """A lexicon entry as the tokens `tokenize` would give."""
    return tuple(t.lower() for t in _TOKEN.findall(term))


@dataclass(frozen=True, slots=True)
class Term:
    """One lexicon entry as a token sequence."""

    tokens: tuple[str, ...]
    axis: str
    group: str
    kind: TermKind
    text: str


@dataclass(frozen=True, slots=True)
class Mention:
    """A matched term: token positions [start, end)."""

    axis: str
    group: str
    start: int
    end: int
    term: Term


@dataclass
class DemographicLexicon:
    """Compiled HolisticBias lexicon plus pronouns; build with `load_demographic_lexicon`."""

    groups: dict[str, list[str]]
    """Axis -> its groups, sorted."""
    terms_by_group: dict[tuple[str, str], list[Term]]
    person_nouns: frozenset[str]
    _first: dict[str, list[Term]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        first: dict[str, list[Term]] = {}
        for terms in self.terms_by_group.values():
            for t in terms:
                first.setdefault(t.tokens[0], []).append(t)
        # Longest first, so `trans female` wins over `trans` at the same position.
        for lst in first.values():
            lst.sort(key=lambda t: (-len(t.tokens), t.axis, t.group, t.tokens))
        self._first = first

    @property
    def axes(self) -> list[str]:
        """Every axis, sorted."""
        return sorted(self.groups)

    def mentions(
        self,
        tokens: list[str],
        *,
        axes: Iterable[str] | None = None,
        noun_window: int = 2,
        pronouns: bool = True,
    ) -> list[Mention]:
        """Every demographic mention in `tokens` (one per axis and position, longest term)."""
        wanted = None if axes is None else frozenset(axes)
        covered: dict[str, int] = {}
        found: list[Mention] = []
        n = len(tokens)
        for i, tok in enumerate(tokens):
            cands = self._first.get(tok)
            if not cands:
                continue
            taken: set[str] = set()
            for t in cands:
                if t.axis in taken or (wanted is not None and t.axis not in wanted):
                    continue
                if covered.get(t.axis, 0) > i:
                    continue
                k = len(t.tokens)
                if tuple(tokens[i : i + k]) != t.tokens:
                    continue
                if t.kind == "pronoun" and not pronouns:
                    continue
                if t.kind == "descriptor" and not any(
                    w in self.person_nouns for w in tokens[i + k : min(n, i + k + noun_window)]
                ):
                    continue
                found.append(Mention(t.axis, t.group, i, i + k, t))
                taken.add(t.axis)
                covered[t.axis] = i + k
        return found

    def alternatives(self, axis: str, group: str) -> list[Term]:
        """Descriptor terms of `axis` from groups other than `group` (for swaps), stable order."""
        out: list[Term] = []
        for g in self.groups.get(axis, []):
            if g == group:
                continue
            out.extend(t for t in self.terms_by_group[(axis, g)] if t.kind == "descriptor")
        return out


def _descriptor_text(entry: Any) -> tuple[str, str | None]:
    if isinstance(entry, str):
        return entry, None
    return str(entry["descriptor"]), entry.get("gender")


def load_demographic_lexicon(folder: Path | None = None) -> DemographicLexicon:
    """Compile the shipped HolisticBias files and pronouns; CheckerError when they are missing."""
    root = folder or lexicon_dir()
    try:
        descriptors = json.loads((root / "holistic_bias" / "descriptors.json").read_text("utf-8"))
        nouns = json.loads((root / "holistic_bias" / "nouns.json").read_text("utf-8"))
        own = json.loads((root / "fmfl_terms.json").read_text("utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise CheckerError(f"the shipped fairness lexicon cannot be read: {exc}") from None
    terms: dict[tuple[str, str], list[Term]] = {}
    seen: set[tuple[str, tuple[str, ...]]] = set()

    def add(axis: str, group: str, text: str, kind: TermKind) -> None:
        toks = term_tokens(text)
        if not toks or (axis, toks) in seen:
            return
        seen.add((axis, toks))
        terms.setdefault((axis, group), []).append(Term(toks, axis, group, kind, text))

    # Gendered nouns and pronouns first, so they own their tokens in the gender axis.
    for gender in ("female", "male"):
        for pair in nouns.get(gender, []):
            for form in pair:
                add(GENDER_AXIS, gender, form, "noun")
        for p in own["gender_pronouns"][gender]:
            add(GENDER_AXIS, gender, p, "pronoun")
    person = {w for pairs in nouns.values() for pair in pairs for w in pair}
    person |= set(own["extra_person_nouns"])
    for axis, buckets in descriptors.items():
        single = len(buckets) == 1
        for bucket, entries in buckets.items():
            for entry in entries:
                text, entry_gender = _descriptor_text(entry)
                group = bucket
                if single:
                    group = " ".join(term_tokens(text))
                elif axis == GENDER_AXIS and bucket == "binary" and entry_gender:
                    group = str(entry_gender)
                add(axis, group, text, "descriptor")
                toks = term_tokens(text)
                if text[:1].isupper() and len(toks) == 1 and not toks[0].endswith("s"):
                    add(axis, group, toks[0] + "s", "plural")
                    person.add(toks[0] + "s")
    groups: dict[str, list[str]] = {}
    for axis, group in terms:
        groups.setdefault(axis, []).append(group)
    return DemographicLexicon(
        groups={a: sorted(set(g)) for a, g in groups.items()},
        terms_by_group=terms,
        person_nouns=frozenset(person),
    )


def shared_lexicon(cache: Cache) -> DemographicLexicon:
    """The compiled shipped lexicon, built once per process through `cache`."""
    lex: DemographicLexicon = cache.get(LEXICON_KEY, load_demographic_lexicon)
    return lex


def load_gender_swaps(folder: Path | None = None) -> dict[str, str]:
    """Single-token gender swap table (both directions), lower-cased; see the swap lists' NOTICE."""
    root = folder or lexicon_dir()
    base = root / "counterfactual_swaps"
    pairs: list[tuple[str, str]] = []
    try:
        for name in ("winobias_generalized_swaps.txt", "winobias_extra_gendered_words.txt"):
            for line in (base / name).read_text("utf-8").splitlines():
                parts = [p.strip() for p in line.split("\t")]
                if len(parts) == 2 and all(parts):
                    pairs.append((parts[0], parts[1]))
        for name in ("debiaswe_definitional_pairs.json", "debiaswe_equalize_pairs.json"):
            for a, b in json.loads((base / name).read_text("utf-8")):
                pairs.append((a, b))
        own = json.loads((root / "fmfl_terms.json").read_text("utf-8"))
    except (OSError, json.JSONDecodeError, ValueError) as exc:
        raise CheckerError(f"the shipped gender swap lists cannot be read: {exc}") from None
    table: dict[str, str] = {k.lower(): v.lower() for k, v in own["swap_overrides"].items()}
    for a, b in pairs:
        a, b = a.lower(), b.lower()
        if "_" in a or "_" in b or len(term_tokens(a)) != 1 or len(term_tokens(b)) != 1:
            continue
        a, b = term_tokens(a)[0], term_tokens(b)[0]
        if a == b:
            continue
        table.setdefault(a, b)
        table.setdefault(b, a)
    return table


def match_case(original: str, replacement: str) -> str:
    """`replacement` in the letter case of `original` (lower, Capitalised or UPPER)."""
    if original.isupper() and len(original) > 1:
        return replacement.upper()
    if original[:1].isupper():
        return replacement[:1].upper() + replacement[1:]
    return replacement
