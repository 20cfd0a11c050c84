"""The ``loadkit`` command: a thin layer of argument parsing and printing over the library.

``main`` (in :mod:`loadkit.cli.main`) holds the one error loop: every
:class:`~loadkit.errors.LoadkitError` becomes one red line and its exit code.
"""

from loadkit.cli.main import main

__all__ = ["main"]
