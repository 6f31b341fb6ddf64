"""Files held open and re-read with ``os.pread`` from offset 0 (issue 14): fresh values on a
real busy container, the same counters as opening each file anew, and a container that
vanishes or a descriptor closed behind the reader's back is skipped, never fatal."""

from __future__ import annotations

import os
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from source_live_helpers import info_of

from capacity._collect import CachedCgroupReader, Collection, Collector
from capacity._errors import ContainerGone
from capacity.sources._cgroup import CgroupReader, HeldFiles, _FdBudget, cgroup_version
from capacity.sources._types import ContainerInfo

DATA = Path(__file__).parent.parent / "data"
V1 = DATA / "cgroup_v1"
V1_WEB = "471c93d43bcde4c3f002d8a457bf69e9a077db1b17729de0d07618fc9dd80348"
V2 = DATA / "cgroup_v2_cgroupfs"
V2_WEB = "3b48c32a5faf7bd129b2722a8ee23ca75c4274f64b4ab53114a229f02a5f76cc"
#: a busy loop gains at least this much CPU time between two reads 0.5 s apart
MIN_CPU_GAIN_S = 0.02


def info(cid: str, pid: int) -> ContainerInfo:
    return ContainerInfo(id=cid, name="c", image="img", service="img", pid=pid,
                         started_at=datetime(2026, 1, 1, tzinfo=UTC))


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.parametrize(("tree", "cid", "pid"), [(V1, V1_WEB, 3131), (V2, V2_WEB, 4242)])
def test_held_files_read_what_fresh_opens_read(tree: Path, cid: str, pid: int) -> None:
    root = tree / "sys" / "fs" / "cgroup"
    plain = CgroupReader(tree / "proc", root).read(info(cid, pid))
    held = CachedCgroupReader(tree / "proc", root)
    before = open_fds()
    assert held.read(info(cid, pid)) == plain
    assert open_fds() > before  # the files stay open...
    assert held.read(info(cid, pid)) == plain  # ...and read the same again
    held.close()
    assert open_fds() == before


def test_pread_from_offset_zero_sees_a_rewritten_file(tmp_path: Path) -> None:
    path = tmp_path / "cpuacct.usage"
    path.write_text("100\n")
    files = HeldFiles(_FdBudget(8))
    assert files.read(str(path)) == "100\n"
    with open(path, "r+") as f:  # rewritten in place, as the kernel renders a seq_file anew
        f.write("250\n")
    assert files.read(str(path)) == "250\n"
    with pytest.raises(FileNotFoundError):
        files.read(str(tmp_path / "missing"))
    files.close()


def test_past_the_budget_files_are_read_the_plain_way(tmp_path: Path) -> None:
    paths = [tmp_path / f"f{i}" for i in range(3)]
    for i, p in enumerate(paths):
        p.write_text(str(i))
    budget = _FdBudget(2)
    files = HeldFiles(budget)
    before = open_fds()
    assert [files.read(str(p)) for p in paths] == ["0", "1", "2"]
    assert open_fds() == before + 2 and budget.left == 0
    files.close()
    assert open_fds() == before and budget.left == 2


def _copy_v1_tree(tmp_path: Path) -> tuple[Path, Path]:
    tree = tmp_path / "t"
    shutil.copytree(V1, tree, symlinks=True)
    return tree / "proc", tree / "sys" / "fs" / "cgroup"


class _Engine:
    def __init__(self, containers: list[ContainerInfo]) -> None:
        self.list = containers

    def containers(self) -> list[ContainerInfo]:
        return list(self.list)


def test_a_descriptor_closed_behind_the_reader_costs_one_reading(tmp_path: Path) -> None:
    proc, root = _copy_v1_tree(tmp_path)
    reader = CachedCgroupReader(proc, root)
    sink = Collection()
    collector = Collector(_Engine([info(V1_WEB, 3131)]), reader, sink)
    assert collector.round() == 1
    for fd in next(iter(reader._files.values()))._fds.values():
        os.close(fd)  # someone else's bug closes our descriptors
    assert collector.round() == 0  # skipped, not fatal
    assert collector.round() == 1  # reopened
    reader.close()


def test_a_vanished_cgroup_is_gone_and_its_files_closed(tmp_path: Path) -> None:
    proc, root = _copy_v1_tree(tmp_path)
    reader = CachedCgroupReader(proc, root)
    c = info(V1_WEB, 3131)
    before = open_fds()
    reader.read(c)
    for d in root.glob(f"*/docker/{V1_WEB}"):
        shutil.rmtree(d)
    # a removed cgroupfs file fails at once through a held descriptor (ENODEV: the live test
    # below); a regular file stays readable, so here the reader's periodic check of the
    # directory finds it, within HeldFiles.LEAF_CHECK_EVERY readings
    with pytest.raises(ContainerGone):
        for _ in range(HeldFiles.LEAF_CHECK_EVERY):
            reader.read(c)
    assert open_fds() == before


