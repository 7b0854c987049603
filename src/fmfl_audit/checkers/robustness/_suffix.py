"""Adversarial-suffix layer of FMFL-R01: the most implausible run of tokens, by language likelihood.

Optimisation-made suffixes and infixes (GCG, random search, their defensive variants) are chosen
for what they do to a model's loss, not for being words, so they read as a run of implausible
tokens: word pieces glued together ("similarlyNow", "githubINST"), non-words, fragments and stray
letters ("l!ing", "th f ig m"), bracket and symbol runs ("](", "\\!--"), words of several
languages in a row, control and replacement characters. The layer does not look for the tokens an
attack used. Every whitespace token gets a class from how likely it is as written text, with the
word frequencies of `wordfreq` (Apache-2.0 code, CC BY-SA 4.0 data; the lists ship in its wheel, no
download at run time): a plausible word, an unknown word, token soup (letters glued to symbols, to
another script or by a case change), or a repeated stray mark. Each class weighs
log2(P(class | soup) / P(class | written text)) bits; the P(class | written text) are measured on
real text (`rules/jailbreak/suffix_likelihood.json`, made by `benchmarks/tune_suffix.py` from
tuning collections only), so a token that is common in real text costs evidence and a rare kind
adds it. The score is the largest sum over a contiguous run of tokens (a scan statistic: the run
finds its own length, so a short suffix after a long request is not diluted).

Tokens that are legitimately not words (URLs, e-mail addresses, @mentions, #hashtags, numbers,
hashes and other long alphanumeric runs, paths, dotted or snake_case identifiers, emoji, words in
non-Latin scripts) are neutral and skipped, so log lines, tweets and hashes stay quiet; code and
LaTeX are not judged at all. A word counts as plausible when English or the text's own language
(the Latin-script language that knows most of its non-English words) knows it often enough: short
strings must be frequent to count (any two letters form some abbreviation), so a French or German
sentence is judged against its own language while a soup of words from five languages is not.
"""

from __future__ import annotations

import functools
import json
import math
import re
import unicodedata
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path

# Latin-script languages wordfreq lists; English always counts. Non-Latin scripts are neutral.
LANGUAGES: tuple[str, ...] = ("en", "de", "fr", "es", "it", "pt", "nl", "sv", "da", "nb", "pl")
LANGUAGES += ("cs", "tr", "ro", "hu", "fi", "id", "ms", "ca", "sh", "sk", "sl", "lt", "lv", "vi")
LANGUAGES += ("fil",)
# Zipf frequency (log10 per billion words) a word needs to count as plausible, by length: any
# one or two letters are some abbreviation or initial somewhere, so short strings must be common.
MIN_ZIPF_BY_LENGTH: tuple[float, ...] = (0.0, 6.0, 4.3, 3.0)
MIN_ZIPF = 1.5
"""For words of four letters or more."""
SETTINGS_FILE = "suffix_likelihood.json"
_HOME = len(LANGUAGES)
"""Shift of the "at home in" language bits of a word's mask."""
_SHORT, _LONG = 1 << 60, 1 << 61
"""Flags on a word's language mask: one or two letters; four letters or more."""
_LANGS = (1 << len(LANGUAGES)) - 1


class Kind(IntEnum):
    """What a token is, as evidence of optimised token soup."""

    NEUTRAL = -1
    WORD = 0
    UNKNOWN = 1
    SOUP = 2
    STRAY = 3
    FRAGMENT = 4
    """One or two letters that are no common word ("f", "ig"): stray pieces of words."""


