"""The torch backend: ``lower(graph) -> KANModule`` and ``lift(module) -> KanGraph``, lossless.

Every tensor is a registered parameter or buffer, so ``module.to(device/dtype)`` moves all of
it and forward creates nothing on a default device. Splines are contracted in one matmul over
sparse-evaluated bases; symbolic edges are evaluated grouped by function (one vectorized call
per distinct function, never a loop over edges).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from kanir.backends.edge_std import edge_std, edge_std_reference, spline_and_std
from kanir.errors import GraphError
from kanir.ir.activation import Activation, SplinePart, SymbolicPart
from kanir.ir.bspline import dense_bases, dense_from_local, local_eval, spline_contract, uniform_grid
from kanir.ir.graph import KanGraph, N, S, edge_items, gc_paused
from kanir.ir.library import BASE_FUNCTIONS, LIBRARY
from kanir.ir.width import LayerWidth

from .torch_eval import spline_edges, symbolic_groups, symbolic_terms

#: base function name -> torch form, read from the library's base function table
BASE_FUNS = {name: fn.torch for name, fn in BASE_FUNCTIONS.items()}

_DTYPES = {"float32": torch.float32, "float64": torch.float64}


def dtype_name(dtype: torch.dtype) -> str:
    for k, v in _DTYPES.items():
        if v == dtype:
            return k
    raise GraphError(f"kanir supports float32 and float64, got {dtype}")


def torch_dtype(name: str) -> torch.dtype:
    try:
        return _DTYPES[name]
    except KeyError:
        raise GraphError(f"kanir supports dtypes 'float32' and 'float64', got {name!r}") from None


class KANLayer(nn.Module):
    """Activations from ``n_in`` nodes to the next layer's subnodes, then subnode/node affines
    and multiplication nodes.

    Per edge (i, j): ``has_spline`` (the IR has a spline part), ``mask_sp`` (it is active),
    ``mask_sym`` (a symbolic part is active, function ``sym_funs[i][j]``).
    """

    def __init__(self, n_in: int, out: LayerWidth, G: int, k: int, dtype=torch.float64,
                 base_fun: str = "silu", grid_range=(-1.0, 1.0)):
        super().__init__()
        if base_fun not in BASE_FUNS:
            raise GraphError(f"unknown base function {base_fun!r}; choose one of {sorted(BASE_FUNS)}")
        self.n_in, self.out_width, self.k, self.base_fun = n_in, out, int(k), base_fun
        n_out = out.n_subnodes
        self.n_out = n_out
        f = dict(dtype=dtype)
        self.register_buffer("grid", uniform_grid(G, k, grid_range[0], grid_range[1], n_in, dtype))
        self.coef = nn.Parameter(torch.zeros(n_in, n_out, G + k, **f))
        self.scale_base = nn.Parameter(torch.zeros(n_in, n_out, **f))
        self.scale_sp = nn.Parameter(torch.ones(n_in, n_out, **f))
        self.register_buffer("has_spline", torch.zeros(n_in, n_out, dtype=torch.bool))
        self.register_buffer("mask_sp", torch.zeros(n_in, n_out, **f))
        self.register_buffer("mask_sym", torch.zeros(n_in, n_out, **f))
        self.sym_affine = nn.Parameter(torch.tensor([1.0, 0.0, 1.0, 0.0], **f).repeat(n_in, n_out, 1))
        self.sym_funs = [["0"] * n_out for _ in range(n_in)]
        # derived from mask_sym/sym_funs by refresh_symbolic, so not part of the state dict
        self.register_buffer("sym_index", torch.zeros(2, 0, dtype=torch.long), persistent=False)
        self._sym_segments: list[tuple[str, int, int]] = []
        self._any_spline = False
        self.subnode_scale = nn.Parameter(torch.ones(n_out, **f), requires_grad=False)
        self.subnode_bias = nn.Parameter(torch.zeros(n_out, **f), requires_grad=False)
        self.node_scale = nn.Parameter(torch.ones(out.n_nodes, **f), requires_grad=False)
        self.node_bias = nn.Parameter(torch.zeros(out.n_nodes, **f), requires_grad=False)
        self._build_mult_index()
        self.singularity_avoiding = False
        self.y_th = 1e3
        self.keep_acts = False
        self.acts: dict | None = None

    # ------------------------------------------------------------------ structure
    @property
    def G(self) -> int:
        return self.grid.shape[1] - 2 * self.k - 1

    def _build_mult_index(self) -> None:
        """Index buffers of the mult nodes (derived from ``out_width``, so not persistent)."""
        ow = self.out_width
        dev = self.grid.device
        groups: dict[int, list[list[int]]] = {}
        j = ow.n_sum
        order = []
        for m, a in enumerate(ow.arities):
            groups.setdefault(a, []).append(list(range(j, j + a)))
            order.append((a, len(groups[a]) - 1, m))
            j += a
        self._mult_arities = sorted(groups)
        for a in self._mult_arities:
            self.register_buffer(f"mult_idx_{a}", torch.tensor(groups[a], dtype=torch.long, device=dev),
                                 persistent=False)
        # position of each mult node's product in the concatenation of arity groups
        offsets, pos = {}, 0
        for a in self._mult_arities:
            offsets[a] = pos
            pos += len(groups[a])
        perm = [offsets[a] + r for a, r, _ in order]
        self.register_buffer("mult_perm", torch.tensor(perm, dtype=torch.long, device=dev),
                             persistent=False)

    def refresh_symbolic(self) -> None:
        """Rebuild cached structure after editing masks/functions: the function-grouped index of
        active symbolic edges and the has-any-spline flag (kept on the host, so forward never
        synchronises with the device)."""
        self._any_spline = bool(self.has_spline.detach().cpu().any())
        # "0" edges stay in the groups: they still add their constant d
        idx, self._sym_segments = symbolic_groups(self.mask_sym, self.sym_funs)
        for name, s, e in self._sym_segments:
            for i, j in idx[:, s:e].T.tolist():
                self.sym_funs[i][j] = name
        self.sym_index = idx.to(self.grid.device)

    @property
    def sym_segments(self) -> list[tuple[str, int, int]]:
        """(function, start, end) slices of ``sym_index``: the active symbolic edges grouped by
        function (what the evaluator in ``backends.torch_eval`` reads)."""
        return self._sym_segments

    # ------------------------------------------------------------------ nn.Module state
    _INDEX_DTYPES = {"has_spline": torch.bool, "sym_index": torch.long, "mult_perm": torch.long}

    def _apply(self, fn, recurse=True):
        """nn.Module.type() casts every tensor, index buffers too: keep those integer/bool."""
        super()._apply(fn, recurse)
        for name, buf in self._buffers.items():
            want = self._INDEX_DTYPES.get(name, torch.long if name.startswith("mult_idx_") else None)
            if buf is not None and want is not None and buf.dtype != want:
                self._buffers[name] = buf.to(want)
        return self

    def get_extra_state(self) -> dict:
        """The non-tensor state a state dict must carry: symbolic function names, base function."""
        return {"sym_funs": [list(row) for row in self.sym_funs], "base_fun": self.base_fun}

    def set_extra_state(self, state: dict) -> None:
        """Restore :meth:`get_extra_state` (called by load_state_dict after the tensors) and
        rebuild the derived index buffers, which may be garbage after ``to_empty``."""
        funs, base_fun = state.get("sym_funs"), state.get("base_fun", self.base_fun)
        if (not isinstance(funs, list) or len(funs) != self.n_in
                or any(not isinstance(r, list) or len(r) != self.n_out for r in funs)):
            raise GraphError(f"state dict's symbolic function table does not fit a layer with "
                             f"{self.n_in} inputs and {self.n_out} subnodes")
        if base_fun not in BASE_FUNS:
            raise GraphError(f"state dict names unknown base function {base_fun!r}")
        self.sym_funs = [[str(f) for f in row] for row in funs]
        self.base_fun = base_fun
        self._build_mult_index()
        self.refresh_symbolic()

    # ------------------------------------------------------------------ forward
    def spline_weights(self):
        """(base weights (in, out), spline coefficients as an (in*(G+k), out) matrix)."""
        m = self.mask_sp
        w_base = self.scale_base * m
        c = self.coef * (self.scale_sp * m).unsqueeze(-1)
        return w_base, c.permute(0, 2, 1).reshape(-1, self.n_out)

    def local(self, x: torch.Tensor, fixed: bool = False):
        """The B-spline record of x (``kanir.ir.bspline.LocalBases``), or None when this layer has
        no active spline or the contraction evaluates bases its own way (k = 0). ``fixed``: x
        is data that several evaluations share (a training step), so the dense basis matrix
        and the base function values are kept too."""
        if not self._any_spline or self.k == 0:
            return None
        rec = local_eval(x, self.grid, self.k, deriv=x.requires_grad, dense=fixed)
        if fixed:
            rec = rec._replace(base=BASE_FUNS[self.base_fun](x.detach()))
        return rec

    def _spline(self, x: torch.Tensor, local=None) -> torch.Tensor:
        fixed = local is not None and local.base is not None and not x.requires_grad
        base = local.base if fixed else BASE_FUNS[self.base_fun](x)
        w_base, c = self.spline_weights()
        y = base @ w_base + spline_contract(x, self.grid, c, self.k, local)
        if self.keep_acts:
            self.acts["spline"] = spline_edges(self, x, base)[0]
        return y

    def _symbolic(self, x: torch.Tensor) -> torch.Tensor:
        y = x.new_zeros(x.shape[0], self.n_out)
        if self.keep_acts:
            per_edge = x.new_zeros(x.shape[0], self.n_in * self.n_out)
        for ii, jj, v in symbolic_terms(self, x, self.singularity_avoiding, self.y_th):
            y = y.index_add(1, jj, v)
            if self.keep_acts:
                per_edge = per_edge.index_add(1, ii * self.n_out + jj, v)
        if self.keep_acts:
            self.acts["symbolic"] = per_edge.view(x.shape[0], self.n_in, self.n_out)
        return y

    def combine(self, y: torch.Tensor) -> torch.Tensor:
        """Subnode affine, multiplication nodes, node affine: subnodes -> next layer's nodes."""
        y = y * self.subnode_scale + self.subnode_bias
        ow = self.out_width
        if ow.n_mult:
            prods = [y[:, getattr(self, f"mult_idx_{a}")].prod(dim=-1) for a in self._mult_arities]
            mult = torch.cat(prods, dim=1)[:, self.mult_perm]
            y = torch.cat([y[:, : ow.n_sum], mult], dim=1)
        return y * self.node_scale + self.node_bias

    def forward(self, x: torch.Tensor, local=None) -> torch.Tensor:
        """Next layer's node values; ``local`` (from :meth:`local` on this x) saves evaluating
        the bases again when the caller needs them too (the training regulariser)."""
        return self._forward(x, local)

    def forward_with_std(self, x: torch.Tensor, local=None):
        """(next layer's node values, (in, out) std over the batch of every spline edge, or None
        without splines): the training regulariser's statistics from the same per-edge
        activations as the output where the layer is small (``DIRECT_STD_LIMIT``)."""
        if not self._any_spline:
            return self._forward(x, local), None
        if (self.keep_acts or local is None
                or x.shape[0] * self.n_in * self.n_out > self.DIRECT_STD_LIMIT):
            return self._forward(x, local), self.spline_edge_std(x, local)
        y_sp, std = spline_and_std(x, self._edge_weights(), self.grid, self.k,
                                   BASE_FUNS[self.base_fun], local)
        return self._forward(x, local, y_sp), std

    def _forward(self, x: torch.Tensor, local=None, spline_y=None) -> torch.Tensor:
        if self.keep_acts:
            self.acts = {"input": x}
        y = x.new_zeros(x.shape[0], self.n_out)
        if self._any_spline:
            y = y + (self._spline(x, local) if spline_y is None else spline_y)
        elif self.keep_acts:
            self.acts["spline"] = x.new_zeros(x.shape[0], self.n_in, self.n_out)
        if self._sym_segments:
            y = y + self._symbolic(x)
        elif self.keep_acts:
            self.acts["symbolic"] = x.new_zeros(x.shape[0], self.n_in, self.n_out)
        if self.keep_acts:
            self.acts["subnodes"] = y
        out = self.combine(y)
        if self.keep_acts:
            self.acts["output"] = out
        return out

    # ------------------------------------------------------------------ statistics
    def _edge_weights(self) -> torch.Tensor:
        """(in, out, G+k+1): every edge's spline coefficients and base weight, masked."""
        m = self.mask_sp
        return torch.cat([self.coef * (self.scale_sp * m).unsqueeze(-1),
                          (self.scale_base * m).unsqueeze(-1)], dim=-1)

    #: largest batch * in * out for which ``spline_edge_std`` forms per-edge activations
    DIRECT_STD_LIMIT = 1 << 20

    def spline_edge_std(self, x: torch.Tensor, local=None) -> torch.Tensor:
        """Standard deviation (unbiased, as pykan's torch.std) over the batch of every edge's
        spline branch, shape (in, out). ``local``: as in :meth:`forward`.

        Small layers (batch * in * out up to ``DIRECT_STD_LIMIT``) form the per-edge activations
        in one fused autograd node (kanir.backends.edge_std); larger ones use per-input covariances of
        the features [bases, base_fun(x)], so the (batch, in, out) tensor is never formed.
        """
        w = self._edge_weights()
        base = BASE_FUNS[self.base_fun]
        n = x.shape[0]
        if n * self.n_in * self.n_out <= self.DIRECT_STD_LIMIT:
            if local is None:
                return edge_std_reference(x, w, self.grid, self.k, base)
            return edge_std(x, w, self.grid, self.k, base, local)
        if local is None or (x.requires_grad and local[2] is None):
            B = dense_bases(x, self.grid, self.k)
        else:
            B = dense_from_local(x, self.grid, self.k, local)
        phi = torch.cat([B, base(x).unsqueeze(-1)], dim=-1)  # (b, in, P+1)
        phi = phi - phi.mean(dim=0, keepdim=True)
        cov = torch.bmm(phi.permute(1, 2, 0), phi.transpose(0, 1)) / max(n - 1, 1)
        var = (torch.bmm(w, cov) * w).sum(-1)
        return torch.sqrt(var.clamp_min(0) + 1e-16)

    def extra_repr(self) -> str:
        return f"in={self.n_in}, subnodes={self.n_out}, G={self.G}, k={self.k}"


