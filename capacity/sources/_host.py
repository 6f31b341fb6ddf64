"""The host: its totals each round (:class:`HostReader`) and its capacity (:func:`host_facts`).

Everything goes through ``psutil``; the module is a parameter so tests can hand in a fake.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import psutil

from ._types import HostCounters

__all__ = ["HostFacts", "HostReader", "host_facts", "is_virtual_nic"]

#: fields of psutil.cpu_times() that are not work done on this host: subtracted from the total
#: (``steal``: time a VM's CPU waited for the hypervisor, which ran something else)
_IDLE_FIELDS = ("idle", "iowait", "steal")
#: guest time is already counted in user (and guest_nice in nice) by the Linux kernel
_DOUBLE_COUNTED_FIELDS = ("guest", "guest_nice")


def is_virtual_nic(name: str, sys_root: Path = Path("/sys")) -> bool:
    """Whether interface ``name`` is virtual (loopback, bridge, veth, ifb, ...).

    On Linux a virtual interface's ``/sys/class/net/<name>`` link points into
    ``/sys/devices/virtual/net``; a physical (or paravirtual, such as virtio) NIC points at a
    bus device. Where ``/sys/class/net`` is unreadable, only ``lo`` counts as virtual.
    """
    link = sys_root / "class" / "net" / name
    try:
        target = os.readlink(link)
    except OSError:
        return name == "lo"
    return "/virtual/" in target or target.startswith("virtual/")


def _physical_nics(names: list[str], sys_root: Path) -> list[str]:
    physical = [n for n in names if not is_virtual_nic(n, sys_root)]
    return physical or [n for n in names if n != "lo"]


@dataclass(frozen=True)
class HostFacts:
    """What the host can give, read once.

    Attributes
    ----------
    logical_cpus : int
        CPUs the scheduler sees (hyperthreads count); the unit of ``cpu_cores``.
    physical_cpus : int or None
        Cores, when the OS tells.
    memory_total_bytes : int
        Installed memory the kernel manages (``MemTotal``).
    nic_speeds_bits_per_second : Mapping[str, int or None]
        Link speed of each non-virtual NIC, bits per second. ``None`` where the OS reports 0
        (common for virtio and other virtual machine NICs): the user must give it.
    docker_root : str
        The directory the disk figures describe.
    docker_fs_total_bytes, docker_fs_free_bytes : int or None
        Size and free space (for unprivileged users: ``f_bavail``) of the filesystem that
        holds ``docker_root``; ``None`` when it cannot be read.
    host_cost_per_container_bytes : float or None
        The running containers' shims (PSS, page tables, kernel stacks) per container
        served, measured passively (:func:`capacity.sources._hostcost.passive_host_cost`);
        ``None`` when no shim runs or ``/proc`` of root's processes is not readable.
    """

    logical_cpus: int
    physical_cpus: int | None
    memory_total_bytes: int
    nic_speeds_bits_per_second: Mapping[str, int | None] = field(default_factory=dict)
    docker_root: str = "/var/lib/docker"
    docker_fs_total_bytes: int | None = None
    docker_fs_free_bytes: int | None = None
    host_cost_per_container_bytes: float | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["nic_speeds_bits_per_second"] = dict(self.nic_speeds_bits_per_second)
        return d


def host_facts(
    docker_root: Path = Path("/var/lib/docker"),
    *,
    psutil_module: ModuleType | Any = psutil,
    sys_root: Path = Path("/sys"),
    proc_root: Path | None = Path("/proc"),
) -> HostFacts:
    """Read the host's capacity: CPUs, memory, NIC speeds, and Docker's filesystem.

    Parameters
    ----------
    docker_root : Path
        Docker's data root (``docker info`` ``DockerRootDir``). When it does not exist (or
        is not readable by this user), its nearest existing parent is measured.
    psutil_module : module
        ``psutil``, or a fake with the same functions.
    sys_root : Path
        Where ``/sys`` is, to tell virtual NICs from real ones.
    proc_root : Path or None
        Where ``/proc`` is, for the passive host cost per container; None skips it.

    Examples
    --------
    >>> facts = host_facts()  # doctest: +SKIP
    >>> facts.logical_cpus, facts.memory_total_bytes  # doctest: +SKIP
    (2, 25276059648)
    """
    ps = psutil_module
    stats = ps.net_if_stats()
    speeds: dict[str, int | None] = {}
    for name in _physical_nics(sorted(stats), sys_root):
        mbps = int(stats[name].speed or 0)
        speeds[name] = mbps * 1_000_000 if mbps > 0 else None

    total = free = None
    path = docker_root
    while not path.exists() and path.parent != path:
        path = path.parent
    try:
        usage = ps.disk_usage(str(path))
        total, free = int(usage.total), int(usage.free)
    except OSError:
        pass
    host_cost = None
    if proc_root is not None:
        from ._hostcost import passive_host_cost

        cost = passive_host_cost(proc_root)
        host_cost = cost.memory_bytes if cost is not None else None
    return HostFacts(
        host_cost_per_container_bytes=host_cost,
        logical_cpus=int(ps.cpu_count(logical=True) or 1),
        physical_cpus=ps.cpu_count(logical=False),
        memory_total_bytes=int(ps.virtual_memory().total),
        nic_speeds_bits_per_second=speeds,
        docker_root=str(docker_root),
        docker_fs_total_bytes=total,
        docker_fs_free_bytes=free,
    )


class HostReader:
    """Read host-wide totals through psutil, once per collection round.

    Parameters
    ----------
    psutil_module : module
        ``psutil``, or a fake with the same functions.
    sys_root : Path
        Where ``/sys`` is, to tell virtual NICs from real ones.

    Notes
    -----
    - ``cpu_usage_seconds_total`` is busy time summed over every CPU: the sum of
      ``psutil.cpu_times()`` minus ``idle``, ``iowait`` and ``steal`` (and minus ``guest`` and
      ``guest_nice``, which the kernel already counts in ``user``/``nice``). It grows by up to
      ``logical_cpus`` seconds per second.
    - ``memory_used_bytes`` is ``total - available``: what could not be freed without
      swapping, comparable to the containers' working sets (psutil's own ``used`` leaves out
      some reclaimable memory and is not).
    - Network totals sum the non-virtual NICs only: bridge, veth and loopback traffic would
      count the same bytes two or three times.
    - Disk totals are psutil's whole-system figures (partitions are not added on top of
      their disks).
    """

    name = "psutil"

    def __init__(
        self, psutil_module: ModuleType | Any = psutil, sys_root: Path = Path("/sys")
    ) -> None:
        self.psutil_module = psutil_module
        self.sys_root = sys_root

    def read(self) -> HostCounters:
        """One reading of the host's cumulative counters and gauges."""
        ps = self.psutil_module
        times = ps.cpu_times()._asdict()
        idle = sum(times.get(f, 0.0) for f in _IDLE_FIELDS)
        double = sum(times.get(f, 0.0) for f in _DOUBLE_COUNTED_FIELDS)
        busy = max(0.0, sum(times.values()) - idle - double)
        memory = ps.virtual_memory()
        nics = ps.net_io_counters(pernic=True) or {}
        names = _physical_nics(sorted(nics), self.sys_root)
        disk = ps.disk_io_counters(perdisk=False)
        return HostCounters(
            cpu_usage_seconds_total=busy,
            memory_used_bytes=int(memory.total - memory.available),
            memory_total_bytes=int(memory.total),
            net_rx_bytes_total=sum(int(nics[n].bytes_recv) for n in names),
            net_tx_bytes_total=sum(int(nics[n].bytes_sent) for n in names),
            disk_read_bytes_total=int(disk.read_bytes) if disk else 0,
            disk_write_bytes_total=int(disk.write_bytes) if disk else 0,
            logical_cpus=int(ps.cpu_count(logical=True) or 1),
        )
