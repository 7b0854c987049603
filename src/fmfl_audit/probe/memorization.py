"""Memorisation probes: the first words of the server's sensitive records, and the text of each
declared canary up to its first slot.

The true continuation of a record and a canary's secret stay on this machine: the judges
(FMFL-P04, P03) read them again from the manifest's files at scan time, so the transcript holds
only what was sent and what came back. A canary whose prefix happens to contain one of its secret
values is not sent (it would leak the secret).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fmfl_audit.checkers.privacy._lm_scoring import reservoir
from fmfl_audit.errors import InputError
from fmfl_audit.inputs.records import ReadStats, iter_records
from fmfl_audit.probe.transcript import ProbeMeta

if TYPE_CHECKING:
    from fmfl_audit.checkers.privacy.canary import Canary
    from fmfl_audit.probe.suites import Probe, SuiteInputs

SUITE = "memorization"
MIN_CANARY_PREFIX_WORDS = 2


def record_probes(inp: SuiteInputs) -> list[Probe]:
    """One greedy probe per sampled sensitive record long enough for prefix + suffix."""
    from fmfl_audit.probe.suites import Probe

    fm = inp.deployment.manifest.foundation_model
    if fm is None or fm.sensitive_data is None:
        inp.notes.append("memorization: no foundation_model.sensitive_data; records not probed")
        return []
    s = inp.settings
    need = s.prefix_words + s.suffix_words
    display = inp.deployment.display_path(fm.sensitive_data.path)
    stats = ReadStats(path=display)
    stream = (
        (rec.location, words)
        for batch in iter_records(fm.sensitive_data, display=display, stats=stats)
        for rec in batch
        if len(words := (rec.text or "").split()) >= need
    )
    picked, _ = reservoir(stream, s.records, s.seed)
    if stats.malformed:
        inp.notes.append(f"memorization: {stats.malformed} malformed sensitive record(s) skipped")
    if not picked:
        inp.notes.append(f"memorization: no sensitive record has {need} words; none probed")
    return [
        Probe(
            SUITE,
            f"{SUITE}/record/{n:03d}",
            " ".join(words[: s.prefix_words]),
            ProbeMeta(kind="record", source=location, prefix_words=s.prefix_words),
            True,
        )
        for n, (location, words) in enumerate(picked)
    ]


def read_canaries(inp: SuiteInputs) -> tuple[list[Canary], list[str]]:
    """The declared canaries and the reasons for the malformed ones."""
    from fmfl_audit.checkers.privacy.canary import parse_canary

    source = inp.settings.canaries
    if source is None:
        return [], []
    display = inp.deployment.display_path(source.path)
    stats = ReadStats(path=display)
    canaries, bad = [], []
    try:
        batches = list(iter_records(source, display=display, stats=stats, require_text=False))
    except InputError as exc:
        return [], [str(exc)]
    index = 0
    for batch in batches:
        for rec in batch:
            index += 1
            try:
                canaries.append(parse_canary(rec.data, rec.location, index, source.id_field))
            except ValueError as exc:
                bad.append(f"{rec.location}: {exc}")
    return canaries, bad


def canary_prefix(canary: Canary) -> str | None:
    """The text sent for a canary: everything before its first slot; None when too short or
    when it contains a secret value."""
    prefix = canary.pieces[0].strip()
    if len(prefix.split()) < MIN_CANARY_PREFIX_WORDS:
        return None
    if any(value and value in prefix for value in canary.secret):
        return None
    return prefix


def canary_probes(inp: SuiteInputs) -> list[Probe]:
    """One greedy probe and `samples` sampled probes per canary with a usable prefix."""
    from fmfl_audit.probe.suites import Probe

    canaries, bad = read_canaries(inp)
    if bad:
        inp.notes.append(f"memorization: {len(bad)} malformed canary record(s): {bad[0]}")
    probes = []
    for c in canaries:
        prefix = canary_prefix(c)
        if prefix is None:
            inp.notes.append(
                f"memorization: canary {c.cid} not sent (fewer than "
                f"{MIN_CANARY_PREFIX_WORDS} words before its first slot, or a secret value in "
                "them)"
            )
            continue
        probes.append(
            Probe(SUITE, f"{SUITE}/canary/{c.cid}/greedy", prefix, _meta(c, "greedy"), True)
        )
        probes += [
            Probe(SUITE, f"{SUITE}/canary/{c.cid}/s{k}", prefix, _meta(c, f"s{k}", k))
            for k in range(inp.settings.samples)
        ]
    return probes


def _meta(canary: Canary, pair: str, sample: int = 0) -> ProbeMeta:
    return ProbeMeta(kind="canary", pair=pair, source=canary.cid, sample=sample)
