"""CgroupReader on real containers: CPU, memory, disk I/O, a container that vanishes.

Written on a cgroup v1 host (the reader also serves v2; these tests run on either).
"""

from __future__ import annotations

import contextlib
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from block_devices import whole_disk_of
from source_live_helpers import MiB, idle_cpu_seconds, info_of, wait_for_log

from capacity._errors import ContainerGone
from capacity.sources._cgroup import CgroupReader, cgroup_version, cgroupfs_readable
from capacity.sources._docker import list_containers

#: a busy loop under --cpus=0.5 averages 0.5 cores within this, over a few seconds
CPU_TOLERANCE_CORES = 0.05
#: how long the CPU test averages over, seconds
CPU_WINDOW_S = 3.0
#: below this many idle cores the shared 2-core test host starved the container: skip
HOST_IDLE_MIN_CORES = 0.2
#: relative tolerance of a held 64 MiB on the working set (the shell and dd add ~1 MiB)
MEMORY_TOLERANCE = 0.10
#: page cache that is only written (or read once) must leave the working set below this
PAGE_CACHE_WORKING_SET_MAX_BYTES = 16 * MiB
#: relative tolerance of O_DIRECT bytes written against the blkio counter
DISK_TOLERANCE = 0.05

pytestmark = pytest.mark.skipif(
    cgroup_version() is None, reason="needs /sys/fs/cgroup (the cgroup fast path)"
)


@pytest.fixture
def reader() -> CgroupReader:
    return CgroupReader()


@pytest.mark.docker
def test_busy_loop_under_half_a_cpu(docker_client: Any, run_container: Any, reader: CgroupReader):
    c = run_container("sh", "-c", "while :; do :; done", cpus=0.5)
    info = info_of(docker_client, c)
    assert cgroupfs_readable(info.pid)
    time.sleep(0.5)  # let the loop start
    first, t0, idle0 = reader.read(info), time.monotonic(), idle_cpu_seconds()
    time.sleep(CPU_WINDOW_S)
    second, t1, idle1 = reader.read(info), time.monotonic(), idle_cpu_seconds()
    cores = (second.cpu_usage_seconds_total - first.cpu_usage_seconds_total) / (t1 - t0)
    idle_cores = (idle1 - idle0) / (t1 - t0)
    if cores < 0.5 - CPU_TOLERANCE_CORES and idle_cores < HOST_IDLE_MIN_CORES:
        pytest.skip(f"host saturated by other work: {cores:.2f} cores, {idle_cores:.2f} idle")
    assert cores == pytest.approx(0.5, abs=CPU_TOLERANCE_CORES)
    assert first.cpu_throttled_periods_total is not None
    assert second.cpu_throttled_periods_total is not None
    assert second.cpu_throttled_periods_total > first.cpu_throttled_periods_total
    assert second.cpu_periods_total is not None and first.cpu_periods_total is not None
    # 100 ms periods: about 10 per second, nearly all throttled at half a CPU
    assert second.cpu_periods_total - first.cpu_periods_total >= 20
    # throttled time is cumulative, but on 6.18 it is booked at unthrottle time and
    # lagged behind nr_throttled in one run on a busy host: only monotonic is asserted
    assert second.cpu_throttled_seconds_total is not None
    assert first.cpu_throttled_seconds_total is not None
    assert second.cpu_throttled_seconds_total >= first.cpu_throttled_seconds_total


@pytest.mark.docker
def test_tmpfs_hold_counts_in_working_set(
    docker_client: Any, run_container: Any, reader: CgroupReader
):
    # tmpfs pages are charged to the cgroup as shmem and sit on the anon LRU: not reclaimable
    # without swap, so they are working set. (Piping /dev/zero through tr holds nothing.)
    c = run_container(
        "sh",
        "-c",
        "dd if=/dev/zero of=/hold/x bs=1M count=64 2>/dev/null; echo ready; sleep 600",
        tmpfs={"/hold": "size=128m"},
    )
    wait_for_log(c, "ready")
    counters = reader.read(info_of(docker_client, c))
    assert counters.memory_working_set_bytes == pytest.approx(64 * MiB, rel=MEMORY_TOLERANCE)
    assert counters.memory_usage_bytes >= counters.memory_working_set_bytes
    assert counters.memory_peak_bytes is not None
    assert counters.memory_peak_bytes >= counters.memory_usage_bytes
    assert counters.memory_oom_kills_total == 0
    assert counters.pids is not None and counters.pids >= 1


