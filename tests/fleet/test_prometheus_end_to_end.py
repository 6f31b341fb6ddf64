"""Must show (issue 15): Prometheus scrapes ``capacity collect --serve`` while real containers
run known workloads; ``capacity fit --prometheus`` then gives the same profiles as the local
store of the same run.

A busy loop under ``--cpus 0.5`` and a holder of 48 MiB (a tmpfs file charged to its memory
cgroup) run; the collector samples them every second into its store and serves them on a
free loopback port; Debian's ``prometheus`` (a temporary data dir, a 1 s scrape interval)
scrapes it, from its first scrape of the containers (waited for, bounded) for 30 s, once the
holder holds its 48 MiB (waited for, bounded). The Prometheus fit goes through the CLI, as a
user runs it; the store's fit runs what ``capacity fit --store`` runs, over the instants
Prometheus holds (the store has every round, the scrapes a few less at either end).
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from prometheus_helpers import free_port, instant, prometheus_server, require_binary

from capacity._columns import CPU, MEMORY
from capacity._pipeline import fit_profiles, load_samples
from capacity.model._profile import Profiles
from capacity.sources._cgroup import CgroupReader
from capacity.sources._docker import container_info

BURNER_CPUS = 0.5
HOLD_MIB = 48
#: seconds both sources observe, counted from Prometheus' first scrape of the containers
COLLECT_S = 30
#: bounds on the waits for a condition (never reached when things work; generous because
#: the machine is shared: under load a container start and the first scrape take seconds)
READY_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 60.0
POLL_S = 0.25
#: a sample's time as Prometheus keeps it (milliseconds) and as the store keeps it
#: (microseconds) are this close; rounds are about a second apart
EDGE_SLACK = pd.Timedelta(milliseconds=10)
#: the issue's agreement bounds between the two fits
CPU_AGREEMENT_CORES = 0.05
MEMORY_AGREEMENT = 0.05
#: below this a difference in memory is page-level noise, not disagreement: the burner's own
#: working set is ~350 KiB, and a scrape that misses a round mid-run leaves the two sides a
#: round apart (41 KiB apart, 11 %, seen once), while 5 % of the 48 MiB holder is 2.4 MiB
MEMORY_FLOOR_BYTES = 128 * 2**10


def _wait_for(what: str, predicate: Callable[[], bool], timeout_s: float) -> None:
    """Poll ``predicate`` until it holds; fail naming ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s:g} s waiting for {what}")
        time.sleep(POLL_S)


