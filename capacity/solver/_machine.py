"""The machine a plan is for: its capacity per resource, and what is reserved on it.

A :class:`Machine` holds capacity per resource column of :mod:`capacity._columns`, each in that
column's unit: logical CPUs (cores), bytes of memory, bytes per second of network (per
direction: links are full duplex, so ``net=10Gbit`` gives 1.25e9 B/s to rx *and* to tx), bytes
per second of disk bandwidth (shared by reads and writes: ``disk_bw`` is given to both the
read and the write column, a trap worth knowing when both are busy), and bytes of disk space.

Where a capacity is not known (a virtual NIC reporting speed 0, no disk probe), the resource is
absent from ``capacity`` and listed in ``missing``: the plan names it, it never guesses.

Reserves are what is kept back per resource before any container: configured values (the OS and
Docker Engine baseline, or the measured host usage minus the containers' sum) in ``reserve``,
plus a ``headroom`` fraction of the capacity, plus, for CPU only, the share above
``cpu_saturation`` (default 0.9). :meth:`Machine.reserved` gives the sum.

Why CPU is never planned to 100 %: a CFS quota or a host whose CPUs are filled to exactly their
capacity throttles (or queues) even when the average demand "fits". The accuracy benchmark
measured it: 4 replicas of 0.25 core in a 1-core sandbox were throttled in 48 % of periods,
and every method overpredicted every CPU-bound workload by one replica until 10 % of the CPUs
were kept back (then all four CPU cases matched the measured count, and no memory case
changed). ``cpu_saturation=1`` in a spec turns it off.

Spec strings: ``cpus=8,memory=32GiB,net=10Gbit,disk_bw=500MB/s,disk=400GB``, and optional
reserves as ``reserve.cpus=0.5,reserve.memory=1GiB,headroom=0.1``. A TOML file holds the same
keys in a table (see :meth:`Machine.from_toml`).
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._columns import (
    CPU,
    DISK_READ,
    DISK_USAGE,
    DISK_WRITE,
    MEMORY,
    NET_RX,
    NET_TX,
)
from .._errors import InsufficientData, InvalidParameter
from .._units import parse_bytes
from ..sources._limits import StructuralLimit

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "DEFAULT_CPU_SATURATION",
    "HOST_BASELINE_COLUMNS",
    "Machine",
    "local_spec_keys",
    "machine_lines",
    "measured_reserve",
    "parse_rate",
]

_SPEC_HELP = (
    "a spec like cpus=8,memory=32GiB,net=10Gbit,disk_bw=500MB/s,disk=400GB "
    "(optionally reserve.cpus=0.5,reserve.memory=1GiB,headroom=0.1,cpu_saturation=0.9,"
    "host_cost=4MiB)"
)

#: share of the CPU capacity that demand may fill by default (see the module docstring)
DEFAULT_CPU_SATURATION = 0.9
#: the measured engine/OS baseline is reserved up to this share of a capacity (beyond, the
#: plan would have nothing left to plan with and says "0 fit" on the resource instead)
_MAX_BASELINE = 0.95

#: spec key -> resource columns it sets
_SPEC_KEYS: dict[str, tuple[str, ...]] = {
    "cpus": (CPU,),
    "cpu": (CPU,),
    "memory": (MEMORY,),
    "mem": (MEMORY,),
    "net": (NET_RX, NET_TX),
    "net_rx": (NET_RX,),
    "net_tx": (NET_TX,),
    "disk_bw": (DISK_READ, DISK_WRITE),
    "disk_read": (DISK_READ,),
    "disk_write": (DISK_WRITE,),
    "disk": (DISK_USAGE,),
}

_BITS = {"bit": 1, "kbit": 1e3, "mbit": 1e6, "gbit": 1e9, "tbit": 1e12,
         "kibit": 1024, "mibit": 1024**2, "gibit": 1024**3}
_RATE = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*([A-Za-z]*)\s*(/\s*s)?\s*$")

# Interface name prefixes that are not physical links (their speed is not the host's).
_VIRTUAL_NICS = ("lo", "docker", "veth", "br-", "ifb", "virbr", "tun", "tap", "cni", "flannel",
                 "cali", "vxlan", "weave", "kube", "dummy", "bond")


def parse_rate(text: str | float | int, *, name: str = "rate") -> float:
    """Bytes per second from ``"10Gbit"``, ``"1Gbit/s"``, ``"500MB/s"``, ``"100MiB/s"``.

    Bit units (``bit``, ``kbit``, ``Mbit``, ``Gbit``; ``Gbps`` is ``Gbit``) are divided by
    8; byte units follow :func:`capacity._units.parse_bytes` (``MBps`` is ``MB``). A bare
    number is bytes per second.

    A unit that does not say bits or bytes is refused: ``10G`` (a "10G" NIC is 10 Gbit/s,
    but as bytes it would be 80 Gbit/s) and a lower-case ``b`` (``10Gb``, ``100mb``: bits
    by convention, bytes to :func:`~capacity._units.parse_bytes`), so a link is never
    planned at 8 times its speed.
    """
    if isinstance(text, bool):  # True is 1 to Python: 'net = true' in a TOML file
        raise InvalidParameter(name, "machine spec", "a rate such as 10Gbit or 500MB/s", text)
    if isinstance(text, int | float):
        value = float(text)
    else:
        match = _RATE.match(str(text))
        if match is None:
            raise InvalidParameter(name, "machine spec", "a rate such as 10Gbit or 500MB/s", text)
        given = match.group(2)
        # the network's "per second" spellings: 10Gbps (bits), 500MBps (bytes)
        if given.endswith("bps") and len(given) <= 5:
            given = given[:-3] + "bit"
        elif given.endswith("Bps") and len(given) <= 5:
            given = given[:-3] + "B"
        number, unit = match.group(1), given.lower()
        if given and unit not in _BITS and (not given.lower().endswith("b")
                                            or given.endswith("b")):
            lead = re.match(r"[kKmMgGtT]i?", given)  # the SI or binary prefix, if any
            prefix = lead.group(0) if lead else ""
            prefix = prefix if prefix[:1] == "k" else prefix[:1].upper() + prefix[1:]
            raise InvalidParameter(
                name, "machine spec",
                f"a rate that says bits or bytes ({number}{given}: bits or bytes?), such as "
                f"{number}{prefix}bit or {number}{prefix}B/s", text)
        if unit in _BITS:
            value = float(number) * _BITS[unit] / 8.0
        else:
            try:
                value = parse_bytes(f"{number}{given}", name=name)  # case kept: B bytes
            except InvalidParameter:
                raise InvalidParameter(
                    name, "machine spec", "a rate such as 10Gbit, 1Gbit/s or 500MB/s", text
                ) from None
    if not math.isfinite(value) or value < 0:
        raise InvalidParameter(name, "machine spec", "a finite rate >= 0", text)
    return value


def _parse_cpus(value: Any, name: str) -> float:
    if isinstance(value, bool):  # True is 1 to Python: 'cpus = true' in a TOML file
        raise InvalidParameter(name, "machine spec", "a number of cores such as 8", value)
    try:
        cores = float(value)
    except (TypeError, ValueError):
        raise InvalidParameter(name, "machine spec", "a number of cores such as 8", value) from None
    if not math.isfinite(cores) or cores < 0:
        raise InvalidParameter(name, "machine spec", "a finite number of cores >= 0", value)
    return cores


def _parse_value(key: str, value: Any) -> float:
    if key in ("cpus", "cpu"):
        return _parse_cpus(value, key)
    if key in ("memory", "mem", "disk"):
        return parse_bytes(value, name=key)
    return parse_rate(value, name=key)


def _check_saturation(value: Any) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        v = math.nan
    if isinstance(value, bool) or not (0 < v <= 1):
        raise InvalidParameter("cpu_saturation", "machine spec", "a fraction in (0, 1]", value)
    return v


def _check_headroom(value: Any) -> float:
    try:
        h = float(value)
    except (TypeError, ValueError):
        h = math.nan
    if isinstance(value, bool) or not 0 <= h < 1:
        raise InvalidParameter("headroom", "machine spec", "a fraction in [0, 1)", value)
    return h


def _local_net(ps: Any, sys_root: str | Path | None) -> tuple[float | None, str]:
    """(bytes per second per direction or None, a note or why unknown) for this host."""
    if sys_root is not None:
        from ..sources._probe import nic_speeds

        nics = nic_speeds(sys_root)
        known = [n for n in nics if n.bits_per_second]
        if known:
            best = max(known, key=lambda n: n.bits_per_second or 0.0)
            bps = float(best.bits_per_second or 0.0)
            via = f" (members {', '.join(best.members)})" if best.members else ""
            return (bps / 8.0, f"network: NIC {best.name}{via} at {bps / 1e9:g} Gbit/s (sysfs)")
        if nics:
            names = ", ".join(f"{n.name}{f' ({n.note})' if n.note else ''}" for n in nics)
            return None, f"NIC {names} reports no speed (sysfs speed -1: a virtual NIC)"
    speeds: list[tuple[int, str]] = []
    unknown: list[str] = []
    for nic, stats in sorted(ps.net_if_stats().items()):
        if nic.startswith(_VIRTUAL_NICS) or not stats.isup:
            continue
        if stats.speed and stats.speed > 0:
            speeds.append((int(stats.speed), nic))
        else:
            unknown.append(nic)
    if speeds:
        mbit, nic = max(speeds)
        return mbit * 1e6 / 8.0, f"network: NIC {nic} at {mbit} Mbit/s (psutil)"
    return None, (f"NIC {', '.join(unknown)} reports speed 0" if unknown
                  else "no physical NIC is up")


def _local_host_cost(cached: Mapping[str, Any], proc_root: str | Path
                     ) -> tuple[dict[str, float], str]:
    """The host cost per container: calibrated (machine file), else passive (shims)."""
    from ..sources._hostcost import HostCost, passive_host_cost
    from ._machinefile import host_cost_note

    hc = cached.get("host_cost") or {}
    cost: HostCost | None = None
    if hc:
        cost = HostCost.from_dict({"cpu_cores": 0.0, "method": "given", "measured_at": "",
                                   "containers": 0, "shim_bytes": 0.0, **hc})
    else:
        cost = passive_host_cost(proc_root)
    if cost is None:
        return {}, ("host cost per container: not measured (no container runs to measure "
                    "its shim; run 'capacity machine calibrate' or give host_cost=4MiB)")
    out = {MEMORY: cost.memory_bytes}
    if cost.cpu_cores:
        out[CPU] = cost.cpu_cores
    return out, host_cost_note(cost)


def _local_engine() -> tuple[Any, str]:
    """(client, "") for the engine on this host when one answers, else (None, why). A remote
    ``DOCKER_HOST`` is another host: its networks and containers are not this one's."""
    import os

    from .._errors import DockerUnavailable
    from ..sources._docker import connect

    host = os.environ.get("DOCKER_HOST", "")
    if host and not host.startswith("unix://"):
        return None, f"DOCKER_HOST={host} is not this host's engine"
    try:
        return connect(timeout_s=5.0), ""
    except DockerUnavailable as exc:
        return None, str(exc)


