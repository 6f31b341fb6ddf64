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
        (("report", "--demo", "--machine", "{tmp}/newer.toml", "--out", "{tmp}/r"),
         "'schema_version'"),
        (("report", "--demo", "--machine", "{tmp}/nonsense.toml", "--out", "{tmp}/r"),
         "'host_cost.memory_bytes'"),
        (("machine", "show", "--file", "{tmp}/corrupt.parquet"), "valid TOML"),
        (("report", "--demo", "--machine", "{tmp}/machne.toml", "--out", "{tmp}/r"),
         "machne.toml does not exist; write it with 'capacity machine probe --file"),
    ],
)
def test_bad_input_is_one_line_and_exit_3(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: tuple[str, ...], expected: str
) -> None:
    (tmp_path / "corrupt.parquet").write_bytes(b"this is not parquet")
    machine = 'kind = "capacity.machine"\n[capacity]\ncpu_cores = 2\n'
    (tmp_path / "newer.toml").write_text("schema_version = 99\n" + machine)
    (tmp_path / "nonsense.toml").write_text(
        "schema_version = 1\n" + machine + '[host_cost]\nmemory_bytes = "a lot"\n')
    code = main([a.format(tmp=tmp_path) for a in args])
    err = capsys.readouterr().err
    assert code == 3
    assert expected in err
    assert "Traceback" not in err
