"""Token ids of a canary's candidates without running the tokenizer on each one (FMFL-P03).

Tokenizing 10^5 short candidates costs as much as scoring them (~30 us each through a fast
tokenizer), yet they differ only in a few slot characters. With a tokenizer that keeps each slot
character (or choice option) in tokens of its own, as Llama-style tokenizers do with digits, a
candidate's ids are the true canary's ids with each slot position's *window* of tokens replaced:

- units: each character of a `{digits:N}` / `{letters:N}` slot, and each `{choice:...}` slot;
- the tokenizer is run on the true canary and on every one-unit change of it, which gives each
  unit's window in the true canary's ids and the ids each of its values puts there;
- a candidate's ids are composed from those pieces.

Composition is used only when it reproduces the tokenizer: the windows must be disjoint and in
order, every value pair of every two neighbouring units (where BPE merges across a boundary would
show) and `_RANDOM_CHECKS` random candidates must compose to exactly the tokenizer's ids.
Otherwise every candidate is tokenized (GPT-2-style tokenizers, which merge runs of digits, land
here). Small spaces are always tokenized.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fmfl_audit.checkers.privacy._lm_scoring import LoadedModel, encode

if TYPE_CHECKING:
    from fmfl_audit.checkers.privacy.canary import Canary

_COMPOSE_ABOVE = 4096
"""Spaces up to this size are tokenized candidate by candidate (checking would cost as much)."""
_RANDOM_CHECKS = 256
_MAX_PAIR_CHECKS = 1024
"""Value pairs checked per pair of neighbouring units (all of them when there are fewer)."""

Fill = tuple[str, ...]


@dataclass(frozen=True)
class _Unit:
    """One independently varying part of a fill: a character of a slot, or a whole choice."""

    slot: int
    pos: int | None
    values: tuple[str, ...]

    def get(self, fill: Fill) -> str:
        value = fill[self.slot]
        return value if self.pos is None else value[self.pos]

    def put(self, fill: Fill, value: str) -> Fill:
        old = fill[self.slot]
        new = value if self.pos is None else old[: self.pos] + value + old[self.pos + 1 :]
        return (*fill[: self.slot], new, *fill[self.slot + 1 :])


def _units(canary: Canary) -> list[_Unit]:
    units: list[_Unit] = []
    for i, slot in enumerate(canary.slots):
        if slot.options:
            units.append(_Unit(i, None, slot.options))
        else:
            units.extend(_Unit(i, pos, tuple(slot.alphabet)) for pos in range(slot.n))
    return units


@dataclass(frozen=True)
class _Composer:
    """The true canary's ids cut into gaps around unit windows, and each value's window ids."""

    units: tuple[_Unit, ...]
    gaps: tuple[tuple[int, ...], ...]
    """len(units) + 1 runs of ids that no unit changes."""
    pieces: tuple[tuple[tuple[int, ...], ...], ...]
    """pieces[u][k]: the ids unit u's k-th value puts in its window."""

    def ids(self, fill: Fill) -> list[int]:
        """One candidate's ids."""
        out = list(self.gaps[0])
        for unit, piece, gap in zip(self.units, self.pieces, self.gaps[1:], strict=True):
            out += piece[unit.values.index(unit.get(fill))]
            out += gap
        return out

    def rows(self, index: Any) -> Any:
        """Ids of the candidates whose value indices (one column per unit) are `index`: one
        array row each when every unit's values have windows of one length, else lists."""
        import numpy as np

        n = len(index)
        if any(len({len(x) for x in piece}) > 1 for piece in self.pieces):
            head = list(self.gaps[0])
            return [
                head + [t for u, k in enumerate(row) for t in self.pieces[u][k] + self.gaps[u + 1]]
                for row in index.tolist()
            ]
        cols = [np.broadcast_to(np.asarray(self.gaps[0], dtype=np.int64), (n, len(self.gaps[0])))]
        for u, piece in enumerate(self.pieces):
            cols.append(np.asarray(piece, dtype=np.int64).reshape(len(piece), -1)[index[:, u]])
            gap = np.asarray(self.gaps[u + 1], dtype=np.int64)
            cols.append(np.broadcast_to(gap, (n, len(gap))))
        return np.concatenate(cols, axis=1)


