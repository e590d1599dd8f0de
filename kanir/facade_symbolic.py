"""KAN facade methods for symbolic regression of edges (suggest/fix/auto_symbolic, formulas)."""

from __future__ import annotations


class SymbolicMethods:
    """Mixin of kanir.KAN: symbolic regression and formula read-back."""
