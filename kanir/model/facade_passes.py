"""KAN facade methods for the graph passes: expansion and perturbation, modules, auxiliary
inputs, attribution, pruning, auto_swap, and versions (the paper's Trick C).

Each method lifts the model to a KanGraph, runs a registered pass from :mod:`kanir.passes`
through the pass manager (:mod:`kanir.passes.manager`, which checks the result once), and puts
the result back into *this* model, then returns ``self`` (so ``model.prune()`` and
``model = model.prune()`` both work, and chains like ``model.expand_width(1, 2).perturb()``
read naturally). The only methods that return something else are those whose result is data:
``fit`` (the training history) and ``augment_input`` (the extended dataset). ``model.copy()``
gives an independent model; the passes themselves never modify their input graph.

Every state change is recorded as a version (see :mod:`kanir.model.versions`); by default versions
stay in memory and nothing is written to disk unless ``track_versions(folder=...)`` asks for it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from kanir.backends.torch import lift, lower
from kanir.errors import DataError, KanirError
from kanir.model.versions import VersionInfo, VersionStore, check_max_versions, parse_label
from kanir.passes import attribution as _attr
from kanir.passes import augment as _aug
from kanir.passes._common import is_zero_function as _is_zero
from kanir.passes.manager import PassManager, PassRecord, PassSpec, run_pass


class PassMethods:
    """Mixin of kanir.KAN: each method applies a pure pass from kanir.passes to this model."""

    _scored_key = None  # state the cached scores were measured on when the data was implicit

    # ------------------------------------------------------------------ hooks
    def _init_extensions(self, versions=True, max_versions: int | None = None) -> None:
        """Set up per-model state of the extensions (called at the end of KAN.__init__).

        ``versions``: True (in memory, the default), False (none), or a folder for .kanir files
        (see :meth:`track_versions`); ``max_versions``: how many in-memory states to hold."""
        self._versions = VersionStore(max_versions=max_versions)
        self._scored = None
        self._versions.record(self.net, lift, "init")
        if versions is False:
            self.track_versions(enabled=False)
        elif versions is not True and versions is not None:
            self.track_versions(folder=versions)

    def _after_change(self, op: str, **info) -> None:
        """Called after every state-changing operation (fit, refine, prune, ...): forget cached
        scores and the cached graph view, and record a version."""
        self._scored = None
        self._touch()
        loss = info.pop("loss", None)
        self._versions.record(self.net, lift, op, loss, **info)

    def _commit_graph(self, graph, op: str, log_history: bool = True, *, checked: bool = False,
                      **info):
        """Put a pass result into this model (in place when the shapes allow, keeping the
        module's runtime state: see ``set_graph``) and record the change as a version unless
        ``log_history`` is false (pykan's switch); cached scores are forgotten either way.
        ``checked``: the pass manager has just validated ``graph``. (Not nn.Module._apply.)"""
        self._install(lower(graph, checked=checked))
        if log_history:
            self._after_change(op, **info)
        else:
            self._scored = None
        return self

    def _run_pass(self, name: str, op: str, log_history: bool = True, info=None, x=None,
                  graph=None, **options) -> PassRecord:
        """Run registered pass ``name`` on this model (or on ``graph``, its lift when the
        caller already has it) through the pass manager and commit its result as version
        ``op`` (``info``: a dict, or a function of the pass record giving one); returns the
        pass record."""
        def commit(rec: PassRecord) -> None:
            extra = info(rec) if callable(info) else (info or {})
            self._commit_graph(rec.graph, op, log_history, checked=pm.verify, **extra)

        pm = PassManager([PassSpec(name, options)], x=x, on_version=commit)
        pm.run(self.graph if graph is None else graph)
        return pm.records[-1]

    def _data(self, x, what: str) -> torch.Tensor:
        """x, else the inputs seen last (the latest forward, or fit's training inputs)."""
        if x is None:
            x = self._recent_data()
        if x is None:
            raise KanirError(f"{what} needs data: pass x (inputs, shape (batch, "
                             f"{self.net.n_in})), run the model on data (model(x)) or call fit "
                             "first, which remembers the training inputs")
        return x

    # ------------------------------------------------------------------ expansion
    def expand_width(self, layer_id: int, n_added_nodes: int = 1, sum_bool: bool = True,
                     mult_arity: int = 2, log_history: bool = True):
        """Add nodes to hidden layer ``layer_id`` (sum nodes, or mult nodes of ``mult_arity``)
        keeping the function, trained splines included; returns self."""
        kind = "sum" if sum_bool else "mult"
        self._run_pass("expand-width", "expand_width", log_history,
                       dict(layer=layer_id, n=n_added_nodes, kind=kind), layer=layer_id,
                       n=n_added_nodes, kind=kind, arity=mult_arity)
        return self

    def expand_depth(self, layer_id: int | None = None, log_history: bool = True):
        """Insert an identity layer after node layer ``layer_id`` (default: after the outputs);
        the function is unchanged; returns self."""
        self._run_pass("expand-depth", "expand_depth", log_history, dict(layer=layer_id),
                       layer=layer_id)
        return self

    def perturb(self, mag: float = 1.0, mode: str = "non-intrusive", seed: int = 0,
                log_history: bool = True):
        """Make the network trainable around what it computes, with pykan's modes (see
        :func:`kanir.passes.expand.perturb`): 'non-intrusive' keeps the function, 'minimal' adds
        random splines to the non-zero edges, 'all' to every edge; kanir's 'zero-edges' gives
        random splines to the zero edges only. ``mag`` is relative to a freshly initialised
        edge, as pykan's: 1.0 (the default) gives the new parts the size ``KAN()`` gives its
        edges. Returns self."""
        x = self._recent_data() if mode == "non-intrusive" else None  # pykan: cache_data
        self._run_pass("perturb", "perturb", log_history, dict(mode=mode, mag=mag), x=x, mag=mag,
                       mode=mode, seed=seed)
        return self

    # ------------------------------------------------------------------ structure from knowledge
    def module(self, start_layer: int, chain: str, log_history: bool = True):
        """pykan's ``module(start_layer, chain)``: cut the module described by ``chain`` (e.g.
        ``"[0,1]->[0,1]->[0,1]->[0]"``) off from the rest; the cut edges stay zero through
        training. Returns self. (The torch module itself is ``model.net``.)"""
        self._run_pass("module", "module", log_history, dict(start_layer=start_layer, chain=chain),
                       start_layer=start_layer, spec=chain)
        return self

    def augment_input(self, original_variables, auxiliary_variables, dataset: dict) -> dict:
        """Add inputs defined by formulas of the original ones and return the dataset with
        those columns in front, as pykan orders them (the model changes in place, its function
        on the original inputs does not). The new inputs' spline grids cover their training
        values; names are checked as input names are (distinct identifiers)."""
        if not isinstance(dataset, dict) or "train_input" not in dataset:
            raise DataError("augment_input needs a dataset dict with 'train_input' (and usually "
                            "'test_input'), e.g. from kanir.create_dataset; for bare inputs use "
                            "kanir.passes.augment.aux_values")
        vals = _aug.aux_values(dataset["train_input"], original_variables, auxiliary_variables)
        lo, hi = vals.min(axis=0), vals.max(axis=0)
        pad = np.where(hi - lo > 1e-12 * (1 + np.abs(hi)), 0.0, 0.5)
        ranges = np.stack([lo - pad, hi + pad], axis=1)
        g = run_pass("augment-input", self.graph, original_variables=original_variables,
                     auxiliary_variables=auxiliary_variables, ranges=ranges)
        new = _aug.augment_dataset(dataset, original_variables, auxiliary_variables)
        self.set_graph(g)
        self.cache_x = torch.as_tensor(new["train_input"]).to(self.device, self.dtype)
        names = g.input_names[:vals.shape[1]]
        self._after_change("augment_input", inputs=names)
        return new

    # ------------------------------------------------------------------ attribution
    def attribute(self, l=None, i=None, out_score=None, plot: bool = False, *, x=None,
                  output=None):
        """Eq. 9 attribution scores on ``x`` (default: the inputs seen last).

        ``attribute()`` scores the whole model and returns self; read the scores with
        ``feature_score``, ``node_scores``, ``edge_scores``, ``subnode_scores`` or
        ``scored_graph()``; ``output`` restricts them to one output (index or name).
        pykan's per-neuron mode ``attribute(l)`` returns, for every node of layer l, its inputs'
        attribution as a (n_nodes(l), n_inputs) tensor, and ``attribute(l, i)`` row i of it
        (``out_score``: the nodes' starting scores, default their own scores; ``plot=True``
        draws row i as a bar chart). The model-wide scores are left as they were.
        """
        if l is None:
            if i is not None or out_score is not None:
                raise KanirError("attribute: i and out_score belong to the per-neuron mode; give "
                                 "the layer too, e.g. attribute(1, 0)")
            data = self._data(x, "attribute")
            # an annotation (structure untouched): no contract check, as before
            pm = PassManager([PassSpec("attribute", {"output": output})], x=data, verify=False)
            g = pm.run(self.graph)
            # scores on the implicit data follow it (as pykan's, recomputed after a new forward)
            self._scored = (g, _attr.score_arrays(g))
            self._scored_key = self._state_key(data) if x is None and output is None else None
            return self
        if isinstance(l, torch.Tensor | np.ndarray | list | tuple):
            raise KanirError("attribute's first argument is a layer index as in pykan "
                             "(attribute(l, i)); pass data by keyword: attribute(x=...)")
        if output is not None:
            raise KanirError("attribute: output= applies to the whole-model scores, not to "
                             "attribute(l, i)")
        score = run_pass("neuron-attribution", self.graph, self._data(x, "attribute"), l=l,
                         out_score=None if out_score is None else _numpy(out_score))
        scores = self._tensor(score)
        if i is None:
            return scores
        if isinstance(i, bool) or not isinstance(i, int | np.integer) or not (
                0 <= i < scores.shape[0]):
            raise KanirError(f"attribute: neuron i must be in 0..{scores.shape[0] - 1} for layer "
                             f"{l}, got {i!r}")
        if plot:
            _bar_chart(score[i], self.input_names, f"inputs of node ({l},{i})")
        return scores[i]

    def scored_graph(self, x=None):
        """The model as a KanGraph carrying node and edge ``score`` attributes."""
        if x is not None or self._scored is None or self._stale(self._scored_key):
            self.attribute(x=x)
        return self._scored[0].copy()

    def _scores(self):
        if self._scored is None or self._stale(self._scored_key):
            self.attribute()
        return self._scored[1]

    def _tensor(self, a) -> torch.Tensor:
        return torch.as_tensor(np.asarray(a), dtype=self.dtype, device=self.device)

    @property
    def feature_score(self) -> torch.Tensor:
        """Input scores (computed on the inputs seen last when not yet computed)."""
        return self._tensor(self._scores().feature)

    @property
    def node_scores(self) -> list[torch.Tensor]:
        """One tensor of node scores per node layer 0..L."""
        return [self._tensor(a) for a in self._scores().node]

    @property
    def subnode_scores(self) -> list[torch.Tensor]:
        """One tensor of subnode scores per node layer (layer 0 has none)."""
        return [self._tensor(a) for a in self._scores().subnode]

    @property
    def edge_scores(self) -> list[torch.Tensor]:
        """One (n_nodes(l), n_subnodes(l+1)) tensor of edge scores per KAN layer (absent = 0)."""
        return [self._tensor(a) for a in self._scores().edge]

    # ------------------------------------------------------------------ pruning
    def prune(self, node_th: float = 1e-2, edge_th: float = 3e-2, log_history: bool = True, *,
              x=None):
        """Remove hidden nodes scoring at most ``node_th``, then edges scoring at most
        ``edge_th`` (scores on ``x``, default the last training inputs); returns self."""
        self._run_pass("prune", "prune", log_history, dict(node_th=node_th, edge_th=edge_th),
                       x=self._data(x, "prune"), node_th=node_th, edge_th=edge_th)
        return self

    def prune_node(self, threshold: float = 1e-2, mode: str = "auto", active_neurons_id=None,
                   log_history: bool = True, *, x=None):
        """Remove hidden nodes scoring at most ``threshold`` (mode 'auto'), or keep exactly
        ``active_neurons_id`` (one list of indices per hidden layer, or {layer: [indices]};
        mode 'manual', chosen automatically when the list is given, as in pykan). Removed nodes
        are deleted: later indices shift. Returns self."""
        if mode not in ("auto", "manual"):
            raise KanirError(f"mode must be 'auto' or 'manual', got {mode!r}")
        if active_neurons_id is not None:
            mode = "manual"
        if mode == "manual" and active_neurons_id is None:
            raise KanirError("prune_node(mode='manual') needs active_neurons_id")
        keep = active_neurons_id if mode == "manual" else None
        xs = None if keep is not None and x is None else self._data(x, "prune_node")
        self._run_pass("prune-node", "prune_node", log_history, dict(threshold=threshold,
                       mode=mode), x=xs, threshold=threshold, active_neurons=keep)
        return self

    def prune_edge(self, threshold: float = 3e-2, log_history: bool = True, *, x=None):
        """Remove edges scoring at most ``threshold``; returns self."""
        self._run_pass("prune-edge", "prune_edge", log_history, dict(threshold=threshold),
                       x=self._data(x, "prune_edge"), threshold=threshold)
        return self

    def prune_input(self, threshold: float = 1e-2, active_inputs=None, log_history: bool = True,
                    *, top_k: int | None = None, x=None):
        """Remove inputs: keep those scoring above ``threshold``, the ``top_k`` best, or
        exactly ``active_inputs`` (indices or names). ``input_names`` then lists the inputs that
        remain; select the same columns of a dataset with
        ``kanir.passes.prune.restrict_dataset(data, names_before, model.input_names)``.
        Returns self."""
        before = self.input_names
        xs = self._data(x, "prune_input") if active_inputs is None else None
        rec = self._run_pass("prune-input", "prune_input", log_history,
                             lambda r: dict(kept=r.graph.input_names), x=xs, threshold=threshold,
                             top_k=top_k, active_inputs=active_inputs)
        if self.cache_x is not None and self.cache_x.shape[1] == len(before):
            cols = [before.index(n) for n in rec.graph.input_names]
            self.cache_x = self.cache_x[:, cols]
        return self

    def remove_edge(self, l: int, i: int, j: int, log_history: bool = True, *,
                    keep_symbolic: bool = True):
        """Switch off the spline of edge (l, i, j), as pykan's mask does: a symbolic part stays
        (``keep_symbolic=False`` removes the whole edge); an edge with nothing else becomes zero
        and stays zero through training. Returns self."""
        self._run_pass("remove-edge", "remove_edge", log_history, dict(edge=[l, i, j]), l=l, i=i,
                       j=j, keep_symbolic=keep_symbolic)
        return self

    def remove_node(self, l: int, i: int, mode: str = "all", log_history: bool = True):
        """Cut node (l, i) off as pykan does: the node stays (indices do not shift), the edges
        out of it (``mode='up'``), into it (``'down'``) or both (``'all'``) become zero. To
        delete nodes use ``prune_node(active_neurons_id=...)``. Returns self."""
        self._run_pass("remove-node", "remove_node", log_history, dict(node=[l, i], mode=mode),
                       l=l, i=i, mode=mode)
        return self

    @property
    def n_edge(self) -> int:
        """The number of edges whose function is not identically zero (spline or symbolic;
        pykan 0.2.8 counts only edges whose spline is on, so it reports 0 once every edge is
        symbolic)."""
        return sum(1 for *_, act in self.graph.act_edges() if not _is_zero(act))

    # ------------------------------------------------------------------ layout
    def auto_swap(self, x=None, log_history: bool = True):
        """Reorder hidden nodes to minimise the connection cost (edge score x distance); the
        function is unchanged; returns self."""
        self._run_pass("auto-swap", "auto_swap", log_history, x=self._data(x, "auto_swap"))
        return self

    def swap(self, l: int, i1: int, i2: int, log_history: bool = True):
        """Exchange nodes i1 and i2 of hidden layer ``l`` (pykan's ``swap``), with their edges
        and affines, so the function is unchanged; returns self."""
        L = self.depth
        if isinstance(l, bool) or not isinstance(l, int) or not 0 < l < L:
            raise KanirError(f"swap: l must be a hidden layer (1..{L - 1}), got {l!r}")
        n = self.graph.n_nodes(l)
        for v in (i1, i2):
            if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v < n:
                raise KanirError(f"swap: i1 and i2 must be nodes of layer {l} (0..{n - 1}), "
                                 f"got {v!r}")
        perm = list(range(n))
        perm[i1], perm[i2] = perm[i2], perm[i1]
        self._run_pass("permute-layer", "swap", log_history, dict(layer=l, nodes=[i1, i2]), l=l,
                       perm=perm)
        return self

    def connection_cost(self, x=None) -> float:
        """Sum of edge score x |position distance| for the current layout."""
        return run_pass("connection-cost", self.graph, self._data(x, "connection_cost"))

    # ------------------------------------------------------------------ versions
    def track_versions(self, folder=None, enabled: bool = True, resume: bool = False,
                       max_versions: int | None = None):
        """Choose where versions live: in memory (``folder=None``, the default), as ``.kanir``
        files in ``folder`` (the history so far is written there too; a folder that already
        holds versions needs ``resume=True``), or nowhere (``enabled=False``, which also drops
        the history). ``max_versions`` caps the states held in memory (the listing stays
        complete; see :mod:`kanir.model.versions`). Returns self."""
        old = self._versions
        if folder is None and enabled and old.enabled and old.folder is None:
            old.max_versions = check_max_versions(max_versions)
            old._enforce_cap()
            return self
        if (enabled and old.enabled and folder is not None and old.folder is not None
                and Path(folder).resolve() == old.folder.resolve()):
            return self  # already kept there
        if not enabled:
            self._versions = VersionStore(enabled=False)
            return self
        new = VersionStore(folder, resume=resume, max_versions=max_versions)
        if resume and len(new):
            new.record(self.net, lift, "resume")
        else:
            for info in (old.listing() if old.enabled else []):
                if info.label not in old or not old.holds(info.label):
                    continue
                snap = old.snapshot(info.label)
                graph = lift(snap) if snap is not None else old.graph(info.label)
                new.adopt(info, graph, snap if snap is not None else lower(graph))
            if not len(new):
                new.record(self.net, lift, "init")
            new.current = old.current if old.current in new else new.latest().label
        self._versions = new
        return self

    @property
    def versions(self) -> VersionStore:
        """This model's version store (``versions.table()`` prints the listing)."""
        return self._versions

    @property
    def version(self) -> str | None:
        """The label of the current state, e.g. '1.2' (None when versions are off)."""
        return self._versions.current if self._versions.enabled else None

    def list_versions(self) -> list[VersionInfo]:
        """Every recorded version (label, op, loss, parent), ordered by round and step."""
        return self._versions.listing()

    def rewind(self, model_id):
        """Restore version ``model_id`` (e.g. '0.1') and continue in a new round ('1.1');
        returns self."""
        label = "{}.{}".format(*parse_label(model_id))
        info = self._versions.info(label)
        snap = self._versions.snapshot(label)
        module = snap if snap is not None else lower(self._versions.graph(label))
        self._install(module)
        self._scored = None
        if self.cache_x is not None and self.cache_x.shape[1] != self.net.n_in:
            self.cache_x = None
        self._versions.record(self.net, lift, "rewind", info.loss, rewind_from=label,
                              to=label)
        return self


def _numpy(v) -> np.ndarray:
    return v.detach().cpu().numpy() if isinstance(v, torch.Tensor) else np.asarray(v)


def _bar_chart(values, names, title: str) -> None:
    """pykan's attribution bar chart, on a new pyplot figure."""
    import matplotlib.pyplot as plt

    plt.figure(figsize=(max(1, len(values)), 3))
    plt.bar(range(len(values)), values)
    plt.xticks(range(len(values)), names)
    plt.title(title)
