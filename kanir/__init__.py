"""kanir: a symbolic-first compiler framework for Kolmogorov-Arnold Networks."""
