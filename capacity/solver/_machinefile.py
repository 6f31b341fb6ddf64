"""The machine file: everything measured about one host, versioned TOML (see docs/machine.md).

``capacity machine calibrate`` and ``capacity machine probe`` write it; ``--machine FILE``
plans on it, and ``--machine local`` reuses its cached measurements (host cost, disk
bandwidth) and measures the rest live, so a scheduled report does not start containers or
write a probe file on every run.

Layout (``schema_version = 1``, ``kind = "capacity.machine"``)::

    schema_version = 1
    kind = "capacity.machine"
    name = "vm"                               # the host name
    written_at = "2026-11-30T22:00:00+00:00"  # UTC

    [capacity]                                # what the host holds, measured
    cpu_cores = 2.0                           # logical CPUs
    memory_bytes = 25276059648
    net_bytes_per_second = 1250000000.0       # per direction (optional)
    disk_read_bytes_per_second = 5.0e8        # optional
    disk_write_bytes_per_second = 4.0e8       # optional
    disk_bytes = 1.0e11                       # free + used by containers (optional)
    measured_at = "..."

    [reserve]                                 # the engine/OS baseline (optional)
    cpu_cores = 0.1
    memory_bytes = 1.2e9
    measured_at = "..."

    [host_cost]                               # per container, outside its cgroup
    memory_bytes = 3.8e6
    cpu_cores = 0.0
    method = "calibrated"                     # or "passive", "given"
    measured_at = "..."
    containers = 50
    ...

    [disk_probe]  [network]  [[filesystems]]  [[limits]]   (see docs/machine.md)

Every number carries its unit in its key. A file is validated field by field when it is
read: a file of a newer ``schema_version``, a missing required field, a value of the wrong
type or unit raises :class:`~capacity.InvalidParameter` naming the field and the value, in
one line.
"""

from __future__ import annotations

import json
import math
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .._columns import (
    CPU,
    DISK_READ,
    DISK_USAGE,
    DISK_WRITE,
    MEMORY,
    NET_RX,
    NET_TX,
    RESOURCES,
)
from .._errors import InvalidParameter
from ..sources._hostcost import HostCost
from ..sources._limits import ADDRESSES, DISK_SPACE, OPEN_FILES, PIDS, StructuralLimit

__all__ = [
    "MACHINE_FILE_KIND",
    "MACHINE_SCHEMA_VERSION",
    "default_machine_file",
    "dumps_toml",
    "read_machine_file",
    "validate_machine_file",
    "write_machine_file",
]

MACHINE_SCHEMA_VERSION = 1
MACHINE_FILE_KIND = "capacity.machine"

#: [capacity] key -> resource columns it sets
_CAPACITY_KEYS: dict[str, tuple[str, ...]] = {
    "cpu_cores": (CPU,),
    "memory_bytes": (MEMORY,),
    "net_bytes_per_second": (NET_RX, NET_TX),
    "net_rx_bytes_per_second": (NET_RX,),
    "net_tx_bytes_per_second": (NET_TX,),
    "disk_read_bytes_per_second": (DISK_READ,),
    "disk_write_bytes_per_second": (DISK_WRITE,),
    "disk_bytes": (DISK_USAGE,),
}
_RESERVE_KEYS: dict[str, str] = {"cpu_cores": CPU, "memory_bytes": MEMORY}
_TEXT = (str,)


def default_machine_file() -> Path:
    """Where ``capacity machine`` keeps this host's file: ``$CAPACITY_MACHINE_FILE``, else
    ``$XDG_STATE_HOME/capacity/machine.toml`` (``~/.local/state/capacity/machine.toml``)."""
    explicit = os.environ.get("CAPACITY_MACHINE_FILE")
    if explicit:
        return Path(explicit)
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "capacity" / "machine.toml"


# -- writing -------------------------------------------------------------------------------


def _scalar(value: Any, where: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidParameter(where, "machine file", "a finite number", value)
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_scalar(v, where) for v in value) + "]"
    raise InvalidParameter(where, "machine file", "a number, a string or a list", value)


