"""Find, read and merge rule packs into the effective rule set of a scan."""

from __future__ import annotations

import importlib.resources
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fmfl_audit.errors import RulePackError
from fmfl_audit.manifest.loader import validate_yaml_text
from fmfl_audit.models import Area, Severity
from fmfl_audit.rulepacks.model import GradingPolicy, RuleOverride, RulePackFile, RuleSpec
from fmfl_audit.yamlpos import read_text, suggest

MANIFEST_OVERRIDE = "manifest policy.rules"
"""`EffectiveRule.param_sources` value of a param set in the manifest's `policy.rules`."""


def builtin_rules_dir() -> Path:
    """The shipped `rules/` folder: package data in a wheel, the top-level folder in a checkout."""
    packaged = importlib.resources.files("fmfl_audit") / "rules"
    if packaged.is_dir():
        return Path(str(packaged))
    # Editable installs map only src/; the packs are then the repository's top-level rules/.
    source_tree = Path(__file__).resolve().parents[3] / "rules"
    if source_tree.is_dir():
        return source_tree
    raise RulePackError("the built-in rule packs are missing from this installation")


def builtin_pack_names() -> list[str]:
    """Names of the packs shipped with the tool."""
    root = builtin_rules_dir()
    # A pack is a folder with a pack.yaml (its other .yaml files hold rules) or a single .yaml
    # file; other folders under rules/ hold data (lexicons, signatures).
    names = {p.name for p in root.iterdir() if (p / "pack.yaml").is_file()}
    names |= {p.stem for p in root.glob("*.yaml")}
    return sorted(names)


def _pack_files(ref: str, base_dir: Path | None) -> list[Path]:
    """The YAML files of a pack given by built-in name or path."""
    candidate = Path(ref).expanduser()
    looks_like_path = "/" in ref or ref.endswith((".yaml", ".yml")) or ref.startswith(".")
    if looks_like_path:
        path = candidate if candidate.is_absolute() or base_dir is None else base_dir / candidate
        if path.is_dir():
            files = sorted([*path.glob("*.yaml"), *path.glob("*.yml")])
            if not files:
                raise RulePackError(f"{path}: rule pack folder has no .yaml files")
            return files
        if path.is_file():
            return [path]
        raise RulePackError(f"{path}: rule pack not found")
    root = builtin_rules_dir()
    if (root / ref / "pack.yaml").is_file():
        return sorted((root / ref).glob("*.yaml"))
    if (root / f"{ref}.yaml").is_file():
        return [root / f"{ref}.yaml"]
    raise RulePackError(
        f"unknown rule pack {ref!r}{suggest(ref, builtin_pack_names())} "
        f"(built-in packs: {', '.join(builtin_pack_names())}; give a path for your own)"
    )


def read_pack_file(path: Path) -> RulePackFile:
    """Validate one pack file, with located errors."""
    try:
        text = read_text(path)
    except (OSError, UnicodeDecodeError) as exc:
        raise RulePackError(f"{path}: cannot read rule pack ({exc})") from None
    parsed = validate_yaml_text(
        text,
        source=path,
        model=RulePackFile,
        base_dir=path.parent,
        check_files=False,
        error=RulePackError,
        what="rule pack",
    )
    assert isinstance(parsed, RulePackFile)
    return parsed


@dataclass(frozen=True)
class EffectiveRule:
    """A rule after every pack and override has been applied."""

    spec: RuleSpec
    source: str = field(compare=False)
    param_sources: Mapping[str, str] = field(default_factory=dict, compare=False)
    """Where each param was last set: a pack file, or `MANIFEST_OVERRIDE` (policy.rules)."""

    @property
    def id(self) -> str:
        """The rule id."""
        return self.spec.id


