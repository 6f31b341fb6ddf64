"""The ``capacity`` command line: a thin layer from library results to output and exit codes.

Exit status follows the Nagios convention: 0 ok, 1 warning, 2 critical (more containers
running than the safe count), 3 unknown (the run itself failed: no engine, bad input, bad
flags). Results go to stdout; progress, notices and errors to stderr.

Click was chosen over Typer: it is already a dependency of much of the scientific stack, it
needs no runtime type introspection, and ``standalone_mode=False`` lets us map usage errors to
exit 3 instead of Click's 2 (which would read as "critical" to an alerting system).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

import click

from . import __version__
from ._cli._common import EXIT_OK, EXIT_UNKNOWN, stderr
from ._cli.backtest import backtest
from ._cli.collect import collect
from ._cli.fit import fit
from ._cli.machine import machine
from ._cli.plan import plan
from ._cli.report import report
from ._cli.size import size
from ._cli.verify import verify
from ._errors import CapacityError

__all__ = ["cli", "main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="capacity")
def cli() -> None:
    """How many containers fit safely on this machine, from what they really use.

    Exit status: 0 ok, 1 warning, 2 critical, 3 unknown (the run failed).
    """


# One module per command under capacity/_cli/; register each here.
cli.add_command(collect)
cli.add_command(fit)
cli.add_command(report)
cli.add_command(verify)
cli.add_command(backtest)
cli.add_command(plan)
cli.add_command(size)
cli.add_command(machine)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: run the CLI and map every failure to the documented exit status."""
    try:
        result = cli.main(args=list(argv) if argv is not None else None,
                          prog_name="capacity", standalone_mode=False)
    except click.exceptions.Exit as exc:  # --help, --version
        return int(exc.exit_code or 0)
    except click.exceptions.Abort:
        stderr("capacity: aborted")
        return EXIT_UNKNOWN
    except click.ClickException as exc:  # usage errors: exit 3, not Click's 2
        exc.show()
        return EXIT_UNKNOWN
    except CapacityError as exc:
        stderr(f"capacity: error: {exc}")
        return EXIT_UNKNOWN
    except KeyboardInterrupt:
        stderr("capacity: interrupted")
        return EXIT_UNKNOWN
    except Exception as exc:  # a bug or an unforeseen fault: still "unknown" (3), never 1
        stderr(
            f"capacity: error: unexpected {type(exc).__name__}: {exc} "
            "(this is a bug in capacity: please report it with the command line)"
        )
        if os.environ.get("CAPACITY_DEBUG"):
            raise
        return EXIT_UNKNOWN
    return int(result) if isinstance(result, int) else EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
