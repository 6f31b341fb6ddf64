"""The solver: the largest safe container count per resource, and the resource that binds."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .._errors import InvalidParameter, ProfileVersionError
from ..model._profile import Profiles, ServiceProfile
from ._machine import Machine

__all__ = ["PLAN_SCHEMA_VERSION", "Plan", "ResourcePlan", "plan"]

PLAN_SCHEMA_VERSION = 1


@dataclass(frozen=True)
class ResourcePlan:
    """The answer for one resource. ``safe_count`` is None when it cannot be computed
    (capacity unknown, or no demand measured); ``reason`` then says why."""

    resource: str
    safe_count: int | None
    capacity: float | None
    reserve: float
    occupied: float
    demand_per_replica: float | None
    demand_at_safe_count: float | None
    utilisation_at_safe_count: float | None
    reason: str = ""


@dataclass(frozen=True)
class Plan:
    """How many replicas of ``service`` fit on ``machine``, per resource and overall."""

    service: str
    machine: Machine
    method: str
    epsilon: float
    safe_count: int | None
    binding_resource: str | None
    per_resource: Mapping[str, ResourcePlan]
    running: int = 0
    assumptions: tuple[str, ...] = ()
    meta: Mapping[str, Any] = field(default_factory=dict)

    @property
    def more(self) -> int | None:
        """How many more replicas fit beside the ``running`` ones (never negative)."""
        return None if self.safe_count is None else max(self.safe_count - self.running, 0)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": PLAN_SCHEMA_VERSION,
            "kind": "capacity.plan",
            "service": self.service,
            "machine": self.machine.to_dict(),
            "method": self.method,
            "epsilon": self.epsilon,
            "safe_count": self.safe_count,
            "binding_resource": self.binding_resource,
            "running": self.running,
            "more": self.more,
            "per_resource": {k: asdict(v) for k, v in self.per_resource.items()},
            "assumptions": list(self.assumptions),
            "meta": dict(self.meta),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Plan:
        if d.get("kind") != "capacity.plan" or d.get("schema_version") != PLAN_SCHEMA_VERSION:
            raise ProfileVersionError(
                f"plan schema version {d.get('schema_version')!r} is not "
                f"{PLAN_SCHEMA_VERSION}: re-run 'capacity plan'"
            )
        return cls(
            service=d["service"],
            machine=Machine.from_dict(d["machine"]),
            method=d["method"],
            epsilon=d["epsilon"],
            safe_count=d["safe_count"],
            binding_resource=d["binding_resource"],
            per_resource={k: ResourcePlan(**v) for k, v in d["per_resource"].items()},
            running=d.get("running", 0),
            assumptions=tuple(d.get("assumptions", ())),
            meta=d.get("meta", {}),
        )

    def to_json(self, path: str | Path | None = None) -> str:
        text = json.dumps(self.to_dict(), indent=2, allow_nan=False)
        if path is not None:
            Path(path).write_text(text + "\n")
        return text


def _plan_resource(
    profile: ServiceProfile,
    resource: str,
    capacity: float | None,
    reserve: float,
    occupied: float,
) -> ResourcePlan:
    rp = profile.resources.get(resource)
    demand = rp.demand if rp else None

    def undefined(reason: str) -> ResourcePlan:
        return ResourcePlan(
            resource, None, capacity, reserve, occupied, demand, None, None, reason=reason
        )

    if capacity is None:
        return undefined("machine capacity unknown: give it in the machine spec")
    if capacity - reserve <= 0:
        raise InvalidParameter(
            f"reserve of {resource}", "plan", f"below the capacity {capacity:g}", reserve
        )
    if demand is None:
        return undefined("no samples of this resource")
    if demand <= 0:
        return undefined("no measurable demand: does not limit the count")
    usable = max(capacity - reserve - occupied, 0.0)
    n = math.floor(usable / demand)
    return ResourcePlan(
        resource=resource,
        safe_count=n,
        capacity=capacity,
        reserve=reserve,
        occupied=occupied,
        demand_per_replica=demand,
        demand_at_safe_count=n * demand,
        utilisation_at_safe_count=(occupied + reserve + n * demand) / capacity,
        reason="" if n > 0 else "reserve and other containers already use all of it",
    )


def plan(
    profiles: Profiles,
    machine: Machine,
    *,
    service: str | None = None,
    epsilon: float = 0.01,
    running: int = 0,
    occupied: Mapping[str, float] | None = None,
) -> Plan:
    """The largest count of ``service`` replicas that fit on ``machine``.

    Walking-skeleton method ``quantile``: floor((capacity - reserve) / per-replica demand),
    where demand is the profile's p95 for CPU and maximum for memory. ``epsilon`` is recorded
    but the skeleton method does not pool risk yet. ``occupied`` is what other containers
    (not of ``service``) use now, per resource column: it is left out of the usable capacity.
    ``utilisation_at_safe_count`` counts reserve, occupied and the ``service`` replicas.
    """
    if not 0 < epsilon < 0.5:
        raise InvalidParameter("epsilon", "plan", "in (0, 0.5)", epsilon)
    if service is None:
        if len(profiles) != 1:
            raise InvalidParameter(
                "service", "plan", f"one of {sorted(profiles.services)}", service
            )
        service = next(iter(profiles.services))
    if service not in profiles.services:
        raise InvalidParameter("service", "plan", f"one of {sorted(profiles.services)}", service)
    profile = profiles[service]
    resources = sorted(set(machine.capacity) | set(profile.resources))
    occupied = occupied or {}
    per = {
        r: _plan_resource(
            profile, r, machine.capacity.get(r), machine.reserve.get(r, 0.0),
            occupied.get(r, 0.0),
        )
        for r in resources
    }
    counted = {r: p.safe_count for r, p in per.items() if p.safe_count is not None}
    binding = min(counted, key=lambda r: counted[r]) if counted else None
    return Plan(
        service=service,
        machine=machine,
        method="quantile",
        epsilon=epsilon,
        safe_count=counted[binding] if binding else None,
        binding_resource=binding,
        per_resource=per,
        running=running,
        assumptions=(
            "per-replica demand: CPU p95, memory and others maximum over the window",
            "replicas add up linearly (no risk pooling)",
        ),
    )
