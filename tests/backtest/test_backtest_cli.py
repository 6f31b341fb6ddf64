"""``capacity backtest`` and ``capacity verify`` on the command line (no engine needed here)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from capacity.cli import main

TRACES = Path(__file__).parent.parent / "data" / "traces"


def test_backtest_gcd_json(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["backtest", "--gcd-vms", str(TRACES / "google2011-gcd-vms" / "GCD_VMs"),
                 "--machine", "cpus=4,memory=32GiB", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert out["kind"] == "capacity.backtest"
    assert code == (0 if out["methods"]["empirical"]["within_epsilon"] else 2)


def test_backtest_samples_file_and_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                         ) -> None:
    from capacity.backtest import load_gcd_vms
    from capacity.store import write_samples

    path = write_samples(load_gcd_vms(TRACES / "google2011-gcd-vms" / "GCD_VMs"),
                         tmp_path / "s.parquet")
    code = main(["backtest", "--samples", str(path), "--machine", "cpus=4,memory=32GiB"])
    out = capsys.readouterr().out
    assert code in (0, 2)
    assert "empirical (default)" in out and "peak" in out


@pytest.mark.parametrize("argv", [
    ["backtest", "--machine", "cpus=4"],  # no history
    ["verify", "--machine", "cpus=1,memory=256MiB"],  # no image
    ["verify", "--image", "x", "--probe-url", "http://a", "--probe-cmd", "true",
     "--machine", "cpus=1,memory=256MiB"],
])
def test_usage_errors_exit_3(argv: list[str]) -> None:
    assert main(argv) == 3