def _table_lines(table: Mapping[str, Any], where: str) -> list[str]:
    lines = []
    for key, value in table.items():
        if value is None or isinstance(value, Mapping) or (
                isinstance(value, list | tuple) and value
                and all(isinstance(v, Mapping) for v in value)):
            continue  # tables and arrays of tables: written by dumps_toml
        lines.append(f"{key} = {_scalar(value, f'{where}{key}')}")
    return lines


def dumps_toml(data: Mapping[str, Any]) -> str:
    """TOML text of ``data``: top-level scalars, tables of scalars (one level of nested
    tables), and arrays of tables. ``None`` values are left out (TOML has no null)."""
    out = _table_lines(data, "")
    for key, value in data.items():
        if isinstance(value, Mapping):
            out += ["", f"[{key}]", *_table_lines(value, f"{key}.")]
            for sub, subvalue in value.items():
                if isinstance(subvalue, Mapping):
                    out += ["", f"[{key}.{sub}]", *_table_lines(subvalue, f"{key}.{sub}.")]
        elif (isinstance(value, list | tuple) and value
              and all(isinstance(v, Mapping) for v in value)):
            for item in value:
                out += ["", f"[[{key}]]", *_table_lines(item, f"{key}.")]
                for sub, subvalue in item.items():
                    if isinstance(subvalue, Mapping):
                        out += ["", f"[{key}.{sub}]",
                                *_table_lines(subvalue, f"{key}.{sub}.")]
    return "\n".join(out) + "\n"


def write_machine_file(path: str | Path, data: Mapping[str, Any]) -> Path:
    """Validate ``data`` and write it atomically (a temporary file renamed over ``path``):
    an interrupted write leaves the old file as it was. An existing file is replaced only
    when it is a machine file (``kind = "capacity.machine"``); a symbolic link is kept and
    the file it names replaced (:func:`capacity._output.write_text_file`)."""
    from .._output import write_text_file

    validate_machine_file(data, source=str(path))
    p = Path(path)
    write_text_file(p, dumps_toml(data), what="a machine file", flag="--file",
                    is_ours=_is_machine_file_text, parents=True)
    return p


def _is_machine_file_text(path: Path) -> bool:
    """Whether ``path`` holds a machine file capacity wrote (its ``kind`` line)."""
    from .._output import head_of

    try:
        return re.search(r'(?m)^\s*kind\s*=\s*"capacity\.machine"', head_of(path)) is not None
    except OSError:
        return False


# -- reading and validation ----------------------------------------------------------------


def _bad(source: str, field: str, expected: str, value: Any) -> InvalidParameter:
    return InvalidParameter(f"{field}", f"machine file {source}", expected, value)


#: the structural limits a machine file may hold (capacity/sources/_limits.py)
_LIMIT_NAME = re.compile(rf"^(?:{PIDS}|{OPEN_FILES}|{ADDRESSES}\[[^\[\]]+\]"
                         rf"|{DISK_SPACE}\[/[^\[\]]*\])$")


def _number(table: Mapping[str, Any], key: str, source: str, prefix: str, *,
            required: bool = False) -> float | None:
    if key not in table:
        if required:
            raise _bad(source, prefix + key, "a number (it is required)", "nothing")
        return None
    v = table[key]
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or v < 0:
        raise _bad(source, prefix + key, "a finite number >= 0 in the unit its name says", v)
    return float(v)


def _text(table: Mapping[str, Any], key: str, source: str, prefix: str) -> str | None:
    if key not in table:
        return None
    v = table[key]
    if not isinstance(v, str):
        raise _bad(source, prefix + key, "a string", v)
    return v


def _timestamp(table: Mapping[str, Any], key: str, source: str, prefix: str) -> str | None:
    from datetime import datetime

    v = _text(table, key, source, prefix)
    if v is None:
        return None
    try:
        datetime.fromisoformat(v)
    except ValueError:
        raise _bad(source, prefix + key, "an ISO 8601 time such as 2026-11-30T22:00:00+00:00",
                   v) from None
    return v


def _table(data: Mapping[str, Any], key: str, source: str) -> Mapping[str, Any]:
    v = data.get(key, {})
    if not isinstance(v, Mapping):
        raise _bad(source, key, "a table", v)
    return v