# Prose punctuation at either end of a token: leading openers, trailing closers and stops.
_LEAD = re.compile(r"^[\"'“”‘’«»(\[*_¿¡`.-]+")
_TRAIL = re.compile(r"[.,;:!?…)\]\"'“”‘’»*_%`-]+$")
_NEUTRAL = re.compile(
    r"""^(?:
        (?:https?://|ftp://|www\.)\S+            # URL
      | [\w.+-]+@[\w-]+\.[\w.-]+                 # e-mail
      | [@#]\w[\w.-]*                            # @mention, #hashtag
      | [$€£¥]?[-+]?\d[\d.,:/%x°'-]*[a-zA-Z]{0,3}  # numbers, dates, times, 5kg, 3rd, $20
      | [0-9a-fA-F]{8,}                          # hex digests
      | [\w+/=-]{20,}                            # base64, tokens, long keys
      | (?:[~.]?/|[A-Za-z]:\\|\\\\)\S*         # paths, UNC paths
      | \S*[\w)\]]\.[a-zA-Z_]\w*\S*              # dotted names: os.path, e.g., file.txt, U.S.
      | \S*\w_\w\S*                              # snake_case identifiers
      | \S*\d\S*                                 # anything with a digit: mp3, B2B, v1.2
      | [\w.:-]+=\S*                             # key=value (logs, query strings)
      | \S*&(?:[a-zA-Z]+|\#\d+);\S*              # HTML entities: &amp;
      | </?[A-Za-z!][\w:.-]*/?>? | [\w-]+/?>     # markup tags: <mask>, </title>, html>
      | \$?\{[\w\s:.-]*\}? | [\w\s:.-]*\}        # template placeholders: ${topic}, {name}
      | \S*(?:\$\{[^}]*\}|\{\w+\})\S*            # inside a token: color-${shade}, size-{n}
      | --?[a-z][a-z0-9-]* | -[A-Za-z]            # command-line options
      | [$%][a-zA-Z]\w*                          # variables and formats: $HOME, %s
      | [=<>!+*/%&|^~:-]{1,3}                    # operators: ==, ->, >=, >>>
      | [:;=8][-o^']?[)(\]\[dDpPoO3/\\|*]+ | <3+ | \^_?\^ | [oO0]_[oO0] | [xX][dD]+  # emoticons
    )$""",
    re.VERBOSE,
)
_ESCAPES = re.compile(r"\\[nrt]")
"""Literal "\\n" between words (text copied out of JSON or CSV) is a line break, not soup."""
# Marks that join words in prose: "and/or", "R&B", "area(s)", "flour,salt", "bread--cheese".
_JOINERS = re.compile(
    r"[/&()+,:|…–—•·®™°²³¼½¾（）\U0001f000-\U0001faff\u2600-\u27bf\ufe0f\u200d]"
    r"|\.{2,}|-{2,}|\\[nrt]|[.!?]+(?=[A-Z\"'“‘#@])|</?[A-Za-z]\w*>"
)
_TOKEN = re.compile(r"\S+")
_FORMAT = re.compile("[\u00ad\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff\U000e0000-\U000e007f]")
_LETTERS = re.compile(r"^[^\W\d_]+(?:['’-][^\W\d_]+)*$", re.UNICODE)
_CAMEL = re.compile(r"[a-z][A-Z]")
# Symbols whose runs mark code or optimised token soup, not prose.
_SOUP_SYMBOLS = frozenset("\\{}[]^~<>=`")
# Marks that stand alone between words in prose; two in a row ("! !") do not.
_STRAY = frozenset("!?.,;:-*'\"+`’‘“”—–")
# Every alternative starts at a word boundary, a line start or a fixed character and has a bounded
# or terminator-free tail, so `findall` stays linear in the text (an unanchored `\w+\(\[` or an
# unbounded `[^}]+;` made a 40 KB token take seconds and a 1 MB one most of an hour).
CODE_MARKERS = re.compile(
    r"\b\w+\.\w+\(|\)\.\w+\(|\b\w+\(\[|\w\[\[?['\"\w]|\b[a-z_]\w* = [\w\[({'\"]"
    r"|^\s*(def|class|import|from|return|function|const|let|var)\b|==|!=|=>"
    r"|\{\s*\"\w+\"\s*:|\"\w+\"\s*:\s|^\s*(File|Traceback|at) \S|;\s*$|^\s*\|.*\|\s*$"
    r"|</?(?:html|head|body|div|span|style|script|p|a|ul|ol|li|table|tr|td|title|br)\b"
    r"|^\s*[.#]?[\w-]+\s*\{|\{\s*[\w-]+\s*:\s*[^};]{1,200};"
    r"|\\(?:frac|sqrt|int|sum|prod|lim|begin|end|left|right|cdot|times|mathbb|mathrm|text"
    r"|alpha|beta|gamma|delta|theta|lambda|mu|sigma|pi|infty|leq|geq|neq|partial)\b",
    re.MULTILINE,
)


