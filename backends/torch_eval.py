"""The one evaluator of per-edge values: what every activation edge of a layer outputs on a batch.

Forward with ``keep_acts``, the data-driven passes (attribution, pruning, swap, expansion),
symbolic fitting, pykan's activation attributes and the diagrams all read edge values from here,
so they agree to the last bit. A *layer* is a :class:`~kanir.backends.torch.KANLayer` or an
:class:`EdgeTable` (the same tensors built from IR activations). Everything is vectorised: the
spline branch is one batched contraction, the symbolic branch one call per distinct library
function (never a Python loop over edges).

Edge (i, j) is ``mask_sp * (scale_base * base(x_i) + scale_sp * curve(x_i))`` plus, when its
symbolic mask is on, ``c * f(a * x_i + b) + d`` (``f``'s singularity-safe form on request).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import torch

from kanir.errors import GraphError
from kanir.ir.activation import Activation
from kanir.ir.bspline import dense_bases, uniform_grid
from kanir.ir.library import BASE_FUNCTIONS, LIBRARY

__all__ = ["EdgeParts", "EdgeTable", "PARTS", "add_symbolic", "edge_parts", "edge_values", "spline_edges",
           "symbolic_edges", "symbolic_groups", "symbolic_terms"]

#: what :func:`edge_values` can return: the spline branch, the symbolic branch or their sum
PARTS = ("sum", "spline", "symbolic")


class EdgeParts(NamedTuple):
    """Per-edge values of one layer, each (batch, n_in, n_out): the spline branch (residual
    included, masked), the symbolic branch, and optionally the bare B-spline sum
    ``sum_g coef[g] B_g(x)`` of every edge (pykan's ``spline_postsplines``; unmasked)."""

    spline: torch.Tensor
    symbolic: torch.Tensor
    curve: torch.Tensor | None = None

    @property
    def total(self) -> torch.Tensor:
        """Every edge's value: spline plus symbolic branch."""
        return self.spline + self.symbolic


def symbolic_groups(mask_sym: torch.Tensor, sym_funs: Sequence[Sequence[str]]):
    """(index (2, E) of the active symbolic edges grouped by function, segments ``(canonical
    name, start, end)`` into it), functions in sorted order. ``sym_funs`` is read, not changed."""
    rows: dict[str, list[tuple[int, int]]] = {}
    on = mask_sym.detach().cpu().numpy() != 0
    for i, j in zip(*np.nonzero(on)):
        rows.setdefault(LIBRARY.canonical_name(sym_funs[i][j]), []).append((int(i), int(j)))
    segs, flat, pos = [], [], 0
    for name in sorted(rows):
        flat += rows[name]
        segs.append((name, pos, pos + len(rows[name])))
        pos += len(rows[name])
    index = torch.tensor(flat, dtype=torch.long).reshape(-1, 2).T.contiguous()
    return index.to(mask_sym.device), segs


def spline_edges(layer, x: torch.Tensor, base: torch.Tensor | None = None,
                 curve: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(spline branch of every edge (batch, n_in, n_out), the bare B-spline sum when ``curve``
    else None). ``base``: ``base_fun(x)`` when the caller has it already."""
    B = dense_bases(x, layer.grid, layer.k)
    bare = torch.einsum("big,iog->bio", B, layer.coef)
    if base is None:
        base = BASE_FUNCTIONS[layer.base_fun].torch(x)
    m = layer.mask_sp
    # the residual term first: its layout (contiguous, batch-major) is the result's; the
    # einsum's is batched over inputs. With autograd nothing is done in place.
    spline = base.unsqueeze(-1) * (layer.scale_base * m)
    if torch.is_grad_enabled():
        spline = spline + bare * (layer.scale_sp * m)
    else:
        spline += bare * (layer.scale_sp * m) if curve else bare.mul_(layer.scale_sp * m)
    return spline, (bare if curve else None)


def symbolic_terms(layer, x: torch.Tensor, safe: bool = False,
                   y_th: float = 1e3) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Per library function used by the layer: (input indices, output indices, values (batch,
    E)) of its active symbolic edges, ``c * f(a*x + b) + d`` with ``f``'s safe form when
    ``safe``. One vectorised call per function; the forward pass sums these into subnodes."""
    index = layer.sym_index
    in_place = not torch.is_grad_enabled()  # x[:, ii] is a fresh copy: update it in place
    for name, s, e in layer.sym_segments:
        ii, jj = index[0, s:e], index[1, s:e]
        p = layer.sym_affine[ii, jj]
        z = x[:, ii].mul_(p[:, 0]).add_(p[:, 1]) if in_place else x[:, ii] * p[:, 0] + p[:, 1]
        fn = LIBRARY[name]
        fz = fn.safe_torch(z, y_th) if safe else fn.torch(z)
        yield ii, jj, fz * p[:, 2] + p[:, 3]


def add_symbolic(layer, x: torch.Tensor, out: torch.Tensor, safe: bool = False,
                 y_th: float = 1e3) -> torch.Tensor:
    """``out`` (batch, n_in, n_out) plus the symbolic branch of every edge (in place unless
    autograd records). Each edge is written once, so the sum is exactly ``out + value``."""
    flat = out.reshape(out.shape[0], -1)
    if torch.is_grad_enabled():
        flat = flat.clone()
    for ii, jj, v in symbolic_terms(layer, x, safe, y_th):
        flat = flat.index_add_(1, ii * layer.n_out + jj, v)
    return flat.view(out.shape)


def symbolic_edges(layer, x: torch.Tensor, safe: bool = False, y_th: float = 1e3) -> torch.Tensor:
    """The symbolic branch of every edge, (batch, n_in, n_out); zero where none is active."""
    return add_symbolic(layer, x, x.new_zeros(x.shape[0], layer.n_in, layer.n_out), safe, y_th)


def edge_parts(layer, x: torch.Tensor, safe: bool = False, y_th: float = 1e3,
               curve: bool = False) -> EdgeParts:
    """Spline and symbolic branch of every edge of ``layer`` on ``x`` (batch, n_in), plus the
    bare B-spline sums with ``curve``. The spline branch is skipped (zeros) when no spline is
    active and no curve is asked for."""
    spline, bare = _active_spline_edges(layer, x, curve)
    return EdgeParts(spline, symbolic_edges(layer, x, safe, y_th), bare)


def _active_spline_edges(layer, x: torch.Tensor, curve: bool):
    """:func:`spline_edges`, or zeros without evaluating bases when no spline is active."""
    if curve or bool((layer.mask_sp != 0).any()):
        return spline_edges(layer, x, curve=curve)
    return x.new_zeros(x.shape[0], layer.n_in, layer.n_out), None


def edge_values(layer, x: torch.Tensor, part: str = "sum", safe: bool = False,
                y_th: float = 1e3) -> torch.Tensor:
    """Per-edge values (batch, n_in, n_out) of ``layer`` on ``x``: ``part`` is "sum" (the edge
    function), "spline" or "symbolic" (one branch); ``safe`` uses the singularity-safe forms
    of symbolic functions, bounded by ``y_th``. Equal to ``edge_parts(...).total`` bit for bit."""
    if part not in PARTS:
        raise GraphError(f"part must be one of {', '.join(PARTS)}, got {part!r}")
    if part == "symbolic":
        return symbolic_edges(layer, x, safe, y_th)
    spline = _active_spline_edges(layer, x, False)[0]
    return spline if part == "spline" else add_symbolic(layer, x, spline, safe, y_th)


# ---------------------------------------------------------------------------- IR layers
@dataclass
class EdgeTable:
    """A layer's edges as the tensors the evaluator reads, built from IR activations (for
    callers that hold activations, not a lowered module: e.g. one edge's curve in a diagram).

    Same names and shapes as :class:`~kanir.backends.torch.KANLayer`'s: ``grid`` (n_in,
    G+2k+1), ``coef`` (n_in, n_out, G+k), ``scale_base``/``scale_sp``/``mask_sp``/``mask_sym``
    (n_in, n_out), ``sym_affine`` (n_in, n_out, 4), ``sym_funs`` names.
    """

    grid: torch.Tensor
    k: int
    base_fun: str
    coef: torch.Tensor
    scale_base: torch.Tensor
    scale_sp: torch.Tensor
    mask_sp: torch.Tensor
    mask_sym: torch.Tensor
    sym_affine: torch.Tensor
    sym_funs: list[list[str]]
    sym_index: torch.Tensor = field(init=False)
    sym_segments: list = field(init=False)

    def __post_init__(self) -> None:
        self.sym_index, self.sym_segments = symbolic_groups(self.mask_sym, self.sym_funs)

    @property
    def n_in(self) -> int:
        return self.coef.shape[0]

    @property
    def n_out(self) -> int:
        return self.coef.shape[1]

    @classmethod
    def from_activations(cls, acts: Sequence[Sequence[Activation | None]],
                         dtype=torch.float64) -> EdgeTable:
        """The table of an (n_in, n_out) grid of activations (None: no edge). Splines must share
        (G, k) and base function; splines leaving one input share its knots (the last read wins,
        as in ``lower``). Without any spline the table holds an unused placeholder grid."""
        n_in, n_out = len(acts), len(acts[0]) if acts else 0
        splines = [a.spline for row in acts for a in row if a is not None and a.spline is not None]
        G, k, base_fun = (splines[0].G, splines[0].k, splines[0].base_fun) if splines else (1, 1, "silu")
        if any((sp.G, sp.k, sp.base_fun) != (G, k, base_fun) for sp in splines):
            raise GraphError("the splines of one layer must share grid size, order and base function")
        grid = uniform_grid(G, k, -1.0, 1.0, max(n_in, 1), torch.float64).numpy().copy()
        coef = np.zeros((n_in, n_out, G + k))
        sb, ssp = np.zeros((n_in, n_out)), np.ones((n_in, n_out))
        msp, msym = np.zeros((n_in, n_out)), np.zeros((n_in, n_out))
        aff = np.tile(np.array([1.0, 0.0, 1.0, 0.0]), (n_in, n_out, 1))
        funs = [["0"] * n_out for _ in range(n_in)]
        for i, row in enumerate(acts):
            for j, act in enumerate(row):
                sp, sy = (None, None) if act is None else (act.spline, act.symbolic)
                if sp is not None:
                    grid[i], coef[i, j] = sp.grid, sp.coef
                    sb[i, j], ssp[i, j], msp[i, j] = sp.scale_base, sp.scale_sp, float(sp.active)
                if sy is not None:
                    msym[i, j], aff[i, j] = 1.0, sy.params
                    funs[i][j] = LIBRARY.canonical_name(sy.fun)
        t = lambda a: torch.as_tensor(np.asarray(a, dtype=np.float64), dtype=dtype)
        return cls(t(grid), int(k), base_fun, t(coef), t(sb), t(ssp), t(msp), t(msym), t(aff), funs)

    @classmethod
    def from_activation(cls, act: Activation, dtype=torch.float64) -> EdgeTable:
        """The 1 x 1 table of a single edge."""
        return cls.from_activations([[act]], dtype)
