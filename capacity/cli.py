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
import signal
import sys
import threading
from collections.abc import Sequence
from typing import Any

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
    """Entry point: run the CLI and map every failure to the documented exit status.

    Ctrl-C (SIGINT) at any point of a command: ``capacity: interrupted``, exit 3, also when a
    library turned the KeyboardInterrupt into an error of its own (pandas' CSV reader does).
    As the console script (``argv`` None), a Ctrl-C after the command is done (while Python
    shuts down) is ignored, so it cannot turn a finished run into a killed one. As the
    console script, SIGTERM (timeout(1), a service manager's stop) is taken the same way: the
    run unwinds (no temporary report folder left), exit 3; ``collect`` ends on it with exit
    0 at any moment, as documented (a service stop is not a failure). Called in-process
    (``argv`` given), SIGTERM stays the caller's: a worker or notebook that calls ``main``
    keeps its own stop signal.
    """
    try:
        return _guarded_main(argv)
    except KeyboardInterrupt:  # the instants before our handler is in place, or after
        stderr("capacity: interrupted")
        return EXIT_UNKNOWN


def _guarded_main(argv: Sequence[str] | None) -> int:
    sigint: list[int] = []
    running = [True]
    previous = None
    in_main_thread = threading.current_thread() is threading.main_thread()

    def on_sigint(signum: int, frame: Any) -> None:
        sigint.append(signum)
        if running[0]:
            raise KeyboardInterrupt

    try:
        try:
            if in_main_thread and argv is None:
                # SIGTERM (timeout(1), a service manager's stop) unwinds as Ctrl-C does, so
                # the temporary report folder or file is removed, not left behind; collect
                # and verify put handlers of their own in place while they run. Only as the
                # console script: an in-process caller's SIGTERM is its own
                signal.signal(signal.SIGTERM, on_sigint)
            if in_main_thread:
                previous = signal.signal(signal.SIGINT, on_sigint)
            code, message = _main(argv)
        except KeyboardInterrupt:  # before our handler was in place
            code, message = EXIT_UNKNOWN, "capacity: interrupted"
        running[0] = False
        if (sigint and set(sigint) == {signal.SIGTERM} and _command(argv) == "collect"
                and (code, message) == (EXIT_UNKNOWN, "capacity: interrupted")):
            # a service manager stopped the collector before or after its own handler ran:
            # what was committed stays, and a stop is not a failure (collect's documented 0)
            code, message = EXIT_OK, ""
        elif sigint:
            # A Ctrl-C reached the command: whatever became of it (an error of a library's
            # own, or swallowed by one), this run is not to be trusted.
            code, message = EXIT_UNKNOWN, "capacity: interrupted"
        if message:
            stderr(message)
        return code
    finally:
        if in_main_thread:
            # the console script: the run is over, a late Ctrl-C changes nothing (process-wide,
            # whichever thread the kernel hands it to); in-process callers get theirs back
            signal.signal(signal.SIGINT, signal.SIG_IGN if argv is None
                          else previous or signal.default_int_handler)
            if argv is None:
                signal.signal(signal.SIGTERM, signal.SIG_IGN)


def _command(argv: Sequence[str] | None) -> str:
    """The command's name in ``argv`` (the script's own arguments when None), or ""."""
    args = list(argv) if argv is not None else sys.argv[1:]
    return next((a for a in args if not a.startswith("-")), "")


def _main(argv: Sequence[str] | None) -> tuple[int, str]:
    """Run the command: (exit status, the line for stderr, or "")."""
    args = list(argv) if argv is not None else sys.argv[1:]
    try:
        # cli.main() would catch Ctrl-C itself, echo an empty line and raise Abort: run the
        # command directly, so a KeyboardInterrupt reaches the one line below
        with cli.make_context("capacity", args) as ctx:
            result = cli.invoke(ctx)
    except click.exceptions.Exit as exc:  # --help, --version
        return int(exc.exit_code or 0), ""
    except click.exceptions.Abort:
        return EXIT_UNKNOWN, "capacity: aborted"
    except click.exceptions.NoArgsIsHelpError as exc:  # plain 'capacity': the help, exit 3
        exc.show()
        return EXIT_UNKNOWN, ""
    except click.ClickException as exc:  # usage errors: exit 3, not Click's 2; one line
        where = getattr(exc, "ctx", None)
        hint = f" (see '{where.command_path} --help')" if where is not None else ""
        return EXIT_UNKNOWN, f"capacity: error: {' '.join(exc.format_message().split())}{hint}"
    except CapacityError as exc:
        return EXIT_UNKNOWN, f"capacity: error: {exc}"
    except KeyboardInterrupt:
        return EXIT_UNKNOWN, "capacity: interrupted"
    except BrokenPipeError:
        # the reader closed our stdout ('capacity plan ... | head -1'): not a bug; what it
        # read is all it gets, and Python's own flush at exit must not fail again
        _stdout_to_devnull()
        return EXIT_UNKNOWN, ("capacity: output closed by the reader (broken pipe): not "
                              "all of it was read")
    except Exception as exc:  # a bug or an unforeseen fault: still "unknown" (3), never 1
        if _interrupted(exc):
            return EXIT_UNKNOWN, "capacity: interrupted"
        if os.environ.get("CAPACITY_DEBUG"):
            raise
        return EXIT_UNKNOWN, (
            f"capacity: error: unexpected {type(exc).__name__}: {exc} "
            "(this is a bug in capacity: please report it with the command line)"
        )
    return (int(result) if isinstance(result, int) else EXIT_OK), ""


def _stdout_to_devnull() -> None:
    """Point file descriptor 1 at /dev/null (after a broken pipe), as the Python docs advise
    for SIGPIPE: the interpreter flushes stdout at exit and would raise again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # no real stdout (in-process callers)
        pass


def _interrupted(exc: BaseException) -> bool:
    """Whether a KeyboardInterrupt is in ``exc``'s cause/context chain."""
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        if isinstance(cur, KeyboardInterrupt):
            return True
        seen.add(id(cur))
        cur = cur.__cause__ or cur.__context__
    return False


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