def _tables(data: Mapping[str, Any], key: str, source: str) -> list[Mapping[str, Any]]:
    v = data.get(key, [])
    if not isinstance(v, list) or not all(isinstance(x, Mapping) for x in v):
        raise _bad(source, key, f"an array of tables ([[{key}]])", v)
    return v


_KNOWN_TOP = {"schema_version", "kind", "name", "written_at", "headroom", "cpu_saturation",
              "capacity", "reserve", "host_cost", "disk_probe", "network", "filesystems",
              "limits", "baseline"}


# capacity.measured_at: when CPUs, memory, NIC speed and disk space were measured; the disk
# bandwidth figures come from the probe and carry its time (older files: disk_probe.measured_at)
_CAPACITY_TIMES = ("measured_at", "disk_bandwidth_measured_at")


def validate_machine_file(data: Mapping[str, Any], *, source: str = "<data>") -> None:
    """Check a machine file's content field by field; raise naming the first bad field."""
    version = data.get("schema_version")
    if isinstance(version, bool) or not isinstance(version, int):
        raise _bad(source, "schema_version", f"the integer {MACHINE_SCHEMA_VERSION}", version)
    if version > MACHINE_SCHEMA_VERSION:
        raise _bad(source, "schema_version",
                   f"at most {MACHINE_SCHEMA_VERSION} (the file is from a newer capacity: "
                   "upgrade capacity, or re-measure with 'capacity machine calibrate')",
                   version)
    if version < 1:
        raise _bad(source, "schema_version", f"the integer {MACHINE_SCHEMA_VERSION}", version)
    if data.get("kind") != MACHINE_FILE_KIND:
        raise _bad(source, "kind", f'"{MACHINE_FILE_KIND}"', data.get("kind"))
    unknown = sorted(set(data) - _KNOWN_TOP)
    if unknown:
        raise _bad(source, unknown[0], f"one of {sorted(_KNOWN_TOP)}", data[unknown[0]])
    _text(data, "name", source, "")
    _timestamp(data, "written_at", source, "")
    if "headroom" in data:
        h = _number(data, "headroom", source, "")
        if h is not None and not h < 1:
            raise _bad(source, "headroom", "a fraction in [0, 1)", h)
    if "cpu_saturation" in data:
        c = _number(data, "cpu_saturation", source, "")
        if c is not None and not 0 < c <= 1:
            raise _bad(source, "cpu_saturation", "a fraction in (0, 1]", c)
    cap = _table(data, "capacity", source)
    for key in cap:
        if key in _CAPACITY_TIMES:
            _timestamp(cap, key, source, "capacity.")
        elif key in _CAPACITY_KEYS:
            v = _number(cap, key, source, "capacity.")
            if key in ("cpu_cores", "memory_bytes") and v == 0:  # no host has none
                raise _bad(source, f"capacity.{key}", "> 0 (no host has none: probe the "
                           "machine again, or correct the value)", cap[key])
        else:
            raise _bad(source, f"capacity.{key}",
                       f"one of {sorted(_CAPACITY_KEYS)} or {' or '.join(_CAPACITY_TIMES)}",
                       cap[key])
    if not any(k in cap for k in _CAPACITY_KEYS):
        raise _bad(source, "capacity", f"a table with at least one of {sorted(_CAPACITY_KEYS)}",
                   dict(cap))
    for name in ("reserve", "baseline"):
        res = _table(data, name, source)
        for key in res:
            if key == "measured_at":
                _timestamp(res, key, source, f"{name}.")
            elif key in _RESERVE_KEYS:
                _number(res, key, source, f"{name}.")
            elif key != "note":
                raise _bad(source, f"{name}.{key}", f"one of {sorted(_RESERVE_KEYS)}", res[key])
    hc = _table(data, "host_cost", source)
    if hc:
        _number(hc, "memory_bytes", source, "host_cost.", required=True)
        for key in ("cpu_cores", "shim_bytes", "kernel_bytes", "mem_available_drop_bytes",
                    "in_cgroup_bytes", "containers"):
            _number(hc, key, source, "host_cost.")
        method = _text(hc, "method", source, "host_cost.")
        if method is not None and method not in ("passive", "calibrated", "given"):
            raise _bad(source, "host_cost.method", "passive, calibrated or given", method)
        _timestamp(hc, "measured_at", source, "host_cost.")
    probe = _table(data, "disk_probe", source)
    if probe:
        for key in ("sequential_write_bytes_per_second", "sequential_read_bytes_per_second",
                    "random_write_bytes_per_second", "random_read_bytes_per_second",
                    "duration_s", "size_bytes", "block_bytes", "random_block_bytes"):
            _number(probe, key, source, "disk_probe.")
        _text(probe, "path", source, "disk_probe.")
        _timestamp(probe, "measured_at", source, "disk_probe.")
    net = _table(data, "network", source)
    if net:
        _number(net, "speed_bits_per_second", source, "network.")
        _timestamp(net, "measured_at", source, "network.")
    for i, fs in enumerate(_tables(data, "filesystems", source)):
        for key in ("total_bytes", "free_bytes"):
            _number(fs, key, source, f"filesystems[{i}].", required=True)
        if fs["free_bytes"] > fs["total_bytes"]:
            raise _bad(source, f"filesystems[{i}].free_bytes",
                       f"<= total_bytes ({fs['total_bytes']:g})", fs["free_bytes"])
        _text(fs, "path", source, f"filesystems[{i}].")
    first_limit: dict[str, int] = {}
    for i, lim in enumerate(_tables(data, "limits", source)):
        if not isinstance(lim.get("resource"), str) or not _LIMIT_NAME.match(lim["resource"]):
            # a limit named like a resource (memory_working_set_bytes) replaced that
            # resource's plan; an unknown name was planned and shown as it was
            raise _bad(source, f"limits[{i}].resource",
                       "pids_count, open_files_count, addresses_count[NETWORK] or "
                       "disk_usage_bytes[/MOUNT]", lim.get("resource"))
        # two limits of one resource: the last silently replaced the first
        if lim["resource"] in first_limit:
            raise _bad(source, f"limits[{i}].resource",
                       f"a resource no other limit names (limits[{first_limit[lim['resource']]}]"
                       " names it too)", lim["resource"])
        first_limit[lim["resource"]] = i
        for key in ("capacity", "used", "per_replica"):
            _number(lim, key, source, f"limits[{i}].", required=True)
        per = lim.get("per_service", {})
        if not isinstance(per, Mapping):
            raise _bad(source, f"limits[{i}].per_service", "a table", per)
        for k in per:
            _number(per, k, source, f"limits[{i}].per_service.")


