"""The ``aiobatch`` command line.

``main(argv)`` is the console script (``aiobatch``, ``python -m aiobatch``);
``run(argv, stdout=..., stderr=...)`` runs one command line inside an existing
event loop and returns the exit code (what the tests await).
"""

from __future__ import annotations

from ._app import build_parser, main, run

__all__ = ["build_parser", "main", "run"]
