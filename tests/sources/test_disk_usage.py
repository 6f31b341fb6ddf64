"""Disk usage: the writable layer (SizeRw) and volume walks, live and on temp trees."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from source_live_helpers import MiB, wait_for_log

from capacity._errors import ContainerGone
from capacity.sources._disk_usage import (
    AmortisedTreeSize,
    DiskUsage,
    disk_usage,
    disk_usage_bytes,
    tree_size_bytes,
)

#: SizeRw against the file the container left behind (plus busybox's own small files)
SIZE_RW_TOLERANCE = 0.10


def test_tree_size_counts_files_once_and_skips_symlinks(tmp_path: Path):
    (tmp_path / "a").write_bytes(b"x" * 1000)
    (tmp_path / "sub" / "deeper").mkdir(parents=True)
    (tmp_path / "sub" / "deeper" / "b").write_bytes(b"y" * 234)
    os.link(tmp_path / "a", tmp_path / "sub" / "a-hardlink")
    (tmp_path / "link-to-etc").symlink_to("/etc")
    (tmp_path / "link-to-a").symlink_to(tmp_path / "a")
    assert tree_size_bytes(tmp_path) == 1234


def test_tree_size_of_missing_root_raises(tmp_path: Path):
    with pytest.raises(FileNotFoundError):
        tree_size_bytes(tmp_path / "missing")


class _FakeApi:
    def __init__(self, attrs: dict[str, Any] | None) -> None:
        self.attrs = attrs

    def containers(self, size: bool, filters: dict[str, str]) -> list[dict[str, Any]]:
        if self.attrs is None or not size:
            return []
        # the engine matches id prefixes: a neighbour whose id starts the same is listed too
        return [{"Id": filters["id"] + "0"}, {"Id": filters["id"], **self.attrs}]


class _FakeClient:
    def __init__(self, attrs: dict[str, Any] | None) -> None:
        self.api = _FakeApi(attrs)


def test_unreadable_volume_is_named_and_left_out(tmp_path: Path):
    (tmp_path / "v1").mkdir()
    (tmp_path / "v1" / "f").write_bytes(b"z" * 100)
    mounts = [
        {"Type": "volume", "Name": "data", "Source": str(tmp_path / "v1")},
        {"Type": "volume", "Name": "remote", "Source": str(tmp_path / "gone")},
        {"Type": "bind", "Source": "/etc"},
    ]
    usage = disk_usage(_FakeClient({"SizeRw": 5000, "Mounts": mounts}), "c" * 64)
    assert usage == DiskUsage(5000, 100, ("remote",))
    assert usage.total_bytes == 5100
    only = disk_usage(_FakeClient({"SizeRw": 5000, "Mounts": mounts[1:]}), "c" * 64)
    assert only.volumes_bytes is None and only.total_bytes == 5000
    assert disk_usage_bytes(_FakeClient({"Mounts": []}), "c" * 64) == 0
    assert disk_usage_bytes(_FakeClient({}), "c" * 64, volumes=False) is None
    with pytest.raises(ContainerGone):
        disk_usage(_FakeClient(None), "c" * 64)


def test_a_large_volume_is_walked_whole_but_seldom_never_as_a_partial_sum(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    small, big = tmp_path / "small", tmp_path / "big"
    small.mkdir()
    (small / "f").write_bytes(b"s" * 300)
    big.mkdir()
    for i in range(30):
        (big / f"f{i}").write_bytes(b"b" * 10)
    mounts = [
        {"Type": "volume", "Name": "small", "Source": str(small)},
        {"Type": "volume", "Name": "big", "Source": str(big)},
    ]
    client = _FakeClient({"SizeRw": 5000, "Mounts": mounts})
    now = [0.0]
    size_of = AmortisedTreeSize(max_entries=20, max_s=60.0, large_every_s=3600.0,
                                clock=lambda: now[0])
    with caplog.at_level("WARNING", logger="capacity.collect"):
        usage = disk_usage(client, "c" * 64, tree_size=size_of)
    # past the budget (30 entries > 20): walked whole at once, never a partial sum
    assert usage == DiskUsage(5000, 300 + 300, ())
    [warning] = [r.getMessage() for r in caplog.records]
    assert str(big) in warning and "more than 20 files" in warning and "3600 s" in warning
    assert size_of.large == {str(big): (0.0, 300)}
    # it grows; within the hour its last whole size stands (stale, not partial) ...
    for i in range(30, 60):
        (big / f"f{i}").write_bytes(b"b" * 10)
    now[0] = 3599.0
    assert disk_usage_bytes(client, "c" * 64, tree_size=size_of) == 5000 + 300 + 300
    (small / "g").write_bytes(b"s" * 5)  # ... while a small volume is walked every time
    assert disk_usage_bytes(client, "c" * 64, tree_size=size_of) == 5000 + 305 + 300
    # an hour after its last whole walk it is walked whole again, logged only once
    now[0] = 3600.0
    assert disk_usage_bytes(client, "c" * 64, tree_size=size_of) == 5000 + 305 + 600
    assert size_of.large == {str(big): (3600.0, 600)} and len(caplog.records) == 1
    # within the budget the figure is the unbounded walk's
    plain = disk_usage(client, "c" * 64, tree_size=AmortisedTreeSize(max_entries=100))
    assert plain.total_bytes == disk_usage(client, "c" * 64).total_bytes == 5000 + 305 + 600


def test_a_walk_past_the_time_budget_is_large_too(tmp_path: Path):
    for d in range(3):
        (tmp_path / f"d{d}").mkdir()
        for i in range(700):
            (tmp_path / f"d{d}" / f"f{i}").write_bytes(b"x")
    ticks = iter(range(10**6))
    size_of = AmortisedTreeSize(max_entries=10**6, max_s=1.5, clock=lambda: float(next(ticks)))
    # the clock moves one second per look: the bounded walk runs out of time at entry
    # 1,024, then the whole walk gives every byte
    assert size_of(tmp_path) == 2100
    assert list(size_of.large) == [str(tmp_path)]


@pytest.fixture
def volume(docker_client: Any) -> Iterator[Any]:
    vol = docker_client.volumes.create(
        f"capacity-test-{uuid.uuid4().hex[:8]}", labels={"capacity.test": "1"}
    )
    try:
        yield vol
    finally:
        vol.remove(force=True)


@pytest.mark.docker
def test_writable_layer_and_volume_sizes(docker_client: Any, volume: Any, run_container: Any):
    c = run_container(
        "sh",
        "-c",
        "dd if=/dev/zero of=/f bs=1M count=64 2>/dev/null;"
        " dd if=/dev/zero of=/vol/g bs=1M count=8 2>/dev/null; echo ready; sleep 600",
        volumes={volume.name: {"bind": "/vol", "mode": "rw"}},
    )

    wait_for_log(c, "ready")
    usage = disk_usage(docker_client, c.id)
    assert usage.writable_layer_bytes == pytest.approx(64 * MiB, rel=SIZE_RW_TOLERANCE)
    if usage.unreadable_volumes:
        pytest.skip(f"volume mountpoints not readable here: {usage.unreadable_volumes}")
    assert usage.volumes_bytes == 8 * MiB
    assert usage.writable_layer_bytes is not None
    assert usage.total_bytes == usage.writable_layer_bytes + 8 * MiB
    c.remove(force=True)
    with pytest.raises(ContainerGone):
        disk_usage(docker_client, c.id)
