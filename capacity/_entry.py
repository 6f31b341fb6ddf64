"""The console script ``capacity`` (and ``python -m capacity``): the CLI under a Ctrl-C guard.

Importing the CLI (click, then every command's module) takes a few hundred milliseconds. A
Ctrl-C in that time used to raise KeyboardInterrupt out of an import: a Python traceback and
exit status 1, which this tool's exit codes read as "warning". Here it gets what every other
Ctrl-C gets: ``capacity: interrupted`` and exit 3 (unknown). This module imports nothing but
``sys``, so the window left unguarded is the import of the ``capacity`` package itself (its
error types and settings, a few milliseconds).
"""

from __future__ import annotations

import sys

#: the exit status of a run that did not finish (``capacity._cli._common.EXIT_UNKNOWN``;
#: not imported from there: that import is what is guarded)
_EXIT_INTERRUPTED = 3


def main() -> int:
    """Import the CLI and run it (``capacity.cli.main``); a Ctrl-C during the import: exit 3."""
    try:
        from .cli import main as cli_main
    except KeyboardInterrupt:
        sys.stderr.write("capacity: interrupted\n")
        return _EXIT_INTERRUPTED
    return cli_main()
