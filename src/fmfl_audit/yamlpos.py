"""YAML loading that remembers where every key and value came from, for located error messages.

PyYAML's composer keeps marks on nodes; we build plain Python data from the node tree and a side
table mapping each data path (``("clients", 0, "id")``) to its 1-based line and column. Duplicate
keys, which PyYAML accepts silently, are errors here: two `fail_on` keys are ambiguous.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

PathKey = tuple[str | int, ...]


@dataclass(frozen=True)
class Position:
    """1-based line and column in a YAML file."""

    line: int
    column: int


@dataclass
class LocatedYaml:
    """Plain data from a YAML document plus where each path starts."""

    data: Any
    positions: dict[PathKey, Position] = field(default_factory=dict)
    key_positions: dict[PathKey, Position] = field(default_factory=dict)

    def locate(self, path: Sequence[str | int]) -> Position | None:
        """Position of the key at `path`, else of its value, else of the nearest ancestor."""
        p = tuple(path)
        while True:
            if p in self.key_positions:
                return self.key_positions[p]
            if p in self.positions:
                return self.positions[p]
            if not p:
                return None
            p = p[:-1]


class YamlLocatedError(Exception):
    """A YAML syntax or structure problem with a position."""

    def __init__(self, message: str, position: Position | None) -> None:
        super().__init__(message)
        self.message = message
        self.position = position


_SCALARS = yaml.SafeLoader


def _mark(node: yaml.Node) -> Position:
    return Position(node.start_mark.line + 1, node.start_mark.column + 1)


def load_located(text: str) -> LocatedYaml:
    """Parse one YAML document (safe tags only) into data plus positions."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        pos = Position(mark.line + 1, mark.column + 1) if mark else None
        raise YamlLocatedError(f"invalid YAML: {exc.problem or exc}", pos) from None
    except yaml.YAMLError as exc:
        raise YamlLocatedError(f"invalid YAML: {exc}", None) from None
    except RecursionError:
        # PyYAML's composer recurses once per nesting level, before our own depth check.
        message = f"YAML nested too deeply (limit {_MAX_DEPTH} levels)"
        raise YamlLocatedError(message, None) from None
    out = LocatedYaml(data=None)
    if root is None:
        return out
    constructor = yaml.SafeLoader("")
    out.data = _build(root, (), out, constructor, depth=0, budget=_Budget())
    return out


_MAX_DEPTH = 64
_MAX_NODES = 200_000
"""Values built from one document, aliases expanded: a billion-laughs document (aliases of
aliases) is refused here instead of exhausting memory."""
_PLAIN_TAGS = ("tag:yaml.org,2002:map", "tag:yaml.org,2002:seq")


@dataclass
class _Budget:
    nodes: int = 0


def _build(
    node: yaml.Node,
    path: PathKey,
    out: LocatedYaml,
    ctor: yaml.SafeLoader,
    *,
    depth: int,
    budget: _Budget,
) -> Any:
    if depth > _MAX_DEPTH:
        raise YamlLocatedError(f"YAML nested too deeply (limit {_MAX_DEPTH} levels)", _mark(node))
    budget.nodes += 1
    if budget.nodes > _MAX_NODES:
        raise YamlLocatedError(
            f"YAML document expands to more than {_MAX_NODES} values (alias expansion)",
            _mark(node),
        )
    out.positions.setdefault(path, _mark(node))
    if isinstance(node, (yaml.MappingNode, yaml.SequenceNode)) and node.tag not in _PLAIN_TAGS:
        raise YamlLocatedError(f"unsupported YAML tag {node.tag!r}", _mark(node))
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise YamlLocatedError("mapping keys must be plain scalars", _mark(key_node))
            key = _construct(ctor, key_node, what="key")
            if key == "<<":
                raise YamlLocatedError("YAML merge keys (<<) are not supported", _mark(key_node))
            if not isinstance(key, (str, int, float, bool)) or key is None:
                raise YamlLocatedError("mapping keys must be strings", _mark(key_node))
            skey = key if isinstance(key, str) else str(key)
            if skey in result:
                raise YamlLocatedError(f"duplicate key {skey!r}", _mark(key_node))
            child = (*path, skey)
            out.key_positions[child] = _mark(key_node)
            result[skey] = _build(value_node, child, out, ctor, depth=depth + 1, budget=budget)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [
            _build(item, (*path, i), out, ctor, depth=depth + 1, budget=budget)
            for i, item in enumerate(node.value)
        ]
    return _construct(ctor, node, what="value")


def _construct(ctor: yaml.SafeLoader, node: yaml.Node, *, what: str) -> Any:
    """A scalar's Python value, or a located error. PyYAML's safe constructors fail in many ways
    on hostile scalars (`!!int ''` raises IndexError, `!!timestamp x` AttributeError, `!!float`
    ValueError...): each is one bad value in the user's file, never a crash."""
    try:
        return ctor.construct_object(node, deep=True)
    except yaml.YAMLError as exc:
        raise YamlLocatedError(f"invalid {what}: {exc}", _mark(node)) from None
    except Exception:  # noqa: BLE001 - isolation point: any constructor failure is bad input
        tag = node.tag.rsplit(":", 1)[-1]
        raise YamlLocatedError(f"not a valid !!{tag} {what}", _mark(node)) from None


def format_path(path: Iterable[str | int]) -> str:
    """`("clients", 0, "id")` -> `clients[0].id`."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += ("." if text else "") + part
    return text or "(document)"


def suggest(word: str, candidates: Iterable[str]) -> str:
    """A "did you mean" tail, or an empty string when nothing is close."""
    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def read_text(path: Path) -> str:
    """Read a YAML file as UTF-8 (a BOM is tolerated)."""
    return path.read_bytes().decode("utf-8-sig")