def _data_root(client: Any) -> str:
    """The engine's ``DockerRootDir``, else ``/var/lib/docker``."""
    if client:
        from docker.errors import DockerException

        try:
            root = client.info().get("DockerRootDir")
        except (DockerException, OSError):  # the engine stopped answering: the default
            root = None
        if root:
            return str(root)
    return "/var/lib/docker"


#: environment variable that turns the first-use disk probe off (``off``); default on
DISK_PROBE_ENV = "CAPACITY_DISK_PROBE"


def _disk_prober(disk_probe: Callable[[str], Any] | bool | None) -> Callable[[str], Any] | None:
    """The first-use probe to run, or None (see :meth:`Machine.local`)."""
    import os

    if disk_probe is False:
        return None
    if callable(disk_probe):
        return disk_probe
    setting = os.environ.get(DISK_PROBE_ENV, "auto").strip().lower()
    if setting in ("off", "0", "no", "false", "never"):
        return None
    if setting not in ("auto", "on", "1", "yes", "true", ""):
        raise InvalidParameter(DISK_PROBE_ENV, "capacity", "auto or off", setting)
    from ..sources._probe import probe_disk

    return probe_disk


def _set_once(into: dict[str, float], column: str, value: float, key: str,
              values: Mapping[str, Any]) -> None:
    """``into[column] = value``, refusing a column two keys set (``cpus=8,cpu=4``,
    ``net=10Gbit,net_rx=1Gbit``): the last one silently won before."""
    if column in into:
        given = ",".join(f"{k}={v}" for k, v in values.items() if not isinstance(v, Mapping))
        raise InvalidParameter(key, "machine spec",
                               f"the only key that sets {column} (two keys set it in {given})",
                               values.get(key, value))
    into[column] = value


