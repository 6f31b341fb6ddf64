"""An old store is not "now": the status is UNKNOWN (exit 3) with the newest sample's age,
no headroom is judged, and the safe counts stand. Real
stores written through the Store API, the CLI in a real process."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from capacity._cli.report import _report
from capacity._pipeline import stale_after_s, stale_reason
from capacity._settings import DEFAULTS
from capacity.sources._types import ContainerCounters, ContainerInfo
from capacity.store import Store

#: roomy: a fresh store of this content is OK (or WARNING), never CRITICAL or UNKNOWN
ROOMY = "cpus=64,memory=256GiB"
#: small: the 3 web containers are more than the safe count on it (CRITICAL when current)
TINY = "cpus=1,memory=100MiB"
INTERVAL_S = 10.0


def _fill(path: Path, end: datetime, rounds: int = 120,
          services: tuple[str, ...] = ("web",)) -> None:
    """A store of 3 containers per service sampled every 10 s, the last round at ``end``."""
    rng = np.random.default_rng(7)
    start = end - timedelta(seconds=INTERVAL_S * (rounds - 1))
    infos = [ContainerInfo(id=f"{i:064x}", name=f"{svc}{i}", image="img", service=svc,
                           pid=100 + i, started_at=start)
             for i, svc in enumerate(s for s in services for _ in range(3))]
    cpu = np.zeros(len(infos))
    with Store(path, batch_rounds=60) as store:
        for k in range(rounds):
            cpu += rng.gamma(4, 0.05, size=len(infos)) * INTERVAL_S
            store.write_round(
                start + timedelta(seconds=INTERVAL_S * k), INTERVAL_S * k, infos,
                [ContainerCounters(container_id=c.id, cpu_usage_seconds_total=float(u),
                                   memory_usage_bytes=60 * 2**20,
                                   memory_working_set_bytes=int(40 * 2**20 + k * 1000))
                 for c, u in zip(infos, cpu, strict=True)])


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "capacity", *args], capture_output=True,
                          text=True, env={**os.environ, "MPLBACKEND": "Agg"}, timeout=300)


def test_report_check_on_an_11_day_old_store_is_unknown_not_critical(tmp_path: Path) -> None:
    store = tmp_path / "old.sqlite"
    _fill(store, datetime.now(UTC) - timedelta(days=11))
    res = _run("report", "--store", str(store), "--machine", TINY, "--check",
               "--out", str(tmp_path / "r"))
    assert res.returncode == 3, (res.stdout, res.stderr)
    line = res.stdout.strip()
    assert line.startswith("CAPACITY UNKNOWN - the newest sample is 11.0 d old"), line
    assert "CRITICAL" not in line and "running" in line  # "what runs now is unknown"
    assert "'web_safe'=" in line and "'web_running'" not in line
    # the report's first screen says so; the safe count is still reported
    md = next((tmp_path / "r").iterdir()).joinpath("report.md").read_text()
    head = md.split("## The answer per service", 1)[0]
    assert "status **UNKNOWN**" in head and "11.0 d old" in head


def test_the_same_store_written_now_is_judged(tmp_path: Path) -> None:
    store = tmp_path / "new.sqlite"
    _fill(store, datetime.now(UTC))
    res = _run("report", "--store", str(store), "--machine", TINY, "--check",
               "--out", str(tmp_path / "r"))
    assert res.returncode == 2, (res.stdout, res.stderr)
    assert res.stdout.startswith("CAPACITY CRITICAL - web: 3 running")


def test_samples_file_is_a_recording_its_age_is_stated_not_judged(tmp_path: Path) -> None:
    store = tmp_path / "old.sqlite"
    _fill(store, datetime.now(UTC) - timedelta(days=2))
    with Store(store, read_only=True) as st:
        samples = st.samples()
    csv = tmp_path / "samples.csv"
    samples.to_csv(csv, index=False)
    res = _run("report", "--samples", str(csv), "--machine", TINY, "--out",
               str(tmp_path / "r"))
    assert res.returncode == 2, (res.stdout, res.stderr)  # judged as of its own time
    md = next((tmp_path / "r").iterdir()).joinpath("report.md").read_text()
    assert "a recording: its newest sample is of" in md and "(2.0 d before this run)" in md


def test_clock_is_injected_one_hour_later_makes_a_fresh_store_old(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = tmp_path / "s.sqlite"
    end = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
    _fill(store, end, services=("web", "db"))
    common = dict(duration=None, interval=1.0, demo=False, samples_file=None,
                  store_path=store, since_s=None, profiles_file=None, machine_spec=TINY,
                  settings=DEFAULTS, filters=(), out_dir=tmp_path / "r", name=None,
                  keep=None, as_json=False, check=True, quiet=True)
    assert _report(**common, clock=lambda: end + timedelta(minutes=5)) == 2
    fresh = capsys.readouterr().out
    assert fresh.startswith("CAPACITY CRITICAL")
    assert _report(**common, clock=lambda: end + timedelta(hours=1)) == 3
    old = capsys.readouterr().out
    assert old.startswith("CAPACITY UNKNOWN - the newest sample is 60 min")
    # the safe count the history gives stands: sized beside what ran at its last instant
    # (counting none sized each service on an empty host: 7 -> 13 beside 3 others)
    safe = [line.split("'web_safe'=", 1)[1].split(";", 1)[0] for line in (fresh, old)]
    assert safe[0] == safe[1], safe


def test_stale_bound_is_ten_intervals_at_least_ten_minutes() -> None:
    assert stale_after_s(1.0) == 600.0
    assert stale_after_s(300.0) == 3000.0
    assert stale_after_s(float("nan")) == 600.0
    t = pd.Timestamp("2026-11-27 12:00", tz="UTC")
    samples = pd.DataFrame({"time": [t]})
    now = t.to_pydatetime()
    assert stale_reason(samples, 60.0, now=now + timedelta(seconds=600)) is None
    assert stale_reason(samples, 60.0, now=now + timedelta(seconds=601)) is not None
    assert stale_reason(samples, 60.0, now=now - timedelta(days=1)) is None  # clock skew


def test_containers_that_stopped_while_the_collector_goes_on_are_not_running(
        tmp_path: Path) -> None:
    """The store's newest round is "now", not the newest container sample: 3 web containers
    stopped 400 s ago while collect kept writing rounds (host rows, no container) was
    'CRITICAL - web: 3 running'; with more empty rounds, a false 'collector stopped'."""
    from capacity.sources._types import HostCounters

    store = tmp_path / "s.sqlite"
    end = datetime.now(UTC)
    rounds, stopped_at = 120, 80
    start = end - timedelta(seconds=INTERVAL_S * (rounds - 1))
    infos = [ContainerInfo(id=f"{i:064x}", name=f"web{i}", image="img", service="web",
                           pid=100 + i, started_at=start) for i in range(3)]
    with Store(store, batch_rounds=60) as st:
        for k in range(rounds):
            live = k < stopped_at
            host = HostCounters(cpu_usage_seconds_total=k * 1.0, memory_used_bytes=2**30,
                                memory_total_bytes=2**34, net_rx_bytes_total=k,
                                net_tx_bytes_total=k, disk_read_bytes_total=k,
                                disk_write_bytes_total=k, logical_cpus=8)
            st.write_round(
                start + timedelta(seconds=INTERVAL_S * k), INTERVAL_S * k,
                infos if live else [],
                [ContainerCounters(container_id=c.id, cpu_usage_seconds_total=k * 2.0,
                                   memory_usage_bytes=60 * 2**20,
                                   memory_working_set_bytes=40 * 2**20)
                 for c in infos] if live else [], host)
    res = _run("report", "--store", str(store), "--machine", TINY, "--check",
               "--out", str(tmp_path / "r"))
    assert res.returncode in (0, 1), (res.stdout, res.stderr)
    assert "'web_running'=0;" in res.stdout, res.stdout
