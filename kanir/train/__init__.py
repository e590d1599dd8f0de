"""Training: fit, L-BFGS, grid updates, the regulariser's edge scales, data-parallel runs."""