def _capacity(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_COLOR": "1"}
    return subprocess.run([sys.executable, "-m", "capacity", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=180)


@pytest.mark.docker
@pytest.mark.slow
def test_fit_from_prometheus_agrees_with_the_local_store(
    docker_client, run_container, tmp_path: Path
) -> None:
    require_binary("prometheus")
    tag = uuid.uuid4().hex[:8]
    labels = {"capacity.fleet": tag, "com.docker.compose.project": f"fleet{tag}"}
    run_container("sh", "-c", "while :; do :; done", cpus=BURNER_CPUS,
                  labels={**labels, "com.docker.compose.service": "burner"})
    holder = run_container(
        "sh", "-c", f"dd if=/dev/zero of=/hold/data bs=1M count={HOLD_MIB} 2>/dev/null; "
        "sleep 3600", tmpfs={"/hold": "size=64m"},
        labels={**labels, "com.docker.compose.service": "holder"},
    )
    # The holder must hold its 48 MiB before anything is measured (dd may still be writing
    # on a loaded host), read as the collector reads it: its working set through the cgroup.
    reader = CgroupReader()
    holder_info = container_info(docker_client.api.inspect_container(holder.id))
    _wait_for(f"the holder to hold {HOLD_MIB} MiB", lambda: reader.read(
        holder_info).memory_working_set_bytes >= HOLD_MIB * 2**20, READY_TIMEOUT_S)
    port = free_port()
    store = tmp_path / "samples.sqlite"
    with prometheus_server(tmp_path / "prom", targets=[f"127.0.0.1:{port}"]) as url:
        collector = subprocess.Popen(
            [sys.executable, "-m", "capacity", "collect", "--serve", f"127.0.0.1:{port}",
             "--interval", "1s", "--forever", "--store", str(store), "--quiet",
             "--filter", f"label=capacity.fleet={tag}", "--disk-usage-every", "0"],
            cwd=tmp_path, env={**os.environ, "NO_COLOR": "1"},
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        try:
            query = f'container_memory_working_set_bytes{{container_label_capacity_fleet="{tag}"}}'
            _wait_for("Prometheus' first scrape of both containers",
                      lambda: len(instant(url, query)) == 2, READY_TIMEOUT_S)
            # the measurement itself, from the first scrape on (a duration, not a wait for
            # something to happen)
            time.sleep(COLLECT_S)
        finally:
            collector.terminate()  # SIGTERM: a service stop, exit 0 with the rows kept
            try:
                _, err = collector.communicate(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                collector.kill()
                _, err = collector.communicate()
        assert collector.returncode == 0, err
        remote = _capacity("fit", "--prometheus", url, "--since", "5m",
                           "--selector", '{job="capacity"}', "--out", "prom.json",
                           cwd=tmp_path)
        assert remote.returncode == 0, remote.stderr

    theirs = Profiles.from_json(tmp_path / "prom.json")
    # The store's fit over the instants Prometheus holds (what 'capacity fit --store' runs:
    # load_samples, fit_profiles). The store has every round from the collector's first; the
    # scrapes begin a round or more later (seconds on a loaded host), and may miss the last
    # rounds before the collector stops. Those edge rounds are not noise for the burner: on
    # cgroup v1, memory.usage_in_bytes holds the cgroup's per-CPU charge stock, released at
    # a random moment (steps of 200-450 KiB seen 0-5 s after the start, or not within 8 s),
    # so a few extra rounds at one level moved the store's memory demand alone (788 KiB in
    # the store, 328 KiB from Prometheus, under load, when a fixed 5 s sleep preceded the
    # collection). The exporter stamps each sample with its round's read time, so the same
    # instants are the same timestamps on both sides.
    first = min(pd.Timestamp(p.time_start) for p in theirs.services.values())
    last = max(pd.Timestamp(p.time_end) for p in theirs.services.values())
    data = load_samples(store=store)
    times = data.samples["time"]
    # Prometheus keeps milliseconds of the microsecond read times
    inside = (times >= first - EDGE_SLACK) & (times <= last + EDGE_SLACK)
    mine = fit_profiles(dataclasses.replace(data, samples=data.samples[inside]))
    project = f"fleet{tag}"
    assert sorted(mine.services) == sorted(theirs.services) == [
        f"{project}/burner", f"{project}/holder"]
    for name in mine.services:
        a, b = mine[name], theirs[name]
        print(f"{name}: samples store {a.n_samples} prometheus {b.n_samples}; CPU mean "  # -s
              f"{a.resources[CPU].mean:.4f} / {b.resources[CPU].mean:.4f} cores, demand "
              f"{a.resources[CPU].demand:.4f} / {b.resources[CPU].demand:.4f}; memory mean "
              f"{a.resources[MEMORY].mean / 2**20:.2f} / {b.resources[MEMORY].mean / 2**20:.2f}"
              " MiB")
        # the scraper may miss a round now and then, never most of them
        assert b.n_samples >= 0.7 * a.n_samples, (name, a.n_samples, b.n_samples)
        assert b.resources[CPU].mean == pytest.approx(a.resources[CPU].mean,
                                                      abs=CPU_AGREEMENT_CORES)
        assert b.resources[CPU].demand == pytest.approx(a.resources[CPU].demand,
                                                        abs=CPU_AGREEMENT_CORES)
        assert b.resources[MEMORY].mean == pytest.approx(
            a.resources[MEMORY].mean, rel=MEMORY_AGREEMENT, abs=MEMORY_FLOOR_BYTES)
        assert b.resources[MEMORY].demand == pytest.approx(
            a.resources[MEMORY].demand, rel=MEMORY_AGREEMENT, abs=MEMORY_FLOOR_BYTES)
    # and the workloads are what they are known to be: the burner busy but never above its
    # quota (a loaded shared machine gives it less: 0.21 cores seen at load 10 on 2 CPUs),
    # the holder at least what it holds, with its declared limit read back from Prometheus
    burner = theirs[f"{project}/burner"]
    assert 0.0 < burner.resources[CPU].mean <= BURNER_CPUS + CPU_AGREEMENT_CORES
    assert burner.cpu_limit_cores == pytest.approx(BURNER_CPUS)
    holder = theirs[f"{project}/holder"].resources[MEMORY].mean
    assert holder >= HOLD_MIB * 2**20