@dataclass(frozen=True)
class SuffixHit:
    """The most implausible run of one text: its evidence in bits, character span and counts."""

    score: float
    span: tuple[int, int] | None
    """None when format characters were removed (offsets no longer line up)."""
    implausible: int
    tokens: int


@dataclass(frozen=True)
class SuffixSettings:
    """Bits each token kind adds (negative: it counts against soup) and the flagging threshold."""

    weights: dict[int, float]
    threshold: float
    min_implausible: int = 3
    """Implausible tokens a run needs (one odd token is never a suffix)."""

    @classmethod
    def load(cls, path: Path | None = None) -> SuffixSettings:
        """The shipped settings (`rules/jailbreak/suffix_likelihood.json`) or another file."""
        from fmfl_audit.errors import RulePackError
        from fmfl_audit.rulepacks.loader import builtin_rules_dir

        path = path or builtin_rules_dir() / "jailbreak" / SETTINGS_FILE
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
            if doc.get("format", "fmfl-suffix-likelihood-v1") != "fmfl-suffix-likelihood-v1":
                raise ValueError(f"unknown format {doc.get('format')!r}")
            weights = {int(Kind[k]): float(v) for k, v in doc["weights"].items()}
            if set(weights) != {k for k in Kind if k != Kind.NEUTRAL}:
                raise ValueError(f"weights must cover {[k.name for k in Kind][1:]}")
            return cls(weights, float(doc["threshold"]), int(doc.get("min_implausible", 3)))
        except (OSError, KeyError, TypeError, ValueError) as exc:
            raise RulePackError(f"{path}: invalid suffix settings ({exc})") from None