def _parse_spec_mapping(values: Mapping[str, Any]) -> dict[str, Any]:
    """Spec keys -> the :class:`Machine` fields they set (``headroom`` and
    ``cpu_saturation`` only when given)."""
    capacity: dict[str, float] = {}
    reserve: dict[str, float] = {}
    host_cost: dict[str, float] = {}
    out: dict[str, Any] = {}
    for raw_key, value in values.items():
        key = str(raw_key).strip().lower()
        if key in ("host_cost", "host_cost.memory", "host_cost.mem"):
            host_cost[MEMORY] = parse_bytes(value, name=key)
        elif key in ("host_cost.cpus", "host_cost.cpu"):
            host_cost[CPU] = _parse_cpus(value, key)
        elif key == "headroom":
            out["headroom"] = _check_headroom(value)
        elif key == "cpu_saturation":
            out["cpu_saturation"] = _check_saturation(value)
        elif key == "reserve" and isinstance(value, Mapping):
            for rk, rv in value.items():
                rk = str(rk).strip().lower()
                if rk not in _SPEC_KEYS:
                    raise InvalidParameter(f"reserve.{rk}", "machine spec", _SPEC_HELP, rv)
                for column in _SPEC_KEYS[rk]:
                    reserve[column] = _parse_value(rk, rv)
        elif key.startswith("reserve.") and key[8:] in _SPEC_KEYS:
            for column in _SPEC_KEYS[key[8:]]:
                _set_once(reserve, column, _parse_value(key[8:], value), key, values)
        elif key in _SPEC_KEYS:
            given = _parse_value(key, value)
            if given <= 0:  # a machine holding none of it: the plan blamed a reserve before
                raise InvalidParameter(
                    key, "machine spec", f"> 0 (a machine with {key}=0 holds none, so "
                    "nothing fits: give the amount the machine has)", value)
            for column in _SPEC_KEYS[key]:
                _set_once(capacity, column, given, key, values)
        else:
            raise InvalidParameter(key, "machine spec", _SPEC_HELP, value)
    return {"capacity": capacity, "reserve": reserve, "host_cost": host_cost, **out}


def _spec_pairs(text: str, spec: str) -> dict[str, str]:
    values: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            raise InvalidParameter("machine", "plan", _SPEC_HELP, spec)
        if key.strip() in values:  # cpus=8,...,cpus=4: which one was meant?
            raise InvalidParameter(key.strip(), "machine spec", "given once", spec)
        values[key.strip()] = value.strip()
    return values


