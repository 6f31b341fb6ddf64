"""Structural count limits planned like a resource: how many replicas the PIDs, open files
and addresses left on the host allow.

A count limit is deterministic: ``capacity`` slots, ``used`` now on the whole host (the
service's running replicas included), ``d`` slots per replica of the service. The safe count
is ``floor((capacity * (1 - headroom) - others) / d)`` with ``others = used - running * d``:
the same shape as a resource's plan, without a risk (a slot is taken or not), so every
P(overload) field is 0 or 1 and the method is ``"count"``.
"""

from __future__ import annotations

import math

from ..sources._limits import StructuralLimit
from ._plan import ResourcePlan

__all__ = ["structural_plan"]


def structural_plan(
    limit: StructuralLimit, service: str, *, running: int = 0, headroom: float = 0.0
) -> ResourcePlan | None:
    """The safe count of ``service`` replicas under one count limit; None when a replica of
    the service takes no slot of it (a network it is not attached to).

    Examples
    --------
    >>> lim = StructuralLimit("addresses_count[net]", capacity=253, used=3, per_replica=1)
    >>> structural_plan(lim, "web").safe_count
    250
    """
    d = limit.demand_of(service)
    if d <= 0:
        return None
    reserve = headroom * limit.capacity
    others = max(limit.used - running * d, 0.0)
    usable = limit.capacity - reserve - others
    n = max(math.floor(usable / d + 1e-9), 0)
    total = n * d
    util = (reserve + others + total) / limit.capacity if limit.capacity > 0 else None
    util_next = ((reserve + others + total + d) / limit.capacity if limit.capacity > 0
                 else None)
    return ResourcePlan(
        resource=limit.resource, safe_count=n, capacity=limit.capacity, reserve=reserve,
        occupied=others, demand_per_replica=d, demand_at_safe_count=total,
        utilisation_at_safe_count=util,
        reason="" if n > 0 else "no slot left for one more replica",
        epsilon=None, method="count", mean_per_replica=d,
        expected_utilisation_at_safe_count=util, expected_utilisation_at_next=util_next,
        p_overload_at_safe_count=0.0, p_overload_at_next=1.0,
        methods={"count": n},
    )
