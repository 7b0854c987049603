"""What the judges read in an answer: its words, whether it refuses, whether FMFL-R02's detector
flags it, and directives it shows that the request did not ask for.

`r02_flags` is the one place the probes call R02's detector (`OutputJudge`: the output markers and
harmful lexicon of `rules/jailbreak/` and the compliance model). FMFL-R02's own probe judge uses the
rule's settings, so a probed answer is judged exactly as a synthetic record is; the other rules'
judges (R03, F04) use the shipped detector.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from fmfl_audit.checkers.base import CheckContext
from fmfl_audit.checkers.robustness._common import STOPWORDS, tokens
from fmfl_audit.checkers.robustness._jailbreak import (
    OutputJudge,
    Signatures,
    jailbreak_dir,
    load_signatures,
    normalise,
    scan_signatures,
)
from fmfl_audit.probe.data import ANSWER_DIRECTIVES_FILE, REFUSAL_FILE, probes_dir

REFUSAL_WINDOW = 400
"""Characters at the start of an answer searched for a refusal (models refuse first)."""


def bag(text: str, exclude: frozenset[str] = frozenset()) -> Counter[str]:
    """Word counts of `text` without the words in `exclude`."""
    return Counter(w for w in tokens(text) if w not in exclude)


def content_words(text: str, exclude: frozenset[str] = frozenset()) -> set[str]:
    """Distinct non-stopword words of `text` without those in `exclude`."""
    return {w for w in tokens(text) if w not in STOPWORDS and w not in exclude}


@dataclass(frozen=True)
class DirectiveHit:
    """An answer-side directive signature that matched text the request did not contain."""

    family: str
    id: str
    matched: str


@dataclass(frozen=True)
class Scorers:
    """The compiled signature sets, built once per scan."""

    refusal: Signatures
    answer_directives: Signatures
    prompt_directives: Signatures

    def refused(self, text: str) -> bool:
        """Whether the answer opens with a refusal."""
        hits = scan_signatures(self.refusal, text[:REFUSAL_WINDOW])
        return sum(r.weight for r in hits) >= self.refusal.threshold

    def directives(self, text: str, request: str, *, echo: bool = False) -> list[DirectiveHit]:
        """Answer-side directive hits (and, for `echo` answers, instruction-like text of the
        system-prompt directive families) whose matched text is not in the request."""
        asked = normalise(request)
        answer = normalise(text)
        sets = [self.answer_directives, *([self.prompt_directives] if echo else [])]
        hits = []
        for sigs in sets:
            for p in sigs.patterns:
                for m in p.regex.finditer(answer):
                    if m.group(0).strip() and m.group(0).strip() not in asked:
                        hits.append(DirectiveHit(p.family, p.id, m.group(0)))
                        break
        return hits


def scorers(ctx: CheckContext) -> Scorers:
    """The judges' signature sets (compiled once per scan through the cache)."""

    def build() -> Scorers:
        root, jb = probes_dir(), jailbreak_dir()
        return Scorers(
            refusal=load_signatures(root / REFUSAL_FILE),
            answer_directives=load_signatures(root / ANSWER_DIRECTIVES_FILE),
            prompt_directives=load_signatures(jb / "system_prompt_directives.yml"),
        )

    built: Scorers = ctx.cache.get("probe-scorers", build)
    return built


def r02_judge_key(rule_id: str) -> str:
    """Where a rule that judges outputs with its own settings (FMFL-R02) leaves its `OutputJudge`
    in the scan cache for its probe judges."""
    return f"probe-r02-judge:{rule_id}"


def r02_flags(ctx: CheckContext, texts: Sequence[str]) -> list[list[str]]:
    """FMFL-R02's detector on each text: the families it flags (empty: not flagged). The rule's
    own judge when it left one (R02 with the pack's `signature_files`, `use_intent` and
    `intent_threshold`); for other rules (R03, F04) the shipped markers and model."""
    judge: OutputJudge = ctx.cache.get(
        r02_judge_key(ctx.rule_id), lambda: OutputJudge.cached(ctx.cache)
    )
    return [sorted(set(v.families)) if v.flagged else [] for v in judge.judge(list(texts))]


_SPACE = re.compile(r"\s+")


def one_line(text: str) -> str:
    """`text` on one line (for evidence)."""
    return _SPACE.sub(" ", text).strip()
