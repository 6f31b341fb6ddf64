"""Structural count limits of the host: limits on *how many* things exist, not on how much.

A host can run out of container slots long before CPU or memory: every container takes an
address in its network's subnet, a handful of PIDs, and open files. These are counts with a
hard ceiling, read here once per run and planned like a resource by
:mod:`capacity.solver._structural`:

- ``pids_count``: capacity ``min(kernel.pid_max, kernel.threads-max)`` (a PID and a thread
  take the same slot), in use from ``/proc/loadavg``; per replica the service's
  ``pids.current`` (mean over its containers).
- ``open_files_count``: capacity ``fs.file-max``, in use from ``/proc/sys/fs/file-nr``; per
  replica the descriptors of the container's processes.
- ``addresses_count[NET]``: the usable addresses of network NET's IPv4 subnet (less network,
  broadcast and gateway), in use its attached containers; per replica 1 on each network the
  service uses.
- ``disk_usage_bytes[MOUNT]``: the space of a filesystem that holds volumes apart from
  Docker's data root (whose space is the ``disk_usage_bytes`` resource); per replica the
  volumes only that replica mounts there (:func:`volume_space_limits`).

Published host ports are planned elsewhere: a fixed host port allows one replica per host
(``"port conflict"`` in :mod:`capacity.solver._plan`).

Traps
-----
- ``used`` is the whole host's count now (every process, every container): what is left
  for new replicas is ``capacity - used``, and the running replicas of the planned service
  are inside ``used`` (the solver takes them out again, as for any resource).
- The default bridge is a /16 (65,533 containers); a user-defined network from the default
  pool is often a /20 or a /24 (253 containers once the gateway has its address): such a
  network binds long before memory does.
- The threads of a container count against the PID limit: a JVM with 200 threads takes 200.
"""

from __future__ import annotations

import ipaddress
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .._errors import InvalidParameter

__all__ = [
    "ADDRESSES",
    "DISK_SPACE",
    "OPEN_FILES",
    "PIDS",
    "StructuralLimit",
    "address_limits",
    "file_limit",
    "pid_limit",
    "read_structural_limits",
    "volume_space_limits",
]

PIDS = "pids_count"
#: prefix of the per-filesystem space resource: ``disk_usage_bytes[/mnt/data]``
DISK_SPACE = "disk_usage_bytes"
OPEN_FILES = "open_files_count"
#: the budget of the volume walk on every local plan: files and directories per volume, and
#: seconds for all volumes together (a volume of millions of files takes minutes)
VOLUME_WALK_MAX_ENTRIES = 200_000
VOLUME_WALK_MAX_SECONDS = 5.0
#: how a limit's ``source`` starts the list of volumes the walk did not measure
UNMEASURED_MARK = "per replica not measured:"
#: prefix of the per-network resource name: ``addresses_count[bridge]``
ADDRESSES = "addresses_count"


@dataclass(frozen=True)
class StructuralLimit:
    """A count limit of the host, planned like a resource.

    Attributes
    ----------
    resource : str
        Its name (``pids_count``, ``open_files_count``, ``addresses_count[<network>]``).
    capacity : float
        The ceiling, a count.
    used : float
        In use now on the whole host, a count.
    per_replica : float
        A replica's count where its service is not in ``per_service`` (0: a replica of an
        unknown service takes none, e.g. a network it is not attached to).
    per_service : Mapping[str, float]
        Measured per service (mean over its running containers).
    source : str
        Where the figures came from.
    measured_at : str
        UTC time, ISO 8601.
    """

    resource: str
    capacity: float
    used: float
    per_replica: float
    per_service: Mapping[str, float] = field(default_factory=dict)
    source: str = ""
    measured_at: str = ""

    def __post_init__(self) -> None:
        for name in ("capacity", "used", "per_replica"):
            v = getattr(self, name)
            if not (isinstance(v, int | float) and math.isfinite(v) and v >= 0):
                raise InvalidParameter(f"{name} of {self.resource}", "structural limit",
                                       "a finite count >= 0", v)

    def demand_of(self, service: str) -> float:
        """Count one replica of ``service`` takes."""
        return float(self.per_service.get(service, self.per_replica))

    def to_dict(self) -> dict[str, Any]:
        return {"resource": self.resource, "capacity": self.capacity, "used": self.used,
                "per_replica": self.per_replica, "per_service": dict(self.per_service),
                "source": self.source, "measured_at": self.measured_at}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> StructuralLimit:
        return cls(resource=str(d["resource"]), capacity=float(d["capacity"]),
                   used=float(d["used"]), per_replica=float(d["per_replica"]),
                   per_service={str(k): float(v) for k, v in
                                dict(d.get("per_service") or {}).items()},
                   source=str(d.get("source", "")), measured_at=str(d.get("measured_at", "")))


