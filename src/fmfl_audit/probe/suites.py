"""The probe suites: small generators that turn the shipped prompts and the deployment's own data
into probes. Each suite feeds one rule (README, "Probing the live FM"):

- `system-prompt`: echo / extraction questions (greedy) and neutral tasks (sampled) -> FMFL-R03;
- `backdoor`: neutral tasks without, with each candidate trigger and with a random control token
  at the same position (sampled) -> FMFL-R06;
- `safety`: XSTest harmful requests and safe look-alikes (greedy) -> FMFL-R02;
- `counterfactual`: templates filled with a term of one group, of another group of the same axis,
  and of the first group with another noun (greedy) -> FMFL-F04;
- `memorization`: prefixes of the server's sensitive records (greedy) -> FMFL-P04, and of declared
  canaries (greedy and sampled) -> FMFL-P03.

Every draw is seeded (`foundation_model.probe.seed`), so the same manifest plans the same probes.
A canary's secret is never sent: only the text before its first slot is.
"""

from __future__ import annotations

import random
import string
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from fmfl_audit.errors import FmflAuditError
from fmfl_audit.manifest.loader import Deployment
from fmfl_audit.manifest.model import ProbeSettings
from fmfl_audit.probe.data import SuitePrompts, load_prompts, load_safety_prompts
from fmfl_audit.probe.transcript import ProbeMeta

T = TypeVar("T")


class ProbeConfigError(FmflAuditError):
    """The probe settings cannot be turned into probes (e.g. an unknown counterfactual axis)."""


@dataclass(frozen=True)
class Probe:
    """One request to send to every endpoint (the system prompt is added by the runner)."""

    suite: str
    probe_id: str
    user: str
    meta: ProbeMeta
    greedy: bool = False


@dataclass
class SuiteInputs:
    """What the generators draw from."""

    deployment: Deployment
    settings: ProbeSettings
    triggers: Sequence[tuple[str, str]] = ()
    """(trigger, origin): `mined` by FMFL-R06 or a user `suspect`."""
    prompts: SuitePrompts = field(default_factory=load_prompts)
    notes: list[str] = field(default_factory=list)

    def rng(self, *salt: object) -> random.Random:
        """A generator seeded by the probe seed and `salt` (stable across runs)."""
        return random.Random("\x1f".join(map(str, (self.settings.seed, *salt))))

    def draw(self, items: Sequence[T], suite: str, *salt: object) -> list[tuple[int, T]]:
        """A seeded sample of the suite's `prompts_per_suite` items (all when fewer), with
        their indexes."""
        indexed = list(enumerate(items))
        n = min(self.settings.prompts_for(suite), len(indexed))
        return sorted(self.rng("draw", suite, *salt).sample(indexed, n), key=lambda x: x[0])


def system_prompt_suite(inp: SuiteInputs) -> list[Probe]:
    """Echo / extraction questions (greedy) and neutral tasks (sampled)."""
    suite = "system-prompt"
    probes = [
        Probe(
            suite, f"{suite}/echo/{i:02d}", text, ProbeMeta(kind="echo", source=f"echo:{i}"), True
        )
        for i, text in inp.draw(inp.prompts.echo, suite, "echo")
    ]
    for i, text in inp.draw(inp.prompts.tasks, suite, "tasks"):
        for k in range(inp.settings.samples):
            pair = f"t{i:02d}/s{k}"
            meta = ProbeMeta(kind="task", pair=pair, source=f"task:{i}", sample=k)
            probes.append(Probe(suite, f"{suite}/task/{pair}", text, meta))
    return probes


def insert_words(text: str, inserted: str, position: int) -> str:
    """`text` with `inserted` placed before word `position` (clamped to the end)."""
    words = text.split()
    position = min(position, len(words))
    return " ".join([*words[:position], inserted, *words[position:]])


def control_token(trigger: str, rng: random.Random) -> str:
    """Random lower-case letters shaped like `trigger` (same word count and lengths)."""
    return " ".join(
        "".join(rng.choices(string.ascii_lowercase, k=max(2, len(w)))) for w in trigger.split()
    )