def local_spec_keys(spec: str | None) -> dict[str, str] | None:
    """The keys given beside ``local`` in a machine spec, validated: ``{}`` for ``None`` or
    ``"local"``, ``{"net": "10Gbit"}`` for ``"local,net=10Gbit"``, None when the spec is not
    this host. A bad key or value raises :class:`~capacity.InvalidParameter` before anything
    is measured."""
    text = "local" if spec is None else spec.strip()
    if text == "local":
        return {}
    if not text.startswith("local,"):
        return None
    given = _spec_pairs(text.removeprefix("local,"), spec or "")
    _parse_spec_mapping(given)
    return given


def _filesystem_notes(data_root: str, limits: tuple[StructuralLimit, ...]) -> list[str]:
    """One line per filesystem the plan sees: the data root's (the ``disk_usage_bytes``
    resource), and each one holding volumes apart from it (its own resource)."""
    from .._units import format_value
    from ..sources._limits import UNMEASURED_MARK
    from ..sources._probe import filesystems

    lines = []
    for fs in filesystems(data_root)[:1]:
        lines.append(f"disk space: the data root {data_root} is on {fs.mount} ({fs.device}, "
                     f"{format_value(DISK_USAGE, fs.free_bytes, trim=True)} free of "
                     f"{format_value(DISK_USAGE, fs.total_bytes, trim=True)}): the writable "
                     "layers and the volumes kept there, planned as disk space")
    for lim in limits:
        if lim.resource.startswith(f"{DISK_USAGE}["):
            mount = lim.resource[len(DISK_USAGE) + 1:-1]
            line = (f"disk space: volumes on {mount} "
                    f"({format_value(DISK_USAGE, lim.capacity - lim.used, trim=True)} free of "
                    f"{format_value(DISK_USAGE, lim.capacity, trim=True)}), planned as its own "
                    f"resource {lim.resource}; per replica the volumes' size today, a "
                    "snapshot, not their growth")
            if UNMEASURED_MARK in lim.source:
                line += "; " + lim.source[lim.source.index(UNMEASURED_MARK):]
            lines.append(line)
    return lines


def _missing_file(path: Path) -> str:
    """The constraint of an explicitly given machine file that does not exist."""
    from ._machinefile import default_machine_file

    return (f"an existing machine file ({path} does not exist; write it with 'capacity "
            f"machine probe --file {path}' or 'capacity machine calibrate --file {path}', or "
            f"plan with --machine local, which uses the default machine file "
            f"{default_machine_file()} and creates it on first use)")


