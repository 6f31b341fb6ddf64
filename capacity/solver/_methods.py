"""The planning methods' names and the default, in a module that imports nothing heavy.

``capacity._cli`` builds its ``--method`` choices from these when the command line is parsed,
so ``capacity --help`` must not import numpy or scipy to read them. :mod:`capacity.solver._plan`
re-exports both. They are declared once, with every other setting, in
:mod:`capacity._settings` (also light: it imports only the error types).
"""

from __future__ import annotations

from .._settings import DEFAULT_METHOD, METHODS

__all__ = ["DEFAULT_METHOD", "METHODS"]
