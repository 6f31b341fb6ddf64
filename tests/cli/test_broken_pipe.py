"""A reader that closes the pipe early ('capacity plan --json | head -c 100') is not a bug."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_a_closed_stdout_is_one_line_not_a_bug_report() -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first write
    try:
        done = subprocess.run(
            [sys.executable, "-m", "capacity", "plan", "--profiles",
             str(ROOT / "reports" / "example" / "profiles.json"), "--machine",
             "cpus=4,memory=8GiB", "--json"],
            stdout=write_end, stderr=subprocess.PIPE, text=True, timeout=120,
            env={**os.environ, "PYTHONPATH": str(ROOT)})
    finally:
        os.close(write_end)
    assert done.returncode == 3
    assert "broken pipe" in done.stderr and "bug" not in done.stderr
    assert "Traceback" not in done.stderr and "Exception ignored" not in done.stderr
