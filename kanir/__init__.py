"""kanir: a symbolic-first compiler framework for Kolmogorov-Arnold Networks (KAN 2.0 for science).

Formulas, data and prior knowledge go in; trained networks, modular structure and exact formulas
come out. Everything lowers into one networkx-based IR (:class:`KanGraph`); passes transform it;
backends emit torch modules, sympy formulas and graphviz diagrams.
"""

from kanir.backends.torch import KANModule, lift, lower, to_torch

from . import errors, library
from .activation import Activation, SplinePart, SymbolicPart
from .errors import KanirError
from .graph import KanGraph
from .kan import KAN, load
from .library import register
from .training import create_dataset, create_dataset_from_data
from .tree import tree  # eager: the submodule kanir.tree would otherwise shadow the function

__version__ = "0.1.0"

__all__ = [
    "KAN", "KANModule", "KanGraph", "Activation", "SplinePart", "SymbolicPart", "KanirError",
    "create_dataset", "create_dataset_from_data", "errors", "library", "lift", "load", "lower",
    "register", "to_torch", "tree",
]

_LAZY = {
    "compile": ("kanir.compiler", "compile"),
    "kanpiler": ("kanir.compiler", "kanpiler"),
    "to_sympy": ("kanir.backends.sympy", "to_sympy"),
    "to_dot": ("kanir.backends.graphviz", "to_dot"),
    "from_torch": ("kanir.backends.from_torch", "from_torch"),
    "datasets": ("kanir.datasets", None),  # a submodule: the Feynman equations
    "jacobian": ("kanir.derivatives", "jacobian"),
    "hessian": ("kanir.derivatives", "hessian"),
    "batch_jacobian": ("kanir.derivatives", "batch_jacobian"),
    "batch_hessian": ("kanir.derivatives", "batch_hessian"),
    "export": ("kanir.backends.export", "export"),
    "load_dataset": ("kanir.datasets", "load_dataset"),
}


def __getattr__(name):
    """Import the compiler, sympy/graphviz backends and datasets on first use."""
    if name in _LAZY:
        import importlib

        mod, attr = _LAZY[name]
        module = importlib.import_module(mod)
        return module if attr is None else getattr(module, attr)
    raise AttributeError(f"module 'kanir' has no attribute {name!r}")
