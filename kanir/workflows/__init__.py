"""Automatic workflows built on the model: kanir.discover (data in, formula out) and the
search for conserved quantities. They train KANs, so they sit above kanir.model."""
