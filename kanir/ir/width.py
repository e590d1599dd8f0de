"""Width specifications as pykan writes them: ``[2, 5, 1]``, ``[2, [0, 1], 1]``, ``[[2,0],[5,3],[1,0]]``.

``mult_arity`` is an int (every mult node) or a nested list with one list of arities per layer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from kanir.errors import WidthSpecError


@dataclass(frozen=True)
class LayerWidth:
    """One layer of nodes: ``n_sum`` sum nodes, then mult nodes with the given arities."""

    n_sum: int
    arities: tuple[int, ...] = ()

    @property
    def n_mult(self) -> int:
        return len(self.arities)

    @property
    def n_nodes(self) -> int:
        return self.n_sum + self.n_mult

    @property
    def n_subnodes(self) -> int:
        return self.n_sum + sum(self.arities)

    def spec(self):
        """pykan spelling: an int when there are no mult nodes, else [n_sum, n_mult]."""
        return self.n_sum if not self.arities else [self.n_sum, self.n_mult]


def _as_int(v, where: str) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        try:
            import numpy as np

            if isinstance(v, np.integer):
                return int(v)
        except ImportError:  # pragma: no cover
            pass
        raise WidthSpecError(f"{where} must be a non-negative integer, got {v!r}")
    if v < 0:
        raise WidthSpecError(f"{where} must be a non-negative integer, got {v}")
    return v


def parse_width(width, mult_arity=2) -> tuple[LayerWidth, ...]:
    """Normalise a pykan-style width spec into LayerWidth records; raise WidthSpecError if malformed."""
    if isinstance(width, str | bytes) or not isinstance(width, Sequence):
        raise WidthSpecError(f"width must be a list such as [2, 5, 1] or [2, [0, 1], 1], got {width!r}")
    if len(width) < 2:
        raise WidthSpecError(
            f"width needs at least an input and an output layer (e.g. [2, 1]), got {list(width)!r}"
        )
    pairs: list[tuple[int, int]] = []
    for l, w in enumerate(width):
        where = f"width[{l}]"
        if isinstance(w, Sequence) and not isinstance(w, str | bytes):
            if len(w) != 2:
                raise WidthSpecError(f"{where} must be an int or a pair [n_sum, n_mult], got {w!r}")
            n_sum = _as_int(w[0], f"{where}[0] (sum nodes)")
            pairs.append((n_sum, _as_int(w[1], f"{where}[1] (mult nodes)")))
        else:
            pairs.append((_as_int(w, where), 0))
    if pairs[0][1]:
        raise WidthSpecError(f"the input layer width[0] cannot have mult nodes, got {width[0]!r}")
    for l, (s, m) in enumerate(pairs):
        if s + m == 0:
            raise WidthSpecError(f"width[{l}] has no nodes")
    arities = _parse_arity(mult_arity, pairs)
    return tuple(LayerWidth(s, tuple(a)) for (s, _), a in zip(pairs, arities))


def _parse_arity(mult_arity, pairs) -> list[list[int]]:
    if isinstance(mult_arity, int) and not isinstance(mult_arity, bool):
        if mult_arity < 2:
            raise WidthSpecError(f"mult_arity must be at least 2, got {mult_arity}")
        return [[mult_arity] * m for _, m in pairs]
    if not isinstance(mult_arity, Sequence) or len(mult_arity) != len(pairs):
        raise WidthSpecError(
            f"mult_arity must be an int >= 2 or a list with one list of arities per layer "
            f"({len(pairs)} layers), got {mult_arity!r}"
        )
    out = []
    for l, ((_, m), ar) in enumerate(zip(pairs, mult_arity)):
        if isinstance(ar, int) and not isinstance(ar, bool):
            ar = [ar] * m
        if not isinstance(ar, Sequence) or len(ar) != m:
            raise WidthSpecError(
                f"mult_arity[{l}] must list one arity per mult node ({m} in layer {l}), got {ar!r}"
            )
        row = []
        for a in ar:
            a = _as_int(a, f"mult_arity[{l}] entry")
            if a < 2:
                raise WidthSpecError(f"mult_arity[{l}] has arity {a}; a mult node needs arity >= 2")
            row.append(a)
        out.append(row)
    return out


def width_spec(layers: Sequence[LayerWidth]) -> list:
    """The pykan-style width list for LayerWidth records."""
    return [lw.spec() for lw in layers]


def arity_spec(layers: Sequence[LayerWidth]):
    """The mult_arity argument reproducing these layers (an int when uniform)."""
    ars = {a for lw in layers for a in lw.arities}
    if len(ars) <= 1:
        return ars.pop() if ars else 2
    return [list(lw.arities) for lw in layers]
