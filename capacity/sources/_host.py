"""The host: its totals each round (:class:`HostReader`) and its capacity (:func:`host_facts`).

Host facts go through ``psutil``; the round's totals are read from ``/proc`` directly where it
is there (psutil elsewhere). The psutil module is a parameter so tests can hand in a fake.
"""

from __future__ import annotations

import contextlib
import os
import re
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
    """Read host-wide totals once per collection round: from ``/proc`` directly, or psutil.

    Parameters
    ----------
    psutil_module : module, optional
        ``psutil``, or a fake with the same functions: every reading goes through it. None
        (default): read ``<proc_root>/stat``, ``meminfo``, ``net/dev`` and ``diskstats``
        directly (held open, re-read with ``pread``), the same files and the same arithmetic
        as psutil on Linux at a fraction of the cost; where they are not there (not Linux),
        psutil.
    sys_root : Path
        Where ``/sys`` is, to tell virtual NICs from real ones and disks from partitions.
    proc_root : Path
        Where ``/proc`` is (a recorded tree in tests).

    Notes
    -----
    - ``cpu_usage_seconds_total`` is busy time summed over every CPU: the ``cpu`` line of
      ``/proc/stat`` (psutil's ``cpu_times()``) minus ``idle``, ``iowait`` and ``steal`` (and
      minus ``guest`` and ``guest_nice``, which the kernel already counts in
      ``user``/``nice``). It grows by up to ``logical_cpus`` seconds per second, in steps of
      one clock tick (1/100 s).
    - ``memory_used_bytes`` is ``MemTotal - MemAvailable``: what could not be freed without
      swapping, comparable to the containers' working sets (psutil's own ``used`` leaves out
      some reclaimable memory and is not). Where ``MemAvailable`` is missing or 0 (kernels
      before 3.14, a kernel bug) psutil's estimate is used.
    - Network totals sum the non-virtual NICs only: bridge, veth and loopback traffic would
      count the same bytes two or three times. Which NIC is virtual is looked up once per
      interface name (``/sys/class/net/<name>``), not every round.
    - Disk totals sum the devices listed in ``/sys/block`` (whole disks, not their
      partitions, as psutil's ``disk_io_counters(perdisk=False)``), 512-byte sectors.
    - Trap: read directly, a total goes down when a NIC or disk is removed (psutil's
      ``nowrap`` would hide that); the store treats a decrease as a counter reset.
    - The cost per round is what a collector at 1 s pays 86,400 times a day: psutil's four
      calls took ~0.4-1 ms per round on a host with 50 veths (two dozen ``readlink`` of
      ``/sys/class/net`` and a ``/sys/block`` check per disk each time); the direct read is
      four ``pread`` and a few string searches.
    """

    name = "procfs"

    def __init__(
        self,
        psutil_module: ModuleType | Any = None,
        sys_root: Path = Path("/sys"),
        proc_root: Path = Path("/proc"),
    ) -> None:
        self.psutil_module = psutil_module
        self.sys_root = sys_root
        self.proc_root = proc_root
        self._proc: _ProcTotals | None = None
        if psutil_module is None:
            try:
                self._proc = _ProcTotals(proc_root, sys_root)
            except (OSError, ValueError):  # not Linux, or /proc not mounted: psutil
                self._proc = None
        if self._proc is None:
            self.name = "psutil"

    def read(self) -> HostCounters:
        """One reading of the host's cumulative counters and gauges."""
        if self._proc is not None:
            reading = self._proc.read()
            if reading is not None:
                return reading
        return _psutil_reading(self.psutil_module or psutil, self.sys_root)

    def close(self) -> None:
        """Close the held ``/proc`` files (reading again falls back to psutil)."""
        if self._proc is not None:
            self._proc.close()
            self._proc = None


def _psutil_reading(ps: ModuleType | Any, sys_root: Path) -> HostCounters:
    times = ps.cpu_times()._asdict()
    idle = sum(times.get(f, 0.0) for f in _IDLE_FIELDS)
    double = sum(times.get(f, 0.0) for f in _DOUBLE_COUNTED_FIELDS)
    busy = max(0.0, sum(times.values()) - idle - double)
    memory = ps.virtual_memory()
    nics = ps.net_io_counters(pernic=True) or {}
    names = _physical_nics(sorted(nics), sys_root)
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


