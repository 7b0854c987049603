"""Differential probing: the same probes sent to the FM under audit and to a trusted copy of the
published model (`foundation_model.reference_endpoint`), answers compared per suite.

Per suite, over the probes both endpoints answered (pairs), the three paired tests of `_paired`
(word distribution, length, verdicts; Bonferroni within the suite). A suite differs when that
p-value is at most `alpha` and the divergence reaches `min_divergence`. Greedy probes answered
identically by both endpoints give no evidence of a difference, as they should.

The comparison is computed once per scan and suite: FMFL-R13 reports every suite; FMFL-R03 pools
the answers of every suite (each probe carries the approved system prompt) to ask whether the FM
behaves as the approved prompt alone makes the published model behave.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fmfl_audit.checkers.base import CheckContext
from fmfl_audit.checkers.probes._paired import Comparison, compare
from fmfl_audit.checkers.probes._transcript import Answer, Transcript
from fmfl_audit.models import Evidence


@dataclass(frozen=True)
class SuiteDifference:
    """How the target's answers to one suite (or to all, `*`) differ from the reference's."""

    suite: str
    comparison: Comparison
    example: tuple[Answer, Answer] | None

    @property
    def pairs(self) -> int:
        """Probes answered by both endpoints."""
        return self.comparison.pairs

    @property
    def p_value(self) -> float:
        """The suite's Bonferroni-adjusted p-value."""
        return self.comparison.p_value

    def differs(self, alpha: float, min_divergence: float) -> bool:
        """Whether the difference is significant and large enough."""
        return self.p_value <= alpha and self.comparison.divergence >= min_divergence

    def as_metric(self) -> dict[str, Any]:
        """Report figures."""
        return self.comparison.figures("target", "reference")

    def summary(self) -> str:
        """One sentence for a finding."""
        return self.comparison.summary()

    def evidence(self, excerpt: Any) -> tuple[Evidence, ...]:
        """The first differing pair, each answer as an excerpt."""
        if self.example is None:
            return ()
        a, b = self.example
        return (
            Evidence(location=a.location, excerpt=f"target: {excerpt(a.text)}"),
            Evidence(location=b.location, excerpt=f"reference: {excerpt(b.text)}"),
        )


def compare_suite(
    ctx: CheckContext, transcript: Transcript, suite: str | None, *, permutations: int
) -> SuiteDifference | None:
    """The target-vs-reference comparison of one suite (None: of every suite's answers pooled),
    cached per scan; None without pairs."""
    key = f"probe-differential:{suite}:{permutations}"
    result: SuiteDifference | None = ctx.cache.get(
        key, lambda: _compare(ctx, transcript, suite, permutations)
    )
    return result


def _compare(
    ctx: CheckContext, transcript: Transcript, suite: str | None, permutations: int
) -> SuiteDifference | None:
    pairs = transcript.paired(suite)
    if not pairs:
        return None
    comparison = compare(ctx, pairs, permutations=permutations, salt=f"differential:{suite or '*'}")
    example = next(((a, b) for a, b in pairs if a.text.strip() != b.text.strip()), None)
    return SuiteDifference(suite=suite or "*", comparison=comparison, example=example)
