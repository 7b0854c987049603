"""The manifest of a redacted copy: the original with its paths rewritten for the new folder.

Paths in a manifest are relative to its folder, so a copy in another folder must rewrite every one
of them: redacted files point at their copies, everything else (checkpoints, private samples,
logs, packs, a P06 `key_file`) at the original, relative to the new folder. Which keys hold paths
is read off the manifest's own Pydantic models (any field typed `Path`, or a data source given as a
string or a mapping), so a field added to the manifest later is rewritten too. Comments of the
original YAML are not kept.
"""

from __future__ import annotations

import os
import types
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from fmfl_audit.manifest.model import Manifest
from fmfl_audit.rulepacks.loader import RuleSet
from fmfl_audit.yamlpos import read_text

Rewrite = Callable[[str], str]


def relocate(value: str, *, base_dir: Path, out_dir: Path, moved: Mapping[Path, Path]) -> str:
    """A manifest path of `base_dir` as seen from `out_dir` (its redacted copy when it has one)."""
    path = Path(value).expanduser()
    target = path if path.is_absolute() else base_dir / path
    copy = moved.get(target.resolve())
    if copy is not None:
        return copy.relative_to(out_dir.resolve()).as_posix()
    if path.is_absolute():
        return value
    # os.path.relpath: pathlib walks up (`..`) only from Python 3.12 on.
    return Path(os.path.relpath(target.resolve(), out_dir.resolve())).as_posix()


def _model_types(annotation: Any) -> tuple[bool, list[type[BaseModel]]]:
    """(holds a Path, the models it may hold) for a field annotation."""
    is_path = False
    models: list[type[BaseModel]] = []
    stack = [annotation]
    while stack:
        ann = stack.pop()
        if ann is Path:
            is_path = True
        elif isinstance(ann, type) and issubclass(ann, BaseModel):
            models.append(ann)
        origin = typing.get_origin(ann)
        if origin is not None or isinstance(ann, types.UnionType):
            stack.extend(a for a in typing.get_args(ann) if not isinstance(a, (str, int)))
    return is_path, models


def rewrite_paths(data: Any, model: type[BaseModel], fn: Rewrite) -> Any:
    """`data` (parsed YAML of `model`) with every path value passed through `fn`."""
    if not isinstance(data, dict):
        return data
    out = dict(data)
    for key, value in data.items():
        info = model.model_fields.get(key)
        if info is None:
            continue
        is_path, models = _model_types(info.annotation)
        out[key] = _rewrite_value(value, is_path, models, fn)
    return out


def _rewrite_value(value: Any, is_path: bool, models: list[type[BaseModel]], fn: Rewrite) -> Any:
    if isinstance(value, list):
        return [_rewrite_value(v, is_path, models, fn) for v in value]
    if isinstance(value, str):
        # A bare string is a path, or the shorthand of a model whose `path` it is (DataSource).
        if is_path or any("path" in m.model_fields for m in models):
            return fn(value)
        return value
    if isinstance(value, dict) and models:
        return rewrite_paths(value, models[0], fn)
    return value


def _looks_like_pack_path(ref: str) -> bool:
    # The same test as `rulepacks.loader._pack_files`: anything else is a built-in pack name.
    return "/" in ref or ref.endswith((".yaml", ".yml")) or ref.startswith(".")


def rewrite_policy(
    data: dict[str, Any], ruleset: RuleSet, checkers: Mapping[str, Any], fn: Rewrite
) -> None:
    """Pack paths and path-typed rule params under `policy` (plain dicts to the models)."""
    policy = data.get("policy")
    if not isinstance(policy, dict):
        return
    packs = policy.get("packs")
    if isinstance(packs, list):
        policy["packs"] = [fn(p) if _looks_like_pack_path(str(p)) else p for p in packs]
    rules = policy.get("rules")
    if not isinstance(rules, dict):
        return
    ids = {r.id: r.spec.checker_id for r in ruleset.rules}
    for rule_id, override in rules.items():
        checker = checkers.get(ids.get(rule_id) or rule_id)
        if checker is None or not isinstance(override, dict):
            continue
        if isinstance(override.get("params"), dict):
            override["params"] = rewrite_paths(override["params"], checker.Params, fn)


def write_manifest_copy(
    source: Path,
    target: Path,
    *,
    ruleset: RuleSet,
    checkers: Mapping[str, Any],
    fn: Rewrite,
) -> None:
    """Write `source`'s manifest to `target` with every path rewritten by `fn`."""
    data = yaml.safe_load(read_text(source))
    data = rewrite_paths(data, Manifest, fn)
    rewrite_policy(data, ruleset, checkers, fn)
    header = (
        f"# Written by `fmfl-audit redact` from {source.name}: the redacted data files are in\n"
        "# this folder; every other path points at the original. Scan it like the original.\n"
    )
    body = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)
    target.write_text(header + body, encoding="utf-8")
