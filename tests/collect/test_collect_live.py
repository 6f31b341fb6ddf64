"""The whole path on real containers with known workloads: collector -> SQLite store ->
rates. Each test asserts numbers of the samples table (the readers alone are tested in
tests/sources/).

One collector run samples every workload at once (CPU, memory, disk, network, disk usage),
so the suite stays short; each resource is asserted by its own test.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import pytest
from block_devices import whole_disk_of
from collect_helpers import (
    RUN_LABEL,
    BackgroundCollector,
    MiB,
    new_run_id,
    wait_for_log,
    wait_until,
)
from docker_labels import SESSION_ID, TEST_LABEL

from capacity.sources._cgroup import cgroup_version
from capacity.store import Store

#: the collector's interval in these runs, seconds
INTERVAL_S = 1.0
#: a busy loop under --cpus 0.5 averages 0.5 cores within this
CPU_TOLERANCE_CORES = 0.05
#: relative tolerance of a held 64 MiB on the working set (the shell adds ~1 MiB)
MEMORY_TOLERANCE = 0.10
#: a file written once leaves the working set below this (its pages are inactive file cache)
PAGE_CACHE_WORKING_SET_MAX_BYTES = 16 * MiB
#: relative tolerance of bytes sent / written against the summed rates
NET_TOLERANCE = 0.05
DISK_TOLERANCE = 0.05
#: relative tolerance of the writable layer against the file left in it
DISK_USAGE_TOLERANCE = 0.10
#: below this much idle CPU on the host (cores), a busy loop may not get its quota
HOST_IDLE_MIN_CORES = 0.2
#: the CPU average is taken over at least this many seconds of samples
CPU_WINDOW_S = 4.0
#: readings the run takes after the disk and network workloads end: their intervals span
#: CPU_WINDOW_S plus one interval, so a first reading late by up to a second (a round that
#: late would be a gap anyway) still leaves CPU_WINDOW_S of quiet samples
QUIET_ROUNDS = int(CPU_WINDOW_S / INTERVAL_S) + 2
FILE_BYTES = 1 * MiB
FETCHES = 20
DD_BYTES = 64 * MiB

pytestmark = [
    pytest.mark.docker,
    pytest.mark.skipif(cgroup_version() is None, reason="needs /sys/fs/cgroup (fast path)"),
]


@dataclass
class Scenario:
    samples: pd.DataFrame
    counters: pd.DataFrame
    events: pd.DataFrame
    ids: dict[str, str]
    rounds: int
    quiet_from: datetime
    #: idle CPU of the whole host over the quiet tail, cores (psutil, not the collector)
    quiet_idle_cores: float

    def of(self, role: str) -> pd.DataFrame:
        return self.samples[self.samples["container_id"] == self.ids[role]]

    def total(self, role: str, column: str) -> float:
        s = self.of(role)
        return float((s[column] * s["interval_s"]).sum())


@pytest.fixture(scope="module")
def scenario(
    docker_client: Any, busybox_image: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Scenario]:
    """Start the workloads, collect while they run, return what the store gives back.

    Module-scoped (one run for all the asserting tests), so it cannot use the
    function-scoped ``run_container``; it does the same: the conftest label on every
    container, and removal pass or fail (plus the session's leftover sweep).
    """
    run_id = new_run_id()
    labels = {TEST_LABEL: SESSION_ID, RUN_LABEL: run_id}
    started: list[Any] = []
    network = docker_client.networks.create(
        f"capacity-collect-{run_id}", driver="bridge", labels={TEST_LABEL: SESSION_ID}
    )

    def run(*command: str, **kwargs: Any) -> Any:
        c = docker_client.containers.run(busybox_image, list(command), detach=True,
                                         labels=labels, **kwargs)
        started.append(c)
        return c

    try:
        disk_dev = whole_disk_of(str(docker_client.info().get("DockerRootDir")
                                     or "/var/lib/docker"))
        # blkio.throttle counts nothing until a throttle rule exists on the device (Linux
        # >= 6.10, cgroup v1): a write limit far above any real rate turns it on
        throttle = [{"Path": disk_dev, "Rate": 1 << 40}] if disk_dev else []
        cpu = run("sh", "-c", "while :; do :; done", nano_cpus=500_000_000)
        mem = run("sh", "-c", "dd if=/dev/zero of=/hold/x bs=1M count=64 2>/dev/null;"
                  " echo ready; exec sleep 600", tmpfs={"/hold": "size=128m"})
        disk = run("sleep", "600", device_write_bps=throttle)
        # 64 MiB of page cache written once: inactive file pages, reclaimable
        cache = run("sh", "-c", "dd if=/dev/zero of=/f bs=1M count=64 2>/dev/null;"
                    " echo ready; exec sleep 600")
        server = run("sh", "-c", f"mkdir -p /www && dd if=/dev/zero of=/www/f bs={FILE_BYTES}"
                     " count=1 2>/dev/null && exec httpd -f -p 8080 -h /www",
                     network=network.name, name=f"capacity-srv-{run_id}")
        client = run("sleep", "600", network=network.name)
        wait_for_log(mem, "ready")
        wait_for_log(cache, "ready")
        probe = f"wget -q -O /dev/null http://{server.name}:8080/f"
        wait_until(lambda: client.exec_run(["sh", "-c", probe]).exit_code == 0, 15,
                   "the httpd server to answer")

        path = tmp_path_factory.mktemp("collect") / "s.sqlite"
        with BackgroundCollector(docker_client, path, run_id, interval_s=INTERVAL_S,
                                 disk_usage_every_s=1.0) as bg:
            bg.wait_rounds(1)
            dd = disk.exec_run(["dd", "if=/dev/zero", "of=/f", "bs=1M",
                                f"count={DD_BYTES // MiB}", "oflag=direct"])
            assert dd.exit_code == 0, dd.output
            loop = f"i=0; while [ $i -lt {FETCHES} ]; do {probe} || exit 1; i=$((i+1)); done"
            fetched = client.exec_run(["sh", "-c", loop])
            assert fetched.exit_code == 0, fetched.output
            after, quiet_from, t_quiet = bg.rounds, datetime.now(UTC), time.monotonic()
            idle_from = _idle_cpu_seconds()
            # more rounds take the workloads' last bytes and a disk usage pass after dd; the
            # CPU is averaged over this quiet tail, where our own dd and wget do not compete.
            # Counted in rounds, not seconds: of the rounds done after quiet_from, one may
            # have read before it (in flight then), so QUIET_ROUNDS + 1 rounds leave
            # QUIET_ROUNDS readings after it, QUIET_ROUNDS - 1 whole intervals. (A wait of
            # CPU_WINDOW_S + INTERVAL_S seconds alone could stop the collector just before a
            # round due at its very end that ran a few ms late: 3 s of quiet samples, under
            # the CPU_WINDOW_S - 0.1 asserted.)
            wait_until(lambda: bg.rounds >= after + QUIET_ROUNDS + 1
                       and time.monotonic() - t_quiet >= CPU_WINDOW_S + INTERVAL_S, 60,
                       "the last rounds")
            rounds = bg.rounds
            idle_cores = (_idle_cpu_seconds() - idle_from) / (time.monotonic() - t_quiet)
        with Store(path, create=False) as store:
            yield Scenario(
                samples=store.samples(interval_s=INTERVAL_S),
                counters=store.counters(),
                events=store.events(),
                ids={"cpu": cpu.id, "mem": mem.id, "disk": disk.id, "server": server.id,
                     "client": client.id, "cache": cache.id},
                rounds=rounds,
                quiet_from=quiet_from,
                quiet_idle_cores=idle_cores,
            )
    finally:
        for c in started:
            with contextlib.suppress(Exception):  # already gone
                c.remove(force=True, v=True)
        network.remove()


def _idle_cpu_seconds() -> float:
    """Idle + iowait seconds of the whole host, summed over CPUs (psutil)."""
    import psutil

    times = psutil.cpu_times()
    return float(times.idle + getattr(times, "iowait", 0.0))


def test_every_round_has_every_container(scenario: Scenario):
    per_container = scenario.counters.groupby("container_id").size()
    assert set(per_container.index) == set(scenario.ids.values())
    assert (per_container >= scenario.rounds).all()
    # no interval was dropped as a gap: the sums below cover the whole run
    assert (scenario.samples.groupby("container_id").size() == per_container - 1).all()


def test_cpu_under_half_a_core(scenario: Scenario):
    """Averaged over the quiet tail of the run (intervals that start after the disk and
    network workloads ended). Trap: on a machine whose cores are saturated by others, the
    loop gets less than its quota and the test fails; that is contention, not a bug."""
    cpu = scenario.of("cpu")
    start = cpu["time"] - pd.to_timedelta(cpu["interval_s"], unit="s")
    quiet = cpu[start >= scenario.quiet_from]
    assert quiet["interval_s"].sum() >= CPU_WINDOW_S - 0.1
    cores = float((quiet["cpu_cores"] * quiet["interval_s"]).sum() / quiet["interval_s"].sum())
    saturated = scenario.quiet_idle_cores < HOST_IDLE_MIN_CORES
    if cores < 0.5 - CPU_TOLERANCE_CORES and saturated:
        # as in tests/sources/test_cgroup_v1_live.py: the loop did not get its half core
        pytest.skip(f"host saturated by other work: {cores:.2f} cores read, "
                    f"{scenario.quiet_idle_cores:.2f} idle")
    assert cores == pytest.approx(0.5, abs=CPU_TOLERANCE_CORES)
    # throttling: the quota binds in (nearly) every 100 ms period of a busy loop that gets a
    # CPU whenever it wants one. On a host left with no idle CPU it waits its turn in some
    # periods and is not throttled in those (a mean of 0.42 of periods seen at load ~10, the
    # cores within 0.05 of 0.5 all the same): contention, not a defect, so asserted only when
    # the host had idle CPU
    fraction = quiet["cpu_throttled_fraction"]
    if not saturated:
        assert fraction.mean() > 0.5, (fraction.tolist(), scenario.quiet_idle_cores)
    assert scenario.of("mem")["cpu_cores"].max() < CPU_TOLERANCE_CORES


def test_memory_holder_of_64_mib(scenario: Scenario):
    working_set = scenario.of("mem")["memory_working_set_bytes"]
    assert working_set.iloc[-1] == pytest.approx(64 * MiB, rel=MEMORY_TOLERANCE)
    assert working_set.min() == pytest.approx(64 * MiB, rel=MEMORY_TOLERANCE)


def test_page_cache_is_not_working_set(scenario: Scenario):
    counters = scenario.counters[scenario.counters["container_id"] == scenario.ids["cache"]]
    assert (counters["memory_usage_bytes"] >= DD_BYTES * (1 - MEMORY_TOLERANCE)).all()
    working_set = scenario.of("cache")["memory_working_set_bytes"]
    assert (working_set < PAGE_CACHE_WORKING_SET_MAX_BYTES).all()


def test_network_bytes_of_server_and_client(scenario: Scenario):
    sent = FETCHES * FILE_BYTES
    assert scenario.total("server", "net_tx_bytes_per_second") == pytest.approx(
        sent, rel=NET_TOLERANCE
    )
    assert scenario.total("client", "net_rx_bytes_per_second") == pytest.approx(
        sent, rel=NET_TOLERANCE
    )
    assert scenario.total("client", "net_tx_bytes_per_second") < NET_TOLERANCE * sent


def test_direct_disk_write(scenario: Scenario):
    assert scenario.total("disk", "disk_write_bytes_per_second") == pytest.approx(
        DD_BYTES, rel=DISK_TOLERANCE
    )


def test_disk_usage_on_the_slow_schedule(scenario: Scenario):
    usage = scenario.of("disk")["disk_usage_bytes"].dropna()
    assert len(usage) >= 1
    assert usage.iloc[-1] == pytest.approx(DD_BYTES, rel=DISK_USAGE_TOLERANCE)
    assert scenario.of("cpu")["disk_usage_bytes"].notna().any()


def test_no_lifecycle_event_for_steady_containers(scenario: Scenario):
    # started before the run, never stopped: the run saw no lifecycle event of its own ones
    ours = scenario.events[scenario.events["container_id"].isin(list(scenario.ids.values()))]
    assert ours.empty, ours