@dataclass(frozen=True)
class Machine:
    """Capacity per resource column, in that column's unit (cores, bytes, bytes per second).

    Parameters
    ----------
    name : str
        How the machine is named in output (the spec, a file name, or ``"local"``).
    capacity : Mapping[str, float]
        Per resource column. A resource missing here is unknown: the plan names it.
    reserve : Mapping[str, float]
        Configured reserve per resource (OS and engine baseline), same units.
    headroom : float
        Fraction of each capacity kept free on top of ``reserve``, in [0, 1).
    cpu_saturation : float
        Share of the CPU capacity that demand may fill, in (0, 1]; the rest is reserved
        (default 0.9: a quota or a host filled to 100 % throttles).
    missing : tuple[str, ...]
        Resources whose capacity could not be found, with why, e.g.
        ``"net_rx_bytes_per_second: NIC eth0 reports speed 0; give net=10Gbit"``.
    host_cost : Mapping[str, float]
        Per resource column, what one container costs the host outside its own cgroup
        (its containerd shim, kernel memory for its namespaces and cgroups): added by the
        solver to every replica's demand. Spec keys ``host_cost=4MiB`` (memory) and
        ``host_cost.cpus=0.001``; measured by ``capacity machine calibrate``.
    limits : tuple[StructuralLimit, ...]
        Count limits that are not resources (PIDs, open files, addresses in a network's
        subnet): each is planned like a resource (see :mod:`capacity.solver._structural`).
    notes : tuple[str, ...]
        Where each figure came from (measured when, by what), for the report.

    Examples
    --------
    >>> m = Machine.from_spec("cpus=8,memory=32GiB,headroom=0.1")
    >>> m.capacity["cpu_cores"], round(m.reserved("cpu_cores"), 6)
    (8.0, 1.6)
    >>> round(m.reserved("memory_working_set_bytes") / 2**30, 6)
    3.2
    """

    name: str
    capacity: Mapping[str, float]
    reserve: Mapping[str, float] = field(default_factory=dict)
    headroom: float = 0.0
    missing: tuple[str, ...] = ()
    cpu_saturation: float = DEFAULT_CPU_SATURATION
    host_cost: Mapping[str, float] = field(default_factory=dict)
    limits: tuple[StructuralLimit, ...] = ()
    notes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _check_headroom(self.headroom)
        _check_saturation(self.cpu_saturation)
        for r, c in self.capacity.items():
            if not (isinstance(c, int | float) and math.isfinite(c) and c >= 0):
                raise InvalidParameter(f"capacity of {r}", "Machine", "a finite number >= 0", c)
        for r, v in self.reserve.items():
            if not (isinstance(v, int | float) and math.isfinite(v) and v >= 0):
                raise InvalidParameter(f"reserve of {r}", "Machine", "a finite number >= 0", v)
        for r, v in self.host_cost.items():
            if not (isinstance(v, int | float) and math.isfinite(v) and v >= 0):
                raise InvalidParameter(f"host cost of {r}", "Machine", "a finite number >= 0", v)

    def usable(self, resource: str, owner: str = "plan") -> float:
        """Capacity minus :meth:`reserved` for a resource the machine gives, > 0.

        Raises :class:`~capacity.InvalidParameter` naming what is wrong: a capacity of 0 (not
        the reserve nobody gave), or the reserve and what it is made of (configured reserve,
        headroom, CPU above ``cpu_saturation``) when it takes the whole capacity.
        """
        capacity = float(self.capacity[resource])
        if capacity <= 0:
            raise InvalidParameter(
                f"capacity of {resource}", owner, f"> 0 (machine {self.name!r} holds none, "
                "so nothing fits: give the amount the machine has)", capacity)
        reserve = self.reserved(resource)
        if capacity - reserve <= 0:
            parts = [f"configured {float(self.reserve.get(resource, 0.0)):g}",
                     f"headroom {self.headroom:g} x capacity"]
            if resource == CPU:
                parts.append(f"(1 - cpu_saturation {self.cpu_saturation:g}) x capacity")
            raise InvalidParameter(
                f"reserve of {resource}", owner,
                f"below the capacity {capacity:g} (it is {' + '.join(parts)}: lower the "
                "reserve or the headroom)", reserve)
        return capacity - reserve

    def reserved(self, resource: str) -> float:
        """Configured reserve plus ``headroom`` times the capacity, for one resource; for CPU
        also the share above ``cpu_saturation``."""
        capacity = float(self.capacity.get(resource, 0.0))
        reserved = float(self.reserve.get(resource, 0.0)) + self.headroom * capacity
        if resource == CPU:
            reserved += (1.0 - self.cpu_saturation) * capacity
        return reserved

    def with_reserve(
        self, reserve: Mapping[str, float] | None = None, *, headroom: float | None = None
    ) -> Machine:
        """A copy with reserves (merged over the existing ones) and/or a new headroom."""
        return replace(
            self,
            capacity=dict(self.capacity),
            reserve={**self.reserve, **(reserve or {})},
            headroom=self.headroom if headroom is None else _check_headroom(headroom),
        )

    # -- constructors ---------------------------------------------------------------------

    @classmethod
    def local(
        cls,
        *,
        docker_root: str | Path | None = None,
        disk_in_use_bytes: float = 0.0,
        psutil_module: Any = None,
        client: Any = None,
        machine_file: str | Path | bool | None = None,
        sys_root: str | Path | None = "/sys",
        proc_root: str | Path = "/proc",
        cgroup_root: str = "/sys/fs/cgroup",
        measure: bool = True,
        disk_probe: Callable[[str], Any] | bool | None = None,
    ) -> Machine:
        """This host: the one place the local machine is measured (CLI and API alike).

        CPUs: logical CPUs. Memory: total RAM. Network: the host's NICs from sysfs (bonds,
        bridges and VLANs resolved to their members; Docker's and the kernel's virtual
        interfaces skipped), per direction; a NIC that reports no speed (virtio) is named
        in ``missing`` with the flag that sets it. Disk bandwidth: the probe cached in the
        machine file (``capacity machine probe``); when the file holds none, the short disk
        probe runs on first use (seconds of ``O_DIRECT`` I/O in a temporary file on the
        data root's filesystem, removed) and its result is written to the machine file with
        its time, so later and scheduled runs reuse it. A probe that fails (read-only
        filesystem, too little free space, no ``O_DIRECT``) leaves disk bandwidth named in
        ``missing`` with why; it never fails the machine. Disk space: free space on the
        filesystem of ``docker_root`` plus ``disk_in_use_bytes`` (what the containers
        already use there, since the plan subtracts their demand again).

        With ``measure`` (default) also: the host cost per container (calibrated, from the
        machine file, else measured passively from the running shims), the structural count
        limits (PIDs, open files, and with ``client`` the addresses left in each network),
        and the engine/OS baseline as reserve (memory and CPU outside every container).

        Parameters
        ----------
        docker_root : str or Path, optional
            Where the engine keeps its data; default the engine's ``DockerRootDir``
            (``docker info``), else ``/var/lib/docker``.
        disk_in_use_bytes : float
            Bytes the running containers already use under ``docker_root``.
        psutil_module : module, optional
            Injected for tests; defaults to :mod:`psutil`.
        client : docker.DockerClient, None or False
            The local engine, for the per-network address limits and each service's PIDs
            and open files. None (default): connect to the local engine when one answers
            (only with ``measure``; a remote ``DOCKER_HOST`` is not this host and is not
            used); False: no engine.
        machine_file : str, Path, None or False
            The cached measurements to reuse: None reads :func:`default_machine_file` when
            it exists (the first-use disk probe creates it); False reads none. A path given
            must exist (:class:`InvalidParameter` otherwise): only the default file is
            created, so a mistyped path is an error, not a new file.
        sys_root : str, Path or None
            Where ``/sys`` is; None: NIC speeds from psutil instead of sysfs.
        proc_root, cgroup_root : str or Path
            Where ``/proc`` and the cgroup filesystem are.
        measure : bool
            False: capacities only (no host cost, limits or baseline).
        disk_probe : callable, bool or None
            The first-use disk probe, called with the data root's path and returning a
            :class:`~capacity.sources._probe.DiskProbe` (a fake in tests). None (default):
            :func:`~capacity.sources._probe.probe_disk`, unless the environment says
            ``CAPACITY_DISK_PROBE=off``; False: never probe. It runs only when the machine
            file holds no probe result and there is a machine file to keep the result in
            (not with ``machine_file=False``).

        Notes
        -----
        Trap: in a container or VM, psutil reports the host's or VM's CPUs and memory, not a
        cgroup limit; and many virtual NICs report speed 0 (unknown), which is named, not
        taken as zero capacity.
        """
        from ._machinefile import default_machine_file, read_machine_file

        if psutil_module is None:
            import psutil as psutil_module
        ps = psutil_module
        capacity: dict[str, float] = {
            CPU: float(ps.cpu_count(logical=True) or 1),
            MEMORY: float(ps.virtual_memory().total),
        }
        missing: list[str] = []
        notes: list[str] = []
        cached: Mapping[str, Any] = {}
        path: Path | None = None
        if machine_file is not False:
            explicit = machine_file not in (None, True)
            path = Path(str(machine_file)) if explicit else default_machine_file()
            if explicit and not path.is_file():
                # only the default file is created on first use: a typo is not a new file
                raise InvalidParameter("machine_file", "Machine.local",
                                       _missing_file(path), str(path))
            if path.is_file():  # none yet: the first-use probe may write the default one
                cached = read_machine_file(path)
                notes.append(f"cached measurements from machine file {path}")
        if measure and client is None:
            client, why = _local_engine()
            if client is None:
                notes.append(f"engine: {why}; per-network address limits not read")
        client = client or None
        if docker_root is None:
            docker_root = _data_root(client)
        net = _local_net(ps, sys_root)
        if net[0] is not None:
            capacity[NET_RX] = capacity[NET_TX] = net[0]
            notes.append(net[1])
        else:
            missing += [f"{r}: {net[1]}; give --machine local,net=10Gbit"
                        for r in (NET_RX, NET_TX)]
        probe = dict(cached.get("disk_probe") or {})
        where = f"machine file {path}" if path is not None else ""
        if probe.get("sequential_write_bytes_per_second"):
            notes.append(f"disk bandwidth: probed on {probe.get('path', '?')} at "
                         f"{probe.get('measured_at', '?')} (sequential, O_DIRECT; cached in "
                         f"{where})")
        else:
            prober = _disk_prober(disk_probe) if path is not None else None
            why = ("not measured (CAPACITY_DISK_PROBE=off, or no machine file to keep it in)"
                   if prober is None else "")
            if prober is not None and path is not None:
                from ._machinefile import probe_on_first_use

                result, why, note = probe_on_first_use(path, str(docker_root), prober)
                if result is not None:
                    probe = result.to_dict()
                    notes.append(note)
            if not probe:
                for r in (DISK_READ, DISK_WRITE):
                    missing.append(f"{r}: disk bandwidth {why}; run 'capacity machine probe' "
                                   "or give --machine local,disk_bw=500MB/s")
        if probe.get("sequential_write_bytes_per_second"):
            capacity[DISK_READ] = float(probe["sequential_read_bytes_per_second"])
            capacity[DISK_WRITE] = float(probe["sequential_write_bytes_per_second"])
        try:
            free = float(ps.disk_usage(str(docker_root)).free)
        except OSError as exc:
            missing.append(f"{DISK_USAGE}: cannot read {docker_root} ({exc}); give disk=400GB")
        else:
            capacity[DISK_USAGE] = free + float(disk_in_use_bytes)
        host_cost: dict[str, float] = {}
        reserve: dict[str, float] = {}
        limits: tuple[StructuralLimit, ...] = ()
        if measure:
            host_cost, note = _local_host_cost(cached, proc_root)
            notes.append(note)
            from ..sources._limits import read_structural_limits

            limits = tuple(read_structural_limits(client, proc_root=proc_root,
                                                  cgroup_root=cgroup_root,
                                                  data_root=docker_root))
            notes.extend(_filesystem_notes(str(docker_root), limits))
            from ..sources._hostcost import measure_baseline

            baseline = measure_baseline(ps, cgroup_root=cgroup_root)
            if baseline is not None:
                # never all of it: a plan of "nothing fits" says more than an error would
                reserve[MEMORY] = min(baseline.memory_bytes, _MAX_BASELINE * capacity[MEMORY])
                if baseline.cpu_cores is not None:
                    reserve[CPU] = min(baseline.cpu_cores,
                                       (_MAX_BASELINE - 1 + DEFAULT_CPU_SATURATION)
                                       * capacity[CPU])
                notes.append(
                    f"reserve: the engine/OS baseline measured at {baseline.measured_at}: "
                    f"{baseline.memory_bytes / 2**30:.2f} GiB memory"
                    + (f", {baseline.cpu_cores:.2f} cores" if baseline.cpu_cores is not None
                       else "") + " outside every container")
        return cls(name="local", capacity=capacity, missing=tuple(missing), reserve=reserve,
                   host_cost=host_cost, limits=limits, notes=tuple(notes))

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], *, name: str) -> Machine:
        """Build from spec keys (``cpus``, ``memory``, ``net``, ``disk_bw``, ``disk``, ...),
        with optional ``reserve`` (a mapping of the same keys) and ``headroom``."""
        parsed = _parse_spec_mapping(values)
        if not parsed["capacity"]:
            raise InvalidParameter("machine", "plan", _SPEC_HELP, name)
        return cls(name=name, **parsed)

    def with_given(self, values: Mapping[str, Any]) -> Machine:
        """This machine with spec keys set over what was measured: ``local,net=10Gbit``
        gives the network capacity a virtual NIC does not report, and keeps the rest of the
        local measurements. A capacity given is no longer named in ``missing``."""
        parsed = _parse_spec_mapping(values)
        given = dict(parsed["capacity"])
        keys = ",".join(f"{k}={v}" for k, v in values.items())
        return replace(
            self,
            name=f"{self.name},{keys}" if keys else self.name,
            capacity={**self.capacity, **given},
            reserve={**self.reserve, **parsed["reserve"]},
            host_cost={**self.host_cost, **parsed["host_cost"]},
            headroom=parsed.get("headroom", self.headroom),
            cpu_saturation=parsed.get("cpu_saturation", self.cpu_saturation),
            missing=tuple(m for m in self.missing if m.split(":", 1)[0] not in given),
            notes=(*self.notes, f"given in the machine spec: {keys}") if keys else self.notes,
        )

    @classmethod
    def from_spec(cls, spec: str) -> Machine:
        """Parse ``"cpus=8,memory=32GiB,net=10Gbit,disk_bw=500MB/s,disk=400GB"``.

        Also accepts ``reserve.<key>=<value>`` and ``headroom=<fraction>``, ``"local"`` (this
        host; ``local,net=10Gbit`` adds what it cannot measure), ``"engine"`` (the machine
        behind ``$DOCKER_HOST``, local or remote: CPUs and
        memory from ``docker info``; ``engine,net=10Gbit,reserve.memory=1GiB`` adds keys),
        and a path to a ``.toml`` file. Unknown keys or units raise
        :class:`~capacity.InvalidParameter` naming the key and the value.
        """
        text = spec.strip()
        if text == "local":
            return cls.local()
        if text.startswith("local,"):  # this host, with what it cannot measure given
            given = local_spec_keys(text) or {}
            return cls.local().with_given(given)
        if text == "engine" or text.startswith("engine,"):
            # the machine behind $DOCKER_HOST (local or remote): docker info NCPU, MemTotal
            from ..sources._engine_machine import engine_capacity

            url, engine = engine_capacity()
            text = ",".join([*(f"{k}={v}" for k, v in engine.items()),
                             text.removeprefix("engine").lstrip(",")]).rstrip(",")
            return cls.from_mapping(dict(p.split("=", 1) for p in text.split(",") if p),
                                    name=f"engine {url}")
        if text.endswith(".toml") and "=" not in text:
            return cls.from_toml(text)
        values = _spec_pairs(text, spec)
        if not values:
            raise InvalidParameter("machine", "plan", _SPEC_HELP, spec)
        return cls.from_mapping(values, name=spec)

    @classmethod
    def from_toml(cls, path: str | Path) -> Machine:
        """Read a TOML file: top-level keys or a ``[machine]`` table, e.g.::

            [machine]
            name = "std-8x32"
            cpus = 8
            memory = "32GiB"
            net = "10Gbit"
            disk_bw = "500MB/s"
            disk = "400GB"
            headroom = 0.1
            [machine.reserve]
            cpus = 0.5
            memory = "1GiB"

        or a versioned machine file written by ``capacity machine calibrate`` / ``probe``
        (``schema_version`` and ``kind = "capacity.machine"``; see docs/machine.md), which is
        validated field by field.
        """
        from ._machinefile import is_machine_file, machine_kwargs, validate_machine_file

        p = Path(path)
        try:
            data = tomllib.loads(p.read_text())
        except UnicodeDecodeError:
            raise InvalidParameter("machine", "plan", "a UTF-8 TOML text file", str(p)) from None
        except FileNotFoundError:
            raise InvalidParameter("machine", "plan", _missing_file(p), str(p)) from None
        except OSError as exc:
            raise InvalidParameter("machine", "plan", "a readable TOML file", str(p)) from exc
        except tomllib.TOMLDecodeError as exc:
            raise InvalidParameter("machine", "plan", f"valid TOML ({exc})", str(p)) from exc
        if is_machine_file(data):
            validate_machine_file(data, source=str(p))
            return cls(**machine_kwargs(data, source=str(p)))
        table = data.get("machine", data)
        if not isinstance(table, Mapping):
            raise InvalidParameter("machine", f"machine file {p}", "a [machine] table", table)
        table = dict(table)
        name = str(table.pop("name", p.name))
        return cls.from_mapping(table, name=name)

    # -- serialisation -------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "capacity": dict(self.capacity),
            "reserve": dict(self.reserve),
            "headroom": self.headroom,
            "cpu_saturation": self.cpu_saturation,
            "missing": list(self.missing),
            "host_cost": dict(self.host_cost),
            "limits": [lim.to_dict() for lim in self.limits],
            "notes": list(self.notes),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Machine:
        return cls(
            name=d["name"],
            capacity=dict(d["capacity"]),
            reserve=dict(d.get("reserve", {})),
            headroom=float(d.get("headroom", 0.0)),
            missing=tuple(d.get("missing", ())),
            cpu_saturation=float(d.get("cpu_saturation", DEFAULT_CPU_SATURATION)),
            host_cost=dict(d.get("host_cost", {})),
            limits=tuple(StructuralLimit.from_dict(x) for x in d.get("limits", ())),
            notes=tuple(d.get("notes", ())),
        )



