"""The planning methods' names and the default, in a module that imports nothing heavy.

``capacity._cli`` builds its ``--method`` choices from these when the command line is parsed,
so ``capacity --help`` must not import numpy or scipy to read them. :mod:`capacity.solver._plan`
re-exports both; this is the one place they are declared.
"""

from __future__ import annotations

METHODS: tuple[str, ...] = ("limits", "peak", "quantile", "gaussian", "empirical")
DEFAULT_METHOD = "empirical"
