"""Faults on real containers that must not stop a round: a container OOM-killed, or removed,
between the listing and the reading of its counters.

The fault is injected by a reader wrapper handed to the Collector (nothing is patched): on
the second round it makes the fault happen for real, waits for it, then reads.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from collect_helpers import RUN_LABEL, new_run_id, wait_until

from capacity._collect import CachedCgroupReader, Collector, DockerEngine
from capacity.sources._cgroup import cgroup_version
from capacity.sources._types import ContainerCounters, ContainerInfo
from capacity.store import Store

#: a short interval: these tests count rounds, not rates
INTERVAL_S = 0.3
ROUNDS = 4

pytestmark = [
    pytest.mark.docker,
    pytest.mark.skipif(cgroup_version() is None, reason="needs /sys/fs/cgroup (fast path)"),
]


class FaultBeforeRead:
    """Wraps a reader; on the ``on_read``-th read of ``victim_id`` it runs ``fault`` first."""

    name = "cgroup+fault"

    def __init__(
        self, inner: Any, victim_id: str, fault: Callable[[], None], on_read: int = 2
    ) -> None:
        self.inner = inner
        self.victim_id = victim_id
        self.fault = fault
        self.on_read = on_read
        self.victim_reads = 0
        self.fired = False

    def forget(self, container_id: str) -> None:
        self.inner.forget(container_id)

    def read(self, container: ContainerInfo) -> ContainerCounters:
        if container.id == self.victim_id:
            self.victim_reads += 1
            if self.victim_reads == self.on_read:
                self.fault()
                self.fired = True
        return self.inner.read(container)


def _collect_with(
    client: Any, run_id: str, reader: FaultBeforeRead, path: Path
) -> tuple[Collector, Any, Any]:
    engine = DockerEngine(client, filters={"label": [f"{RUN_LABEL}={run_id}"]})
    with Store(path) as store:
        collector = Collector(engine, reader, store, events=engine)
        collector.run(interval_s=INTERVAL_S, duration_s=INTERVAL_S * (ROUNDS - 1))
        return collector, store.counters(), store.events()


def test_container_oom_killed_mid_round(docker_client: Any, run_container: Any, tmp_path: Path):
    run_id = new_run_id()
    labels = {RUN_LABEL: run_id}
    # pid 1 fills a tmpfs (charged to the cgroup, not reclaimable without swap) far past its
    # 16 MiB limit once /go exists: the kernel OOM-kills it and the container dies
    victim = run_container(
        "sh", "-c",
        "while [ ! -f /go ]; do sleep 0.05; done; exec dd if=/dev/zero of=/hold/x bs=1M count=64",
        mem_limit="16m", memswap_limit="16m", tmpfs={"/hold": "size=128m"}, labels=labels,
    )
    steady = run_container("sleep", "600", labels=labels)

    def oom() -> None:
        victim.exec_run(["touch", "/go"])
        victim.wait(timeout=30)
        victim.reload()
        assert victim.attrs["State"]["OOMKilled"], victim.attrs["State"]

    reader = FaultBeforeRead(CachedCgroupReader(), victim.id, oom)
    collector, counters, events = _collect_with(docker_client, run_id, reader, tmp_path / "s")
    assert reader.fired
    assert collector.rounds == ROUNDS  # the round with the fault completed, and the rest
    assert collector.gone == 1
    rows = counters.groupby("container_id").size()
    assert rows[steady.id] == ROUNDS
    assert rows[victim.id] == 1  # read in round 1 only: skipped, never zero-filled
    # the cached cgroup location of the dead container was not trusted, then dropped
    assert all(key[0] != victim.id for key in reader.inner._locations)
    victim_events = events[events["container_id"] == victim.id]
    assert {"oom", "die"} <= set(victim_events["action"])
    die = victim_events[victim_events["action"] == "die"].iloc[0]
    assert die["attributes"]["exitCode"] == "137"


def test_container_removed_mid_round(docker_client: Any, run_container: Any, tmp_path: Path):
    run_id = new_run_id()
    labels = {RUN_LABEL: run_id}
    victim = run_container("sleep", "600", labels=labels)
    steady = run_container("sleep", "600", labels=labels)

    def remove() -> None:
        victim.remove(force=True)
        wait_until(lambda: victim.id not in {c.id for c in docker_client.containers.list(
            all=True, filters={"label": f"{RUN_LABEL}={run_id}"})}, 15, "the removal")

    reader = FaultBeforeRead(CachedCgroupReader(), victim.id, remove)
    collector, counters, events = _collect_with(docker_client, run_id, reader, tmp_path / "s")
    assert reader.fired
    assert collector.rounds == ROUNDS
    assert collector.gone == 1
    rows = counters.groupby("container_id").size()
    assert rows[steady.id] == ROUNDS
    assert rows[victim.id] == 1
    assert {"kill", "die", "destroy"} <= set(events[events["container_id"] == victim.id]["action"])
