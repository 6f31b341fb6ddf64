"""Compose stacks: how many copies of a ``docker-compose.yml`` fit on a machine.

:func:`read_compose` reads services, replicas (``deploy.replicas``, else ``scale``, else 1),
declared limits and reservations (``deploy.resources``, or the v2 keys ``cpus``/``mem_limit``),
and fixed published host ports (``"8080:80"``, ``{published: 8080}``, or every ``expose``d /
``ports`` entry under ``network_mode: host``). :func:`plan_stack` matches the services to
profiles by name (exactly, or a profile named ``<project>/<service>``) and answers the largest
number of copies of the whole stack that fit, and whether the stack as written fits.

Traps: a port published without a host part (``"80"``) gets an ephemeral host port and limits
nothing; a port range (``"8000-8005:80"``) is expanded; two services or replicas publishing one
host port cannot share a host ("port conflict"), so a stack with a fixed port fits at most once
per host, and not at all when it publishes the same host port twice.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from .._columns import CPU, MEMORY
from .._errors import InvalidParameter
from .._units import parse_bytes
from ..model._profile import Profiles
from ._machine import Machine
from ._mix import MixModel, MixPlan, _plan_of
from ._plan import PORT_CONFLICT, _largest
from ._testing import resource_profile, service_profile

__all__ = ["ComposeService", "Stack", "match_profiles", "plan_stack", "read_compose"]


@dataclass(frozen=True)
class ComposeService:
    """One service of a Compose file. Limits in cores and bytes; None when not declared."""

    name: str
    replicas: int = 1
    cpu_limit_cores: float | None = None
    memory_limit_bytes: float | None = None
    cpu_reservation_cores: float | None = None
    memory_reservation_bytes: float | None = None
    host_ports: tuple[int, ...] = ()


@dataclass(frozen=True)
class Stack:
    """The services of one Compose file."""

    name: str
    services: Mapping[str, ComposeService] = field(default_factory=dict)

    @property
    def host_ports(self) -> dict[int, list[str]]:
        """Fixed host port -> the services publishing it (one entry per replica)."""
        out: dict[int, list[str]] = {}
        for s in self.services.values():
            for port in s.host_ports:
                out.setdefault(port, []).extend([s.name] * s.replicas)
        return out


def _cpus(value: Any, where: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InvalidParameter(where, "compose file", "a number of CPUs such as 0.5",
                               value) from None
    if v < 0:
        raise InvalidParameter(where, "compose file", "CPUs >= 0", value)
    return v


def _bytes(value: Any, where: str) -> float:
    text = str(value).strip()
    # Compose sizes: 512m, 1g, 1gb, 100k, bytes as a bare number
    m = re.fullmatch(r"([0-9.]+)\s*([bkmg])b?", text.lower())
    if m:
        factor = {"b": 1, "k": 1024, "m": 1024**2, "g": 1024**3}[m.group(2)]
        return float(m.group(1)) * factor
    return parse_bytes(text, name=where)


def _ports(spec: Any, where: str) -> list[int]:
    """Host ports a ``ports:`` entry fixes (empty when the host port is ephemeral)."""
    if isinstance(spec, Mapping):
        published = spec.get("published")
        if published in (None, ""):
            return []
        spec = f"{published}:{spec.get('target', published)}"
    elif isinstance(spec, int):
        return []  # container port only: an ephemeral host port
    text = str(spec).split("/")[0]
    parts = text.split(":")
    if len(parts) == 1 and "-" not in text:
        return []
    host = parts[-2] if len(parts) >= 2 else parts[0]
    if not host:
        return []
    lo, _, hi = host.partition("-")
    try:
        first, last = int(lo), int(hi or lo)
    except ValueError:
        raise InvalidParameter(where, "compose file", "ports like 8080:80 or 8000-8005:80",
                               spec) from None
    return list(range(first, last + 1))


def read_compose(path_or_text: str | Path) -> Stack:
    """Parse a Compose file (path or YAML text) into a :class:`Stack`."""
    import yaml

    p = Path(path_or_text) if "\n" not in str(path_or_text) else None
    try:
        text = p.read_text() if p is not None else str(path_or_text)
        data = yaml.safe_load(text)
    except OSError as exc:
        raise InvalidParameter("compose", "plan", "a readable docker-compose.yml",
                               str(path_or_text)) from exc
    except yaml.YAMLError as exc:
        raise InvalidParameter("compose", "plan", f"valid YAML ({exc})", str(p)) from exc
    if not isinstance(data, Mapping) or not isinstance(data.get("services"), Mapping):
        raise InvalidParameter("compose", "plan", "a Compose file with a services: mapping",
                               str(p or "text"))
    services: dict[str, ComposeService] = {}
    for name, svc in data["services"].items():
        svc = svc or {}
        deploy = svc.get("deploy") or {}
        replicas = deploy.get("replicas", svc.get("scale", 1))
        if not isinstance(replicas, int) or replicas < 0:
            raise InvalidParameter(f"{name}.deploy.replicas", "compose file", "an int >= 0",
                                   replicas)
        res = deploy.get("resources") or {}
        limits, reservations = res.get("limits") or {}, res.get("reservations") or {}
        cpu_limit = limits.get("cpus", svc.get("cpus"))
        mem_limit = limits.get("memory", svc.get("mem_limit"))
        cpu_res = reservations.get("cpus", svc.get("cpu_reservation"))
        mem_res = reservations.get("memory", svc.get("mem_reservation"))
        ports: list[int] = []
        for spec in svc.get("ports") or ():
            ports += _ports(spec, f"{name}.ports")
        if svc.get("network_mode") == "host":
            for spec in svc.get("expose") or ():
                ports.append(int(str(spec).split("/")[0].split("-")[0]))
            for spec in svc.get("ports") or ():
                if isinstance(spec, int | str) and ":" not in str(spec):
                    ports.append(int(str(spec).split("/")[0].split("-")[0]))
        services[str(name)] = ComposeService(
            name=str(name),
            replicas=replicas,
            cpu_limit_cores=None if cpu_limit is None else _cpus(cpu_limit, f"{name} cpus"),
            memory_limit_bytes=None if mem_limit is None else _bytes(mem_limit, f"{name} memory"),
            cpu_reservation_cores=None if cpu_res is None else _cpus(cpu_res, f"{name} cpus"),
            memory_reservation_bytes=None if mem_res is None else _bytes(mem_res,
                                                                          f"{name} memory"),
            host_ports=tuple(sorted(set(ports))),
        )
    return Stack(name=str(data.get("name") or (p.parent.name if p else "stack")),
                 services=services)


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
    extended = replace(profiles, services=services)
    unit = {key_of[n]: s.replicas for n, s in stack.services.items() if n in key_of}
    model = MixModel(extended, machine, list(unit), **kwargs)
    assumptions: list[str] = []
    if unprofiled and not limits_for_unprofiled:
        return MixPlan(kind="stack", counts=unit, machine=machine, method=model.method,
                       epsilon=model.epsilon, binding_resource=None, per_resource={},
                       multiple=None, unprofiled=unprofiled, assumptions=model.assumptions(),
                       reason=f"no profile for {list(unprofiled)}: profile them, or plan them "
                              "by their declared limits (--limits-for-unprofiled)")
    if model.unknown:
        return MixPlan(kind="stack", counts=unit, machine=machine, method=model.method,
                       epsilon=model.epsilon, binding_resource=None, per_resource={},
                       multiple=None, unprofiled=unprofiled, assumptions=model.assumptions(),
                       reason="; ".join(model.unknown), unknown=model.unknown)
    if unprofiled:
        assumptions.append(f"planned by declared limits (no profile): {list(unprofiled)}")
    ports = stack.host_ports
    clash = {p: s for p, s in ports.items() if len(s) > 1}
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
    if ports and k > 1:
        k, binding = 1, PORT_CONFLICT
        assumptions.append(f"fixed host port(s) {sorted(ports)}: one copy per host")
    plan = _plan_of(model, "stack", {s: k * c for s, c in unit.items()}, binding, multiple=k,
                    unprofiled=unprofiled)
    return MixPlan(**{**plan.__dict__, "assumptions": (*plan.assumptions, *assumptions)})