#: ``/proc/net/dev``: interface name, rx bytes, 7 more rx fields, tx bytes
_NET_DEV_LINE = re.compile(r"^ *([^:\s]+): *(\d+)(?: +\d+){7} +(\d+)", re.M)
#: psutil's sector size for ``/proc/diskstats`` (the kernel counts 512-byte units there)
_SECTOR_BYTES = 512


def _kib(meminfo: str, needle: str) -> int | None:
    """The value of one ``/proc/meminfo`` line (``MemTotal:   24683652 kB``), KiB."""
    start = meminfo.find(needle)
    if start < 0:
        return None
    start += len(needle)
    end = meminfo.find("\n", start)
    value = (meminfo[start:end] if end >= 0 else meminfo[start:]).split()
    return int(value[0]) if value and value[0].isdigit() else None


class _ProcTotals:
    """The four ``/proc`` files of the host totals, held open and parsed without psutil."""

    def __init__(self, proc_root: Path, sys_root: Path) -> None:
        self.sys_root = sys_root
        self._fds: list[int] = []
        try:
            for name in ("stat", "meminfo", "net/dev", "diskstats"):
                self._fds.append(os.open(f"{proc_root}/{name}", os.O_RDONLY | os.O_CLOEXEC))
        except OSError:
            self.close()
            raise
        self._tick_s = 1.0 / os.sysconf("SC_CLK_TCK")
        self._nic_names: list[str] | None = None
        self._physical: frozenset[str] = frozenset()
        self._disks: dict[str, bool] = {}
        if self.read() is None:
            self.close()
            raise ValueError(f"{proc_root}: the host files are not in the Linux format")

    def __del__(self) -> None:
        self.close()

    def close(self) -> None:
        for fd in self._fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        self._fds = []

    def _text(self, index: int) -> str:
        fd = self._fds[index]
        chunk = os.pread(fd, 65536, 0)
        if len(chunk) < 65536:
            return chunk.decode()
        chunks, offset = [chunk], len(chunk)
        while chunk := os.pread(fd, 65536, offset):
            chunks.append(chunk)
            offset += len(chunk)
        return b"".join(chunks).decode()

    def read(self) -> HostCounters | None:
        """One reading, or None when a file is not in the expected format (psutil then)."""
        stat = self._text(0)
        if not stat.startswith("cpu "):
            return None
        ticks = [int(x) for x in stat[4 : stat.index("\n")].split()]
        # user nice system idle iowait irq softirq steal guest guest_nice: busy is
        # user + nice + system + irq + softirq (guest time is inside user and nice)
        busy = sum(ticks[:3]) + sum(ticks[5:7])

        meminfo = "\n" + self._text(1)
        total_kib = _kib(meminfo, "\nMemTotal:")
        available_kib = _kib(meminfo, "\nMemAvailable:")
        if total_kib is None or not available_kib or available_kib > total_kib:
            return None

        rx = tx = 0
        found = _NET_DEV_LINE.findall(self._text(2))
        names = [name for name, _, _ in found]
        if names != self._nic_names:
            self._nic_names = names
            self._physical = frozenset(_physical_nics(sorted(names), self.sys_root))
        for name, rx_bytes, tx_bytes in found:
            if name in self._physical:
                rx += int(rx_bytes)
                tx += int(tx_bytes)

        read_sectors = write_sectors = 0
        for line in self._text(3).splitlines():
            fields = line.split()
            if len(fields) == 14 or len(fields) >= 18:
                read_at, write_at = 5, 9
            elif len(fields) == 7:  # a partition on Linux 2.6
                read_at, write_at = 4, 6
            else:
                return None
            disk = self._disks.get(fields[2])
            if disk is None:
                if len(self._disks) > 4096:  # devices come and go (loop): stay bounded
                    self._disks.clear()
                name = fields[2].replace("/", "!")
                disk = self._disks[fields[2]] = os.path.exists(f"{self.sys_root}/block/{name}")
            if disk:
                read_sectors += int(fields[read_at])
                write_sectors += int(fields[write_at])

        return HostCounters(
            cpu_usage_seconds_total=busy * self._tick_s,
            memory_used_bytes=(total_kib - available_kib) * 1024,
            memory_total_bytes=total_kib * 1024,
            net_rx_bytes_total=rx,
            net_tx_bytes_total=tx,
            disk_read_bytes_total=read_sectors * _SECTOR_BYTES,
            disk_write_bytes_total=write_sectors * _SECTOR_BYTES,
            logical_cpus=int(os.sysconf("SC_NPROCESSORS_ONLN") or 1),
        )
