"""kanir.backends."""
