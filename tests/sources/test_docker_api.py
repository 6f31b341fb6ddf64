"""StatsApiReader: JSON mapping on recorded answers, a fake engine for failures, and agreement
with the cgroup reader on real containers."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

import pytest
import requests
from source_live_helpers import MiB, idle_cpu_seconds, info_of, wait_for_log

from capacity._errors import ContainerGone, DockerUnavailable, InvalidParameter
from capacity.sources._cgroup import CgroupReader, cgroup_version
from capacity.sources._docker import _parse_time
from capacity.sources._docker_api import StatsApiReader, counters_from_stats
from capacity.sources._types import ContainerInfo, CounterReader

#: the two readers see the same cgroup counters; over ~3 s they agree within this
AGREE_CPU_CORES = 0.05
AGREE_MEMORY = 0.10
CPU_WINDOW_S = 3.0
#: below this many idle cores the shared 2-core host starved the loop (as test_cgroup_v1_live)
HOST_IDLE_MIN_CORES = 0.2
CID = "744dd07dba69e1fa13aedc509a2bbb0a3912777723800f9e35fe9ead96a1f9ce"

# Recorded from Engine 20.10 (API 1.41) on cgroup v1: a created-but-stopped container ...
STOPPED = {
    "read": "0001-01-01T00:00:00Z",
    "preread": "0001-01-01T00:00:00Z",
    "pids_stats": {},
    "blkio_stats": {"io_service_bytes_recursive": None, "io_serviced_recursive": None},
    "num_procs": 0,
    "storage_stats": {},
    "cpu_stats": {
        "cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0},
        "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0},
    },
    "memory_stats": {},
    "name": "/serene_morse",
    "id": CID,
}
# ... and a running one (trimmed: keys the mapping does not use are left out)
RUNNING_V1 = {
    "read": "2026-11-27T21:23:55.854041316Z",
    "pids_stats": {"current": 1},
    "blkio_stats": {
        "io_service_bytes_recursive": [
            {"major": 254, "minor": 0, "op": "Read", "value": 4096},
            {"major": 254, "minor": 0, "op": "Write", "value": 16777216},
            {"major": 254, "minor": 0, "op": "Total", "value": 16781312},
            {"major": 7, "minor": 0, "op": "Read", "value": 8192},
        ],
        "io_serviced_recursive": [
            {"major": 254, "minor": 0, "op": "Read", "value": 1},
            {"major": 254, "minor": 0, "op": "Write", "value": 16},
        ],
    },
    "cpu_stats": {
        "cpu_usage": {"total_usage": 26343953, "percpu_usage": [4938789, 21405164]},
        "system_cpu_usage": 881430000000,
        "online_cpus": 2,
        "throttling_data": {"periods": 40, "throttled_periods": 12, "throttled_time": 900000000},
    },
    "memory_stats": {
        "usage": 458752,
        "max_usage": 4345856,
        "stats": {"total_inactive_file": 131072, "total_rss": 53248, "total_cache": 131072},
        "limit": 25276059648,
    },
    "networks": {
        "eth0": {"rx_bytes": 90, "rx_packets": 1, "tx_bytes": 10, "tx_packets": 1},
        "eth1": {"rx_bytes": 10, "rx_packets": 1, "tx_bytes": 0, "tx_packets": 0},
        "lo": {"rx_bytes": 999, "rx_packets": 9, "tx_bytes": 999, "tx_packets": 9},
    },
}
# cgroup v2 answer shape (memory.stat keys, lower-case io ops, no max_usage/failcnt)
RUNNING_V2 = {
    "read": "2026-11-27T21:23:55.854041316Z",
    "pids_stats": {"current": 4},
    "blkio_stats": {
        "io_service_bytes_recursive": [
            {"major": 8, "minor": 0, "op": "read", "value": 100},
            {"major": 8, "minor": 0, "op": "write", "value": 200},
        ],
        "io_serviced_recursive": None,
    },
    "cpu_stats": {"cpu_usage": {"total_usage": 5_000_000_000}, "throttling_data": {}},
    "memory_stats": {
        "usage": 10_000_000,
        "stats": {"inactive_file": 12_000_000, "anon": 3_000_000, "file": 7_000_000},
        "limit": 268435456,
    },
}


def info(cid: str = CID) -> ContainerInfo:
    return ContainerInfo(
        id=cid, name="c", image="i", service="i", pid=1, started_at=datetime(2026, 1, 1, tzinfo=UTC)
    )


def test_running_v1_answer():
    c = counters_from_stats(CID, RUNNING_V1, host_memory_bytes=25276059648)
    assert c.cpu_usage_seconds_total == pytest.approx(0.026343953)
    assert (c.cpu_periods_total, c.cpu_throttled_periods_total) == (40, 12)
    assert c.cpu_throttled_seconds_total == pytest.approx(0.9)
    assert c.memory_usage_bytes == 458752
    assert c.memory_working_set_bytes == 458752 - 131072
    assert c.memory_rss_bytes == 53248
    assert c.memory_limit_bytes is None  # the engine reports "no limit" as the host's memory
    assert c.memory_peak_bytes == 4345856
    assert c.memory_failcnt_total == 0  # omitted by the engine when 0
    assert c.memory_oom_kills_total is None
    assert (c.disk_read_bytes_total, c.disk_write_bytes_total) == (4096 + 8192, 16777216)
    assert (c.disk_read_ops_total, c.disk_write_ops_total) == (1, 16)
    assert (c.net_rx_bytes_total, c.net_tx_bytes_total) == (100, 10)
    assert (c.net_rx_packets_total, c.net_tx_packets_total) == (2, 1)
    assert c.net_namespace is None
    assert c.pids == 1


def test_limit_kept_without_host_memory():
    assert counters_from_stats(CID, RUNNING_V1).memory_limit_bytes == 25276059648


def test_running_v2_answer():
    c = counters_from_stats(CID, RUNNING_V2, host_memory_bytes=25276059648)
    assert c.cpu_usage_seconds_total == pytest.approx(5.0)
    assert c.cpu_periods_total is None
    assert c.memory_working_set_bytes == 0  # clamped
    assert c.memory_rss_bytes == 3_000_000
    assert c.memory_cache_bytes == 7_000_000
    assert c.memory_limit_bytes == 268435456
    assert c.memory_peak_bytes is None
    assert c.memory_failcnt_total is None
    assert (c.disk_read_bytes_total, c.disk_write_bytes_total) == (100, 200)
    assert c.disk_read_ops_total is None
    assert c.net_rx_bytes_total is None  # no "networks": host or none network mode
    assert c.pids == 4


def test_stopped_answer_is_gone_not_zeros():
    with pytest.raises(ContainerGone, match="stopped"):
        counters_from_stats(CID, STOPPED)


class _FakeResponse:
    """``body`` is what the engine sent: bytes as they are, anything else as its JSON."""

    def __init__(self, status: int, body: Any) -> None:
        self.status_code = status
        self.content = body if isinstance(body, bytes) else json.dumps(body).encode()

    def json(self) -> Any:
        return json.loads(self.content)

    def raise_for_status(self) -> None:
        if self.status_code >= 400:
            raise requests.exceptions.HTTPError(f"{self.status_code}", response=self)


class _FakeApi:
    """Just the part of docker.APIClient the reader uses; records the requests."""

    base_url = "http+docker://localhost"

    def __init__(self, answers: dict[str, Any], api_version: str = "1.41") -> None:
        self.answers = answers
        self.api_version = api_version
        self.calls: list[tuple[str, dict[str, str], float]] = []

    def info(self) -> dict[str, Any]:
        return {"MemTotal": 25276059648}

    def get(self, url: str, params: dict[str, str], timeout: float) -> _FakeResponse:
        self.calls.append((url, params, timeout))
        cid = url.rsplit("/", 2)[-2]
        answer = self.answers[cid]
        if isinstance(answer, Exception):
            raise answer
        if isinstance(answer, int):
            return _FakeResponse(answer, {"message": "No such container"})
        if isinstance(answer, bytes):
            return _FakeResponse(200, answer)
        return _FakeResponse(200, answer)


class _FakeClient:
    def __init__(self, api: _FakeApi) -> None:
        self.api = api


def test_request_uses_one_shot_and_timeout():
    api = _FakeApi({CID: RUNNING_V1})
    reader = StatsApiReader(_FakeClient(api), timeout_s=2.5)
    assert isinstance(reader, CounterReader)
    reader.read(info())
    url, params, timeout = api.calls[-1]
    assert url == f"http+docker://localhost/v1.41/containers/{CID}/stats"
    assert params == {"stream": "false", "one-shot": "true"}
    assert timeout == 2.5


def test_old_api_has_no_one_shot():
    api = _FakeApi({CID: RUNNING_V1}, api_version="1.40")
    StatsApiReader(_FakeClient(api)).read(info())
    assert "one-shot" not in api.calls[-1][1]


def test_timeout_is_engine_unavailable():
    api = _FakeApi({CID: requests.exceptions.ReadTimeout("slow")})
    with pytest.raises(DockerUnavailable, match=r"more than 5\.0 s"):
        StatsApiReader(_FakeClient(api)).read(info())


def test_empty_body_is_gone_and_garbage_is_a_clear_error():
    """A container removed while the engine answers: 200 with an empty body (seen in the
    notebook walkthrough, JSONDecodeError before). Skipped as gone, not fatal; a body that is
    not JSON names itself."""
    with pytest.raises(ContainerGone, match="empty body"):
        StatsApiReader(_FakeClient(_FakeApi({CID: b""}))).read(info())
    with pytest.raises(DockerUnavailable, match=r"not JSON .*<html>"):
        StatsApiReader(_FakeClient(_FakeApi({CID: b"<html>proxy error</html>"}))).read(info())
    ids = [f"{n:064x}" for n in range(3)]
    answers: dict[str, Any] = {i: RUNNING_V1 for i in ids}
    answers[ids[1]] = b"\n"
    reader = StatsApiReader(_FakeClient(_FakeApi(answers)))
    counters, gone = reader.read_many([info(i) for i in ids])
    assert [c.container_id for c in counters] == [ids[0], ids[2]]
    assert gone == [ids[1]]


def test_read_many_splits_gone_from_read():
    ids = [f"{n:064x}" for n in range(5)]
    answers: dict[str, Any] = {i: RUNNING_V1 for i in ids}
    answers[ids[1]] = 404
    answers[ids[3]] = STOPPED
    reader = StatsApiReader(_FakeClient(_FakeApi(answers)))
    counters, gone = reader.read_many([info(i) for i in ids], max_workers=2)
    assert [c.container_id for c in counters] == [ids[0], ids[2], ids[4]]
    assert gone == [ids[1], ids[3]]
    with pytest.raises(InvalidParameter, match="max_workers"):
        reader.read_many([], max_workers=0)


@pytest.mark.docker
def test_live_vanished_and_stopped(docker_client: Any, run_container: Any):
    reader = StatsApiReader(docker_client)
    a, b = run_container("sleep", "600"), run_container("sleep", "600")
    infos = [info_of(docker_client, a), info_of(docker_client, b)]
    a.remove(force=True)
    counters, gone = reader.read_many(infos)
    assert gone == [a.id]
    assert [c.container_id for c in counters] == [b.id]
    b.stop(timeout=0)
    with pytest.raises(ContainerGone):
        reader.read(infos[1])


needs_cgroupfs = pytest.mark.skipif(cgroup_version() is None, reason="needs cgroupfs")


@needs_cgroupfs
@pytest.mark.docker
def test_live_agrees_with_cgroup_reader_on_cpu(docker_client: Any, run_container: Any):
    c = run_container("sh", "-c", "while :; do :; done", cpus=0.5)
    info = info_of(docker_client, c)
    api, cgroup = StatsApiReader(docker_client), CgroupReader()
    time.sleep(0.3)
    a0, g0, m0 = api.fetch(c.id), cgroup.read(info), time.monotonic()
    idle0 = idle_cpu_seconds()
    time.sleep(CPU_WINDOW_S)
    a1, g1, m1 = api.fetch(c.id), cgroup.read(info), time.monotonic()
    idle_cores = (idle_cpu_seconds() - idle0) / (m1 - m0)
    # each reading is timed by its own clock: the engine's "read" time, and ours
    api_s = (_parse_time(a1["read"]) - _parse_time(a0["read"])).total_seconds()
    api_cores = (
        counters_from_stats(c.id, a1).cpu_usage_seconds_total
        - counters_from_stats(c.id, a0).cpu_usage_seconds_total
    ) / api_s
    cgroup_cores = (g1.cpu_usage_seconds_total - g0.cpu_usage_seconds_total) / (m1 - m0)
    assert api_cores == pytest.approx(cgroup_cores, abs=AGREE_CPU_CORES)
    # the absolute figure is test_cgroup_v1_live's job; here only that the loop ran, and not
    # past its quota. A host left with no idle CPU (other work) may give it less than 0.2:
    # then only the quota's bound is asserted
    assert api_cores <= 0.5 + AGREE_CPU_CORES
    if idle_cores >= HOST_IDLE_MIN_CORES:
        assert api_cores > 0.2, (api_cores, idle_cores)


@needs_cgroupfs
@pytest.mark.docker
def test_live_agrees_with_cgroup_reader_on_memory(docker_client: Any, run_container: Any):
    c = run_container(
        "sh",
        "-c",
        "dd if=/dev/zero of=/hold/x bs=1M count=64 2>/dev/null; echo ready; sleep 600",
        tmpfs={"/hold": "size=128m"},
        mem_limit="256m",
    )
    wait_for_log(c, "ready")
    info = info_of(docker_client, c)
    via_api = StatsApiReader(docker_client).read(info)
    via_cgroup = CgroupReader().read(info)
    assert via_api.memory_working_set_bytes == pytest.approx(
        via_cgroup.memory_working_set_bytes, rel=AGREE_MEMORY
    )
    assert via_api.memory_working_set_bytes == pytest.approx(64 * MiB, rel=AGREE_MEMORY)
    assert via_api.memory_limit_bytes == via_cgroup.memory_limit_bytes == 256 * MiB
