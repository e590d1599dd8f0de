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
from .training import create_dataset

__version__ = "0.1.0"

__all__ = [
    "KAN", "KANModule", "KanGraph", "Activation", "SplinePart", "SymbolicPart", "KanirError",
    "create_dataset", "errors", "library", "lift", "load", "lower", "register", "to_torch",
]
