"""Structural count limits planned like a resource: how many replicas the PIDs, open files
and addresses left on the host allow.

A count limit is deterministic: ``capacity`` slots, ``used`` now on the whole host (the
running replicas included), ``d`` slots per replica of the service. The safe count is
``floor((capacity * (1 - headroom) - others) / d)`` with ``others`` what the rest of the host
takes: ``max(used - running * d - beside, 0) + beside``, ``beside`` the slots of the other
services' running replicas (:func:`in_use_beside`). The same shape as a resource's plan,
without a risk (a slot is taken or not), so every P(overload) field is 0 or 1 and the
method is ``"count"``.

Trap: ``used`` is read when the machine was measured (a machine file may be days old, or
from an emptier host). When the replicas said to run take more slots than it counts, they
take them all the same: the larger reading is planned (as a mix of services does,
:class:`capacity.solver.MixModel`), and :func:`stale_in_use_note` says so.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from ..sources._limits import StructuralLimit
from ._plan import ResourcePlan

__all__ = ["in_use_beside", "stale_in_use_note", "structural_plan"]


def _slots(limit: StructuralLimit, running: Mapping[str, int]) -> float:
    return sum(int(n) * limit.demand_of(s) for s, n in running.items() if n > 0)


def in_use_beside(limit: StructuralLimit, running: Mapping[str, int]) -> float:
    """Slots of ``limit`` in use on the host besides the replicas of ``running`` (per
    service, replicas running now): ``max(used - their slots, 0)``. The one reading of a
    count in use: single-service plans and mixes take it."""
    return max(limit.used - _slots(limit, running), 0.0)


def stale_in_use_note(limit: StructuralLimit, running: Mapping[str, int]) -> str:
    """The assumption that says the machine's count in use is below what the replicas of
    ``running`` take (the larger is planned, and what to do); ``""`` when it is not."""
    taken = _slots(limit, running)
    if taken <= limit.used + 1e-9 * max(taken, 1.0):
        return ""
    return (f"{limit.resource}: the machine counts {limit.used:,.0f} in use, fewer than the "
            f"{taken:,.0f} the running replicas take ("
            + ", ".join(f"{s} {int(n)} x {limit.demand_of(s):g}"
                        for s, n in sorted(running.items()) if n > 0 and limit.demand_of(s))
            + f"): planned with {taken:,.0f} in use, the larger; the machine was measured "
            "when fewer ran (measure it again: --machine local, or 'capacity machine "
            "calibrate' for its file) or the running counts are wrong (check --running)")


def structural_plan(
    limit: StructuralLimit, service: str, *, running: int = 0, headroom: float = 0.0,
    beside: Mapping[str, int] | None = None,
) -> ResourcePlan | None:
    """The safe count of ``service`` replicas under one count limit; None when a replica of
    the service takes no slot of it (a network it is not attached to).

    ``running``: replicas of ``service`` running now; ``beside``: replicas of the other
    services running now (per service). Both are inside the host's ``used`` count, and take
    their slots even where that count says less (the larger reading: see the module
    docstring).

    Examples
    --------
    >>> lim = StructuralLimit("addresses_count[net]", capacity=253, used=3, per_replica=1)
    >>> structural_plan(lim, "web").safe_count
    250
    >>> structural_plan(lim, "web", running=2, beside={"db": 5}).safe_count  # 5 > 3 - 2
    248
    """
    d = limit.demand_of(service)
    if d <= 0:
        return None
    reserve = headroom * limit.capacity
    others_running = {s: int(n) for s, n in (beside or {}).items() if s != service}
    others = (in_use_beside(limit, {**others_running, service: int(running)})
              + _slots(limit, others_running))
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