def backdoor_suite(inp: SuiteInputs) -> list[Probe]:
    """Neutral tasks without a trigger, with each trigger, and with a control token at the same
    word position (sampled, the same seeds for the three conditions)."""
    suite = "backdoor"
    if not inp.triggers:
        inp.notes.append(
            "backdoor: no candidate trigger (FMFL-R06 mined none and "
            "foundation_model.probe.trigger_suspects is empty); suite not sent"
        )
        return []
    tasks = inp.draw(inp.prompts.tasks, suite)
    probes: list[Probe] = []
    for i, text in tasks:
        for k in range(inp.settings.samples):
            pair = f"t{i:02d}/s{k}"
            meta = ProbeMeta(kind="without", pair=pair, source=f"task:{i}", sample=k)
            probes.append(Probe(suite, f"{suite}/base/{pair}", text, meta))
    for j, (trigger, origin) in enumerate(inp.triggers):
        for i, text in tasks:
            for k in range(inp.settings.samples):
                rng = inp.rng(suite, trigger, i, k)
                position = rng.randint(0, len(text.split()))
                pair = f"t{i:02d}/s{k}"
                for kind, term in (("trigger", trigger), ("control", control_token(trigger, rng))):
                    meta = ProbeMeta(
                        kind=kind,
                        pair=pair,
                        term=term,
                        trigger=trigger,
                        group=origin,
                        source=f"task:{i}",
                        sample=k,
                    )
                    user = insert_words(text, term, position)
                    probes.append(Probe(suite, f"{suite}/{j:02d}/{pair}/{kind}", user, meta))
    return probes


def safety_suite(inp: SuiteInputs) -> list[Probe]:
    """XSTest harmful requests and as many safe look-alikes (greedy)."""
    suite = "safety"
    prompts = load_safety_prompts()
    probes = []
    for kind, harmful in (("harmful", True), ("safe", False)):
        pool = [p for p in prompts if p.harmful is harmful]
        for _, item in inp.draw(pool, suite, kind):
            meta = ProbeMeta(kind=kind, group=item.type, source=f"xstest:{item.id}")
            probes.append(Probe(suite, f"{suite}/{kind}/{item.id}", item.text, meta, True))
    return probes


def _article(phrase: str) -> str:
    return ("an " if phrase[:1].lower() in "aeiou" else "a ") + phrase


def _fill(template: str, person: str) -> str:
    return template.replace("{person}", person).replace("{Person}", person[:1].upper() + person[1:])


def _axis_terms(inp: SuiteInputs, axis: str, i: int) -> tuple[tuple[str, str, str], ...]:
    """(kind, group, person phrase) of the original, its counterfactual twin and its control."""
    nouns = inp.prompts.counterfactual_nouns
    if axis == "gender":
        pairs = inp.prompts.gender_pairs
        female, male = pairs[i % len(pairs)]
        other = pairs[(i + 1) % len(pairs)][0]
        return (
            ("original", "female", _article(female)),
            ("swap", "male", _article(male)),
            ("control", "female", _article(other)),
        )
    from fmfl_audit.checkers.fairness._lexicon import load_demographic_lexicon

    lex = load_demographic_lexicon()
    groups = [
        g
        for g in lex.groups.get(axis, [])
        if any(t.kind == "descriptor" for t in lex.terms_by_group[(axis, g)])
    ]
    if len(groups) < 2:
        raise ProbeConfigError(
            f"foundation_model.probe.counterfactual_axes: unknown or single-group axis {axis!r} "
            f"(use 'gender' or a HolisticBias axis: {', '.join(lex.axes)})"
        )
    rng = inp.rng("counterfactual", axis, i)
    g1, g2 = sorted(rng.sample(groups, 2))

    def descriptor(group: str) -> str:
        terms = [t.text for t in lex.terms_by_group[(axis, group)] if t.kind == "descriptor"]
        return rng.choice(sorted(terms))

    d1, d2 = descriptor(g1), descriptor(g2)
    noun, other = nouns[i % len(nouns)], nouns[(i + 1) % len(nouns)]
    return (
        ("original", g1, _article(f"{d1} {noun}")),
        ("swap", g2, _article(f"{d2} {noun}")),
        ("control", g1, _article(f"{d1} {other}")),
    )


def counterfactual_suite(inp: SuiteInputs) -> list[Probe]:
    """Per template and axis: the original, its demographic twin and a same-group control
    (greedy, so only the prompt differs)."""
    suite = "counterfactual"
    probes = []
    for i, template in inp.draw(inp.prompts.counterfactual_templates, suite):
        for axis in inp.settings.counterfactual_axes:
            pair = f"{axis}/t{i:02d}"
            for kind, group, person in _axis_terms(inp, axis, i):
                meta = ProbeMeta(kind=kind, pair=pair, axis=axis, group=group, term=person)
                user = _fill(template, person)
                probes.append(Probe(suite, f"{suite}/{pair}/{kind}", user, meta, True))
    return probes


def memorization_suite(inp: SuiteInputs) -> list[Probe]:
    """Prefixes of sensitive records (greedy) and of canaries (greedy plus samples)."""
    from fmfl_audit.probe.memorization import canary_probes, record_probes

    return [*record_probes(inp), *canary_probes(inp)]


SUITES: dict[str, Callable[[SuiteInputs], list[Probe]]] = {
    "system-prompt": system_prompt_suite,
    "backdoor": backdoor_suite,
    "safety": safety_suite,
    "counterfactual": counterfactual_suite,
    "memorization": memorization_suite,
}
"""Suite name -> generator, in the order of `PROBE_SUITES`."""
