"""KAN facade methods that complete pykan 0.2.8's public API (activations after a forward,
analysis by node, checkpoints, grid updates, derivative helpers) on top of kanir's passes."""

from __future__ import annotations


class PykanMethods:
    """Mixin of kanir.KAN: pykan's remaining public names, with pykan's arguments and results."""
