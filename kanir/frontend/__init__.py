"""The formula frontend: formula text -> sympy -> the layered KanGraph (kanir.compile)."""
