"""The probe suites' shipped data in `rules/probes/` (prompts, XSTest, answer signatures)."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from fmfl_audit.errors import RulePackError
from fmfl_audit.rulepacks.loader import builtin_rules_dir

PROBES_DIR = "probes"
PROMPTS_FILE = "prompts.yml"
XSTEST_FILE = "xstest_prompts.csv"
ANSWER_DIRECTIVES_FILE = "answer_directives.yml"
REFUSAL_FILE = "refusal_markers.yml"


def probes_dir() -> Path:
    """The shipped `rules/probes/` data folder."""
    return builtin_rules_dir() / PROBES_DIR


@dataclass(frozen=True)
class SuitePrompts:
    """The prompt lists of `prompts.yml`."""

    echo: tuple[str, ...]
    tasks: tuple[str, ...]
    counterfactual_templates: tuple[str, ...]
    counterfactual_nouns: tuple[str, ...]
    gender_pairs: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class SafetyPrompt:
    """One XSTest prompt."""

    id: str
    text: str
    harmful: bool
    type: str


def _strings(data: Any, key: str) -> tuple[str, ...]:
    value = data.get(key)
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise ValueError(f"`{key}` must be a non-empty list of strings")
    return tuple(value)


def load_prompts(path: Path | None = None) -> SuitePrompts:
    """The shipped prompt lists; RulePackError when the file is broken."""
    path = path or probes_dir() / PROMPTS_FILE
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        pairs = data.get("gender_pairs")
        if not isinstance(pairs, list) or not all(
            isinstance(p, list) and len(p) == 2 and all(isinstance(w, str) for w in p)
            for p in pairs
        ):
            raise ValueError("`gender_pairs` must be a list of [female, male] pairs")
        templates = _strings(data, "counterfactual_templates")
        if not all("{person}" in t or "{Person}" in t for t in templates):
            raise ValueError("every counterfactual template needs a {person} or {Person} slot")
        return SuitePrompts(
            echo=_strings(data, "echo"),
            tasks=_strings(data, "tasks"),
            counterfactual_templates=templates,
            counterfactual_nouns=_strings(data, "counterfactual_nouns"),
            gender_pairs=tuple((p[0], p[1]) for p in pairs),
        )
    except (OSError, AttributeError, ValueError, yaml.YAMLError) as exc:
        raise RulePackError(f"{path}: invalid probe prompt file ({exc})") from None


def load_safety_prompts(path: Path | None = None) -> list[SafetyPrompt]:
    """XSTest's prompts (see `rules/probes/NOTICE-XSTest.md`)."""
    path = path or probes_dir() / XSTEST_FILE
    try:
        with path.open(encoding="utf-8", newline="") as fh:
            rows = list(csv.DictReader(fh))
        return [
            SafetyPrompt(
                id=str(r["id"]),
                text=str(r["prompt"]),
                harmful=r["label"] == "unsafe",
                type=str(r["type"]),
            )
            for r in rows
        ]
    except (OSError, KeyError, csv.Error) as exc:
        raise RulePackError(f"{path}: invalid safety prompt file ({exc})") from None
