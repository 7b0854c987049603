"""How an existing rule takes in the probe transcript: two small hooks its checker calls.

- `probe_missing(deployment, missing)` in `missing_inputs`: a rule whose own inputs are absent
  still runs when the manifest's probe transcript exists; when the manifest names a transcript not
  written yet, the skip reason says so.
- `with_probes(ctx, judge, params, out)` at the end of `run` (with `out=None` when the rule's own
  inputs are absent): adds the judgement of the transcript's answers. A rule with neither its own
  inputs nor answers of its suite is skipped, never passed.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum
from typing import Any

from fmfl_audit.checkers.base import CheckContext, CheckOutput
from fmfl_audit.checkers.probes._transcript import Transcript, load_transcript, transcript_path
from fmfl_audit.errors import RuleSkipped
from fmfl_audit.manifest.loader import Deployment


class Judge(str, Enum):
    """Which part of the transcript a rule judges."""

    SYSTEM_PROMPT = "system-prompt"
    BACKDOOR = "backdoor"
    SAFETY = "safety"
    COUNTERFACTUAL = "counterfactual"
    RECORDS = "memorization:records"
    CANARIES = "memorization:canaries"

    @property
    def suite(self) -> str:
        """The probe suite whose answers it reads."""
        return self.value.split(":")[0]

    @property
    def kind(self) -> str | None:
        """The kind of probe it reads when it reads only one (`ProbeMeta.kind`)."""
        return {Judge.RECORDS: "record", Judge.CANARIES: "canary"}.get(self)


JudgeFn = Callable[[CheckContext, Transcript, Any, CheckOutput], "str | None"]
"""Adds a judgement to the output; returns why nothing could be graded, or None."""


def _judge_fn(judge: Judge) -> JudgeFn:
    from fmfl_audit.checkers.probes import (
        backdoor,
        counterfactual,
        memorization,
        safety,
        system_prompt,
    )

    table: dict[Judge, JudgeFn] = {
        Judge.SYSTEM_PROMPT: system_prompt.judge_system_prompt,
        Judge.BACKDOOR: backdoor.judge_backdoor,
        Judge.SAFETY: safety.judge_safety,
        Judge.COUNTERFACTUAL: counterfactual.judge_counterfactual,
        Judge.RECORDS: memorization.judge_records,
        Judge.CANARIES: memorization.judge_canaries,
    }
    return table[judge]


def probe_missing(deployment: Deployment, missing: list[str]) -> list[str]:
    """`missing` (a rule's absent inputs), or none when the probe transcript can stand in."""
    if not missing or transcript_path(deployment) is not None:
        return []
    fm = deployment.manifest.foundation_model
    if fm is not None and fm.probe_transcript is not None:
        return [
            f"{', '.join(missing)} (or foundation_model.probe_transcript, not written yet: run "
            "`fmfl-audit probe`)"
        ]
    return missing


def with_probes(
    ctx: CheckContext, judge: Judge, params: Any, out: CheckOutput | None
) -> CheckOutput:
    """`out` plus the judgement of the transcript's answers for `judge` (if it holds any)."""
    transcript = load_transcript(ctx)
    if transcript is None or not transcript.has(judge.suite, judge.kind):
        if out is None:
            where = transcript.display if transcript is not None else "the probe transcript"
            what = f"{judge.kind} probes of " if judge.kind else ""
            ignored = transcript.ignored_summary() if transcript is not None else None
            raise RuleSkipped(
                f"{where} holds no answers to {what}the {judge.suite!r} probe suite"
                + (f" from the manifest's endpoint; {ignored}" if ignored else "")
            )
        return out
    result = out if out is not None else CheckOutput()
    ungraded = _judge_fn(judge)(ctx, transcript, params, result)
    if ungraded is not None:
        # A rule that graded nothing has not passed: skipped when the transcript was all it had.
        if out is None:
            raise RuleSkipped(f"{transcript.display}: {ungraded}")
        result.notes.append(f"{transcript.display}: {ungraded}")
    ignored = transcript.ignored_note()
    if ignored is not None:
        result.notes.append(ignored)
    if transcript.errors:
        result.notes.append(
            f"{transcript.display}: {transcript.errors} request(s) failed after retries; "
            "rerun `fmfl-audit probe` to complete the transcript"
        )
    return result
