"""The ``kanir`` command line."""

from kanir.cli.commands import main

__all__ = ["main"]