class KANModule(nn.Module):
    """A stack of KANLayers; the lowered form of a layered KanGraph.

    ``meta`` holds the graph's metadata; ``annotations`` everything else a graph carries that
    the tensors do not: ``{"nodes": {node id: extra attributes such as exact, score},
    "edges": {(l, i, j): {"meta": Activation.meta, "attrs": edge attributes such as score}}}``.
    :func:`lift` gives them back, so model -> graph -> model loses nothing.
    """

    #: edge and node attributes measured on the parameters (attribution): dropped by training
    ANALYSIS_KEYS = ("score", "std", "mean", "l1")

    def __init__(self, layers: list[KANLayer], meta: dict, annotations: dict | None = None):
        super().__init__()
        self.layers = nn.ModuleList(layers)
        self.meta = dict(meta)
        self.annotations = annotations if annotations is not None else {"nodes": {}, "edges": {}}

    def drop_analysis(self) -> None:
        """Forget attribution results carried from a graph (they describe older parameters)."""
        ann = getattr(self, "annotations", None)
        if not ann:
            return
        for store in (ann["nodes"], {k: v["attrs"] for k, v in ann["edges"].items()}):
            for attrs in store.values():
                for key in self.ANALYSIS_KEYS:
                    attrs.pop(key, None)

    @property
    def dtype(self) -> torch.dtype:
        return self.layers[0].grid.dtype

    @property
    def device(self) -> torch.device:
        return self.layers[0].grid.device

    @property
    def n_in(self) -> int:
        return self.layers[0].n_in

    @property
    def n_out(self) -> int:
        return self.layers[-1].out_width.n_nodes

    def check_dtype(self) -> None:
        """Raise unless the module is float32/float64 (``.half()``/``.bfloat16()`` are allowed by
        torch but lose the knots' and symbolic constants' precision: outputs off by percents)."""
        if self.dtype not in (torch.float32, torch.float64):
            raise GraphError(f"kanir supports float32 and float64, but this model is {self.dtype} "
                             f"(after .half()/.bfloat16()?): float16 and bfloat16 are unsupported; "
                             f"convert back with model.float() or model.double()")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_dtype()
        for layer in self.layers:
            x = layer(x)
        return x

    def set_keep_acts(self, flag: bool) -> None:
        for layer in self.layers:
            layer.keep_acts = flag
            if not flag:
                layer.acts = None

    def set_singularity_avoiding(self, flag: bool, y_th: float = 1e3) -> None:
        for layer in self.layers:
            layer.singularity_avoiding, layer.y_th = flag, y_th


