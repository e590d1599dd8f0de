"""KAN facade methods for the graph passes (expansion, modules, pruning, attribution, versions)."""

from __future__ import annotations


class PassMethods:
    """Mixin of kanir.KAN: each method applies a pure pass from kanir.passes to this model."""

    def _init_extensions(self) -> None:
        """Set up per-model state of the extensions (called at the end of KAN.__init__)."""

    def _after_change(self, op: str, **info) -> None:
        """Called after every state-changing operation (fit, refine, prune, ...)."""