def test_a_cgroup_removed_before_its_first_reading_is_gone(tmp_path: Path) -> None:
    # files opened in this reading: the directory is checked at once
    proc, root = _copy_v1_tree(tmp_path)
    reader = CachedCgroupReader(proc, root)
    c = info(V1_WEB, 3131)
    reader.locate(c)
    for d in root.glob(f"*/docker/{V1_WEB}"):
        shutil.rmtree(d)
    with pytest.raises(ContainerGone):
        reader.read(c)


@pytest.mark.docker
@pytest.mark.skipif(cgroup_version() is None, reason="needs /sys/fs/cgroup")
def test_a_held_file_gives_fresh_values_on_a_busy_container(
    docker_client: Any, run_container: Any
) -> None:
    c = run_container("sh", "-c", "while :; do :; done")
    container = info_of(docker_client, c)
    reader = CachedCgroupReader()
    location = reader.locate(container)
    usage = (f"{location.v2_dir}/cpu.stat" if location.version == 2
             else f"{location.v1_dirs['cpuacct']}/cpuacct.usage")
    files = HeldFiles(_FdBudget(8))

    def held_s() -> float:
        text = files.read(usage)
        if location.version == 2:
            return int(text.split("usage_usec", 1)[1].split()[0]) / 1e6
        return int(text) / 1e9

    def fresh_s() -> float:
        text = Path(usage).read_text()
        if location.version == 2:
            return int(text.split("usage_usec", 1)[1].split()[0]) / 1e6
        return int(text) / 1e9

    first = held_s()
    time.sleep(0.5)
    second_fresh = fresh_s()
    second = held_s()
    assert second - first >= MIN_CPU_GAIN_S  # the held descriptor is not a snapshot
    assert second >= second_fresh  # read after the fresh open: as new or newer
    # the whole reader too: two reads through held files move on
    a = reader.read(container).cpu_usage_seconds_total
    time.sleep(0.5)
    b = reader.read(container).cpu_usage_seconds_total
    assert b - a >= MIN_CPU_GAIN_S
    c.remove(force=True)
    with pytest.raises(ContainerGone):  # held files of a removed cgroup: gone, not stale
        for _ in range(50):
            reader.read(container)
            time.sleep(0.1)
    files.close()
    reader.close()


def test_a_record_built_from_its_fields_equals_the_dataclass_one() -> None:
    from capacity.sources._cgroup import _record
    from capacity.sources._types import ContainerCounters

    fields = {"container_id": "abc", "cpu_usage_seconds_total": 1.5,
              "memory_usage_bytes": 10, "memory_working_set_bytes": 8, "pids": 3}
    fast, plain = _record(dict(fields)), ContainerCounters(**fields)
    assert type(fast) is ContainerCounters
    assert fast == plain and repr(fast) == repr(plain) and hash(fast) == hash(plain)
    assert fast.to_dict() == plain.to_dict() and fast.net_rx_bytes_total is None
    with pytest.raises(AttributeError):  # still frozen
        fast.pids = 4  # type: ignore[misc]
    with pytest.raises(TypeError):  # a missing required field: the dataclass says so
        _record({"container_id": "abc"})
    with pytest.raises(TypeError):  # and an unknown one
        _record({**fields, "cpu_seconds": 1.0})


def test_slow_slots_are_reread_every_nth_reading_and_the_rest_every_time(tmp_path: Path):
    """The memory limit and v1 failcnt are re-read every ``SLOW_EVERY_READS`` readings (their
    last text reused between); every other file is fresh at each reading."""
    from capacity._collect import SLOW_EVERY_READS, SLOW_SLOTS, _Plan
    from capacity.sources import _cgroup_v1

    names = [names[0] for _, names, _ in _cgroup_v1.FILES] + ["net_dev"]
    for name in names:
        (tmp_path / name).write_text(f"{name} 0\n")
    files = HeldFiles(_FdBudget())
    fds = [os.open(tmp_path / name, os.O_RDONLY) for name in names]
    try:
        plan = _Plan(fds, 1, files, 0, str(tmp_path))
        assert {names[i] for i in SLOW_SLOTS[1]} == {"memory.limit_in_bytes", "memory.failcnt"}
        assert plan.texts() == [f"{name} 0\n" for name in names]
        for name in names:
            (tmp_path / name).write_text(f"{name} 1\n")
        for _ in range(SLOW_EVERY_READS - 1):
            texts = plan.texts()
            assert len(texts) == len(names)
            for i, name in enumerate(names):
                assert texts[i] == f"{name} {0 if i in SLOW_SLOTS[1] else 1}\n"
        assert plan.texts() == [f"{name} 1\n" for name in names]
    finally:
        for fd in fds:
            os.close(fd)
