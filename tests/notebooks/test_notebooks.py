"""The notebooks run from top to bottom (a failing cell fails the suite), and the walkthrough
gives the answer the CLI gives on the same data.

Each notebook is executed with nbclient on an ipykernel kernel of this interpreter, in the
``notebooks/`` folder (so its relative data paths resolve), with ``MPLBACKEND=Agg``. The
notebooks are stored without outputs; a test checks that too, so a saved run cannot slip in.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

nbformat = pytest.importorskip("nbformat", reason="needs the 'test' extra (nbformat)")
nbclient = pytest.importorskip("nbclient", reason="needs the 'test' extra (nbclient)")
pytest.importorskip("ipykernel", reason="needs the 'test' extra (ipykernel)")

import capacity  # noqa: E402
from capacity.cli import main  # noqa: E402

#: the tree whose ``capacity`` the tests import (the kernel must import the same)
TREE = Path(capacity.__file__).resolve().parents[1]
NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
WALKTHROUGH = NOTEBOOKS / "sizing_walkthrough.ipynb"
TRACE = NOTEBOOKS / "trace_backtest.ipynb"
#: longest a cell may run, seconds (the whole walkthrough takes about 20 s on 2 busy cores)
CELL_TIMEOUT_S = 120
#: the machine the walkthrough plans for (its spec string, as given to the CLI)
MACHINE = "cpus=8,memory=32GiB"


def _execute(path: Path, env: dict[str, str] | None = None) -> tuple[Any, float]:
    """Run the notebook on a kernel that imports the ``capacity`` this test imported.

    The kernel is another process, started in ``notebooks/``: without help it imports
    whatever ``capacity`` its interpreter has installed. From a clone with its own
    ``pip install -e .`` (as .ci/run does) that is this tree; with a venv shared by several
    work trees (an editable install points at one of them), a plain ``pip install .`` or
    none at all, it is another copy or nothing. So this tree goes first on the kernel's
    ``PYTHONPATH`` (as tests/cli/test_interrupt.py does for its subprocesses), and a first
    cell, added here and not stored, checks that the kernel imported it.
    """
    nb = nbformat.read(path, as_version=4)
    nb.cells.insert(0, nbformat.v4.new_code_cell(
        "import capacity as _capacity_under_test\n"
        "print('capacity imported from', _capacity_under_test.__file__)"))
    client = nbclient.NotebookClient(
        nb, timeout=CELL_TIMEOUT_S, kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
    )
    path_var = os.pathsep.join(p for p in (str(TREE), os.environ.get("PYTHONPATH")) if p)
    kernel_env = {**os.environ, "MPLBACKEND": "Agg", "PYTHONPATH": path_var, **(env or {})}
    start = time.monotonic()
    client.execute(env=kernel_env)  # raises CellExecutionError naming the failing cell
    seconds = time.monotonic() - start
    imported = nb.cells[0].outputs[0]["text"].split("capacity imported from ", 1)[1].strip()
    assert Path(imported).resolve() == Path(capacity.__file__).resolve(), (
        f"the kernel imported {imported}, the tests {capacity.__file__}")
    del nb.cells[0]
    return nb, seconds


def _outputs(nb: Any) -> str:
    texts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream":
                texts.append(out.get("text", ""))
            elif "data" in out:
                texts.append(str(out["data"].get("text/plain", "")))
    return "\n".join(texts)


@pytest.mark.parametrize("path", [WALKTHROUGH, TRACE], ids=lambda p: p.name)
def test_stored_without_outputs(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert not cell.outputs, f"cell {i} of {path.name} has stored outputs"
            assert cell.execution_count is None, f"cell {i} of {path.name} was executed"


def test_trace_data_ships_with_its_source() -> None:
    folder = NOTEBOOKS / "data" / "gcd-vms"
    source = (folder / "SOURCE.txt").read_text()
    assert "License" in source and "google/cluster-data" in source
    assert len(list((folder / "GCD_VMs").iterdir())) == 32


@pytest.mark.slow
def test_walkthrough_runs_and_answers_as_the_cli(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    answer = tmp_path / "walkthrough-plan.json"
    # no time asserted (a loaded host is no defect): CELL_TIMEOUT_S stops a cell that hangs
    nb, _ = _execute(WALKTHROUGH, {"CAPACITY_WALKTHROUGH_PLAN": str(answer)})
    text = _outputs(nb)
    assert "the command line gives the same plans: True" in text
    code = main(["report", "--demo", "--json", "--machine", MACHINE, "--out",
                 str(tmp_path / "reports")])
    assert code in (0, 1, 2)
    cli = json.loads(capsys.readouterr().out)
    assert json.loads(answer.read_text()) == cli


@pytest.mark.slow
def test_trace_backtest_runs() -> None:
    nb, _ = _execute(TRACE)
    text = _outputs(nb)
    assert "16 replicas; day 1: 4608 samples, day 2: 4608 samples" in text
    assert "best count in hindsight on day 2:" in text
    assert "best count in hindsight on the test window:" in text  # capacity.backtest ran
