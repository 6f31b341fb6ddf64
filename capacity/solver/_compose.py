"""Compose stacks: how many copies of a ``docker-compose.yml`` fit on a machine.

:func:`read_compose` reads services, replicas (``deploy.replicas``, else ``scale``, else 1),
declared limits and reservations (``deploy.resources``, or the v2 keys ``cpus``/``mem_limit``),
and fixed published host ports (``"8080:80"``, ``{published: 8080}``, or every ``expose``d /
``ports`` entry under ``network_mode: host``). :func:`plan_stack` matches the services to
profiles by name (exactly, or a profile named ``<project>/<service>``) and answers the largest
number of copies of the whole stack that fit, and whether the stack as written fits.

Traps: a port published without a host part (``"80"``) gets an ephemeral host port and limits
nothing; a port range (``"8000-8005:80"``) is kept as an interval (never expanded into a list);
two services or replicas publishing one host port cannot share a host ("port conflict"), so a
stack with a fixed port fits at most once per host, and not at all when it publishes the same
host port twice.

Every field is checked when the file is read (:class:`~capacity.InvalidFile`, naming the field
as ``services.web.deploy.resources.limits.cpus``), and the document is bounded before it is
used: at most :data:`MAX_COMPOSE_BYTES` of text, :data:`MAX_ALIASES` YAML aliases and
:data:`MAX_NODES` values once aliases are expanded (a "billion laughs" document is refused,
not expanded), at most :data:`MAX_SERVICES` services and :data:`MAX_REPLICAS` replicas each.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from .._columns import CPU, MEMORY
from .._errors import CapacityError, InvalidFile, InvalidParameter
from .._schema import Fields
from .._units import parse_bytes
from ..model._profile import Profiles
from ._machine import Machine
from ._mix import MixModel, MixPlan, _plan_of
from ._plan import PORT_CONFLICT, _largest
from ._testing import resource_profile, service_profile

__all__ = [
    "MAX_ALIASES",
    "MAX_COMPOSE_BYTES",
    "MAX_NODES",
    "MAX_REPLICAS",
    "MAX_SERVICES",
    "ComposeService",
    "Stack",
    "match_profiles",
    "plan_stack",
    "read_compose",
]

#: largest Compose file read, bytes (real ones are a few KiB)
MAX_COMPOSE_BYTES = 4 * 2**20
#: most YAML aliases (``*name``) in one file: anchors are for a few shared blocks
MAX_ALIASES = 1_000
#: most values (scalars, lists, mappings) once aliases are expanded
MAX_NODES = 200_000
#: most services of one stack (default of ``read_compose(max_services=...)``): the mix solver
#: holds a services x services correlation matrix and one simulation per service and resource
MAX_SERVICES = 500
#: most replicas of one service
MAX_REPLICAS = 1_000_000
_FIX = "fix the Compose file (see https://docs.docker.com/reference/compose-file/)"


@dataclass(frozen=True)
class ComposeService:
    """One service of a Compose file. Limits in cores and bytes; None when not declared.

    ``host_port_ranges`` are the fixed host ports as sorted, merged, inclusive intervals
    ``(first, last)``; ``host_ports`` lists them one by one (at most 65,535).
    """

    name: str
    replicas: int = 1
    cpu_limit_cores: float | None = None
    memory_limit_bytes: float | None = None
    cpu_reservation_cores: float | None = None
    memory_reservation_bytes: float | None = None
    host_port_ranges: tuple[tuple[int, int], ...] = ()

    @property
    def host_ports(self) -> tuple[int, ...]:
        """Every fixed host port, one by one (ports are 1..65535, so this stays small)."""
        return tuple(p for lo, hi in self.host_port_ranges for p in range(lo, hi + 1))


@dataclass(frozen=True)
class Stack:
    """The services of one Compose file."""

    name: str
    services: Mapping[str, ComposeService] = field(default_factory=dict)

    @property
    def publishes_ports(self) -> bool:
        """True when any service publishes a fixed host port."""
        return any(s.host_port_ranges and s.replicas for s in self.services.values())

    def port_clashes(self) -> dict[str, list[str]]:
        """Host port ranges published more than once by one copy of the stack.

        ``"8080"`` or ``"8000-8005"`` -> the services publishing them (a service with two
        replicas and a fixed port clashes with itself). Computed on the intervals by a sweep,
        so a range of 65,535 ports costs as much as one port.
        """
        events: list[tuple[int, int, str, int]] = []
        for s in self.services.values():
            for lo, hi in s.host_port_ranges:
                if s.replicas:
                    events += [(lo, 0, s.name, s.replicas), (hi + 1, -1, s.name, s.replicas)]
        events.sort(key=lambda e: (e[0], e[1]))
        out: dict[str, list[str]] = {}
        active: dict[str, int] = {}
        for i, (port, kind, name, reps) in enumerate(events):
            if kind < 0:
                active[name] -= reps
                if not active[name]:
                    del active[name]
            else:
                active[name] = active.get(name, 0) + reps
            nxt = events[i + 1][0] if i + 1 < len(events) else port
            if sum(active.values()) > 1 and nxt > port:
                key = str(port) if nxt - 1 == port else f"{port}-{nxt - 1}"
                out[key] = sorted(n for n in active for _ in range(min(active[n], 2)))
        return out

    @property
    def host_ports(self) -> dict[int, list[str]]:
        """Fixed host port -> the services publishing it (one entry per replica).

        Trap: this expands every range and replica; :meth:`port_clashes` does not.
        """
        out: dict[int, list[str]] = {}
        for s in self.services.values():
            for port in s.host_ports:
                out.setdefault(port, []).extend([s.name] * s.replicas)
        return out


def _cpus(ck: Fields, value: Any, path: str) -> float:
    try:
        v = float(value) if not isinstance(value, bool) else math.nan
    except (TypeError, ValueError):
        v = math.nan
    if not math.isfinite(v):
        raise ck.fail(path, "a number of CPUs such as 0.5", value)
    if v < 0:
        raise ck.fail(path, "CPUs >= 0", value)
    return v


def _bytes(ck: Fields, value: Any, path: str) -> float:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ck.fail(path, "a size such as 512m, 1g or 1073741824", value)
    text = str(value).strip()
    # Compose/Docker sizes are binary: 512m, 64M, 1g, 1gb, 100k, 2t; bytes as a bare number
    m = re.fullmatch(r"([0-9]*\.?[0-9]+)\s*([bkmgt])b?", text.lower())
    if m:
        factor = {"b": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}[m.group(2)]
        return float(m.group(1)) * factor
    try:
        return parse_bytes(text, name=path)
    except CapacityError:
        raise ck.fail(path, "a size >= 0 such as 512m, 1g or 1073741824", value) from None


def _port_range(ck: Fields, text: str, path: str, spec: Any) -> tuple[int, int]:
    lo, sep, hi = text.strip().partition("-")
    if not lo.strip().isdigit() or (sep and not hi.strip().isdigit()):
        raise ck.fail(path, "a port like 8080 or a range like 8000-8005", spec)
    first, last = int(lo), int(hi) if sep else int(lo)
    if not 1 <= first <= last <= 65535:
        raise ck.fail(path, "ports in 1..65535, a range's first <= its last", spec)
    return first, last


def _ports(ck: Fields, spec: Any, path: str) -> list[tuple[int, int]]:
    """Host port intervals a ``ports:`` entry fixes (empty when the host port is ephemeral)."""
    if isinstance(spec, Mapping):
        published = spec.get("published")
        if published in (None, ""):
            return []
        if isinstance(published, bool) or not isinstance(published, int | str):
            raise ck.fail(f"{path}.published", "a host port like 8080 or 8000-8005", published)
        return [_port_range(ck, str(published), f"{path}.published", published)]
    if isinstance(spec, bool) or not isinstance(spec, int | str):
        raise ck.fail(path, "a port entry like \"8080:80\" or {target: 80, published: 8080}",
                      spec)
    if isinstance(spec, int):
        return []  # container port only: an ephemeral host port
    text = spec.split("/")[0]
    if text.startswith("["):  # [::1]:8080:80
        text = text.partition("]:")[2]
    parts = text.split(":")
    if len(parts) == 1:
        return []  # container port (or range) only: ephemeral host ports
    host = parts[-2]
    if not host:
        return []
    return [_port_range(ck, host, path, spec)]


def _merge(ranges: list[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    out: list[tuple[int, int]] = []
    for lo, hi in sorted(ranges):
        if out and lo <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return tuple(out)


def _bounded_load(text: str, ck: Fields) -> Any:
    """``yaml.safe_load`` with aliases counted while composing and values counted after.

    PyYAML shares an aliased node instead of copying it, so loading a "billion laughs"
    document is cheap; walking it is not. The walk stops at :data:`MAX_NODES`.
    """
    import yaml

    class Loader(yaml.SafeLoader):
        aliases = 0

        def compose_node(self, parent: Any, index: Any) -> Any:
            if self.check_event(yaml.AliasEvent):
                Loader.aliases += 1
                if Loader.aliases > MAX_ALIASES:
                    raise ck.fail("", f"a document with at most {MAX_ALIASES} YAML aliases "
                                  "(*name)", None, seen=f"more than {MAX_ALIASES}")
            return super().compose_node(parent, index)

        def construct_mapping(self, node: Any, deep: bool = False) -> Any:
            # a key twice in one mapping: PyYAML keeps the last silently, docker compose
            # refuses the file ("mapping key already defined"); keys merged in by "<<" may
            # be overridden, as YAML allows
            seen: dict[Any, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=deep)
                line = key_node.start_mark.line + 1
                try:
                    first = seen.get(key)
                except TypeError:  # an unhashable key: SafeLoader says so itself
                    continue
                if first is not None:
                    raise ck.fail(str(key), "given once in its mapping", None,
                                  seen=f"twice, on lines {first} and {line}")
                seen[key] = line
            return super().construct_mapping(node, deep=deep)

    try:
        data = yaml.load(text, Loader=Loader)  # a SafeLoader subclass
    except yaml.YAMLError as exc:
        where = " ".join(str(exc).split())  # PyYAML's message spans lines: one line
        raise InvalidFile(f"{ck.file}: is not valid YAML ({where}). {_FIX}",
                          file=ck.file) from exc
    except RecursionError as exc:
        raise ck.fail("", "nested less deeply", None, seen="a document nested too deeply") \
            from exc
    seen = 0
    stack = [data]
    while stack:
        node = stack.pop()
        seen += 1
        if seen > MAX_NODES:
            raise ck.fail("", f"at most {MAX_NODES} values once YAML aliases are expanded "
                          "(aliases that repeat aliases multiply)", None,
                          seen=f"more than {MAX_NODES}")
        if isinstance(node, Mapping):
            stack.extend(node.values())
            stack.extend(node.keys())
        elif isinstance(node, list):
            stack.extend(node)
    return data


def read_document(path_or_text: str | Path) -> tuple[Any, Fields, Path | None]:
    """The parsed YAML of a Compose file (path, or text with a newline), size-bounded (see
    the module docstring), with the :class:`Fields` checker that names its file."""
    p = Path(path_or_text) if "\n" not in str(path_or_text) else None
    name = str(p) if p is not None else "compose text"
    ck = Fields(name, _FIX)
    try:
        if p is not None:
            size = p.stat().st_size
            if size > MAX_COMPOSE_BYTES:
                raise ck.fail("", f"at most {MAX_COMPOSE_BYTES} bytes", size, seen=f"{size} bytes")
            text = p.read_text()
        else:
            text = str(path_or_text)
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidFile(f"{name}: cannot be read ({type(exc).__name__}: {exc}): give a "
                          "readable docker-compose.yml", file=name) from exc
    if len(text) > MAX_COMPOSE_BYTES:
        raise ck.fail("", f"at most {MAX_COMPOSE_BYTES} characters", len(text),
                      seen=f"{len(text)} characters")
    return _bounded_load(text, ck), ck, p


def read_compose(path_or_text: str | Path, *, max_services: int = MAX_SERVICES) -> Stack:
    """Parse a Compose file (path or YAML text) into a :class:`Stack`, every field checked.

    Parameters
    ----------
    path_or_text : str or Path
        A file, or YAML text (anything with a newline).
    max_services : int
        Most services accepted (default :data:`MAX_SERVICES`).

    Raises
    ------
    InvalidFile
        An unreadable file, invalid YAML, a document over the size bounds (see the module
        docstring), or a field of the wrong type or out of range; the message names the field.
    """
    data, ck, p = read_document(path_or_text)
    if not isinstance(data, Mapping):
        raise ck.fail("", "a Compose file: a mapping with a services: key", data)
    svcs = ck.mapping(data, "services", "services")
    if not svcs:
        raise ck.fail("services", "at least one service", dict(svcs))
    if len(svcs) > max_services:
        raise ck.fail("services", f"at most {max_services} services: split the file into "
                      "stacks and plan each, or raise the limit with "
                      "capacity.solver.read_compose(path, max_services=N)",
                      len(svcs), seen=f"{len(svcs)} services")
    services: dict[str, ComposeService] = {}
    for key, svc in svcs.items():
        services[str(key)] = compose_service(ck, str(key), svc)
    stack_name = data.get("name")
    if stack_name is not None and not isinstance(stack_name, str):
        raise ck.fail("name", "a string", stack_name)
    return Stack(name=str(stack_name or (p.parent.name if p else "stack")), services=services)


def compose_service(ck: Fields, name: str, svc: Any) -> ComposeService:
    path = f"services.{name}"
    svc = ck.as_mapping(svc if svc is not None else {}, path)

    def sub(d: Mapping[str, Any], key: str, where: str) -> Mapping[str, Any]:
        v = d.get(key)
        return {} if v is None else ck.as_mapping(v, where)

    deploy = sub(svc, "deploy", f"{path}.deploy")
    where = f"{path}.deploy.replicas" if "replicas" in deploy else f"{path}.scale"
    replicas = deploy.get("replicas", svc.get("scale", 1))
    if isinstance(replicas, bool) or not isinstance(replicas, int) \
            or not 0 <= replicas <= MAX_REPLICAS:
        raise ck.fail(where, f"a whole number from 0 to {MAX_REPLICAS}", replicas)
    res = sub(deploy, "resources", f"{path}.deploy.resources")
    limits = sub(res, "limits", f"{path}.deploy.resources.limits")
    reservations = sub(res, "reservations", f"{path}.deploy.resources.reservations")

    def pick(block: Mapping[str, Any], key: str, block_path: str, v2: str) -> tuple[Any, str]:
        if key in block:
            return block[key], f"{block_path}.{key}"
        return svc.get(v2), f"{path}.{v2}"

    lim = f"{path}.deploy.resources.limits"
    rsv = f"{path}.deploy.resources.reservations"
    cpu_limit, cpu_limit_at = pick(limits, "cpus", lim, "cpus")
    mem_limit, mem_limit_at = pick(limits, "memory", lim, "mem_limit")
    cpu_res, cpu_res_at = pick(reservations, "cpus", rsv, "cpu_reservation")
    mem_res, mem_res_at = pick(reservations, "memory", rsv, "mem_reservation")
    ranges: list[tuple[int, int]] = []
    ports = svc.get("ports") or []
    if not isinstance(ports, list):
        raise ck.fail(f"{path}.ports", "a list of port entries", ports)
    for i, spec in enumerate(ports):
        ranges += _ports(ck, spec, f"{path}.ports[{i}]")
    if svc.get("network_mode") == "host":
        expose = svc.get("expose") or []
        if not isinstance(expose, list):
            raise ck.fail(f"{path}.expose", "a list of ports", expose)
        for i, spec in enumerate(expose):
            if isinstance(spec, bool) or not isinstance(spec, int | str):
                raise ck.fail(f"{path}.expose[{i}]", "a port like 8080", spec)
            ranges.append(_port_range(ck, str(spec).split("/")[0], f"{path}.expose[{i}]", spec))
        for i, spec in enumerate(ports):
            if isinstance(spec, int | str) and ":" not in str(spec):
                ranges.append(_port_range(ck, str(spec).split("/")[0], f"{path}.ports[{i}]",
                                          spec))
    return ComposeService(
        name=name,
        replicas=replicas,
        cpu_limit_cores=None if cpu_limit is None else _cpus(ck, cpu_limit, cpu_limit_at),
        memory_limit_bytes=None if mem_limit is None else _bytes(ck, mem_limit, mem_limit_at),
        cpu_reservation_cores=None if cpu_res is None else _cpus(ck, cpu_res, cpu_res_at),
        memory_reservation_bytes=None if mem_res is None else _bytes(ck, mem_res, mem_res_at),
        host_port_ranges=_merge(ranges),
    )


def match_profiles(stack: Stack, profiles: Profiles) -> dict[str, str | None]:
    """Compose service -> profile key (exact name, else the one ``<project>/<name>``), or None."""
    out: dict[str, str | None] = {}
    for name in stack.services:
        if name in profiles.services:
            out[name] = name
            continue
        hits = [k for k in profiles.services if k.endswith("/" + name)]
        if len(hits) > 1:
            preferred = [k for k in hits if k == f"{stack.name}/{name}"]
            if len(preferred) != 1:
                raise InvalidParameter(f"profile of {name}", "compose plan",
                                       "one matching profile", hits)
            hits = preferred
        out[name] = hits[0] if hits else None
    return out


def _limits_profile(svc: ComposeService) -> Any:
    resources = {}
    if svc.cpu_limit_cores:
        resources[CPU] = resource_profile(CPU, np.full(64, svc.cpu_limit_cores))
    if svc.memory_limit_bytes:
        resources[MEMORY] = resource_profile(MEMORY, np.full(64, svc.memory_limit_bytes))
    return service_profile(f"compose:{svc.name}", resources)


def plan_stack(
    profiles: Profiles,
    machine: Machine,
    stack: Stack,
    *,
    limits_for_unprofiled: bool = False,
    **kwargs: Any,
) -> MixPlan:
    """How many copies of ``stack`` fit on ``machine`` (``multiple``), with the counts.

    A service with no profile is named in ``unprofiled``; the answer is then undefined unless
    ``limits_for_unprofiled`` (plan it by its declared limits, as constant demand). Fixed host
    ports: a stack that publishes a host port fits at most once per host ("port conflict"),
    and not at all when one host port is published twice. ``multiple >= 1`` means the stack
    as written fits. Other keyword arguments go to :class:`MixModel`.
    """
    matched = match_profiles(stack, profiles)
    unprofiled = tuple(sorted(n for n, k in matched.items() if k is None))
    services = dict(profiles.services)
    key_of: dict[str, str] = {}
    declared: list[str] = []  # planned at their declared limits: no drift, no widening
    for name, key in matched.items():
        if key is not None:
            key_of[name] = key
        elif limits_for_unprofiled:
            sp = _limits_profile(stack.services[name])
            if not sp.resources:
                raise InvalidParameter(f"limits of {name}", "compose plan",
                                       "declared cpus or memory limits", None)
            services[f"compose:{name}"] = sp
            key_of[name] = f"compose:{name}"
            declared.append(key_of[name])
    extended = replace(profiles, services=services)
    unit = {key_of[n]: s.replicas for n, s in stack.services.items() if n in key_of}
    model = MixModel(extended, machine, list(unit),
                     as_declared=declared, **kwargs)
    assumptions: list[str] = []
    if unprofiled and not limits_for_unprofiled:
        return MixPlan(kind="stack", counts=unit, machine=machine, method=model.method,
                       epsilon=model.epsilon, binding_resource=None, per_resource={},
                       multiple=None, unprofiled=unprofiled, assumptions=model.assumptions(),
                       reason=f"no profile for {list(unprofiled)}: profile them, or plan them "
                              "by their declared limits (--limits-for-unprofiled)",
                       **model.plan_fields())
    if model.unknown or model.refused:
        return MixPlan(kind="stack", counts=unit, machine=machine, method=model.method,
                       epsilon=model.epsilon, binding_resource=None, per_resource={},
                       multiple=None, unprofiled=unprofiled, assumptions=model.assumptions(),
                       reason="; ".join((*model.unknown, *model.refused)),
                       unknown=model.unknown, **model.plan_fields())
    if unprofiled:
        assumptions.append(f"planned by declared limits (no profile): {list(unprofiled)}")
    clash = stack.port_clashes()
    if clash:
        plan = _plan_of(model, "stack", {k: 0 for k in unit}, PORT_CONFLICT, multiple=0,
                        unprofiled=unprofiled,
                        reason=f"host port(s) published more than once in one copy: {clash}")
        return plan
    k = _largest(lambda m: model.fits({s: m * c for s, c in unit.items()})[0])
    if k is None:
        return _plan_of(model, "stack", unit, None, unprofiled=unprofiled,
                        reason="unbounded: no resource limits it")
    binding = model.binding({s: k * c for s, c in unit.items()}, unit)
    if stack.publishes_ports and k > 1:
        k, binding = 1, PORT_CONFLICT
        fixed = sorted({(lo, hi) for sv in stack.services.values() if sv.replicas
                        for lo, hi in sv.host_port_ranges})
        shown = [str(lo) if lo == hi else f"{lo}-{hi}" for lo, hi in fixed]
        assumptions.append(f"fixed host port(s) {shown}: one copy per host")
    plan = _plan_of(model, "stack", {s: k * c for s, c in unit.items()}, binding, multiple=k,
                    unprofiled=unprofiled)
    return MixPlan(**{**plan.__dict__, "assumptions": (*plan.assumptions, *assumptions)})