def _now() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat()


def _read_int(path: str | Path) -> int | None:
    try:
        return int(Path(path).read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _mean_by(values: Mapping[str, list[float]]) -> dict[str, float]:
    return {k: sum(v) / len(v) for k, v in values.items() if v}


def pid_limit(
    containers: Mapping[str, tuple[str, int]] | None = None,
    *,
    proc_root: str | Path = "/proc",
    cgroup_root: str | Path = "/sys/fs/cgroup",
) -> StructuralLimit | None:
    """The PID limit: ``min(pid_max, threads-max)``, tasks in use from ``/proc/loadavg``.

    Parameters
    ----------
    containers : Mapping[str, tuple[str, int]]
        Running containers: id -> (service, main pid). Their ``pids.current`` (cgroup v1
        ``pids/docker/<id>``, or v2 beside the container's cgroup) gives the per-replica count.
    """
    pid_max = _read_int(f"{proc_root}/sys/kernel/pid_max")
    threads_max = _read_int(f"{proc_root}/sys/kernel/threads-max")
    caps = [c for c in (pid_max, threads_max) if c]
    if not caps:
        return None
    try:  # "0.50 0.40 0.30 2/345 6789": 345 tasks exist now
        used = float(Path(f"{proc_root}/loadavg").read_text().split()[3].split("/")[1])
    except (OSError, IndexError, ValueError):
        used = 0.0
    per: dict[str, list[float]] = {}
    for cid, (service, pid) in (containers or {}).items():
        n = _container_pids(cid, pid, proc_root, cgroup_root)
        if n is not None:
            per.setdefault(service, []).append(float(n))
    means = _mean_by(per)
    everyone = [x for v in per.values() for x in v]
    default = max(sum(everyone) / len(everyone), 1.0) if everyone else 1.0
    return StructuralLimit(
        resource=PIDS, capacity=float(min(caps)), used=used, per_replica=default,
        per_service=means,
        source=f"kernel.pid_max={pid_max}, kernel.threads-max={threads_max}; in use: "
               "/proc/loadavg; per replica: pids.current",
        measured_at=_now(),
    )


def _container_pids(cid: str, pid: int, proc_root: str | Path,
                    cgroup_root: str | Path) -> int | None:
    for path in (f"{cgroup_root}/pids/docker/{cid}/pids.current",
                 f"{cgroup_root}/system.slice/docker-{cid}.scope/pids.current",
                 f"{cgroup_root}/docker/{cid}/pids.current"):
        n = _read_int(path)
        if n is not None:
            return n
    try:  # no pids controller readable: the main process's threads
        return len(os.listdir(f"{proc_root}/{pid}/task"))
    except OSError:
        return None


def file_limit(
    containers: Mapping[str, tuple[str, int]] | None = None,
    *,
    proc_root: str | Path = "/proc",
    cgroup_root: str | Path = "/sys/fs/cgroup",
) -> StructuralLimit | None:
    """The open-file limit: ``fs.file-max`` and the handles in use (``/proc/sys/fs/file-nr``:
    allocated minus free). Per replica: the descriptors of the container's processes."""
    try:
        allocated, free, maximum = (
            int(x) for x in Path(f"{proc_root}/sys/fs/file-nr").read_text().split()[:3])
    except (OSError, ValueError):
        return None
    per: dict[str, list[float]] = {}
    for cid, (service, pid) in (containers or {}).items():
        n = _container_fds(cid, pid, proc_root, cgroup_root)
        if n is not None:
            per.setdefault(service, []).append(float(n))
    everyone = [x for v in per.values() for x in v]
    default = max(sum(everyone) / len(everyone), 1.0) if everyone else 1.0
    return StructuralLimit(
        resource=OPEN_FILES, capacity=float(maximum), used=float(max(allocated - free, 0)),
        per_replica=default, per_service=_mean_by(per),
        source="fs.file-max and handles in use from /proc/sys/fs/file-nr; per replica: "
               "/proc/<pid>/fd of the container's processes",
        measured_at=_now(),
    )


def _container_fds(cid: str, pid: int, proc_root: str | Path,
                   cgroup_root: str | Path) -> int | None:
    pids: list[str] = []
    for path in (f"{cgroup_root}/pids/docker/{cid}/cgroup.procs",
                 f"{cgroup_root}/memory/docker/{cid}/cgroup.procs",
                 f"{cgroup_root}/system.slice/docker-{cid}.scope/cgroup.procs",
                 f"{cgroup_root}/docker/{cid}/cgroup.procs"):
        try:
            pids = Path(path).read_text().split()
            break
        except OSError:
            continue
    if not pids:
        pids = [str(pid)]
    total = 0
    seen = False
    for p in pids:
        try:
            total += len(os.listdir(f"{proc_root}/{p}/fd"))
            seen = True
        except OSError:
            continue
    return total if seen else None


def usable_addresses(subnet: str, gateway: str | None = None) -> int:
    """Addresses a container can get in ``subnet``: all but the network and broadcast
    addresses (IPv4 prefixes up to /30) and the gateway when it lies inside.

    >>> usable_addresses("172.17.0.0/16", "172.17.0.1")
    65533
    >>> usable_addresses("172.20.0.0/24", "172.20.0.1")
    253
    """
    net = ipaddress.ip_network(subnet, strict=False)
    n = net.num_addresses
    if net.version == 4 and net.prefixlen <= 30:
        n -= 2
    if gateway:
        try:
            if ipaddress.ip_address(gateway.split("/")[0]) in net:
                n -= 1
        except ValueError:
            pass
    return max(n, 0)


def _first_host(subnet: str) -> str | None:
    try:
        net = ipaddress.ip_network(subnet, strict=False)
    except ValueError:
        return None
    return str(next(iter(net.hosts()), net.network_address))


def address_limits(
    networks: list[Mapping[str, Any]],
    containers: Mapping[str, str] | None = None,
) -> list[StructuralLimit]:
    """One limit per Docker network with an IPv4 subnet, from ``docker network inspect``.

    Parameters
    ----------
    networks : list of mapping
        Each network's inspect attributes (``Name``, ``IPAM.Config[].Subnet``/``Gateway``,
        ``Containers``).
    containers : Mapping[str, str]
        Running container id -> service; a service attached to a network takes one address
        per replica there. A service seen on no network falls back to the default
        ``bridge`` (where ``docker run`` puts a container).
    """
    containers = containers or {}
    out: list[StructuralLimit] = []
    for attrs in networks:
        name = str(attrs.get("Name") or "")
        if attrs.get("Driver") in ("host", "null") or name in ("host", "none"):
            continue
        configs = (attrs.get("IPAM") or {}).get("Config") or []
        subnets = [c for c in configs if c.get("Subnet") and ":" not in str(c["Subnet"])]
        if not subnets:
            continue
        # a bridge network's gateway (the host's end) takes an address even when IPAM does
        # not name it: the first host address, as dockerd assigns it
        capacity = sum(usable_addresses(
            c["Subnet"], c.get("Gateway") or (_first_host(c["Subnet"])
                                               if attrs.get("Driver", "bridge") == "bridge"
                                               else None)) for c in subnets)
        attached = dict(attrs.get("Containers") or {})
        per_service = {containers[cid]: 1.0 for cid in attached if cid in containers}
        out.append(StructuralLimit(
            resource=f"{ADDRESSES}[{name}]", capacity=float(capacity), used=float(len(attached)),
            per_replica=1.0 if name == "bridge" else 0.0, per_service=per_service,
            source=f"network {name}: {', '.join(str(c['Subnet']) for c in subnets)}",
            measured_at=_now(),
        ))
    return out


def _device_of(path: str) -> int | None:
    probe = Path(path)
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    try:
        return os.stat(probe).st_dev
    except OSError:
        return None


def volume_space_limits(
    mounts: Mapping[str, tuple[str, list[Mapping[str, Any]]]],
    data_root: str | Path,
    *,
    statvfs: Any = os.statvfs,
    tree_size: Any = None,
    proc_root: str | Path = "/proc",
    max_entries: int = VOLUME_WALK_MAX_ENTRIES,
    max_seconds: float = VOLUME_WALK_MAX_SECONDS,
) -> list[StructuralLimit]:
    """The space of each filesystem that holds volumes but not Docker's data root, planned
    like a count: ``disk_usage_bytes[<mount point>]``.

    Parameters
    ----------
    mounts : Mapping[str, tuple[str, list]]
        Running container id -> (service, its ``Mounts`` from ``docker inspect``).
    data_root : str or Path
        Docker's data root: its filesystem (the writable layers, and volumes kept there) is
        the ``disk_usage_bytes`` resource itself, not repeated here.
    statvfs, tree_size : callable
        ``os.statvfs`` and :func:`capacity.sources._disk_usage.tree_size_bytes` (injected in
        tests; ``tree_size`` is called with the volume's path, ``max_entries`` and
        ``deadline``, and may raise :class:`~capacity.sources._disk_usage.WalkBudgetExceeded`).
    max_entries, max_seconds : int, float
        The walk's budget: files and directories per volume, and seconds for all volumes
        together (this runs on every ``--machine local`` plan). A volume past it is not
        measured: it adds nothing per replica, with the reason in the limit's ``source``
        (and the report); its bytes still count in the filesystem's used space (the safe
        side).

    Returns
    -------
    list of StructuralLimit
        Per filesystem: capacity its size, used what is in use on it now (bytes), per replica
        of a service the mean size of the volumes only that container mounts there (an
        anonymous volume, or a named one with one user). A volume several containers share
        (a named volume of a Compose service) does not grow with replicas: it counts as used,
        not per replica. Bind mounts are not walked (a host directory may be any size and is
        shared): their filesystem's space is used, not per replica.

    Notes
    -----
    Trap: the sampled ``disk_usage_bytes`` of a container sums its writable layer and its
    volumes, so the bytes of a volume on another filesystem count against the data root's
    space too: the safe side. Trap: the per-replica figure is the volumes' size today, a
    snapshot: a volume that grows (a database) takes more per replica later than planned.
    """
    import time

    from ._disk_usage import WalkBudgetExceeded, tree_size_bytes
    from ._probe import _mount_of, _read_mounts

    size_of = tree_size or tree_size_bytes
    deadline = time.monotonic() + max_seconds
    unmeasured: dict[str, list[str]] = {}
    root_dev = _device_of(str(data_root))
    users: dict[str, int] = {}
    for _service, ms in mounts.values():
        for m in ms:
            if m.get("Type") == "volume" and m.get("Name"):
                users[str(m["Name"])] = users.get(str(m["Name"]), 0) + 1
    table = _read_mounts(proc_root)
    per_fs: dict[str, dict[str, list[float]]] = {}
    devices: dict[str, str] = {}
    for _cid, (service, ms) in mounts.items():
        own: dict[str, float] = {}
        for m in ms:
            source = str(m.get("Source") or "")
            if m.get("Type") != "volume" or not source:
                continue
            dev = _device_of(source)
            if dev is None or dev == root_dev:
                continue
            mount, device = _mount_of(Path(source), table)
            devices[mount] = device
            own.setdefault(mount, 0.0)
            if users.get(str(m.get("Name") or ""), 1) == 1:
                try:
                    own[mount] += float(size_of(Path(source), max_entries=max_entries,
                                                deadline=deadline))
                except WalkBudgetExceeded as exc:
                    unmeasured.setdefault(mount, []).append(
                        f"volume {m.get('Name')} of {service} ({exc.reason})")
                except OSError:
                    continue
        for mount, size in own.items():
            per_fs.setdefault(mount, {}).setdefault(service, []).append(size)
    out: list[StructuralLimit] = []
    for mount, by_service in sorted(per_fs.items()):
        try:
            st = statvfs(mount)
        except OSError:
            continue
        total = float(st.f_blocks * st.f_frsize)
        free = float(st.f_bavail * st.f_frsize)
        out.append(StructuralLimit(
            resource=f"{DISK_SPACE}[{mount}]", capacity=total, used=max(total - free, 0.0),
            per_replica=0.0, per_service=_mean_by(by_service),
            source=f"filesystem {mount} ({devices.get(mount, '?')}): volumes of running "
                   "containers; per replica the volumes only that container mounts (their "
                   "size today, not their growth)" + (
                       f"; {UNMEASURED_MARK} {', '.join(unmeasured[mount])}: its bytes count "
                       "as used, not per replica" if mount in unmeasured else ""),
            measured_at=_now(),
        ))
    return out


def read_structural_limits(
    client: Any = None,
    *,
    proc_root: str | Path = "/proc",
    cgroup_root: str | Path = "/sys/fs/cgroup",
    data_root: str | Path | None = None,
) -> list[StructuralLimit]:
    """Every structural limit of this host: PIDs, open files, and (with an engine ``client``)
    the addresses left in each network and, with ``data_root`` too, the space of each
    filesystem holding volumes apart from the data root (:func:`volume_space_limits`).
    Unreadable ones are left out."""
    from docker.errors import DockerException

    from ._docker import service_of

    running: dict[str, tuple[str, int]] = {}
    mounts: dict[str, tuple[str, list[Mapping[str, Any]]]] = {}
    networks: list[Mapping[str, Any]] = []
    if client is not None:
        from docker.errors import NotFound

        try:
            for summary in client.api.containers(filters={"status": "running"}):
                try:
                    attrs = client.api.inspect_container(summary["Id"])
                except NotFound:  # removed since it was listed (other work churns them)
                    continue
                config = attrs.get("Config") or {}
                service = service_of(dict(config.get("Labels") or {}),
                                     str(config.get("Image") or ""),
                                     str(attrs.get("Name") or "").lstrip("/"))
                running[str(attrs["Id"])] = (service, int((attrs.get("State") or {})
                                                           .get("Pid") or 0))
                mounts[str(attrs["Id"])] = (service, list(attrs.get("Mounts") or []))
            for n in client.api.networks():
                try:
                    networks.append(client.api.inspect_network(n["Id"]))
                except NotFound:  # removed since it was listed
                    continue
        except (DockerException, OSError):  # the engine went away: plan without these
            networks = []
    limits: list[StructuralLimit] = []
    for lim in (pid_limit(running, proc_root=proc_root, cgroup_root=cgroup_root),
                file_limit(running, proc_root=proc_root, cgroup_root=cgroup_root)):
        if lim is not None:
            limits.append(lim)
    limits += address_limits(networks, {cid: s for cid, (s, _) in running.items()})
    if data_root is not None and mounts:
        limits += volume_space_limits(mounts, data_root, proc_root=proc_root)
    return limits
