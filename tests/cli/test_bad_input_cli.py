"""Bad input on the command line: one clear line on stderr and exit 3, never a traceback
(exit 1 would read as WARNING to an alerting system)."""

from __future__ import annotations

from pathlib import Path

import pytest

from capacity.cli import main


@pytest.mark.parametrize(
    "args, expected",
    [
        (("fit", "--samples", "{tmp}/missing.csv"), "does not exist"),
        (("report", "--samples", "{tmp}/corrupt.parquet", "--out", "{tmp}/r"), "cannot be read"),
        (("fit", "--samples", "{tmp}/corrupt.parquet"), "cannot be read"),
        (("fit", "--demo", "--since", "1h"), "--since filters the store"),
    ],
)
def test_bad_input_is_one_line_and_exit_3(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: tuple[str, ...], expected: str
) -> None:
    (tmp_path / "corrupt.parquet").write_bytes(b"this is not parquet")
    code = main([a.format(tmp=tmp_path) for a in args])
    err = capsys.readouterr().err
    assert code == 3
    assert expected in err
    assert "Traceback" not in err