@dataclass(frozen=True)
class RuleSet:
    """The rules in force for a scan, in catalog order, plus the grading policy."""

    rules: tuple[EffectiveRule, ...]
    grading: GradingPolicy
    packs: tuple[str, ...]

    def get(self, rule_id: str) -> EffectiveRule:
        """One rule by id; RulePackError (with a suggestion) when unknown."""
        for r in self.rules:
            if r.id == rule_id:
                return r
        raise RulePackError(
            f"unknown rule {rule_id!r}{suggest(rule_id, [r.id for r in self.rules])}"
        )


def _apply_override(spec: RuleSpec, ov: RuleOverride | Mapping[str, Any]) -> RuleSpec:
    data = ov.model_dump(exclude_none=True) if isinstance(ov, RuleOverride) else dict(ov)
    data.pop("id", None)
    params = {**spec.params, **data.pop("params", {})}
    update: dict[str, Any] = {k: v for k, v in data.items() if v is not None}
    if "severity" in update:
        update["severity"] = Severity(update["severity"])
    return spec.model_copy(update={**update, "params": params})


def load_ruleset(
    packs: Sequence[str],
    *,
    base_dir: Path | None = None,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> RuleSet:
    """Merge packs in order: the first defines rules, later ones add rules or override them.

    `overrides` are the manifest's `policy.rules` (rule id -> enabled/severity/weight/params).
    """
    if not packs:
        raise RulePackError("no rule packs given")
    rules: dict[str, EffectiveRule] = {}
    grading: GradingPolicy | None = None
    names: list[str] = []
    for ref in packs:
        for path in _pack_files(ref, base_dir):
            pf = read_pack_file(path)
            if pf.pack not in names:
                names.append(pf.pack)
            if pf.grading is not None:
                grading = pf.grading
            for spec in pf.rules:
                if spec.id in rules:
                    raise RulePackError(
                        f"{path}: rule {spec.id} is already defined by {rules[spec.id].source}; "
                        "use `overrides:` to change it"
                    )
                rules[spec.id] = EffectiveRule(
                    spec=spec, source=str(path), param_sources=dict.fromkeys(spec.params, str(path))
                )
            for ov in pf.overrides:
                _override(rules, ov.id, ov, where=str(path))
    for rule_id, ov_map in (overrides or {}).items():
        _override(rules, rule_id, ov_map, where=MANIFEST_OVERRIDE)
    if grading is None:
        raise RulePackError(
            "no rule pack defines `grading`; include the default pack or add a grading section"
        )
    order = {a: i for i, a in enumerate(Area)}
    ordered = sorted(rules.values(), key=lambda r: (order[r.spec.area], r.id))
    return RuleSet(rules=tuple(ordered), grading=grading, packs=tuple(names))


def _override(
    rules: dict[str, EffectiveRule],
    rule_id: str,
    ov: RuleOverride | Mapping[str, Any],
    *,
    where: str,
) -> None:
    if rule_id not in rules:
        raise RulePackError(
            f"{where}: override of unknown rule {rule_id!r}{suggest(rule_id, list(rules))}"
        )
    old = rules[rule_id]
    params = ov.params if isinstance(ov, RuleOverride) else ov.get("params", {})
    sources = {**old.param_sources, **dict.fromkeys(params or {}, where)}
    rules[rule_id] = EffectiveRule(
        spec=_apply_override(old.spec, ov), source=old.source, param_sources=sources
    )


def select(rules: Iterable[EffectiveRule], only: Sequence[str], skip: Sequence[str]) -> list[str]:
    """Rule ids kept by `--only` / `--skip` (each a rule id or an area name)."""
    rule_list = list(rules)
    known_ids = {r.id for r in rule_list}
    known = known_ids | {r.spec.area.value for r in rule_list}
    for token in (*only, *skip):
        if token not in known:
            raise RulePackError(
                f"--only/--skip: {token!r} is neither a rule id nor an area"
                f"{suggest(token, sorted(known))}"
            )

    def matches(r: EffectiveRule, tokens: Sequence[str]) -> bool:
        return r.id in tokens or r.spec.area.value in tokens

    return [r.id for r in rule_list if (not only or matches(r, only)) and not matches(r, skip)]