def read_machine_file(path: str | Path) -> dict[str, Any]:
    """Read and validate a machine file; raise :class:`InvalidParameter` naming the field."""
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text())
    except FileNotFoundError:
        from ._machine import _missing_file

        raise InvalidParameter("machine", "plan", _missing_file(p), str(p)) from None
    except OSError as exc:
        raise InvalidParameter("machine", "plan", f"a readable TOML file ({exc.strerror})",
                               str(p)) from None
    except UnicodeDecodeError:
        raise InvalidParameter("machine", "plan", "a UTF-8 TOML text file", str(p)) from None
    except tomllib.TOMLDecodeError as exc:
        raise InvalidParameter("machine", "plan", f"valid TOML ({exc})", str(p)) from None
    validate_machine_file(data, source=str(p))
    return data


def is_machine_file(data: Mapping[str, Any]) -> bool:
    """Whether parsed TOML is a versioned machine file (not a plain spec table)."""
    return "schema_version" in data or data.get("kind") == MACHINE_FILE_KIND


def machine_kwargs(data: Mapping[str, Any], *, source: str) -> dict[str, Any]:
    """The :class:`~capacity.solver.Machine` fields a validated machine file gives."""
    capacity: dict[str, float] = {}
    cap = dict(data.get("capacity", {}))
    for key, columns in _CAPACITY_KEYS.items():
        if key in cap:
            for column in columns:
                capacity[column] = float(cap[key])
    reserve = {col: float(data.get("reserve", {})[key]) for key, col in _RESERVE_KEYS.items()
               if key in data.get("reserve", {})}
    host_cost: dict[str, float] = {}
    notes: list[str] = []
    hc = data.get("host_cost") or {}
    if hc:
        host_cost[MEMORY] = float(hc["memory_bytes"])
        if hc.get("cpu_cores"):
            host_cost[CPU] = float(hc["cpu_cores"])
        notes.append(host_cost_note(HostCost.from_dict(
            {"cpu_cores": 0.0, "method": "given", "measured_at": "", "containers": 0,
             "shim_bytes": 0.0, **hc})))
    limits = tuple(StructuralLimit.from_dict(x) for x in data.get("limits", ()))
    probe = data.get("disk_probe") or {}
    if probe:
        notes.append(f"disk bandwidth probed at {probe.get('measured_at', '?')} on "
                     f"{probe.get('path', '?')} (machine file {source})")
    net_note = str((data.get("network") or {}).get("note") or "")
    missing = [f"{col}: NIC {data['network'].get('nic', '?')}: {net_note} (machine file "
               f"{source})" if net_note and col in (NET_RX, NET_TX) else
               f"{col}: not in machine file {source}; run 'capacity machine probe' or give it "
               "in a spec" for col in RESOURCES if col not in capacity]
    return {
        "name": str(data.get("name") or Path(source).name),
        "capacity": capacity, "reserve": reserve,
        "headroom": float(data.get("headroom", 0.0)),
        "host_cost": host_cost, "limits": limits, "notes": tuple(notes),
        "missing": tuple(sorted(set(missing))),
        **({"cpu_saturation": float(data["cpu_saturation"])} if "cpu_saturation" in data
           else {}),
    }


