"""Capacities found without asking: disk bandwidth (a short probe), NIC speed (sysfs), and
the filesystems behind Docker's data root and its volumes.

Disk probe
----------
:func:`probe_disk` is a tiny fio: on the filesystem that holds ``path`` (Docker's data root)
it writes a temporary file with ``O_DIRECT`` in 1 MiB blocks of random bytes, 64 MiB of
distinct data cycled (sequential write, then ``fdatasync``), reads it back (sequential
read), then does 4 KiB reads and writes at random aligned offsets for a fixed time (random
read, random write), and removes the file. It never
writes anywhere else, and it refuses a filesystem whose free space is below the file's size
plus a margin (:data:`PROBE_FREE_MARGIN_BYTES` or 5 % of the filesystem, the larger).

Traps
-----
- ``O_DIRECT`` bypasses the page cache, so the figures are the device's (or the virtual
  disk's, through the hypervisor), not memory's. A filesystem without ``O_DIRECT``
  (tmpfs before Linux 6.6) is refused with that reason.
- The plan's disk bandwidth is the *sequential* figure: the best case. A service doing
  small random I/O reaches far fewer bytes per second (the random figures, in the machine
  file, say how many fewer).
- A virtual disk's bandwidth is often throttled by the provider over time (burst credits):
  a probe of seconds measures the burst, not the sustained rate.

NIC speed
---------
:func:`nic_speeds` reads ``/sys/class/net/<nic>/speed`` (Mbit/s) of every interface that is
up and not created by Docker or the kernel (``lo``, ``docker0``, ``br-*``, ``veth*``,
``ifb*``...). A bond is resolved to its members (``bonding/slaves``: their sum, or the active
member's speed for ``active-backup``); a bridge to its ports (``brif``); a VLAN to its lower
device. Where no member reports a speed (virtio and most cloud NICs report -1), the speed is
unknown: said once, with the flag that sets it (``net=10Gbit``).
"""

from __future__ import annotations

import contextlib
import mmap
import os
import random
import re
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .._errors import CapacityError, InvalidParameter

__all__ = [
    "PROBE_FREE_MARGIN_BYTES",
    "DiskProbe",
    "Filesystem",
    "NicSpeed",
    "filesystems",
    "nic_speeds",
    "probe_disk",
]

#: free space the probe leaves at the least, beyond its own file
PROBE_FREE_MARGIN_BYTES = 1 << 30
_MIB = 1 << 20
_RANDOM_BLOCK = 4096
#: distinct random data the sequential pass cycles through, bytes
_RING_BYTES = 64 * _MIB
_DOCKER_NICS = ("lo", "docker", "veth", "br-", "ifb", "virbr", "tun", "tap", "cni", "flannel",
                "cali", "vxlan", "weave", "kube", "dummy")


def _now() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat()


@dataclass(frozen=True)
class DiskProbe:
    """What :func:`probe_disk` measured, bytes per second (see the module docstring)."""

    path: str
    sequential_write_bytes_per_second: float
    sequential_read_bytes_per_second: float
    random_write_bytes_per_second: float
    random_read_bytes_per_second: float
    size_bytes: int
    block_bytes: int
    random_block_bytes: int
    duration_s: float
    measured_at: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _aligned_buffer(size: int) -> mmap.mmap:
    """A page-aligned buffer (O_DIRECT needs the memory aligned too), filled with bytes
    that do not compress (a deduplicating or compressing disk would flatter zeros)."""
    buf = mmap.mmap(-1, size)
    buf.write(os.urandom(size))
    return buf


