"""Adversarial-suffix layer of FMFL-R01: a sliding window of language likelihood.

Optimisation-made suffixes and infixes (GCG, random search, their defensive variants) are chosen
for what they do to a model's loss, not for being words, so they read as a run of implausible
tokens: word pieces glued together ("similarlyNow"), misspelt or non-words, bracket and symbol
runs ("](", "\\!--"). The layer does not look for the tokens an attack used: it scores every
whitespace token by how likely it is as written text, with the word frequencies of `wordfreq`
(Apache-2.0 code, CC BY-SA 4.0 data; no download at run time, the lists ship in its wheel), and
flags a text when a window of consecutive content tokens is mostly implausible.

Tokens that are legitimately not words (URLs, e-mail addresses, @mentions, #hashtags, numbers,
hashes and other long alphanumeric runs, paths, dotted or snake_case identifiers, emoji, words in
non-Latin scripts) are neutral: they neither count for nor against, so code, log lines, tweets and
hashes stay quiet. A text's language is picked from the Latin-script languages below (the one
that knows most of its words), so a French or German sentence is judged against its own language.
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass, field

# Latin-script languages wordfreq lists; English always counts too. Non-Latin scripts are
# neutral, so their languages need no list.
LANGUAGES: tuple[str, ...] = ("en", "de", "fr", "es", "it", "pt", "nl", "sv", "da", "nb", "pl")
LANGUAGES += ("cs", "tr", "ro", "hu", "fi", "id", "ms", "ca", "sh", "sk", "sl", "lt", "lv", "vi")
LANGUAGES += ("fil",)
# Prose punctuation stripped from both ends of a token before it is judged.
_EDGE = "\"'“”‘’«»()[]{}<>.,;:!?…*_-–—/"
_NEUTRAL = re.compile(
    r"""^(?:
        (?:https?://|ftp://|www\.)\S+            # URL
      | [\w.+-]+@[\w-]+\.[\w.-]+                 # e-mail
      | [@#]\w[\w.-]*                            # @mention, #hashtag
      | [$€£¥]?[-+]?\d[\d.,:/%x°'-]*[a-zA-Z]{0,3}  # numbers, dates, times, 5kg, 3rd, $20
      | [0-9a-fA-F]{8,}                          # hex digests
      | [\w+/=-]{20,}                            # base64, tokens, long keys
      | (?:[~.]?/|[A-Za-z]:\\)\S*                # paths
      | \S*[\w)\]]\.[a-zA-Z_]\w*\S*              # dotted names: os.path, e.g., file.txt, U.S.
      | \S*\w_\w\S*                              # snake_case identifiers
      | \S*\d\S*                                 # anything with a digit: mp3, B2B, v1.2
      | [\w.-]+=\S*                              # key=value (logs, query strings)
    )$""",
    re.VERBOSE,
)
_TOKEN = re.compile(r"\S+")
_FORMAT = re.compile("[\u00ad\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff\U000e0000-\U000e007f]")
_LETTERS = re.compile(r"^[^\W\d_]+(?:['’-][^\W\d_]+)*$", re.UNICODE)
_CAMEL = re.compile(r"[a-z][A-Z]")
# Symbols whose runs mark code or optimised token soup, not prose ("**" bold and "..." excepted).
_SOUP_SYMBOLS = frozenset("\\{}[]^~<>=`")
CODE_MARKERS = re.compile(
    r"\b\w+\.\w+\(|\)\.\w+\(|\w+\(\[|\w\[\[?['\"\w]|\b[a-z_]\w* = [\w\[({'\"]"
    r"|^\s*(def|class|import|from|return|function|const|let|var)\b|==|!=|=>"
    r"|\{\s*\"\w+\"\s*:|\"\w+\"\s*:\s|^\s*(File|Traceback|at) \S|;\s*$|^\s*\|.*\|\s*$",
    re.MULTILINE,
)


@dataclass(frozen=True)
class SuffixHit:
    """The most implausible window of one text: its score, character span and counts."""

    score: float
    span: tuple[int, int] | None
    """None when format characters were removed (offsets no longer line up)."""
    implausible: int
    window: int


@dataclass
class SuffixScorer:
    """Language-likelihood window score. Build once; `score` is cheap (per-token caches)."""

    window: int = 8
    """Content tokens per window (neutral tokens are skipped)."""
    min_zipf: float = 1.5
    """A word is plausible when its Zipf frequency (log10 per billion words) reaches this."""
    min_implausible: int = 4
    """Implausible tokens a window needs before its share counts at all."""
    _words: dict[str, float] = field(default_factory=dict, repr=False)
    _memo: dict[str, int] = field(default_factory=dict, repr=False)
    """Per distinct token: 1 implausible, 0 plausible, -1 neutral (prompts repeat words a lot)."""

    def score(self, text: str) -> SuffixHit | None:
        """The highest implausible share over windows of content tokens (None if too short).

        Code, tables and stack traces are symbol-dense for good reasons: not judged."""
        if "```" in text or len(CODE_MARKERS.findall(text)) >= 2:
            return None
        if not self._words:
            self._words = _frequency_list()
        # Zero-width and other format characters are the obfuscation layer's business.
        stripped = _FORMAT.sub("", text)
        keep_spans = len(stripped) == len(text)
        text = stripped
        spans, flags = [], []
        memo = self._memo
        for m in _TOKEN.finditer(text):
            tok = m.group()
            f = memo.get(tok)
            if f is None:
                f = memo[tok] = -1 if _neutral(tok) else self._implausible(tok)
                if len(memo) > 500_000:
                    memo.clear()
            if f >= 0:
                spans.append(m.span())
                flags.append(f)
        if sum(flags) < self.min_implausible:
            return None
        w = min(self.window, len(flags))
        best: SuffixHit | None = None
        run = sum(flags[:w])
        for i in range(len(flags) - w + 1):
            if i:
                run += flags[i + w - 1] - flags[i - 1]
            if run >= self.min_implausible and (best is None or run / w > best.score):
                best = SuffixHit(round(run / w, 4), (spans[i][0], spans[i + w - 1][1]), run, w)
        if best is not None and not keep_spans:
            best = SuffixHit(best.score, None, best.implausible, best.window)
        return best

    def _implausible(self, token: str) -> int:
        core = token.strip(_EDGE)
        if not core:
            # Bare punctuation: prose (and tokenised text) has "(", "--", "...", "?!" between
            # words; "](", "\\!--", "{{" standing alone are token soup.
            return int(any(c in _SOUP_SYMBOLS for c in token))
        if _LETTERS.match(core):
            if not _latin(core):
                return 1  # Latin glued to another script: "orgsalсі"
            if _CAMEL.search(core) and not core[0].isupper() and core.lower() != core:
                return 1  # "similarlyNow": pieces glued with a case change
            return int(self._words.get(core.lower(), 0.0) < self.min_zipf)
        # Letters mixed with symbols other than the neutral shapes: "giving**ONE", "](Me".
        return int(any(c.isalpha() for c in core) or any(c in _SOUP_SYMBOLS for c in core))


def _frequency_list() -> dict[str, float]:
    """word -> highest Zipf frequency over LANGUAGES: wordfreq's large English list and the small
    lists of the others (their common words are enough for a sentence in them not to read as
    noise; the large ones would cost 600 MB). Built once per process (about 3 s)."""
    from wordfreq import get_frequency_dict

    merged: dict[str, float] = {}
    for lang in LANGUAGES:
        for word, freq in get_frequency_dict(lang, "large" if lang == "en" else "small").items():
            z = math.log10(freq * 1e9)
            if z > merged.get(word, 0.0):
                merged[word] = z
    return merged


def _neutral(token: str) -> bool:
    """A token that is legitimately not a word (URL, number, hash, identifier, emoji...)."""
    core = token.strip(_EDGE)
    if not core:
        return len(token) == 1  # a lone mark between words: "(", ",", "!"
    return bool(_NEUTRAL.match(core) or _is_emoji_or_symbol(core) or _other_script(core))


def _is_emoji_or_symbol(token: str) -> bool:
    """Emoji, pictographs and their modifiers (not maths or currency signs)."""
    return all(
        unicodedata.category(c) in {"So", "Sk", "Mn", "Me", "Cf"} or c in "\u200d\ufe0f"
        for c in token
    )


def _latin(word: str) -> bool:
    return all(c in "'’-" or unicodedata.name(c, "").startswith("LATIN") for c in word)


def _other_script(word: str) -> bool:
    """Letters only of scripts other than Latin (Cyrillic, CJK, Arabic...): judged by no list."""
    letters = [c for c in word if c.isalpha()]
    return bool(letters) and not any(unicodedata.name(c, "").startswith("LATIN") for c in letters)