# ---------------------------------------------------------------------- lower / lift
#: node attributes the tensors and the layer structure hold; any other key is an annotation
_NODE_KEYS = frozenset({"kind", "layer", "index", "scale", "bias", "arity"})


def lower(graph: KanGraph, keep_device_of: KANModule | None = None, *,
          checked: bool = False, dtype: str | None = None) -> KANModule:
    """Build the torch module of a layered KanGraph (validated first, unless ``checked`` says
    the caller has just run ``graph.check()``, as the pass manager does): see :func:`_lower`.
    ``dtype`` ('float32'/'float64') overrides the graph's, without copying the graph."""
    with gc_paused():
        return _lower(graph, keep_device_of, checked, dtype)


def _lower(graph: KanGraph, keep_device_of: KANModule | None = None,
           checked: bool = False, dtype_name: str | None = None) -> KANModule:
    """Build the torch module of a layered KanGraph (validated first). Lossless: what the
    tensors cannot hold (activation meta such as exact constants, node and edge attributes such
    as ``exact`` and ``score``) goes to ``module.annotations``; graph metadata to ``module.meta``."""
    if graph.level != "layered":
        raise GraphError("lower() needs a layered KanGraph; run kanir.passes.canonicalize first")
    if not checked:
        graph.check()
    dtype = torch_dtype(dtype_name or graph.meta["dtype"])
    lws = graph.layer_widths()
    by_layer: dict[int, list] = {l: [] for l in range(len(lws) - 1)}
    edge_notes: dict[tuple, dict] = {}
    for u, v, a in edge_items(graph.nx):
        act = a.get("act")
        if act is None:
            continue
        by_layer[u[1]].append((u[2], v[2], act))
        if len(a) > 1 or act.meta:
            attrs = {k: val for k, val in a.items() if k != "act"}
            edge_notes[(u[1], u[2], v[2])] = {"meta": _copy_note(act.meta),
                                              "attrs": _copy_note(attrs)}
    node_notes = {}
    for n, a in graph.nx.nodes(data=True):
        extra = {k: val for k, val in a.items() if k not in _NODE_KEYS}
        if extra:
            node_notes[n] = _copy_note(extra)
    layers = [_lower_layer(graph, l, lws[l].n_nodes, lws[l + 1], dtype, by_layer[l])
              for l in range(len(lws) - 1)]
    meta = {k: _copy_note(v) for k, v in graph.meta.items()}
    if dtype_name is not None:
        meta["dtype"] = dtype_name
    module = KANModule(layers, meta, {"nodes": node_notes, "edges": edge_notes})
    if keep_device_of is not None:
        module.to(keep_device_of.device)
    return module


