"""The sandbox cgroup on temporary trees standing in for /sys/fs/cgroup (v1 and v2).

The v2 path cannot run live on this host (cgroup v1); these tests check that the same code
writes the v2 files and reads them back, and that cleanup and the refusals work.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from capacity.verify import Sandbox, SandboxError, leftover_sandboxes

MiB = 2**20
#: a host big enough for every target these tests ask for
HOST = {"host_cpus": 8.0, "host_memory_bytes": 64 * 2**30}


def v1_tree(root: Path) -> Path:
    for c in ("cpu", "cpuacct", "memory", "pids", "blkio", "cpuset", "devices"):
        (root / c).mkdir(parents=True)
    return root


def v2_tree(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    (root / "cgroup.subtree_control").write_text("")
    return root


def fill_v2_counters(d: Path) -> None:
    (d / "cpu.stat").write_text(
        "usage_usec 2500000\nuser_usec 2000000\nsystem_usec 500000\n"
        "nr_periods 200\nnr_throttled 50\nthrottled_usec 1200000\n"
    )
    (d / "memory.current").write_text("73400320\n")
    (d / "memory.peak").write_text("80000000\n")
    (d / "memory.events").write_text("low 0\nhigh 0\nmax 7\noom 2\noom_kill 2\noom_group_kill 0\n")


def test_v2_writes_cpu_max_and_memory_max(tmp_path: Path) -> None:
    root = v2_tree(tmp_path / "cg")
    with Sandbox(1.5, 256 * MiB, cgroup_root=root, **HOST) as sb:
        assert sb.version == 2
        assert sb.cgroup_parent == "/" + sb.name
        d = root / sb.name
        assert (d / "cpu.max").read_text().split() == ["150000", "100000"]
        assert int((d / "memory.max").read_text()) == 256 * MiB
        assert "+memory" in (root / "cgroup.subtree_control").read_text()
        assert "+cpu" in (d / "cgroup.subtree_control").read_text()
        fill_v2_counters(d)
        before = sb.read()
        assert before.cpu_usage_seconds_total == pytest.approx(2.5)
        assert before.memory_oom_kills_total == 2  # hierarchical on v2: the sandbox's own file
        assert before.memory_failcnt_total == 7
        assert before.memory_peak_bytes == 80_000_000
        (d / "cpu.stat").write_text("usage_usec 3500000\nnr_periods 300\nnr_throttled 90\n")
        after = sb.read()
        assert after.throttled_fraction_since(before) == pytest.approx(40 / 100)
    assert not (root / sb.name).exists()
    assert leftover_sandboxes(root) == []


def test_v1_writes_quota_and_limit_and_sums_oom_kills_of_children(tmp_path: Path) -> None:
    root = v1_tree(tmp_path / "cg")
    with Sandbox(0.5, 100 * MiB, cgroup_root=root, **HOST) as sb:
        assert sb.version == 1
        cpu, mem = root / "cpu" / sb.name, root / "memory" / sb.name
        assert (cpu / "cpu.cfs_quota_us").read_text().strip() == "50000"
        assert (cpu / "cpu.cfs_period_us").read_text().strip() == "100000"
        assert int((mem / "memory.limit_in_bytes").read_text()) == 100 * MiB
        for name in ("pids", "blkio", "cpuacct"):
            assert (root / name / sb.name).is_dir()
        # what the kernel and runc would show: counters, and two container cgroups below
        (cpu / "cpu.stat").write_text("nr_periods 10\nnr_throttled 1\nthrottled_time 5000000\n")
        (root / "cpuacct" / sb.name / "cpuacct.usage").write_text("1000000000\n")
        (mem / "memory.usage_in_bytes").write_text("1048576\n")
        (mem / "memory.failcnt").write_text("3\n")
        (mem / "memory.oom_control").write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 0\n")
        for i, kills in enumerate((1, 2)):
            child = mem / f"c{i}"
            child.mkdir()
            (child / "memory.oom_control").write_text(f"oom_kill_disable 0\noom_kill {kills}\n")
        # runc also creates the parent in hierarchies the sandbox did not write
        (root / "cpuset" / sb.name / "child").mkdir(parents=True)
        c = sb.read()
        assert c.memory_oom_kills_total == 3  # v1 counts a kill in the victim's cgroup only
        assert c.memory_failcnt_total == 3
        assert c.cpu_usage_seconds_total == pytest.approx(1.0)
        assert c.cpu_throttled_seconds_total == pytest.approx(0.005)
    assert leftover_sandboxes(root) == []


def test_cleanup_on_exception_and_sigterm(tmp_path: Path) -> None:
    root = v2_tree(tmp_path / "cg")
    with pytest.raises(RuntimeError), Sandbox(1, 64 * MiB, cgroup_root=root, **HOST):
        raise RuntimeError("boom")
    assert leftover_sandboxes(root) == []
    with pytest.raises(KeyboardInterrupt), Sandbox(1, 64 * MiB, cgroup_root=root, **HOST):
        os.kill(os.getpid(), signal.SIGTERM)  # turned into KeyboardInterrupt, then cleaned up
        signal.pause()  # pragma: no cover - the handler raises first
    assert leftover_sandboxes(root) == []
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL or callable(
        signal.getsignal(signal.SIGTERM))


def test_sweep_runs_before_removal(tmp_path: Path) -> None:
    root = v2_tree(tmp_path / "cg")
    swept: list[str] = []
    with Sandbox(1, 64 * MiB, cgroup_root=root, sweep=swept.append, **HOST) as sb:
        pass
    assert swept == [sb.name]


@pytest.mark.parametrize(
    ("cpus", "memory", "match"),
    [(16, 64 * MiB, "16 CPUs but this host has 8"),
     (1, 63 * 2**30, "MiB available"),],
)
def test_refuses_a_target_larger_than_the_host(
    tmp_path: Path, cpus: float, memory: int, match: str
) -> None:
    root = v2_tree(tmp_path / "cg")
    with pytest.raises(SandboxError, match=match):
        Sandbox(cpus, memory, cgroup_root=root, **HOST).create()
    assert leftover_sandboxes(root) == []


def test_refuses_without_cgroupfs(tmp_path: Path) -> None:
    with pytest.raises(SandboxError, match="no cgroup filesystem"):
        Sandbox(1, 64 * MiB, cgroup_root=tmp_path, **HOST).create()


def test_rejects_nonsense_sizes(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="'cpus' parameter of Sandbox"):
        Sandbox(0, 64 * MiB, cgroup_root=v2_tree(tmp_path / "cg"), **HOST).check()
    with pytest.raises(ValueError, match="'memory_bytes' parameter of Sandbox"):
        Sandbox(1, 1024, cgroup_root=tmp_path / "cg", **HOST).check()
