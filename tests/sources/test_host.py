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


def _meminfo() -> dict[str, int]:
    return {
        line.split(":")[0]: int(line.split()[1]) * 1024
        for line in Path("/proc/meminfo").read_text().splitlines()
    }


def test_memory_matches_meminfo():
    before = _meminfo()
    counters = HostReader().read()
    after = _meminfo()
    assert counters.memory_total_bytes == before["MemTotal"]
    # total - available, read between two reads of meminfo (other processes allocate
    # meanwhile): within their range, give or take 1 % of total
    used = [m["MemTotal"] - m["MemAvailable"] for m in (before, after)]
    slack = 0.01 * before["MemTotal"]
    assert min(used) - slack <= counters.memory_used_bytes <= max(used) + slack


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


# -- the direct /proc reader (what the collector uses on Linux) ---------------------------

PROC_STAT = (
    "cpu  10000 1000 5000 80000 2000 100 200 300 4000 500\n"
    "cpu0 5000 500 2500 40000 1000 50 100 150 2000 250\n"
    "intr 123\n"
)
MEMINFO = "MemTotal:       33554432 kB\nMemFree:         1048576 kB\nMemAvailable:   20971520 kB\n"
NET_DEV = (
    "Inter-|   Receive                                                |  Transmit\n"
    " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs "
    "drop fifo colls carrier compressed\n"
    "    lo: 1000000000 10 0 0 0 0 0 0 1000000000 10 0 0 0 0 0 0\n"
    "  eth0: 1000 5 0 0 0 0 0 0 2000 6 0 0 0 0 0 0\n"
    "docker0: 500 1 0 0 0 0 0 0 500 1 0 0 0 0 0 0\n"
    "veth1a2b: 700 1 0 0 0 0 0 0 700 1 0 0 0 0 0 0\n"
    "  eth1:   30 1 0 0 0 0 0 0   40 1 0 0 0 0 0 0\n"
)
#: a disk (vda), its partition (vda1: not in /sys/block, not added) and a loop device
DISKSTATS = (
    " 254       0 vda 100 0 1000 0 200 0 3000 0 0 0 0 0 0 0 0 0 0\n"
    " 254       1 vda1 90 0 900 0 190 0 2900 0 0 0 0 0 0 0 0 0 0\n"
    "   7       0 loop0 1 0 8 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n"
)


def _fake_proc(tmp_path: Path) -> Path:
    proc = tmp_path / "proc"
    (proc / "net").mkdir(parents=True)
    (proc / "stat").write_text(PROC_STAT)
    (proc / "meminfo").write_text(MEMINFO)
    (proc / "net" / "dev").write_text(NET_DEV)
    (proc / "diskstats").write_text(DISKSTATS)
    return proc


def test_proc_reading_of_a_recorded_tree(tmp_path: Path):
    sys_root = _fake_sys(tmp_path)
    for disk in ("vda", "loop0"):
        (sys_root / "block" / disk).mkdir(parents=True)
    reader = HostReader(sys_root=sys_root, proc_root=_fake_proc(tmp_path))
    assert reader.name == "procfs"
    counters = reader.read()
    tick_s = 1 / os.sysconf("SC_CLK_TCK")
    # user + nice + system + irq + softirq (idle, iowait, steal out; guest is inside user)
    assert counters.cpu_usage_seconds_total == pytest.approx(16300 * tick_s)
    assert counters.memory_total_bytes == 32 * 2**30
    assert counters.memory_used_bytes == 12 * 2**30
    # physical NICs only (eth0, eth1)
    assert (counters.net_rx_bytes_total, counters.net_tx_bytes_total) == (1030, 2040)
    # whole disks only, 512-byte sectors
    assert counters.disk_read_bytes_total == (1000 + 8) * 512
    assert counters.disk_write_bytes_total == 3000 * 512
    # the files are held: a rewritten file is read anew from offset 0, a new NIC is looked up
    (tmp_path / "proc" / "net" / "dev").write_text(NET_DEV.replace("2000 6", "9000 6"))
    assert reader.read().net_tx_bytes_total == 9040
    reader.close()


def test_without_proc_files_psutil_reads(tmp_path: Path):
    reader = HostReader(proc_root=tmp_path / "nowhere")
    assert reader.name == "psutil"
    assert reader.read().memory_total_bytes == psutil.virtual_memory().total


def test_a_proc_file_in_another_format_falls_back_to_psutil(tmp_path: Path):
    proc = _fake_proc(tmp_path)
    (proc / "meminfo").write_text("MemTotal: 1 kB\n")  # no MemAvailable (before Linux 3.14)
    assert HostReader(proc_root=proc).name == "psutil"


@pytest.mark.skipif(not Path("/proc/stat").is_file(), reason="needs Linux /proc")
def test_proc_reading_equals_psutil_on_this_host():
    """The direct reader and psutil, read back to back on this host: same arithmetic, same
    NICs and disks (counters may move a little between the two reads)."""
    direct = HostReader()
    assert direct.name == "procfs"
    a = direct.read()
    b = HostReader(psutil).read()
    c = direct.read()
    assert a.cpu_usage_seconds_total - CPU_TICK_SLACK_S <= b.cpu_usage_seconds_total
    assert b.cpu_usage_seconds_total <= c.cpu_usage_seconds_total + CPU_TICK_SLACK_S
    assert a.memory_total_bytes == b.memory_total_bytes
    slack = 0.01 * a.memory_total_bytes  # other processes allocate between the reads
    used = (a.memory_used_bytes, c.memory_used_bytes)
    assert min(used) - slack <= b.memory_used_bytes <= max(used) + slack
    assert a.logical_cpus == b.logical_cpus
    for field in ("net_rx_bytes_total", "net_tx_bytes_total", "disk_read_bytes_total",
                  "disk_write_bytes_total"):
        assert getattr(a, field) <= getattr(b, field) <= getattr(c, field), field