class CandidateIds:
    """Token ids of a canary's candidates (composed when the tokenizer allows)."""

    def __init__(self, lm: LoadedModel, canary: Canary, *, max_length: int) -> None:
        self._lm = lm
        self._canary = canary
        self._max_length = max_length
        self._composer = (
            _build_composer(lm, canary, max_length) if canary.space > _COMPOSE_ABOVE else None
        )

    @property
    def composed(self) -> bool:
        """True when ids are composed rather than tokenized candidate by candidate."""
        return self._composer is not None

    def every(self) -> tuple[Any, int]:
        """Ids of every candidate, and the true canary's position among them."""
        import numpy as np

        canary = self._canary
        if self._composer is None:
            fills = list(itertools.product(*(slot.values() for slot in canary.slots)))
            return self.of(fills), fills.index(canary.secret)
        units = self._composer.units
        shape = tuple(len(u.values) for u in units)
        index = np.indices(shape).reshape(len(shape), -1).T
        truth = tuple(u.values.index(u.get(canary.secret)) for u in units)
        return self._composer.rows(index), int(np.ravel_multi_index(truth, shape))

    def of(self, fills: Sequence[Fill]) -> Any:
        """Ids of these candidates, in order."""
        import numpy as np

        if self._composer is None:
            return _tokenize(self._lm, self._canary, fills, self._max_length)
        lookup = [{v: k for k, v in enumerate(u.values)} for u in self._composer.units]
        index = np.array(
            [
                [lk[u.get(f)] for u, lk in zip(self._composer.units, lookup, strict=True)]
                for f in fills
            ],
            dtype=np.int64,
        )
        return self._composer.rows(index.reshape(len(fills), len(lookup)))


def _tokenize(lm: LoadedModel, canary: Canary, fills: Sequence[Fill], max_length: int) -> Any:
    return encode(lm, [canary.render(f) for f in fills], max_length=max_length)


def _build_composer(lm: LoadedModel, canary: Canary, max_length: int) -> _Composer | None:
    """The composer, or None when composed ids would differ from the tokenizer's."""
    import numpy as np

    units = _units(canary)
    truth = canary.secret
    (ref,) = _tokenize(lm, canary, [truth], max_length)
    windows: list[tuple[int, int]] = []
    variants: list[list[list[int]]] = []
    for unit in units:
        others = [v for v in unit.values if v != unit.get(truth)]
        toks = _tokenize(lm, canary, [unit.put(truth, v) for v in others], max_length)
        head = min(_common_prefix(ref, t) for t in toks)
        tail = min(min(_common_suffix(ref, t), min(len(ref), len(t)) - head) for t in toks)
        windows.append((head, len(ref) - tail))
        seen = {v: t[head : len(t) - tail] for v, t in zip(others, toks, strict=True)}
        seen[unit.get(truth)] = ref[head : len(ref) - tail]
        variants.append([seen[v] for v in unit.values])
    bounds = [0, *itertools.chain.from_iterable(windows), len(ref)]
    if any(a > b for a, b in itertools.pairwise(bounds)):
        return None  # windows overlap: one unit's value changes another's tokens
    composer = _Composer(
        units=tuple(units),
        gaps=tuple(tuple(ref[bounds[2 * i] : bounds[2 * i + 1]]) for i in range(len(units) + 1)),
        pieces=tuple(tuple(tuple(t) for t in values) for values in variants),
    )
    rng = np.random.default_rng(0)
    checks: list[Fill] = []
    for left, right in itertools.pairwise(units):
        pairs = list(itertools.product(left.values, right.values))
        if len(pairs) > _MAX_PAIR_CHECKS:
            pairs = [pairs[int(i)] for i in rng.choice(len(pairs), _MAX_PAIR_CHECKS, False)]
        checks += [right.put(left.put(truth, a), b) for a, b in pairs]
    checks += [tuple(s.pick(rng) for s in canary.slots) for _ in range(_RANDOM_CHECKS)]
    expected = _tokenize(lm, canary, checks, max_length)
    if any(composer.ids(f) != e for f, e in zip(checks, expected, strict=True)):
        return None
    return composer


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def _common_suffix(a: Sequence[int], b: Sequence[int]) -> int:
    return _common_prefix(a[::-1], b[::-1])