def _copy_note(v):
    """A private copy of an annotation value (dicts, lists and arrays copied, scalars shared)."""
    if isinstance(v, dict):
        return {k: _copy_note(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_copy_note(x) for x in v]
    if isinstance(v, np.ndarray):
        return v.copy()
    return v


def _layer_gk(graph: KanGraph, l: int, edges: list):
    for _, _, act in edges:
        if act.spline is not None:
            return act.spline.G, act.spline.k, act.spline.base_fun
    return int(graph.meta["grid"]), int(graph.meta["k"]), graph.meta.get("base_fun", "silu")


def _lower_layer(graph: KanGraph, l: int, n_in: int, out: LayerWidth, dtype,
                 edges: list) -> KANLayer:
    G, k, base_fun = _layer_gk(graph, l, edges)
    lo, hi = graph.meta.get("grid_range", (-1.0, 1.0))
    layer = KANLayer(n_in, out, G, k, dtype, base_fun, (float(lo), float(hi)))
    n_out = out.n_subnodes
    grid = layer.grid.numpy().astype(np.float64)
    coef = np.zeros((n_in, n_out, G + k))
    sb, ssp = np.zeros((n_in, n_out)), np.ones((n_in, n_out))
    has, msp, msym = np.zeros((n_in, n_out), bool), np.zeros((n_in, n_out)), np.zeros((n_in, n_out))
    aff = np.tile(np.array([1.0, 0.0, 1.0, 0.0]), (n_in, n_out, 1))
    sp_rows, sy_rows = [], []
    for i, j, act in edges:
        sp, sy = act.spline, act.symbolic
        if sp is not None:
            if sp.base_fun != base_fun:
                raise GraphError(f"edge ({l},{i},{j}) uses base function {sp.base_fun!r} but layer "
                                 f"{l} uses {base_fun!r}; one base function per layer")
            sp_rows.append((i, j, sp))
        if sy is not None:
            sy_rows.append((i, j, sy))
            layer.sym_funs[i][j] = LIBRARY.canonical_name(sy.fun)
    if sp_rows:
        ii = np.array([r[0] for r in sp_rows])
        jj = np.array([r[1] for r in sp_rows])
        grid[ii] = np.stack([r[2].grid for r in sp_rows])
        coef[ii, jj] = np.stack([r[2].coef for r in sp_rows])
        sb[ii, jj] = [r[2].scale_base for r in sp_rows]
        ssp[ii, jj] = [r[2].scale_sp for r in sp_rows]
        has[ii, jj] = True
        msp[ii, jj] = [float(r[2].active) for r in sp_rows]
    if sy_rows:
        ii = np.array([r[0] for r in sy_rows])
        jj = np.array([r[1] for r in sy_rows])
        msym[ii, jj] = 1.0
        aff[ii, jj] = [r[2].params for r in sy_rows]
    nodes = graph.nx.nodes
    with torch.no_grad():
        t = lambda a: torch.as_tensor(np.asarray(a), dtype=dtype)
        layer.grid.copy_(t(grid))
        layer.coef.copy_(t(coef))
        layer.scale_base.copy_(t(sb))
        layer.scale_sp.copy_(t(ssp))
        layer.has_spline.copy_(torch.as_tensor(has))
        layer.mask_sp.copy_(t(msp))
        layer.mask_sym.copy_(t(msym))
        layer.sym_affine.copy_(t(aff))
        subs = [nodes[S(l + 1, j)] for j in range(n_out)]
        layer.subnode_scale.copy_(t([a["scale"] for a in subs]))
        layer.subnode_bias.copy_(t([a["bias"] for a in subs]))
        outs = [nodes[N(l + 1, i)] for i in range(out.n_nodes)]
        layer.node_scale.copy_(t([a["scale"] for a in outs]))
        layer.node_bias.copy_(t([a["bias"] for a in outs]))
    layer.refresh_symbolic()
    return layer


def lift(module: KANModule, readonly: bool = False) -> KanGraph:
    """Read a KANModule back into a layered KanGraph: see :func:`_lift`."""
    with gc_paused():
        return _lift(module, readonly)


@torch.no_grad()
def _lift(module: KANModule, readonly: bool = False) -> KanGraph:
    """Read a KANModule back into a layered KanGraph: exact values (arrays in the module dtype,
    each edge's own views of one copy per layer; ``readonly`` makes them unwritable) plus the
    module's annotations."""
    widths = [LayerWidth(module.layers[0].n_in)] + [layer.out_width for layer in module.layers]
    meta = {k: _copy_note(v) for k, v in module.meta.items()}
    meta["dtype"] = dtype_name(module.dtype)
    g = KanGraph.from_layers(widths, meta.pop("input_names", None), meta.pop("output_names", None),
                             **meta)
    ann = getattr(module, "annotations", None) or {"nodes": {}, "edges": {}}
    notes = ann["edges"]
    for l, layer in enumerate(module.layers):
        _lift_layer(g, l, layer, notes, readonly)
    nodes = g.nx.nodes
    for n, extra in ann["nodes"].items():
        if n in nodes:
            nodes[n].update(_copy_note(extra))
    return g


def _lift_layer(g: KanGraph, l: int, layer: KANLayer, notes: dict, readonly: bool) -> None:
    cpu = lambda t: t.detach().cpu().numpy()
    n_in, n_out = layer.n_in, layer.n_out
    grid = cpu(layer.grid)
    ng = grid.shape[1]
    grids = np.array(np.broadcast_to(grid[:, None, :], (n_in, n_out, ng))).reshape(-1, ng)
    coefs = np.array(cpu(layer.coef)).reshape(n_in * n_out, -1)
    if readonly:
        grids.flags.writeable = coefs.flags.writeable = False
    grids, coefs = list(grids), list(coefs)
    sb, ssp = cpu(layer.scale_base).tolist(), cpu(layer.scale_sp).tolist()
    aff = cpu(layer.sym_affine).tolist()
    has, msym = cpu(layer.has_spline), cpu(layer.mask_sym) != 0
    has_l, on_sp, on_sym = has.tolist(), (cpu(layer.mask_sp) != 0).tolist(), msym.tolist()
    k, base_fun, funs = layer.k, layer.base_fun, layer.sym_funs
    rows = []
    for i, j in zip(*(ix.tolist() for ix in np.nonzero(has | msym))):
        sp = sy = None
        if has_l[i][j]:
            sp = SplinePart(grids[i * n_out + j], coefs[i * n_out + j], k, sb[i][j], ssp[i][j],
                            base_fun, on_sp[i][j])
        if on_sym[i][j]:
            sy = SymbolicPart(funs[i][j], *aff[i][j])
        note = notes.get((l, i, j)) if notes else None
        if note is None:
            rows.append((N(l, i), S(l + 1, j), {"act": Activation(sp, sy)}))
        else:
            attrs = _copy_note(note["attrs"])
            attrs["act"] = Activation(sp, sy, _copy_note(note["meta"]))
            rows.append((N(l, i), S(l + 1, j), attrs))
    g.nx.add_edges_from(rows)
    nodes = g.nx.nodes
    for j, (sc, bi) in enumerate(zip(cpu(layer.subnode_scale).tolist(),
                                     cpu(layer.subnode_bias).tolist())):
        a = nodes[S(l + 1, j)]
        a["scale"], a["bias"] = sc, bi
    for i, (sc, bi) in enumerate(zip(cpu(layer.node_scale).tolist(),
                                     cpu(layer.node_bias).tolist())):
        a = nodes[N(l + 1, i)]
        a["scale"], a["bias"] = sc, bi


def to_torch(graph: KanGraph) -> KANModule:
    """Alias of :func:`lower` (the design's public name)."""
    return lower(graph)

