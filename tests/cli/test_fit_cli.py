"""``capacity fit``: profiles.json from the demo, a samples file, or the store."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from capacity._pipeline import load_demo
from capacity.model import ProfileModel
from capacity.model._profile import Profiles
from capacity.store._files import write_samples


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "capacity", *args],
        capture_output=True, text=True, env={**os.environ, "MPLBACKEND": "Agg"}, timeout=120,
    )


def test_fit_demo_writes_loadable_profiles(tmp_path: Path) -> None:
    out = tmp_path / "profiles.json"
    result = run_cli("fit", "--demo", "--out", str(out))
    assert result.returncode == 0, result.stderr
    profiles = Profiles.from_json(out)
    demo = load_demo().samples
    assert sorted(profiles.services) == sorted(demo["service"].unique())
    for name, sp in profiles.services.items():
        assert sp.n_samples == int((demo["service"] == name).sum())
        assert name in result.stdout


def test_fit_from_a_samples_file_equals_fitting_the_table_in_process(tmp_path: Path) -> None:
    # A samples file carries no containers table, so no declared limits: compare with the
    # same table fitted without one.
    demo = load_demo().samples
    path = write_samples(demo, tmp_path / "samples.parquet")
    out = tmp_path / "a.json"
    assert run_cli("fit", "--samples", str(path), "--out", str(out)).returncode == 0
    assert Profiles.from_json(out).services == ProfileModel().fit(demo).profiles_.services


def test_fit_two_sources_is_a_usage_error() -> None:
    result = run_cli("fit", "--demo", "--samples", "x.csv")
    assert result.returncode == 3
    assert "--samples and --demo" in result.stderr


def test_fit_missing_store_is_exit_3(tmp_path: Path) -> None:
    result = run_cli("fit", "--store", str(tmp_path / "missing.sqlite"))
    assert result.returncode == 3
    assert "capacity collect" in result.stderr
    assert "Traceback" not in result.stderr


def test_fit_errors_are_one_capacity_error_line(tmp_path: Path) -> None:
    """Like every other command: ``capacity: error: ...`` on one line, exit 3 (it was
    Click's ``Error: cannot write ...`` for an unwritable --out, and Click's usage block
    for a bad flag)."""
    for args, says in (
        (("--demo", "--out", str(tmp_path / "no-such-dir" / "p.json")), "cannot write"),
        (("--demo", "--bogus"), "No such option"),
        (("--demo", "--samples", "x.csv"), "give one source"),
    ):
        result = run_cli("fit", *args)
        assert result.returncode == 3, result.stderr
        assert result.stderr.startswith("capacity: error: "), result.stderr
        assert result.stderr.count("\n") == 1 and says in result.stderr, result.stderr
    assert list(tmp_path.iterdir()) == []
