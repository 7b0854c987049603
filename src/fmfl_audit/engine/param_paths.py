"""File and folder params of a rule (`Path`, `Path | None`, `tuple[Path, ...]`): resolved against
the folder of the file that set them, and checked to exist before any checker runs.

A path in the manifest's `policy.rules` is relative to the manifest's folder, one in a rule pack
file to that file's folder, whatever the current directory (README, "Rule packs"). A missing file
is an input error located where the param was set (exit 2 from `validate` and `scan`), not a
checker error halfway through a scan.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from fmfl_audit.checkers.base import CheckerParams
from fmfl_audit.errors import InputError
from fmfl_audit.manifest.loader import Deployment
from fmfl_audit.rulepacks.loader import MANIFEST_OVERRIDE, EffectiveRule


def _base_dir(rule: EffectiveRule, name: str, deployment: Deployment) -> Path:
    source = rule.param_sources.get(name, rule.source)
    return deployment.base_dir if source == MANIFEST_OVERRIDE else Path(source).parent


def _resolve(path: Path, base: Path) -> Path:
    path = path.expanduser()
    return path if path.is_absolute() else base / path


def resolve_param_paths(
    params: CheckerParams,
    rule: EffectiveRule,
    deployment: Deployment,
    locate: Callable[[str], str],
) -> CheckerParams:
    """`params` with every path param absolute; InputError at `locate(name)` for a missing one."""
    update: dict[str, Any] = {}
    for name in type(params).model_fields:
        value = getattr(params, name)
        if isinstance(value, Path):
            paths: tuple[Path, ...] = (value,)
        elif isinstance(value, tuple) and value and all(isinstance(v, Path) for v in value):
            paths = value
        else:
            continue
        base = _base_dir(rule, name, deployment)
        where = f"{locate(name)}: rule {rule.id}: params.{name}"
        resolved = []
        for given in paths:
            try:
                path = _resolve(given, base)
                found = path.exists()
            except (RuntimeError, OSError) as exc:  # unknown ~user, a name too long ...
                raise InputError(f"{where}: {given}: not a usable path ({exc})") from None
            if not found:
                raise InputError(
                    f"{where}: {given}: no such file or folder (looked for {path}; a relative "
                    "path is read from the folder of the file that sets it)"
                )
            resolved.append(path)
        update[name] = resolved[0] if isinstance(value, Path) else tuple(resolved)
    return params.model_copy(update=update) if update else params
