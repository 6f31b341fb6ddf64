"""CgroupReader on a recorded hybrid v1 tree: co-mounted cpu,cpuacct, --cgroup-parent, blkio."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from capacity.sources._cgroup import CgroupReader, cgroup_version, locate_cgroup, parse_proc_cgroup
from capacity.sources._cgroup_v1 import parse_blkio, parse_flat_keyed
from capacity.sources._types import ContainerInfo

TREE = Path(__file__).parent.parent / "data" / "cgroup_v1"
ROOT = TREE / "sys" / "fs" / "cgroup"
V1_WEB = "471c93d43bcde4c3f002d8a457bf69e9a077db1b17729de0d07618fc9dd80348"
V1_PARENT = "f0c6b353751f53ed9f282167f3ac8091d8aa73074110069ee8add22a2746b3f4"


def info(cid: str, pid: int) -> ContainerInfo:
    return ContainerInfo(
        id=cid,
        name="c",
        image="img",
        service="img",
        pid=pid,
        started_at=datetime(2026, 1, 1, tzinfo=UTC),
    )


def test_hybrid_host_is_v1():
    # the tree has a (controller-less) unified hierarchy too: v1 wins
    assert cgroup_version(ROOT) == 1
    text = (TREE / "proc" / "3131" / "cgroup").read_text()
    location = locate_cgroup(text, ROOT)
    assert location is not None and location.version == 1
    assert location.v1_dirs["cpu"] == ROOT / "cpu,cpuacct" / "docker" / V1_WEB
    assert location.v1_dirs["cpuacct"] == location.v1_dirs["cpu"]
    assert "name=systemd" not in location.v1_dirs


def test_v1_exact_values():
    c = CgroupReader(TREE / "proc", ROOT).read(info(V1_WEB, 3131))
    assert c.cpu_usage_seconds_total == pytest.approx(0.019868708)
    assert (c.cpu_periods_total, c.cpu_throttled_periods_total) == (0, 0)
    assert c.memory_usage_bytes == 831488
    assert c.memory_inactive_file_bytes == 131072
    assert c.memory_working_set_bytes == 831488 - 131072
    assert c.memory_rss_bytes == 53248
    assert c.memory_cache_bytes == 131072
    assert c.memory_limit_bytes is None  # 9223372036854771712 = unlimited
    assert c.memory_peak_bytes == 4083712
    assert c.memory_oom_kills_total == 0
    assert c.memory_failcnt_total == 0
    # Read/Write rows over two devices; Total (which counts the discard) is not used
    assert c.disk_read_bytes_total == 4096 + 8192
    assert c.disk_write_bytes_total == 16777216
    assert c.disk_read_ops_total == 3
    assert c.disk_write_ops_total == 16
    assert c.pids == 1
    assert (c.net_rx_bytes_total, c.net_tx_bytes_total) == (736, 0)
    assert c.net_namespace == 4026532184


def test_v1_cgroup_parent_throttled_and_limited():
    c = CgroupReader(TREE / "proc", ROOT).read(info(V1_PARENT, 3232))
    assert c.cpu_usage_seconds_total == pytest.approx(3.0)
    assert c.cpu_periods_total == 600
    assert c.cpu_throttled_periods_total == 300
    assert c.cpu_throttled_seconds_total == pytest.approx(4.5)
    assert c.memory_limit_bytes == 134217728
    assert c.memory_working_set_bytes == 0  # inactive_file above usage: clamped
    assert c.memory_oom_kills_total == 3
    assert c.memory_failcnt_total == 4711
    assert (c.disk_read_bytes_total, c.disk_write_bytes_total) == (0, 0)
    assert c.pids == 12


def test_parse_proc_cgroup_lines():
    v1, v2 = parse_proc_cgroup(
        "12:pids:/a\n4:cpu,cpuacct:/a\n1:name=systemd:/a\n0::/a\nnot a line\n"
    )
    assert v1 == {"pids": "/a", "cpu": "/a", "cpuacct": "/a", "name=systemd": "/a"}
    assert v2 == "/a"


def test_parse_blkio_and_flat_keyed():
    assert parse_blkio("Total 0\n") == (0, 0)
    assert parse_blkio("8:0 Read 10\n8:0 Write 20\n8:16 Read 1\n8:0 Total 30\nTotal 31\n") == (
        11,
        20,
    )
    assert parse_flat_keyed("a 1\nb x\nc 2 3\n\nd 4\n") == {"a": 1, "d": 4}


def test_missing_optional_v1_files_are_none(tmp_path):
    import shutil

    shutil.copytree(TREE, tmp_path / "t", symlinks=True)
    root = tmp_path / "t" / "sys" / "fs" / "cgroup"
    mem = root / "memory" / "docker" / V1_WEB
    (mem / "memory.max_usage_in_bytes").unlink()
    (mem / "memory.oom_control").unlink()
    shutil.rmtree(root / "blkio")
    c = CgroupReader(tmp_path / "t" / "proc", root).read(info(V1_WEB, 3131))
    assert c.memory_peak_bytes is None
    assert c.memory_oom_kills_total is None
    assert c.disk_read_bytes_total is None
    assert c.memory_usage_bytes == 831488