def host_cost_note(cost: HostCost) -> str:
    """One line for the report: the host cost per container and where it came from."""
    from .._units import format_value

    text = f"host cost per container: {format_value(MEMORY, cost.memory_bytes, trim=True)} memory"
    if cost.cpu_cores:
        text += f", {format_value(CPU, cost.cpu_cores, trim=True)}"
    how = {"calibrated": "calibrated", "passive": "measured from the running shims",
           "given": "given"}[cost.method]
    text += f" ({how}"
    if cost.measured_at:
        text += f" at {cost.measured_at}"
    if cost.containers:
        text += f" over {cost.containers} containers"
    return text + ")"


def _now() -> str:
    from datetime import UTC, datetime

    return datetime.now(UTC).replace(microsecond=0).isoformat()


def local_document(
    existing: Mapping[str, Any] | None = None,
    *,
    host_cost: HostCost | None = None,
    probe: Any = None,
    data_root: str = "/var/lib/docker",
    client: Any = None,
    volume_paths: Mapping[str, str] | None = None,
    sys_root: str = "/sys",
    proc_root: str = "/proc",
    cgroup_root: str = "/sys/fs/cgroup",
    psutil_module: Any = None,
) -> dict[str, Any]:
    """This host's machine file content: the ``existing`` file's measurements, updated with
    what is measured now (CPUs, memory, NICs, filesystems, limits, baseline) and the given
    ``host_cost`` (a calibration) and ``probe`` (a :class:`~capacity.sources._probe.DiskProbe`).
    """
    import socket

    from ..sources._hostcost import measure_baseline
    from ..sources._limits import read_structural_limits
    from ..sources._probe import filesystems, nic_speeds

    if psutil_module is None:
        import psutil as psutil_module
    ps = psutil_module
    now = _now()
    doc: dict[str, Any] = {k: v for k, v in dict(existing or {}).items()}
    doc.update(schema_version=MACHINE_SCHEMA_VERSION, kind=MACHINE_FILE_KIND,
               name=str(doc.get("name") or socket.gethostname()), written_at=now)
    cap: dict[str, Any] = dict(doc.get("capacity") or {})
    cap["cpu_cores"] = float(ps.cpu_count(logical=True) or 1)
    cap["memory_bytes"] = float(ps.virtual_memory().total)
    nics = nic_speeds(sys_root)
    known = [n for n in nics if n.bits_per_second]
    if known:
        best = max(known, key=lambda n: n.bits_per_second or 0.0)
        cap["net_bytes_per_second"] = float(best.bits_per_second or 0.0) / 8.0
        doc["network"] = {"nic": best.name, "speed_bits_per_second": best.bits_per_second,
                          "members": list(best.members), "source": "sysfs", "measured_at": now}
    elif nics:
        cap.pop("net_bytes_per_second", None)
        doc["network"] = {"nic": ", ".join(n.name for n in nics), "source": "sysfs",
                          "note": "no speed reported (virtual NIC); plan with --machine "
                          "local,net=10Gbit, or set capacity.net_bytes_per_second here",
                          "measured_at": now}
    if probe is not None:
        doc["disk_probe"] = probe.to_dict()
    p = doc.get("disk_probe") or {}
    if p:
        cap["disk_read_bytes_per_second"] = float(p["sequential_read_bytes_per_second"])
        cap["disk_write_bytes_per_second"] = float(p["sequential_write_bytes_per_second"])
        if p.get("measured_at"):
            cap["disk_bandwidth_measured_at"] = str(p["measured_at"])
    fss = filesystems(data_root, dict(volume_paths or {}), proc_root=proc_root)
    if fss:
        doc["filesystems"] = [f.to_dict() for f in fss]
        cap["disk_bytes"] = float(fss[0].free_bytes)
    cap["measured_at"] = now
    doc["capacity"] = cap
    if host_cost is not None:
        doc["host_cost"] = {k: v for k, v in host_cost.to_dict().items() if v is not None}
    doc["limits"] = [lim.to_dict() for lim in read_structural_limits(
        client, proc_root=proc_root, cgroup_root=cgroup_root, data_root=data_root)]
    baseline = measure_baseline(ps, cgroup_root=cgroup_root)
    if baseline is not None:
        doc["baseline"] = {k: v for k, v in baseline.to_dict().items()
                           if v is not None and k != "containers_memory_bytes"}
    return doc


