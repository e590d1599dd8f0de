"""Science from a trained model: derivatives, functional modularity and the tree converter."""