def probe_disk(
    path: str | Path,
    *,
    size_bytes: int = 256 * _MIB,
    random_seconds: float = 1.0,
    clock: Callable[[], float] = time.perf_counter,
    rng: random.Random | None = None,
    statvfs: Callable[[Any], Any] = os.statvfs,
) -> DiskProbe:
    """Measure the disk bandwidth of the filesystem holding ``path``; seconds, O_DIRECT.

    Parameters
    ----------
    path : str or Path
        A directory on the filesystem to measure (Docker's data root). The temporary file
        is created in it and removed before returning, pass or fail.
    size_bytes : int
        Size of the sequential file, bytes (a multiple of 1 MiB, >= 16 MiB).
    random_seconds : float
        Time spent on random reads, and again on random writes, seconds.
    clock : callable
        Monotonic seconds (injected for tests).
    rng : random.Random, optional
        Random offsets (seeded for a repeatable run).
    statvfs : callable
        ``os.statvfs`` (injected for tests of the free-space refusal).

    Raises
    ------
    CapacityError
        Too little free space, no ``O_DIRECT`` on that filesystem, or an I/O error.
    """
    if not isinstance(size_bytes, int) or size_bytes < 16 * _MIB or size_bytes % _MIB:
        raise InvalidParameter("size_bytes", "probe_disk", "a multiple of 1 MiB >= 16 MiB",
                               size_bytes)
    directory = Path(path)
    if not directory.is_dir():
        raise CapacityError(f"disk probe: {directory} is not a directory: give Docker's data "
                            "root (docker info: Docker Root Dir)")
    st = statvfs(directory)
    free = st.f_bavail * st.f_frsize
    total = st.f_blocks * st.f_frsize
    need = size_bytes + max(PROBE_FREE_MARGIN_BYTES, int(0.05 * total))
    if free < need:
        raise CapacityError(
            f"disk probe refused: {directory} has {free / _MIB:,.0f} MiB free, the probe needs "
            f"{need / _MIB:,.0f} MiB ({size_bytes / _MIB:,.0f} MiB file + margin); free space "
            "or give disk_bw= by hand")
    rng = rng or random.Random()
    block = _MIB
    # a ring of distinct random blocks: one block written over and over was measured 1.3 to
    # 1.7 times faster than distinct data here (a virtual disk that deduplicates or caches)
    ring = min(size_bytes, _RING_BYTES) // block
    buf = _aligned_buffer(ring * block)
    view = memoryview(buf)
    blocks = [view[i * block:(i + 1) * block] for i in range(ring)]
    small = _aligned_buffer(_RANDOM_BLOCK)
    fd_path = None
    started = clock()
    try:
        fd, fd_path = tempfile.mkstemp(prefix=".capacity-probe-", dir=directory)
        os.close(fd)
        try:
            fd = os.open(fd_path, os.O_RDWR | os.O_DIRECT)
        except OSError as exc:
            raise CapacityError(
                f"disk probe: {directory} does not support O_DIRECT ({exc.strerror}); give "
                "disk_bw= by hand") from None
        try:
            t0 = clock()
            for i, off in enumerate(range(0, size_bytes, block)):
                os.pwrite(fd, blocks[i % ring], off)
            os.fdatasync(fd)
            seq_write = size_bytes / max(clock() - t0, 1e-9)
            t0 = clock()
            for i, off in enumerate(range(0, size_bytes, block)):
                os.preadv(fd, [blocks[i % ring]], off)
            seq_read = size_bytes / max(clock() - t0, 1e-9)
            slots = size_bytes // _RANDOM_BLOCK
            rand_read = _random_rate(lambda off: os.preadv(fd, [small], off), slots, rng,
                                     random_seconds, clock)
            rand_write = _random_rate(lambda off: os.pwrite(fd, small, off), slots, rng,
                                      random_seconds, clock, finish=lambda: os.fdatasync(fd))
        finally:
            os.close(fd)
    except OSError as exc:
        raise CapacityError(f"disk probe on {directory} failed: {exc}") from None
    finally:
        if fd_path is not None:
            Path(fd_path).unlink(missing_ok=True)
        del blocks
        view.release()
        buf.close()
        small.close()
    return DiskProbe(
        path=str(directory), sequential_write_bytes_per_second=seq_write,
        sequential_read_bytes_per_second=seq_read, random_write_bytes_per_second=rand_write,
        random_read_bytes_per_second=rand_read, size_bytes=size_bytes, block_bytes=block,
        random_block_bytes=_RANDOM_BLOCK, duration_s=clock() - started, measured_at=_now(),
    )


def _random_rate(op: Callable[[int], Any], slots: int, rng: random.Random, seconds: float,
                 clock: Callable[[], float], finish: Callable[[], Any] | None = None) -> float:
    ops = 0
    t0 = clock()
    deadline = t0 + seconds
    while ops < 1_000_000:  # bounded also when the clock does not move (a fake)
        op(rng.randrange(slots) * _RANDOM_BLOCK)
        ops += 1
        if ops % 16 == 0 and clock() >= deadline:
            break
    if finish is not None:
        finish()
    return ops * _RANDOM_BLOCK / max(clock() - t0, 1e-9)


# -- NIC speed -------------------------------------------------------------------------------


@dataclass(frozen=True)
class NicSpeed:
    """One host interface and its link speed.

    ``bits_per_second`` is None when no speed is reported (virtio: -1); ``members`` the
    physical interfaces behind a bond, bridge or VLAN.
    """

    name: str
    bits_per_second: float | None
    members: tuple[str, ...] = ()
    kind: str = "physical"
    note: str = ""


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _speed_bps(net: Path, name: str) -> float | None:
    text = _read(net / name / "speed")
    try:
        mbit = int(text) if text is not None else -1
    except ValueError:
        mbit = -1
    return mbit * 1e6 if mbit > 0 else None


