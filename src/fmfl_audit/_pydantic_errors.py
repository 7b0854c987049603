"""Turn Pydantic validation errors into located, human messages (one per problem)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from fmfl_audit.yamlpos import LocatedYaml, format_path, suggest


def data_path(loc: Sequence[str | int], data: Any) -> tuple[str | int, ...]:
    """Drop Pydantic's union-member tags from `loc`, keeping only steps that exist in the data.

    The last step is kept even when absent (it names a missing or unknown key).
    """
    out: list[str | int] = []
    cur = data
    for i, step in enumerate(loc):
        last = i == len(loc) - 1
        if isinstance(cur, dict) and isinstance(step, str) and step in cur:  # noqa: SIM114
            cur = cur[step]
            out.append(step)
        elif isinstance(cur, list) and isinstance(step, int) and 0 <= step < len(cur):
            cur = cur[step]
            out.append(step)
        elif last and isinstance(cur, dict) and isinstance(step, str):
            out.append(step)
    return tuple(out)


def _fields_at(model: type[BaseModel], path: Sequence[str | int]) -> list[str]:
    """Field names (aliases) of the model reached by walking `path`; [] when unknown."""
    from typing import get_args

    current: Any = model
    for step in path:
        if isinstance(step, int):
            continue
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return []
        info = current.model_fields.get(step)
        if info is None:
            return []
        nxt = _first_model(info.annotation, get_args)
        if nxt is None:
            return []
        current = nxt
    if isinstance(current, type) and issubclass(current, BaseModel):
        return [f.alias or name for name, f in current.model_fields.items()]
    return []


def _first_model(annotation: Any, get_args: Callable[[Any], tuple[Any, ...]]) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _first_model(arg, get_args)
        if found is not None:
            return found
    return None


def located_messages(
    exc: ValidationError, located: LocatedYaml, source: Path, model: type[BaseModel]
) -> list[str]:
    """One `file:line:col: path: message` line per error, in document order."""
    lines: list[tuple[int, int, str]] = []
    for err in exc.errors(include_url=False):
        path = data_path(err["loc"], located.data)
        pos = located.locate(path)
        kind = err["type"]
        if kind == "extra_forbidden":
            key = str(path[-1]) if path else ""
            message = "unknown key" + suggest(key, _fields_at(model, path[:-1]))
        elif kind == "missing":
            message = "required key is missing"
        else:
            message = str(err["msg"])
            if message.startswith("Value error, "):
                message = message[len("Value error, ") :]
            elif message.startswith("Assertion failed, "):
                message = message[len("Assertion failed, ") :]
        line, col = (pos.line, pos.column) if pos else (1, 1)
        lines.append((line, col, f"{source}:{line}:{col}: {format_path(path)}: {message}"))
    lines.sort(key=lambda t: (t[0], t[1]))
    seen: set[str] = set()
    out = []
    for _, _, text in lines:
        if text not in seen:
            seen.add(text)
            out.append(text)
    return out
