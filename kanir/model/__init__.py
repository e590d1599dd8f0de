"""The kanir.KAN facade (pykan's API) and its mixins, construction and versions."""