@dataclass
class SuffixScorer:
    """Scan-statistic score of token soup. Build once; `score` is cheap (per-token caches)."""

    settings: SuffixSettings = field(default_factory=SuffixSettings.load)
    _known: dict[str, int] = field(default_factory=dict, repr=False)
    """word -> bit mask of the LANGUAGES that know it often enough (bit 0: English)."""
    _memo: dict[str, tuple[Kind, int]] = field(default_factory=dict, repr=False)
    """Per distinct token: (Kind, language mask); prompts repeat words a lot."""

    @property
    def threshold(self) -> float:
        """The tuned threshold (bits)."""
        return self.settings.threshold

    def kinds(self, text: str) -> list[tuple[tuple[int, int], Kind]]:
        """(span, kind) of every non-neutral token, foreign words resolved by the text's language.
        Code and LaTeX are not judged (an empty list)."""
        if "```" in text or len(CODE_MARKERS.findall(text)) >= 2:
            return []
        if not self._known:
            self._known = _frequency_masks()
        raw = [(m.span(), m.group(), *self._kind(m.group())) for m in _TOKEN.finditer(text)]
        out: list[tuple[tuple[int, int], Kind]] = []
        masks: list[int] = []
        for i, (span, _, kind, mask) in enumerate(raw):
            if kind == Kind.STRAY and not (i and raw[i - 1][2] == Kind.STRAY):
                continue  # one stray mark is punctuation; the second in a row is soup
            short = kind == Kind.FRAGMENT or (kind == Kind.WORD and mask & _SHORT)
            if short and _beside_operator(raw, i):
                continue  # a variable of a formula: "V = L * H * W"
            if kind != Kind.NEUTRAL:
                out.append((span, kind))
                masks.append(mask)
        best = _best_language(masks)
        return [
            (span, kind if kind != Kind.WORD or mask & (1 | best) else _foreign(mask))
            for (span, kind), mask in zip(out, masks, strict=True)
        ]

    def score(self, text: str) -> SuffixHit | None:
        """The largest evidence over runs of tokens (None if no run has enough odd tokens)."""
        stripped = _FORMAT.sub("", text)  # zero-width and bidi: the obfuscation layer's business
        keep_spans = len(stripped) == len(text)
        tokens = self.kinds(stripped)
        w = self.settings.weights
        best: SuffixHit | None = None
        run, start, odd = 0.0, 0, 0
        for i, (_, kind) in enumerate(tokens):
            if run <= 0:
                run, start, odd = 0.0, i, 0
            run += w[kind]
            odd += kind != Kind.WORD
            if odd >= self.settings.min_implausible and (best is None or run > best.score):
                span = (tokens[start][0][0], tokens[i][0][1]) if keep_spans else None
                best = SuffixHit(round(run, 3), span, odd, i - start + 1)
        return best

    def _kind(self, token: str) -> tuple[Kind, int]:
        hit = self._memo.get(token)
        if hit is None:
            hit = self._memo[token] = self._classify(token)
            if len(self._memo) > 500_000:
                self._memo.clear()
        return hit

    def _classify(self, token: str) -> tuple[Kind, int]:
        if any(c == "\ufffd" or (unicodedata.category(c) == "Cc") for c in token):
            return Kind.SOUP, 0  # control or replacement characters: never written text
        if len(token) == 1 and not token.isalnum():
            return (Kind.STRAY if token in _STRAY else Kind.NEUTRAL), 0
        lead, trail = _LEAD.match(token), _TRAIL.search(token)
        core = token[lead.end() if lead else 0 : trail.start() if trail else len(token)]
        if lead and sum(c in "([{" for c in lead.group()) >= 2:
            return Kind.SOUP, 0  # brackets opened in a heap: "([githubINST"
        if not core or not token.strip("`'\"“”‘’«»"):
            if not token.strip("`'\"“”‘’«»"):
                return Kind.NEUTRAL, 0  # quote marks only: ``, ''
            # A run of marks: prose has "--", "...", "?!"; "](", "\\!--", "{{" are soup.
            return (Kind.SOUP if any(c in _SOUP_SYMBOLS for c in token) else Kind.NEUTRAL), 0
        if _NEUTRAL.match(core) or _is_emoji_or_symbol(core) or _other_script(core):
            return Kind.NEUTRAL, 0
        if _NEUTRAL.match(token):
            return Kind.NEUTRAL, 0  # before stripping: options such as "-o", "--quiet"
        if _wide_script(core):
            return Kind.NEUTRAL, 0  # CJK or Thai text glues Latin words without spaces
        if _LETTERS.match(core):
            return self._word(core)
        if any(c in _SOUP_SYMBOLS for c in _ESCAPES.sub(" ", core)):
            return Kind.SOUP, 0  # a bracket, brace or backslash inside: "oppositeley.](", "a\\b"
        parts = [p for p in _JOINERS.split(core) if p]
        if len(parts) > 1 or (parts and parts[0] != core):
            judged = [self._classify(p) for p in parts]
            words = [m for k, m in judged if k == Kind.WORD]
            if any(k == Kind.SOUP for k, _ in judged):
                return Kind.SOUP, 0
            if any(k in (Kind.UNKNOWN, Kind.STRAY, Kind.FRAGMENT) for k, _ in judged):
                return Kind.UNKNOWN, 0
            mask = functools.reduce(lambda m, w: m & w, words, -1)
            return (Kind.WORD, mask) if words and mask else (Kind.NEUTRAL, 0)
        # Letters mixed with symbols other than the prose shapes: "giving**ONE", "l!ing", "](Me".
        soup = any(c.isalpha() for c in core) or any(c in _SOUP_SYMBOLS for c in core)
        return (Kind.SOUP if soup else Kind.NEUTRAL), 0

    def _word(self, core: str) -> tuple[Kind, int]:
        """A run of letters (with inner apostrophes or hyphens)."""
        if not _latin(core):
            return Kind.SOUP, 0  # Latin glued to another script: "orgsalсі", "Forceল"
        mask = self._known.get(core.lower(), 0)
        if not mask and "-" in core:
            parts = [self._word(p) for p in core.split("-") if p]
            mask = functools.reduce(lambda m, k: m & k[1], parts, -1)
            if parts and mask and all(k == Kind.WORD for k, _ in parts):
                return Kind.WORD, mask
            if core.isascii() and core.islower():
                return Kind.NEUTRAL, 0  # an identifier: "libffi-dev", "pkg-config"
            mask = 0
        if _CAMEL.search(core) and not mask:
            # Pieces glued by a case change: GCG's "similarlyNow", but also the identifiers and
            # brand names of real text ("localStorage", "FreeAgent"): only unknown.
            return Kind.UNKNOWN, 0
        if mask:
            return Kind.WORD, mask | (_SHORT if len(core) <= 2 else _LONG if len(core) >= 4 else 0)
        return (Kind.FRAGMENT if len(core) <= 2 else Kind.UNKNOWN), 0