@pytest.mark.docker
def test_page_cache_is_not_working_set_until_reused(
    docker_client: Any, run_container: Any, reader: CgroupReader
):
    """Measured on Linux 6.18 (v1): written or once-read file pages stay on the inactive
    list and are left out; a second read activates them and they count, as the definition
    of the working set (usage - inactive_file) says. (busybox ``cat`` uses sendfile, which
    activates pages on the first pass: that is why the reads here use ``dd``.)"""
    c = run_container(
        "sh",
        "-c",
        "dd if=/dev/zero of=/f bs=1M count=64 2>/dev/null; sync; echo ready; sleep 600",
    )
    wait_for_log(c, "ready")
    info = info_of(docker_client, c)
    written = reader.read(info)
    assert written.memory_inactive_file_bytes is not None
    assert written.memory_inactive_file_bytes >= 60 * MiB
    assert written.memory_usage_bytes >= 64 * MiB
    assert written.memory_working_set_bytes < PAGE_CACHE_WORKING_SET_MAX_BYTES

    c.exec_run(["dd", "if=/f", "of=/dev/null", "bs=1M"])
    c.exec_run(["dd", "if=/f", "of=/dev/null", "bs=1M"])
    reused = reader.read(info)
    assert reused.memory_working_set_bytes >= 60 * MiB


@pytest.mark.docker
def test_direct_write_counted_by_blkio(
    docker_client: Any, run_container: Any, reader: CgroupReader
):
    """On Linux >= 6.10 with cgroup v1, blkio.throttle.* counts nothing until blk-throttle is
    active on the device's queue (created lazily by the first throttle rule). The container
    therefore carries a write limit far above any real rate, which activates it."""
    disk = whole_disk_of(str(docker_client.info().get("DockerRootDir") or "/var/lib/docker"))
    if disk is None:
        pytest.skip("cannot find the block device holding Docker's data root")
    c = run_container("sleep", "600", device_write_bps=[{"Path": disk, "Rate": 1 << 40}])
    info = info_of(docker_client, c)
    before = reader.read(info)
    result = c.exec_run(["dd", "if=/dev/zero", "of=/f", "bs=1M", "count=64", "oflag=direct"])
    assert result.exit_code == 0, result.output
    after = reader.read(info)
    assert before.disk_write_bytes_total is not None
    assert after.disk_write_bytes_total is not None
    written = after.disk_write_bytes_total - before.disk_write_bytes_total
    assert written == pytest.approx(64 * MiB, rel=DISK_TOLERANCE)
    assert after.disk_write_ops_total is not None and before.disk_write_ops_total is not None
    assert after.disk_write_ops_total - before.disk_write_ops_total >= 64


@pytest.mark.docker
def test_removed_between_listing_and_reading(
    docker_client: Any, run_container: Any, reader: CgroupReader
):
    c = run_container("sleep", "600")
    listed = {i.id: i for i in list_containers(docker_client, filters={"label": "capacity.test"})}
    info = listed[c.id]
    c.remove(force=True)
    with pytest.raises(ContainerGone) as excinfo:
        reader.read(info)
    assert excinfo.value.container_id == c.id


@pytest.mark.docker
def test_cgroup_parent_is_followed(docker_client: Any, run_container: Any, reader: CgroupReader):
    parent = f"capacity-test-{uuid.uuid4().hex[:8]}"
    c = run_container("sleep", "600", cgroup_parent=f"/{parent}", mem_limit="64m")
    try:
        info = info_of(docker_client, c)
        location = reader.locate(info)
        assert all(f"/{parent}/{c.id}" in str(p) for p in location.paths())
        counters = reader.read(info)
        assert counters.memory_limit_bytes == 64 * MiB
        assert counters.pids is not None and counters.pids >= 1
    finally:
        c.remove(force=True)
        # docker leaves the (now empty) parent cgroups behind, in every hierarchy (v1 and v2)
        root = Path("/sys/fs/cgroup")
        for mount in (root, *root.iterdir()):
            with contextlib.suppress(OSError):
                (mount / parent).rmdir()
