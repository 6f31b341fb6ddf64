"""CgroupReader on recorded cgroup v2 trees (cgroupfs and systemd drivers): exact values."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from capacity._errors import ContainerGone
from capacity.sources._cgroup import (
    CgroupReader,
    cgroup_version,
    cgroupfs_readable,
    locate_cgroup,
)
from capacity.sources._cgroup_v2 import parse_io_stat, read_max
from capacity.sources._types import ContainerInfo, CounterReader

DATA = Path(__file__).parent.parent / "data"
CGROUPFS = DATA / "cgroup_v2_cgroupfs"
SYSTEMD = DATA / "cgroup_v2_systemd"

V2_WEB = "3b48c32a5faf7bd129b2722a8ee23ca75c4274f64b4ab53114a229f02a5f76cc"
V2_DB = "09a99e66f9095631316e315077353e59a29164f37ecc00032c1938dbb8ce90e0"
V2_OLD = "9282e7eb18629fa9b2cef16248baad2b79c04e2288fcf6955c00914d6046c559"


def info(cid: str, pid: int) -> ContainerInfo:
    return ContainerInfo(
        id=cid,
        name="c",
        image="img",
        service="img",
        pid=pid,
        started_at=datetime(2026, 1, 1, tzinfo=UTC),
    )


def reader(tree: Path) -> CgroupReader:
    return CgroupReader(proc_root=tree / "proc", cgroup_root=tree / "sys" / "fs" / "cgroup")


def test_reader_satisfies_protocol():
    assert isinstance(reader(CGROUPFS), CounterReader)
    assert reader(CGROUPFS).name == "cgroup"


@pytest.mark.parametrize("tree", [CGROUPFS, SYSTEMD])
def test_version_detected_as_v2(tree):
    assert cgroup_version(tree / "sys" / "fs" / "cgroup") == 2


def test_cgroupfs_driver_exact_values():
    c = reader(CGROUPFS).read(info(V2_WEB, 4242))
    assert c.container_id == V2_WEB
    assert c.cpu_usage_seconds_total == pytest.approx(1234.567890)
    assert c.cpu_periods_total == 51234
    assert c.cpu_throttled_periods_total == 1200
    assert c.cpu_throttled_seconds_total == pytest.approx(98.765432)
    assert c.memory_usage_bytes == 157286400
    assert c.memory_inactive_file_bytes == 41943040
    assert c.memory_working_set_bytes == 157286400 - 41943040
    assert c.memory_rss_bytes == 104857600  # anon
    assert c.memory_cache_bytes == 50331648  # file
    assert c.memory_limit_bytes == 268435456
    assert c.memory_peak_bytes == 201326592
    assert c.memory_oom_kills_total == 2
    assert c.memory_failcnt_total == 17  # memory.events "max"
    # two devices summed; discards left out
    assert c.disk_read_bytes_total == 10485760 + 4096
    assert c.disk_write_bytes_total == 67108864
    assert c.disk_read_ops_total == 321
    assert c.disk_write_ops_total == 512
    assert c.pids == 7
    # eth0 + eth1, lo left out
    assert c.net_rx_bytes_total == 123456789 + 1000
    assert c.net_tx_bytes_total == 987654321 + 2000
    assert c.net_rx_packets_total == 90011
    assert c.net_tx_packets_total == 70022
    assert c.net_namespace == 4026532512


def test_systemd_driver_exact_values_and_max_limit():
    c = reader(SYSTEMD).read(info(V2_DB, 5151))
    assert c.cpu_usage_seconds_total == pytest.approx(9.876543)
    assert c.cpu_throttled_periods_total == 0
    assert c.memory_usage_bytes == 33554432
    assert c.memory_working_set_bytes == 33554432 - 20971520
    assert c.memory_limit_bytes is None  # "max"
    assert c.memory_peak_bytes == 41943040
    assert c.memory_oom_kills_total == 0
    # io.stat exists but is empty: a real 0, not a missing file
    assert (c.disk_read_bytes_total, c.disk_write_bytes_total) == (0, 0)
    assert c.pids == 3
    assert c.net_rx_bytes_total == 2048
    assert c.net_namespace == 4026532600


def test_missing_files_are_none_not_zero():
    c = reader(SYSTEMD).read(info(V2_OLD, 6161))
    # no cpu controller: no throttling keys; no memory.peak (kernel < 5.19); no io, no pids
    assert c.cpu_usage_seconds_total == pytest.approx(5.0)
    assert c.cpu_periods_total is None
    assert c.cpu_throttled_seconds_total is None
    assert c.memory_peak_bytes is None
    assert c.disk_read_bytes_total is None
    assert c.disk_write_ops_total is None
    assert c.pids is None
    # inactive_file above usage (read at different instants): clamped, not negative
    assert c.memory_working_set_bytes == 0
    # only lo in the namespace: a real zero
    assert (c.net_rx_bytes_total, c.net_tx_bytes_total) == (0, 0)


def test_reused_pid_is_gone():
    with pytest.raises(ContainerGone, match="pid reused"):
        reader(SYSTEMD).read(info(V2_DB, 7171))


def test_missing_pid_is_gone():
    with pytest.raises(ContainerGone, match="process 99999 is gone"):
        reader(SYSTEMD).read(info(V2_DB, 99999))


def test_vanished_cgroup_is_gone(tmp_path):
    # a copy of the tree whose cgroup directory is removed, as after `docker rm`
    import shutil

    shutil.copytree(SYSTEMD, tmp_path / "t", symlinks=True)
    shutil.rmtree(tmp_path / "t/sys/fs/cgroup/system.slice" / f"docker-{V2_DB}.scope")
    with pytest.raises(ContainerGone, match="vanished"):
        reader(tmp_path / "t").read(info(V2_DB, 5151))


def test_locate_resolves_both_drivers():
    systemd = locate_cgroup(
        f"0::/system.slice/docker-{V2_DB}.scope\n", SYSTEMD / "sys" / "fs" / "cgroup"
    )
    assert systemd is not None and systemd.version == 2
    assert systemd.v2_dir == SYSTEMD / "sys/fs/cgroup/system.slice" / f"docker-{V2_DB}.scope"
    cgroupfs = locate_cgroup(f"0::/docker/{V2_WEB}\n", CGROUPFS / "sys" / "fs" / "cgroup")
    assert cgroupfs is not None and cgroupfs.v2_dir is not None
    assert cgroupfs.v2_dir.name == V2_WEB


def test_cgroupfs_readable_on_tree():
    root = CGROUPFS / "sys" / "fs" / "cgroup"
    assert cgroupfs_readable(4242, proc_root=CGROUPFS / "proc", cgroup_root=root)
    assert not cgroupfs_readable(1, proc_root=CGROUPFS / "proc", cgroup_root=root)
    assert not cgroupfs_readable(4242, proc_root=CGROUPFS / "proc", cgroup_root=Path("/nope"))


def test_io_stat_and_max_parsers(tmp_path):
    assert parse_io_stat("") == (0, 0, 0, 0)
    assert parse_io_stat("8:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=5 dios=6\n") == (1, 2, 3, 4)
    (tmp_path / "memory.max").write_text("max\n")
    assert read_max(tmp_path / "memory.max") is None
    (tmp_path / "memory.max").write_text("1048576\n")
    assert read_max(tmp_path / "memory.max") == 1048576
