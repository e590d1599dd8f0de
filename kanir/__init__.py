"""kanir: a symbolic-first compiler framework for Kolmogorov-Arnold Networks (KAN 2.0 for science).

Formulas, data and prior knowledge go in; trained networks, modular structure and exact formulas
come out. Everything lowers into one networkx-based IR (:class:`KanGraph`); passes transform it;
backends emit torch modules, sympy formulas and graphviz diagrams.
"""

from kanir import errors
from kanir.backends.torch import KANModule, lift, lower, to_torch
from kanir.errors import KanirError
from kanir.ir import library
from kanir.ir.activation import Activation, SplinePart, SymbolicPart
from kanir.ir.graph import KanGraph
from kanir.ir.library import register
from kanir.model.kan import KAN, load
from kanir.science.tree import (
    tree,  # eager: the submodule kanir.science.tree would otherwise shadow the function
)
from kanir.train.data import create_dataset, create_dataset_from_data

__version__ = "0.1.0"

__all__ = [
    "KAN", "KANModule", "KanGraph", "Activation", "SplinePart", "SymbolicPart", "KanirError",
    "create_dataset", "create_dataset_from_data", "errors", "library", "lift", "load", "lower",
    "register", "to_torch", "tree",
]

_LAZY = {
    "compile": ("kanir.frontend.compiler", "compile"),
    "kanpiler": ("kanir.frontend.compiler", "kanpiler"),
    "to_sympy": ("kanir.backends.sympy", "to_sympy"),
    "to_dot": ("kanir.backends.graphviz", "to_dot"),
    "from_torch": ("kanir.backends.from_torch", "from_torch"),
    "datasets": ("kanir.datasets", None),  # a submodule: the Feynman equations
    "jacobian": ("kanir.science.derivatives", "jacobian"),
    "hessian": ("kanir.science.derivatives", "hessian"),
    "batch_jacobian": ("kanir.science.derivatives", "batch_jacobian"),
    "batch_hessian": ("kanir.science.derivatives", "batch_hessian"),
    "export": ("kanir.backends.export", "export"),
    "plot_history": ("kanir.model.facade_plot", "plot_history"),
    "load_dataset": ("kanir.datasets", "load_dataset"),
    "parse_ir": ("kanir.ir.text", "parse_ir"),
    "discover": ("kanir.workflows.discover", "discover"),
    # what is known before fitting: priors rank an edge's candidates (suggest_symbolic(prior=)),
    # constraints reject auto_symbolic choices (an objective's, or auto_symbolic(constraints=))
    "Prior": ("kanir.symbolic.priors", "Prior"),
    "Diverges": ("kanir.symbolic.priors", "Diverges"),
    "Bounded": ("kanir.symbolic.priors", "Bounded"),
    "Constraint": ("kanir.science.constraints", "Constraint"),
    "NondegenerateKinetic": ("kanir.science.constraints", "NondegenerateKinetic"),
    "SymbolicConstraintWarning": ("kanir.science.constraints", "SymbolicConstraintWarning"),
}


def __getattr__(name):
    """Import the compiler, sympy/graphviz backends and datasets on first use."""
    if name in _LAZY:
        import importlib

        mod, attr = _LAZY[name]
        module = importlib.import_module(mod)
        return module if attr is None else getattr(module, attr)
    raise AttributeError(f"module 'kanir' has no attribute {name!r}")
