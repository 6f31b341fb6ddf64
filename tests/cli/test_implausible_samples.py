"""One impossible reading (memory_working_set_bytes=1e30) in a samples file is refused with
exit 3 naming it, instead of driving every service to a safe count of 0 (exit 2)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import capacity


def test_one_1e30_memory_row_is_exit_3_naming_column_row_and_value(tmp_path: Path) -> None:
    samples = capacity.load(demo=True)
    samples.loc[samples.index[5], "memory_working_set_bytes"] = 1e30
    path = tmp_path / "bad.csv"
    samples.to_csv(path, index=False)
    res = subprocess.run(
        [sys.executable, "-m", "capacity", "report", "--samples", str(path), "--check",
         "--machine", "cpus=64,memory=256GiB", "--out", str(tmp_path / "r")],
        capture_output=True, text=True, env={**os.environ, "MPLBACKEND": "Agg"}, timeout=300)
    assert res.returncode == 3, (res.stdout, res.stderr)
    line = res.stdout.strip()
    assert line.startswith("CAPACITY UNKNOWN - samples file"), line
    for part in ("'memory_working_set_bytes'", "2**60 bytes (1 EiB)",
                 "at row 5: 1e+30 (container '", "drop those rows"):
        assert part in line, part
