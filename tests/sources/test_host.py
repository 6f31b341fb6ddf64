"""HostReader and host_facts: against /proc and statvfs on this host, and on a fake psutil."""

from __future__ import annotations

import os
from collections import namedtuple
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import psutil
import pytest

from capacity.sources._host import HostFacts, HostReader, host_facts, is_virtual_nic

#: /proc/stat counts in USER_HZ ticks (1/100 s): allow a few ticks of rounding per CPU
CPU_TICK_SLACK_S = 0.05 * (os.cpu_count() or 1)

CpuTimes = namedtuple(
    "CpuTimes",
    "user nice system idle iowait irq softirq steal guest guest_nice",
)
Nic = namedtuple("Nic", "bytes_sent bytes_recv")
IfStats = namedtuple("IfStats", "isup speed")


def _proc_stat_busy_s() -> float:
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, _steal = fields[:8]
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


def test_cpu_seconds_match_proc_stat():
    before = _proc_stat_busy_s()
    counters = HostReader().read()
    after = _proc_stat_busy_s()
    assert before - CPU_TICK_SLACK_S <= counters.cpu_usage_seconds_total
    assert counters.cpu_usage_seconds_total <= after + CPU_TICK_SLACK_S
    assert counters.logical_cpus == os.cpu_count()


def test_memory_matches_meminfo():
    meminfo = {
        line.split(":")[0]: int(line.split()[1]) * 1024
        for line in Path("/proc/meminfo").read_text().splitlines()
    }
    counters = HostReader().read()
    assert counters.memory_total_bytes == meminfo["MemTotal"]
    # total - available, read a moment apart: within 1 % of total
    expected = meminfo["MemTotal"] - meminfo["MemAvailable"]
    assert counters.memory_used_bytes == pytest.approx(expected, abs=0.01 * meminfo["MemTotal"])


def test_host_facts_live(tmp_path: Path):
    facts = host_facts(tmp_path)
    st = os.statvfs(tmp_path)
    assert facts.logical_cpus == os.cpu_count()
    assert facts.memory_total_bytes == psutil.virtual_memory().total
    assert facts.docker_fs_total_bytes == st.f_blocks * st.f_frsize
    # free space moves while other tests write: within 1 GiB
    assert facts.docker_fs_free_bytes == pytest.approx(st.f_bavail * st.f_frsize, abs=2**30)
    assert "lo" not in facts.nic_speeds_bits_per_second
    assert isinstance(facts, HostFacts) and facts.to_dict()["logical_cpus"] == os.cpu_count()


def test_missing_docker_root_measures_its_parent(tmp_path: Path):
    facts = host_facts(tmp_path / "not" / "there")
    assert (
        facts.docker_fs_total_bytes == os.statvfs(tmp_path).f_blocks * os.statvfs(tmp_path).f_frsize
    )


def _fake_sys(tmp_path: Path) -> Path:
    net = tmp_path / "sys" / "class" / "net"
    net.mkdir(parents=True)
    for name, target in {
        "lo": "../../devices/virtual/net/lo",
        "docker0": "../../devices/virtual/net/docker0",
        "veth1a2b": "../../devices/virtual/net/veth1a2b",
        "eth0": "../../devices/pci0000:00/0000:00:03.0/virtio2/net/eth0",
        "eth1": "../../devices/pci0000:00/0000:00:04.0/net/eth1",
    }.items():
        (net / name).symlink_to(target)
    return tmp_path / "sys"


def _fake_psutil() -> Any:
    def cpu_count(logical: bool = True) -> int | None:
        return 8 if logical else None

    return SimpleNamespace(
        cpu_times=lambda: CpuTimes(100.0, 10.0, 50.0, 800.0, 20.0, 1.0, 2.0, 3.0, 40.0, 5.0),
        cpu_count=cpu_count,
        virtual_memory=lambda: SimpleNamespace(total=32 * 2**30, available=20 * 2**30),
        net_io_counters=lambda pernic: {
            "lo": Nic(10**9, 10**9),
            "docker0": Nic(500, 500),
            "veth1a2b": Nic(700, 700),
            "eth0": Nic(1000, 2000),
            "eth1": Nic(30, 40),
        },
        disk_io_counters=lambda perdisk: SimpleNamespace(read_bytes=123, write_bytes=456),
        net_if_stats=lambda: {
            "lo": IfStats(True, 0),
            "docker0": IfStats(True, 10000),
            "eth0": IfStats(True, 0),
            "eth1": IfStats(True, 25000),
        },
        disk_usage=lambda path: SimpleNamespace(total=1000, free=400),
    )


def test_fake_psutil_reading(tmp_path: Path):
    counters = HostReader(_fake_psutil(), sys_root=_fake_sys(tmp_path)).read()
    # total 1031 - idle 800 - iowait 20 - steal 3 - guest 40 - guest_nice 5
    assert counters.cpu_usage_seconds_total == pytest.approx(163.0)
    assert counters.memory_used_bytes == 12 * 2**30
    assert counters.memory_total_bytes == 32 * 2**30
    # physical NICs only: bridge, veth and loopback would count bytes twice
    assert (counters.net_rx_bytes_total, counters.net_tx_bytes_total) == (2040, 1030)
    assert (counters.disk_read_bytes_total, counters.disk_write_bytes_total) == (123, 456)
    assert counters.logical_cpus == 8


def test_fake_psutil_facts(tmp_path: Path):
    facts = host_facts(Path("/"), psutil_module=_fake_psutil(), sys_root=_fake_sys(tmp_path))
    assert facts.nic_speeds_bits_per_second == {"eth0": None, "eth1": 25_000_000_000}
    assert facts.physical_cpus is None
    assert (facts.docker_fs_total_bytes, facts.docker_fs_free_bytes) == (1000, 400)


def test_virtual_nic_detection(tmp_path: Path):
    sys_root = _fake_sys(tmp_path)
    assert is_virtual_nic("docker0", sys_root)
    assert not is_virtual_nic("eth0", sys_root)
    assert is_virtual_nic("lo", tmp_path / "nowhere")
    assert not is_virtual_nic("eth9", tmp_path / "nowhere")
