"""What ``capacity --version``, ``--help`` and ``import capacity`` import (issue 14).

A test of *what* is imported, not of time: the heavy modules (scipy.stats, scipy.optimize,
matplotlib, pandas) are imported inside the functions that need them, so the command line
answers ``--help`` without them. Each case runs in a fresh interpreter, since this one has
long imported everything.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import capacity

#: never needed to print the version or the help
HEAVY = ("matplotlib", "scipy.stats", "scipy.optimize", "scipy", "pandas", "numpy")

_SCRIPT = """
import json, sys
{body}
print(json.dumps(sorted(sys.modules)))
"""


def imported_by(body: str) -> set[str]:
    """The names in ``sys.modules`` after running ``body`` in a fresh interpreter, importing
    the same ``capacity`` tree as this test run (not whatever the working directory holds)."""
    tree = str(Path(capacity.__file__).resolve().parents[1])
    path = os.pathsep.join(p for p in (tree, os.environ.get("PYTHONPATH")) if p)
    result = subprocess.run(
        [sys.executable, "-c", _SCRIPT.format(body=body)], cwd=tree,
        capture_output=True, text=True, timeout=120,
        env={**os.environ, "MPLBACKEND": "Agg", "PYTHONPATH": path},
    )
    assert result.returncode == 0, result.stderr
    return set(json.loads(result.stdout.splitlines()[-1]))


def heavy_in(modules: set[str]) -> list[str]:
    return sorted(m for m in HEAVY if m in modules)


def _cli(*args: str) -> str:
    # main() returns the exit status; --version/--help print to stdout first
    return ("import contextlib, io\nfrom capacity.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            f"    assert main({list(args)!r}) == 0\n")


@pytest.mark.parametrize("args", [
    ("--version",), ("--help",), ("plan", "--help"), ("report", "--help"),
    ("collect", "--help"), ("fit", "--help"), ("size", "--help"), ("verify", "--help"),
    ("backtest", "--help"),
])
def test_cli_help_and_version_import_nothing_heavy(args: tuple[str, ...]) -> None:
    assert heavy_in(imported_by(_cli(*args))) == []


def test_import_capacity_imports_nothing_heavy() -> None:
    modules = imported_by("import capacity")
    assert heavy_in(modules) == []
    assert "capacity._api" not in modules  # the public names load on first use


def test_a_public_name_still_loads_what_it_needs() -> None:
    # the control: the check above can see pandas when it is imported
    modules = imported_by("import capacity\nassert callable(capacity.fit)")
    assert "pandas" in modules
    assert "capacity._api" in modules


def test_public_names_are_listed_before_use() -> None:
    modules = imported_by(
        "import capacity, capacity.solver, capacity.model\n"
        "assert set(capacity.__all__) <= set(dir(capacity))\n"
        "assert {'plan', 'Machine'} <= set(dir(capacity.solver))\n"
        "assert 'ProfileModel' in dir(capacity.model)\n"
    )
    assert heavy_in(modules) == []


def test_a_misspelt_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'fitt'"):
        capacity.fitt  # noqa: B018
