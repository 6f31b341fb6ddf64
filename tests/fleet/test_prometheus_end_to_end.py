"""Must show (issue 15): Prometheus scrapes ``capacity collect --serve`` while real containers
run known workloads; ``capacity fit --prometheus`` then gives the same profiles as the local
store of the same run.

A busy loop under ``--cpus 0.5`` and a holder of 48 MiB (a tmpfs file charged to its memory
cgroup) run for about 30 s; the collector samples them every second into its store and
serves them on a free loopback port; Debian's ``prometheus`` (a temporary data dir, a 1 s
scrape interval) scrapes it. Both fits go through the CLI, as a user would run them.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from prometheus_helpers import free_port, prometheus_server, require_binary

from capacity._columns import CPU, MEMORY
from capacity.model._profile import Profiles

BURNER_CPUS = 0.5
HOLD_MIB = 48
COLLECT_S = 30
#: wait after the containers start: a fresh shell's working set is higher for its first
#: seconds (its binary's pages still active), and Prometheus' first scrapes of the new
#: exporter come seconds after the collector's first reads, so only the store would see
#: that transient (seen: memory demand 561 KiB in the store, 332 KiB from Prometheus)
SETTLE_S = 5.0
#: the issue's agreement bounds between the two fits
CPU_AGREEMENT_CORES = 0.05
MEMORY_AGREEMENT = 0.05
#: below this a difference in memory is page-level noise, not disagreement: the burner's own
#: working set is ~350 KiB, and the store holds a few more early rounds than the first scrape
#: sees (41 KiB apart, 11 %, seen once), while 5 % of the 48 MiB holder is 2.4 MiB
MEMORY_FLOOR_BYTES = 128 * 2**10


def _capacity(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_COLOR": "1"}
    return subprocess.run([sys.executable, "-m", "capacity", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=180)


@pytest.mark.docker
@pytest.mark.slow
def test_fit_from_prometheus_agrees_with_the_local_store(run_container, tmp_path: Path) -> None:
    require_binary("prometheus")
    tag = uuid.uuid4().hex[:8]
    labels = {"capacity.fleet": tag, "com.docker.compose.project": f"fleet{tag}"}
    run_container("sh", "-c", "while :; do :; done", cpus=BURNER_CPUS,
                  labels={**labels, "com.docker.compose.service": "burner"})
    run_container(
        "sh", "-c", f"dd if=/dev/zero of=/hold/data bs=1M count={HOLD_MIB} 2>/dev/null; "
        "sleep 3600", tmpfs={"/hold": "size=64m"},
        labels={**labels, "com.docker.compose.service": "holder"},
    )
    time.sleep(SETTLE_S)
    port = free_port()
    store = tmp_path / "samples.sqlite"
    with prometheus_server(tmp_path / "prom", targets=[f"127.0.0.1:{port}"]) as url:
        collected = _capacity(
            "collect", "--serve", f"127.0.0.1:{port}", "--interval", "1s",
            "--duration", f"{COLLECT_S}s", "--store", str(store), "--quiet",
            "--filter", f"label=capacity.fleet={tag}", "--disk-usage-every", "0",
            cwd=tmp_path,
        )
        assert collected.returncode == 0, collected.stderr
        local = _capacity("fit", "--store", str(store), "--out", "local.json", cwd=tmp_path)
        assert local.returncode == 0, local.stderr
        remote = _capacity("fit", "--prometheus", url, "--since", "5m",
                           "--selector", '{job="capacity"}', "--out", "prom.json",
                           cwd=tmp_path)
        assert remote.returncode == 0, remote.stderr

    mine = Profiles.from_json(tmp_path / "local.json")
    theirs = Profiles.from_json(tmp_path / "prom.json")
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
