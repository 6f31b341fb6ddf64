"""``capacity fit``: profiles.json from the demo, a samples file, or the store."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from capacity._pipeline import load_demo
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


def test_fit_from_a_samples_file_equals_fit_from_the_demo(tmp_path: Path) -> None:
    path = write_samples(load_demo().samples, tmp_path / "samples.parquet")
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    assert run_cli("fit", "--samples", str(path), "--out", str(a)).returncode == 0
    assert run_cli("fit", "--demo", "--out", str(b)).returncode == 0
    pa, pb = Profiles.from_json(a), Profiles.from_json(b)
    assert pa.services == pb.services


def test_fit_two_sources_is_a_usage_error() -> None:
    result = run_cli("fit", "--demo", "--samples", "x.csv")
    assert result.returncode == 3
    assert "--samples and --demo" in result.stderr


def test_fit_missing_store_is_exit_3(tmp_path: Path) -> None:
    result = run_cli("fit", "--store", str(tmp_path / "missing.sqlite"))
    assert result.returncode == 3
    assert "capacity collect" in result.stderr
    assert "Traceback" not in result.stderr