def nic_speeds(sys_root: str | Path = "/sys") -> list[NicSpeed]:
    """Every host interface that is up, with its speed (see the module docstring)."""
    net = Path(sys_root) / "class" / "net"
    try:
        names = sorted(os.listdir(net))
    except OSError:
        return []
    enslaved = set()
    for name in names:
        for sub in ("bonding/slaves",):
            members = _read(net / name / sub)
            if members:
                enslaved.update(members.split())
        brif = net / name / "brif"
        if brif.is_dir():
            enslaved.update(os.listdir(brif))
    out: list[NicSpeed] = []
    for name in names:
        if name.startswith(_DOCKER_NICS) or name in enslaved:
            continue
        if _read(net / name / "operstate") not in ("up", "unknown"):
            continue
        bond = _read(net / name / "bonding" / "slaves")
        brif = net / name / "brif"
        lower = sorted(p.name[len("lower_"):] for p in (net / name).glob("lower_*"))
        if bond is not None:
            bond_members = tuple(bond.split())
            speeds = [s for m in bond_members if (s := _speed_bps(net, m)) is not None]
            mode = (_read(net / name / "bonding" / "mode") or "").split()[0:1]
            if not speeds:
                speed = None
            elif mode == ["active-backup"]:
                speed = max(speeds)
            else:
                speed = sum(speeds)
            out.append(NicSpeed(name, speed, bond_members, "bond",
                                f"bond mode {' '.join(mode) or '?'}"))
        elif brif.is_dir():
            ports = tuple(sorted(m for m in os.listdir(brif)
                                 if not m.startswith(_DOCKER_NICS)))
            if not ports:
                continue  # a bridge of containers only: not a host uplink
            speeds = [s for m in ports if (s := _speed_bps(net, m)) is not None]
            out.append(NicSpeed(name, max(speeds) if speeds else None, ports, "bridge"))
        elif lower:
            speeds = [s for m in lower if (s := _speed_bps(net, m)) is not None]
            out.append(NicSpeed(name, max(speeds) if speeds else None, tuple(lower), "vlan"))
        else:
            link = ""
            with contextlib.suppress(OSError):
                link = os.readlink(net / name)
            if "/virtual/" in link:
                continue
            driver = ""
            with contextlib.suppress(OSError):
                driver = Path(os.readlink(net / name / "device" / "driver")).name
            out.append(NicSpeed(name, _speed_bps(net, name), (), "physical", driver))
    return out


# -- filesystems ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Filesystem:
    """The filesystem behind a path: its mount point, size and free space (bytes)."""

    path: str
    mount: str
    device: str
    total_bytes: int
    free_bytes: int
    role: str = "data root"
    volumes: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["volumes"] = list(self.volumes)
        return d


def _mount_of(path: Path, mounts: list[tuple[str, str]]) -> tuple[str, str]:
    best = ("/", "?")
    resolved = str(path.resolve())
    for device, mount in mounts:
        if (resolved == mount or resolved.startswith(mount.rstrip("/") + "/")) and \
                len(mount) >= len(best[0]):
            best = (mount, device)
    return best


def _unescape(text: str) -> str:
    """A ``/proc/self/mounts`` field as the path it names: the kernel writes space, tab,
    newline and backslash as 3-digit octal escapes (``\\040``, ``\\011``, ``\\012``,
    ``\\134``); every such escape is decoded."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), text)


def _read_mounts(proc_root: str | Path = "/proc") -> list[tuple[str, str]]:
    """(device, mount point) of every mount, from ``/proc/self/mounts``."""
    mounts: list[tuple[str, str]] = []
    try:
        for line in Path(f"{proc_root}/self/mounts").read_text().splitlines():
            parts = line.split()
            if len(parts) >= 2:
                mounts.append((_unescape(parts[0]), _unescape(parts[1])))
    except OSError:
        pass
    return mounts


def filesystems(
    data_root: str | Path, volume_paths: dict[str, str] | None = None,
    *, proc_root: str | Path = "/proc",
) -> list[Filesystem]:
    """The distinct filesystems holding ``data_root`` and each volume's mount point.

    ``volume_paths``: volume name -> its ``Mountpoint`` (``docker volume inspect``). Volumes
    on the data root's filesystem are listed under it.
    """
    mounts = _read_mounts(proc_root)
    by_mount: dict[str, dict[str, Any]] = {}
    entries = [("data root", Path(data_root), "")]
    entries += [("volume", Path(p), v) for v, p in sorted((volume_paths or {}).items())]
    for role, path, volume in entries:
        probe = path
        while not probe.exists() and probe.parent != probe:
            probe = probe.parent
        try:
            st = os.statvfs(probe)
        except OSError:
            continue
        mount, device = _mount_of(probe, mounts)
        entry = by_mount.setdefault(mount, {
            "path": str(path), "mount": mount, "device": device,
            "total_bytes": st.f_blocks * st.f_frsize, "free_bytes": st.f_bavail * st.f_frsize,
            "role": role, "volumes": [],
        })
        if volume:
            entry["volumes"].append(volume)
    return [Filesystem(**{**e, "volumes": tuple(e["volumes"])}) for e in by_mount.values()]