def _beside_operator(raw: list[tuple[tuple[int, int], str, Kind, int]], i: int) -> bool:
    return any(0 <= j < len(raw) and _OPERATOR.match(raw[j][1]) for j in (i - 1, i + 1))


_OPERATOR = re.compile(r"^[=<>+*/^×÷≤≥≠±−-]{1,2}$")


def _foreign(mask: int) -> Kind:
    """A word known only in a language other than the text's own: unknown (a fragment when it
    has one or two letters: "y", "w" and "ne" are words somewhere)."""
    return Kind.FRAGMENT if mask & _SHORT else Kind.UNKNOWN


def _best_language(masks: list[int]) -> int:
    """Bit of the language that most of the text's words of four letters or more not at home in
    English are at home in, when two or more are (short words say little: "y", "ne" are words in
    many languages); 0 when there is none. English words always count."""
    counts: dict[int, int] = {}
    for mask in masks:
        home = (mask >> _HOME) & _LANGS
        if mask & _LONG and not home & 1:
            for bit in _bits(home):
                counts[bit] = counts.get(bit, 0) + 1
    fit = [b for b in counts if counts[b] >= 2]
    return max(fit, key=lambda b: (counts[b], -b)) if fit else 0


@functools.lru_cache(maxsize=4096)
def _bits(mask: int) -> tuple[int, ...]:
    return tuple(1 << i for i in range(mask.bit_length()) if mask >> i & 1)


@functools.lru_cache(maxsize=1)
def _frequency_masks() -> dict[str, int]:
    """word -> bit mask of LANGUAGES knowing it at least at the length-dependent Zipf minimum
    (bits 0-25), and of the languages it is at home in (bits 26-51: within one Zipf step of its
    highest frequency; "deux" is known in English but at home in French). wordfreq's large
    English list and the small lists of the others (their common words are enough for a sentence
    in them not to read as noise; the large ones would cost 600 MB). Built once per process
    (about 5 s) and shared by every scorer (read only)."""
    from wordfreq import get_frequency_dict

    lists = [
        (1 << i, get_frequency_dict(lang, "large" if lang == "en" else "small"))
        for i, lang in enumerate(LANGUAGES)
    ]
    top: dict[str, float] = {}
    for _, freqs in lists:
        for word, freq in freqs.items():
            if freq > top.get(word, 0.0):
                top[word] = freq
    masks: dict[str, int] = {}
    for bit, freqs in lists:
        for word, freq in freqs.items():
            need = MIN_ZIPF_BY_LENGTH[len(word)] if len(word) < len(MIN_ZIPF_BY_LENGTH) else 0.0
            if math.log10(freq * 1e9) >= max(need, MIN_ZIPF):
                home = bit << _HOME if freq * 10 >= top[word] else 0
                masks[word] = masks.get(word, 0) | bit | home
    return masks


def _is_emoji_or_symbol(token: str) -> bool:
    """Emoji, pictographs and their modifiers (not maths or currency signs)."""
    return all(
        unicodedata.category(c) in {"So", "Sk", "Mn", "Me", "Cf"} or c in "\u200d\ufe0f"
        for c in token
    )


def _latin(word: str) -> bool:
    return all(c in "'’-" or unicodedata.name(c, "").startswith("LATIN") for c in word)


def _wide_script(word: str) -> bool:
    """Contains a script written without spaces between words (CJK, kana, Thai)."""
    return any(
        unicodedata.name(c, "").startswith(_WIDE) for c in word if ord(c) >= 0x0E00 and c.isalpha()
    )


_WIDE = ("CJK", "HIRAGANA", "KATAKANA", "HANGUL", "THAI", "LAO", "KHMER", "MYANMAR", "TIBETAN")


def _other_script(word: str) -> bool:
    """Letters only of scripts other than Latin (Cyrillic, CJK, Arabic...): judged by no list."""
    letters = [c for c in word if c.isalpha()]
    return bool(letters) and not any(unicodedata.name(c, "").startswith("LATIN") for c in letters)
