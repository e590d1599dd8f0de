"""kanir.passes."""
