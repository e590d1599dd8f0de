"""kanir.grammar."""
