"""Symbolic regression of edges and formulas: fitting, snapping constants, simplification."""