def machine_lines(machine: Machine) -> list[str]:
    """What the report says about the machine, one line each: the host cost per container
    (always, measured or not), the reserve's origin, where each capacity came from."""
    from .._units import format_value

    lines = list(machine.notes)
    if not any(line.startswith("host cost per container") for line in lines):
        if machine.host_cost:
            parts = [format_value(r, v, trim=True) + (" memory" if r == MEMORY else "")
                     for r, v in sorted(machine.host_cost.items())]
            lines.insert(0, f"host cost per container: {', '.join(parts)} (given in the "
                            "machine spec)")
        else:
            lines.insert(0, "host cost per container: not counted (give host_cost=4MiB, or "
                            "run 'capacity machine calibrate' and plan with --machine local)")
    return lines


#: host rate column (from :func:`capacity.store.host_to_rates`) -> the container column it bounds
HOST_BASELINE_COLUMNS: Mapping[str, str] = {
    "host_cpu_cores": CPU,
    "host_memory_used_bytes": MEMORY,
    "host_net_rx_bytes_per_second": NET_RX,
    "host_net_tx_bytes_per_second": NET_TX,
    "host_disk_read_bytes_per_second": DISK_READ,
    "host_disk_write_bytes_per_second": DISK_WRITE,
}


def measured_reserve(
    host_rates: pd.DataFrame,
    samples: pd.DataFrame,
    *,
    quantile: float = 0.95,
    tolerance_s: float | None = None,
) -> dict[str, float]:
    """The OS + engine baseline per resource: host usage minus the containers' sum, measured.

    For every host interval, the containers' samples ending at the same time (within
    ``tolerance_s``, default half the median interval) are summed and taken from the host's
    figure; the reserve is the ``quantile`` of that difference over time, clipped at 0.

    Parameters
    ----------
    host_rates : DataFrame
        From :func:`capacity.store.host_to_rates` (``time`` and ``host_*`` columns).
    samples : DataFrame
        The samples table of the same collection (``time`` and resource columns).
    quantile : float
        Which quantile of the baseline over time to reserve, in (0, 1].

    Returns
    -------
    dict
        Per resource column with data on both sides, in its unit.

    Notes
    -----
    Traps: the host's "used" memory (psutil: total minus available) counts page cache the
    kernel cannot drop quickly and kernel memory, while a container's working set leaves out
    its inactive file cache, so the memory baseline includes some cache; and a baseline measured
    with containers running includes the engine's own overhead for them (per-container shims),
    which grows with the count.
    """
    import pandas as pd

    if not 0 < quantile <= 1:
        raise InvalidParameter("quantile", "measured_reserve", "in (0, 1]", quantile)
    if len(host_rates) == 0 or len(samples) == 0:
        raise InsufficientData(
            "no host rates or no samples to measure the baseline from: collect with the host "
            "reader on, or configure the reserve (reserve.cpus=..., reserve.memory=...)"
        )
    columns = [c for c in HOST_BASELINE_COLUMNS.values() if c in samples.columns]
    sums = samples.groupby("time")[columns].sum(min_count=1).sort_index().reset_index()
    host = host_rates.sort_values("time").reset_index(drop=True)
    if tolerance_s is None:
        steps = host["time"].diff().dt.total_seconds().dropna()
        tolerance_s = float(steps.median()) / 2 if len(steps) else 0.5
    merged = pd.merge_asof(host, sums, on="time", direction="nearest",
                           tolerance=pd.Timedelta(seconds=tolerance_s))
    out: dict[str, float] = {}
    for host_col, column in HOST_BASELINE_COLUMNS.items():
        if host_col not in merged.columns or column not in merged.columns:
            continue
        diff = (merged[host_col] - merged[column]).dropna()
        if len(diff):
            out[column] = max(float(diff.quantile(quantile)), 0.0)
    return out