def cache_disk_probe(path: str | Path, probe: Any) -> Path:
    """Write a :class:`~capacity.sources._probe.DiskProbe` into the machine file at ``path``
    (created when absent, every other measurement kept), atomically."""
    import socket

    p = Path(path)
    doc: dict[str, Any] = dict(read_machine_file(p)) if p.is_file() else {}
    now = _now()
    doc.update(schema_version=MACHINE_SCHEMA_VERSION, kind=MACHINE_FILE_KIND,
               name=str(doc.get("name") or socket.gethostname()), written_at=now)
    result = probe.to_dict()
    cap = dict(doc.get("capacity") or {})
    cap["disk_read_bytes_per_second"] = float(result["sequential_read_bytes_per_second"])
    cap["disk_write_bytes_per_second"] = float(result["sequential_write_bytes_per_second"])
    # the probe's time with the probe's figures; capacity.measured_at stays the time of the
    # other figures (CPUs, memory, NIC, disk space), which this does not measure
    cap["disk_bandwidth_measured_at"] = str(result.get("measured_at") or now)
    doc["capacity"] = cap
    doc["disk_probe"] = result
    return write_machine_file(p, doc)


def probe_on_first_use(
    path: str | Path, data_root: str, prober: Any
) -> tuple[Any, str, str]:
    """Run the disk probe once, when the machine file holds no result, and cache it there.

    Returns ``(probe, why, note)``: the :class:`~capacity.sources._probe.DiskProbe` (None
    when it failed), why it failed (``"unknown: ..."``, for ``Machine.missing``), and the
    note for the report (measured when, how long, cached where, or why not cached). Never
    raises for a probe or a write that fails: a report without disk bandwidth says why.
    """
    from .._errors import CapacityError

    try:
        result = prober(data_root)
    except (CapacityError, OSError) as exc:
        return None, f"unknown: the first-use probe on {data_root} failed ({exc})", ""
    note = (f"disk bandwidth: probed on {result.path} at {result.measured_at} (sequential, "
            f"O_DIRECT; first use: measured now in {result.duration_s:.1f} s")
    try:
        cache_disk_probe(path, result)
    except (CapacityError, OSError) as exc:
        note += (f"; not cached, the next run probes again: cannot write {path}: {exc}; to "
                 "probe once: CAPACITY_MACHINE_FILE=WRITABLE.toml and 'capacity machine probe "
                 "--file WRITABLE.toml', or CAPACITY_DISK_PROBE=off)")
    else:
        note += f", cached in machine file {path})"
    return result, "", note
