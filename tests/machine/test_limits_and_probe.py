"""Structural count limits (planned like a resource), the disk probe and NIC speeds."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

import pytest

from capacity._errors import CapacityError
from capacity.solver._machine import Machine
from capacity.solver._plan import plan
from capacity.solver._testing import constant_profiles
from capacity.sources._limits import (
    StructuralLimit,
    address_limits,
    file_limit,
    pid_limit,
    usable_addresses,
)
from capacity.sources._probe import nic_speeds, probe_disk

MIB = 2**20


def _network(name: str, subnet: str, gateway: str | None, attached: int) -> dict:
    config = {"Subnet": subnet, **({"Gateway": gateway} if gateway else {})}
    return {"Name": name, "Driver": "bridge", "IPAM": {"Config": [config]},
            "Containers": {f"c{i}": {} for i in range(attached)}}


def test_subnet_sizes_default_bridge_and_user_defined_24() -> None:
    assert usable_addresses("172.17.0.0/16", "172.17.0.1") == 65_533
    assert usable_addresses("172.20.0.0/24", "172.20.0.1") == 253
    limits = address_limits([_network("bridge", "172.17.0.0/16", None, 0),
                             _network("small", "172.20.0.0/24", "172.20.0.1", 3)],
                            {"c0": "web"})
    by = {lim.resource: lim for lim in limits}
    # the default bridge's gateway takes an address even when IPAM does not name it
    assert by["addresses_count[bridge]"].capacity == 65_533
    assert by["addresses_count[small]"].capacity == 253
    assert by["addresses_count[small]"].used == 3
    assert by["addresses_count[small]"].demand_of("web") == 1.0
    assert by["addresses_count[small]"].demand_of("db") == 0.0  # not attached there


def test_a_small_network_binds_before_memory() -> None:
    lim = StructuralLimit("addresses_count[small]", capacity=253, used=3, per_replica=0.0,
                          per_service={"svc": 1.0})
    machine = Machine("m", {"memory_working_set_bytes": 64 * 2**30}, limits=(lim,))
    p = plan(constant_profiles({"memory_working_set_bytes": 1 * MIB}), machine,
             running=3)
    rp = p.per_resource["addresses_count[small]"]
    # 253 addresses, 3 taken by the service's own running replicas: 253 in all
    assert rp.safe_count == 253 and p.binding_resource == "addresses_count[small]"
    assert p.safe_count == 253 and p.more == 250
    assert rp.capacity == 253 and rp.demand_per_replica == 1.0 and rp.occupied == 0.0


def test_host_cost_is_added_to_every_replica() -> None:
    profiles = constant_profiles({"memory_working_set_bytes": 1 * MIB})
    # demand as recorded (valid_for_s=None): no allowance for the synthetic short history
    bare = plan(profiles, Machine.from_spec("memory=1GiB"), valid_for_s=None)
    costly = plan(profiles, Machine.from_spec("memory=1GiB,host_cost=3MiB"), valid_for_s=None)
    assert bare.safe_count == 1024
    assert costly.safe_count == 256  # 1 GiB / (1 + 3) MiB
    assert costly.per_resource["memory_working_set_bytes"].host_cost == 3 * MIB
    assert costly.per_resource["memory_working_set_bytes"].demand_per_replica == 4 * MIB


def test_pid_and_file_limits_read_this_host() -> None:
    pids = pid_limit()
    files = file_limit()
    assert pids is not None and files is not None
    pid_max = int(Path("/proc/sys/kernel/pid_max").read_text())
    threads_max = int(Path("/proc/sys/kernel/threads-max").read_text())
    assert pids.capacity == min(pid_max, threads_max)
    assert 0 < pids.used < pids.capacity  # this test's own process is a task
    file_max = int(Path("/proc/sys/fs/file-max").read_text())
    assert files.capacity == file_max and files.used > 0


def test_probe_refuses_a_filesystem_with_too_little_free_space(tmp_path: Path) -> None:
    def small(_: object) -> SimpleNamespace:  # a 2 GiB filesystem with 200 MiB free
        return SimpleNamespace(f_bavail=200, f_frsize=MIB, f_blocks=2048)

    with pytest.raises(CapacityError, match="refused"):
        probe_disk(tmp_path, size_bytes=64 * MIB, statvfs=small)
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_probe_measures_and_removes_its_file(tmp_path: Path) -> None:
    try:
        result = probe_disk(tmp_path, size_bytes=16 * MIB, random_seconds=0.1)
    except CapacityError as exc:
        if "O_DIRECT" in str(exc):
            pytest.skip(f"{tmp_path} has no O_DIRECT: {exc}")
        raise
    assert list(tmp_path.iterdir()) == []
    assert result.sequential_write_bytes_per_second > 0
    assert result.sequential_read_bytes_per_second > 0
    assert result.random_read_bytes_per_second > 0


def _nic(root: Path, name: str, *, speed: str | None, virtual: bool = False,
         operstate: str = "up") -> Path:
    devices = root / "devices" / ("virtual/net" if virtual else "pci0000:00/net") / name
    devices.mkdir(parents=True)
    (devices / "operstate").write_text(operstate + "\n")
    if speed is not None:
        (devices / "speed").write_text(speed + "\n")
    link = root / "class" / "net" / name
    link.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(os.path.relpath(devices, link.parent), link)
    return devices


def test_nic_speeds_resolve_bonds_and_say_when_unknown(tmp_path: Path) -> None:
    _nic(tmp_path, "eth0", speed="10000")
    _nic(tmp_path, "eth1", speed="10000")
    bond = _nic(tmp_path, "bond0", speed="20000", virtual=True)
    (bond / "bonding").mkdir()
    (bond / "bonding" / "slaves").write_text("eth0 eth1\n")
    (bond / "bonding" / "mode").write_text("802.3ad 4\n")
    _nic(tmp_path, "docker0", speed="-1", virtual=True)
    _nic(tmp_path, "ens5", speed="-1")
    nics = {n.name: n for n in nic_speeds(tmp_path)}
    assert set(nics) == {"bond0", "ens5"}  # members and docker0 are not listed on their own
    assert nics["bond0"].bits_per_second == 20e9 and nics["bond0"].members == ("eth0", "eth1")
    assert nics["ens5"].bits_per_second is None
    m = Machine.local(sys_root=tmp_path, machine_file=False, measure=False)
    assert m.capacity["net_rx_bytes_per_second"] == 20e9 / 8


def test_nic_unknown_speed_is_named_once_with_the_flag(tmp_path: Path) -> None:
    _nic(tmp_path, "eth0", speed="-1")
    m = Machine.local(sys_root=tmp_path, machine_file=False, measure=False)
    assert "net_rx_bytes_per_second" not in m.capacity
    net = [s for s in m.missing if s.startswith("net_")]
    assert net and all("eth0" in s and "give --machine local,net=10Gbit" in s for s in net)


def test_mount_points_decode_every_octal_escape_of_proc_mounts(tmp_path: Path) -> None:
    from capacity.sources._probe import _read_mounts

    (tmp_path / "self").mkdir()
    (tmp_path / "self" / "mounts").write_text(
        "/dev/sda1 / ext4 rw 0 0\n"
        "/dev/sdb1 /mnt/a\\040b\\011c\\012d\\134e ext4 rw 0 0\n")
    assert _read_mounts(tmp_path) == [("/dev/sda1", "/"), ("/dev/sdb1", "/mnt/a b\tc\nd\\e")]


def test_the_volume_walk_has_a_budget_past_which_a_volume_is_not_measured(
    tmp_path: Path
) -> None:
    """A volume of more files than the budget: its per-replica figure is left out with the
    reason; the filesystem's used space (statvfs) still counts it; the report says so."""
    from capacity.solver._machine import _filesystem_notes
    from capacity.sources._disk_usage import WalkBudgetExceeded, tree_size_bytes
    from capacity.sources._limits import volume_space_limits

    big, small = tmp_path / "vols" / "big", tmp_path / "vols" / "small"
    big.mkdir(parents=True)
    small.mkdir()
    for i in range(50):
        (big / f"f{i}").write_bytes(b"x" * 10)
    (small / "a").write_bytes(b"y" * 7)
    with pytest.raises(WalkBudgetExceeded, match="more than 20 files"):
        tree_size_bytes(big, max_entries=20)
    with pytest.raises(WalkBudgetExceeded, match="time budget"):
        tree_size_bytes(big, deadline=1.0, clock=lambda: 2.0)
    assert tree_size_bytes(big, max_entries=50) == 500
    (tmp_path / "self").mkdir()
    (tmp_path / "self" / "mounts").write_text(f"/dev/vdb {tmp_path / 'vols'} ext4 rw 0 0\n")
    mounts = {"c1": ("db", [{"Type": "volume", "Name": "v1", "Source": str(big)}]),
              "c2": ("web", [{"Type": "volume", "Name": "v2", "Source": str(small)}])}
    st = SimpleNamespace(f_blocks=1000, f_frsize=4096, f_bavail=400)
    data_root = "/proc"  # another filesystem than the volumes'
    (lim,) = volume_space_limits(mounts, data_root, statvfs=lambda _: st, proc_root=tmp_path,
                                 max_entries=20)
    assert lim.per_service == {"db": 0.0, "web": 7.0}
    assert lim.used == 600 * 4096  # what is on the filesystem, the big volume included
    assert "per replica not measured: volume v1 of db (more than 20 files" in lim.source
    note = next(n for n in _filesystem_notes(data_root, (lim,)) if "volumes on" in n)
    assert "snapshot, not their growth" in note and "volume v1 of db" in note
