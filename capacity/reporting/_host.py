"""The host's answer, the order services are shown in, and resource names for people.

A report leads with the host (DESIGN.md): is it over or under capacity, by how much, which
resource binds, which services to move (over) or how many more copies of the running mix fit
(under). Then services by urgency: least headroom first (see :mod:`._status`), names in natural
order on ties (``svc2`` before ``svc10``).

The host's figures per resource come from the plans themselves: capacity, reserve, and what
runs now (the other services' running containers at their per-replica sizing figure plus the
host cost of each, plus the service's own running containers at its plan's per-replica
figure), through :func:`capacity.reporting._status.resource_headroom`, the formula the
status line uses too: the headline and the status line give the same headroom. Capacities
that could not be found (a virtual NIC's speed, disk bandwidth without a probe) are listed
as unknown, once each, with why and the flag that sets them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .._columns import CPU, DISK_READ, DISK_WRITE, MEMORY, NET_RX, NET_TX
from .._units import RESOURCE_NAMES, resource_name
from ..model._profile import Profiles
from ..solver._plan import Plan
from ._format import format_percent, format_value
from ._status import Status, resource_headroom, resource_in_use

__all__ = [
    "RESOURCE_NAMES",
    "HostAnswer",
    "HostResource",
    "host_answer",
    "natural_key",
    "resource_name",
    "unknown_capacities",
    "urgency_order",
]

#: services named in one sentence of the host's answer (the table lists every one)
_SHOWN = 8


def natural_key(name: str) -> tuple[tuple[int, int | str], ...]:
    """Sort key that orders the digits in a name by value: ``svc2`` before ``svc10``.

    >>> sorted(["svc10", "svc2", "svc1"], key=natural_key)
    ['svc1', 'svc2', 'svc10']
    """
    return tuple((0, int(part)) if part.isdigit() else (1, part.lower())
                 for part in re.split(r"(\d+)", name) if part)


def urgency_order(plans: Mapping[str, Plan], st: Status) -> list[str]:
    """Services, most urgent first: over their safe count, then no safe count (the plan
    cannot vouch for them), then by headroom ascending as shown (four significant digits:
    10.4534 % and 10.4535 % are a tie); names in natural order on ties."""
    def key(service: str) -> tuple[int, float, tuple[tuple[int, int | str], ...]]:
        p = plans[service]
        share = st.headrooms[service].share if service in st.headrooms else None
        if p.safe_count is not None and p.running > p.safe_count:
            rank = 0
        elif p.safe_count is None or share is None:
            rank = 1
        else:
            rank = 2
        shown = float(f"{share:.4g}") if share is not None else -math.inf
        return (rank, shown, natural_key(service))

    return sorted(plans, key=key)


@dataclass(frozen=True)
class HostResource:
    """One resource of the host: capacity, reserve and what runs now (column unit), and the
    free share of what is usable (negative when over)."""

    resource: str
    capacity: float
    reserve: float
    in_use: float
    headroom: float | None
    #: the service whose plan gave these figures (its ``occupied`` counts the others)
    service: str = ""

    @property
    def over(self) -> bool:
        return self.reserve + self.in_use > self.capacity


@dataclass(frozen=True)
class HostAnswer:
    """The host's answer: ``verdict`` (``over`` / ``tight`` / ``under`` / ``unknown``), a
    ``headline`` sentence, further ``lines``, the per-resource figures, the binding resource
    (least headroom), the services to move when over (most demand first), and the
    capacities that are unknown (:func:`unknown_capacities`): not planned, named once."""

    verdict: str
    headline: str
    lines: tuple[str, ...]
    resources: tuple[HostResource, ...]
    binding: str | None
    move: tuple[str, ...]
    more_mixes: int | None
    unknown: tuple[tuple[str, str], ...] = ()


def _host_resources(plans: Mapping[str, Plan]) -> list[HostResource]:
    """Per resource with a known capacity: what runs now and the headroom, from the plans'
    own figures (:func:`capacity.reporting._status.resource_headroom`, the one formula the
    status line uses too). Each service's plan sees the same host; where their figures
    differ (a pooled per-replica figure), the least headroom among the services this
    resource binds is the host's (the status line's figure), else the least of all."""
    out: list[HostResource] = []
    resources = list(dict.fromkeys(r for p in plans.values() for r in p.per_resource))
    for r in resources:
        best: HostResource | None = None
        bound = [p for p in plans.values() if p.binding_resource == r]
        for p in bound or plans.values():
            rp = p.per_resource.get(r)
            if rp is None or not rp.capacity:
                continue
            share = resource_headroom(rp, p.running)
            h = HostResource(r, float(rp.capacity), float(rp.reserve),
                             resource_in_use(rp, p.running), share, p.service)
            if best is None or (share is not None and (best.headroom is None
                                                       or share < best.headroom)):
                best = h
        if best is not None:
            out.append(best)
    return out


def unknown_capacities(plans: Mapping[str, Plan]) -> list[tuple[str, str]]:
    """The machine's capacities that could not be found, as ``(resource names, why and the
    flag that sets it)``, once per cause: network in and out share one line when one NIC
    leaves both unknown. Empty when every capacity is known.

    >>> from capacity.solver import Machine
    >>> m = Machine("m", {"cpu_cores": 2.0}, missing=(
    ...     "net_rx_bytes_per_second: NIC eth0 reports no speed; give net=10Gbit",
    ...     "net_tx_bytes_per_second: NIC eth0 reports no speed; give net=10Gbit"))
    >>> unknown_capacities({"s": Plan("s", m, "quantile", 0.01, 1, None, {})})
    [('network in and out', 'NIC eth0 reports no speed; give net=10Gbit')]
    """
    first = next(iter(plans.values()), None)
    if first is None:
        return []
    by_why: dict[str, list[str]] = {}
    for entry in first.machine.missing:
        resource, _, why = entry.partition(":")
        by_why.setdefault(why.strip(), []).append(resource.strip())
    out = []
    for why, resources in by_why.items():
        names = [resource_name(r) for r in resources]
        if set(resources) == {NET_RX, NET_TX}:
            label = "network in and out"
        elif set(resources) == {DISK_READ, DISK_WRITE}:
            label = "disk read and write bandwidth"
        else:
            label = ", ".join(names)
        out.append((label, why))
    return out


def _running_takes(plans: Mapping[str, Plan], profiles: Profiles,
                   bind: HostResource) -> dict[str, float]:
    """Per service, what its running containers take of ``bind.in_use`` (its unit): the
    service whose plan gave the figures at its plan's per-replica figure, every other at
    what that plan's ``occupied`` counts it (:func:`capacity.solver.occupied_by_others`:
    its sizing figure at its demand factor for the period ahead, plus the host cost of each
    container, as :func:`capacity._pipeline.plan_all` adds it)."""
    from ..solver._plan import occupied_by_others

    owner = plans.get(bind.service)
    out: dict[str, float] = {}
    for s, p in plans.items():
        if not p.running:
            continue
        rp = p.per_resource.get(bind.resource)
        if owner is None or s == owner.service:
            out[s] = p.running * float(rp.demand_per_replica or 0.0) if rp is not None else 0.0
            continue
        settings = owner.settings
        taken = occupied_by_others(profiles, {s: p.running}, owner.service,
                                   valid_for_s=settings.valid_for_s, method=settings.method)
        out[s] = (taken.get(bind.resource, 0.0)
                  + p.running * float(owner.machine.host_cost.get(bind.resource, 0.0)))
    return out


def _risk_line(plans: Mapping[str, Plan], order: Sequence[str]) -> str | None:
    """The risk the safe counts were solved at, per resource (epsilon: the share of instants
    total demand may exceed capacity), for the host's first screen; ``None`` when no planned
    resource has one. Structural limits (PIDs, addresses) have none: they are counts."""
    seen: dict[str, float] = {}
    for service in order:
        for r, rp in plans[service].per_resource.items():
            if rp.epsilon is None or rp.safe_count is None:
                continue
            if seen.setdefault(r, rp.epsilon) != rp.epsilon:
                return ("Risk: the allowed share of instants over capacity differs between "
                        "services; each service's table gives its epsilon.")
    if not seen:
        return None
    by_eps: dict[float, list[str]] = {}
    for r, eps in seen.items():
        by_eps.setdefault(eps, []).append(resource_name(r))
    parts = [f"{format_percent(eps, trim=True)} for {', '.join(names)}"
             for eps, names in sorted(by_eps.items(), reverse=True)]
    what = [w for r, w in ((CPU, "CPU over capacity is throttled"),
                           (MEMORY, "memory over capacity means OOM kills")) if r in seen]
    return ("Risk: each safe count keeps the share of instants with total demand above "
            "capacity to at most " + " and ".join(parts)
            + (f" ({'; '.join(what)})" if what else "") + ".")


def host_answer(
    plans: Mapping[str, Plan], profiles: Profiles, st: Status, *,
    order: Sequence[str] | None = None,
) -> HostAnswer:
    """What the host's report says first (see the module docstring).

    Parameters
    ----------
    plans : Mapping[str, Plan]
        Per service, planned on the same machine.
    profiles : Profiles
        The profiles the plans were made from (their sized per-replica demand).
    st : Status
        :func:`capacity.reporting._status.status` of the plans.
    order : Sequence[str], optional
        Services most urgent first (default :func:`urgency_order`).
    """
    order = list(order) if order is not None else urgency_order(plans, st)
    res = [h for h in _host_resources(plans) if h.headroom is not None]
    unknown = unknown_capacities(plans)
    running = sum(p.running for p in plans.values())
    n_services = len(plans)
    machine = next(iter(plans.values())).machine.name if plans else "-"
    if not res:
        return HostAnswer("unknown", f"No resource of {machine} could be planned.",
                          tuple(st.reasons), (), None, (), None, tuple(unknown))
    # services without a safe count: their own containers count at 0 in the figures below
    undefined = [s for s in order if plans[s].safe_count is None]
    if undefined and len(undefined) == n_services:
        why = next((plans[s].reason.split(":")[0] for s in undefined if plans[s].reason), "")
        return HostAnswer(
            "unknown",
            f"Unknown: none of the {n_services} services running on {machine} has a safe "
            "count" + (f" (e.g. {why}: see the status)" if why else "") + ", so no "
            "headroom can be given.", (), (), None, (), None, tuple(unknown))
    # what binds the host is what binds its most urgent service (the status line's least
    # headroom, one formula for both), unless another resource is over capacity already
    bind = min(res, key=lambda h: h.headroom if h.headroom is not None else math.inf)
    least = next((h for h in res if st.least is not None and h.resource == st.least.basis),
                 None)
    if least is not None and not (bind.headroom is not None and bind.headroom < 0
                                  and bind.headroom < (least.headroom or 0.0)):
        # the status line's resource, unless another is further over capacity: CPU 85 %
        # over was named binding beside memory 138 % over
        bind = least
    name = resource_name(bind.resource)
    usable = bind.capacity - bind.reserve
    lines: list[str] = []
    move: list[str] = []
    more_mixes: int | None = None
    if bind.over or (bind.headroom is not None and bind.headroom < 0):
        excess = bind.reserve + bind.in_use - bind.capacity
        verdict = "over"
        headline = (f"Over capacity: the {running} containers of {n_services} services running "
                    f"need {format_value(bind.resource, bind.in_use, trim=True)} of {name}, "
                    f"{format_value(bind.resource, max(excess, 0.0), trim=True)} more than the "
                    f"{format_value(bind.resource, usable, trim=True)} usable on {machine} "
                    f"({format_percent(-(bind.headroom or 0.0), trim=True)} over); {name} binds.")
        # the services whose running containers free the most of the binding resource first,
        # each at what it takes of ``in_use`` (the period ahead, host cost included)
        load = [(amount, s) for s, amount in _running_takes(plans, profiles, bind).items()
                if amount > 0]
        load.sort(key=lambda t: (-t[0], natural_key(t[1])))
        freed = 0.0
        for amount, s in load:
            if freed >= excess:
                break
            freed += amount
            move.append(s)
        if move:
            shown = ", ".join(move[:_SHOWN]) + (
                f" and {len(move) - _SHOWN} more" if len(move) > _SHOWN else "")
            lines.append(f"To fit, move {len(move)} of the {n_services} services elsewhere "
                         f"({format_value(bind.resource, freed, trim=True)} of {name}), "
                         f"largest first: {shown}.")
        if usable > 0:
            hosts = math.ceil(bind.in_use / usable)
            lines.append(f"What runs now needs {bind.in_use / usable:.2f}x the {name} usable "
                         f"here: {hosts} hosts like this one.")
    else:
        mix = bind.in_use
        if mix > 0 and not undefined:  # copies of a mix whose every part has a figure
            more_mixes = max(math.floor(usable / mix) - 1, 0)
        verdict = ("tight" if bind.headroom is not None and bind.headroom < st.warn_headroom
                   else "under")
        warn = format_percent(st.warn_headroom, trim=True)
        what = ("Under capacity" if verdict == "under" else
                f"Under capacity but tight (below {warn} headroom)")
        headline = (f"{what}: {format_percent(bind.headroom, trim=True)} of {name} is still "
                    f"free on {machine} with the {running} containers of {n_services} services "
                    f"running; {name} binds.")
        if more_mixes is not None:
            copies = ("less than one more copy of the running mix" if more_mixes == 0 else
                      f"{more_mixes} more cop{'y' if more_mixes == 1 else 'ies'} of the "
                      f"running mix fit{'s' if more_mixes == 1 else ''} beside it")
            lines.append(f"What runs could grow {format_percent(usable / mix - 1, trim=True)} "
                         f"before {name} is full: {copies} (what runs now at the plans' "
                         "per-replica figures, host cost included; each service's own safe "
                         "count is in the table).")
    risk = _risk_line(plans, order)
    if risk:
        lines.append(risk)
    others = sorted((h for h in res if h is not bind), key=lambda h: h.headroom or 0.0)
    over_too = [h for h in others if h.over]
    if over_too:
        lines.append("Also over capacity: " + ", ".join(
            f"{resource_name(h.resource)} ({format_percent(-(h.headroom or 0.0), trim=True)} over)"
            for h in over_too) + ".")
    free = [h for h in others if not h.over]
    if free:
        lines.append("Free on the other resources: " + ", ".join(
            f"{resource_name(h.resource)} {format_percent(h.headroom, trim=True)}"
            for h in free) + ".")
    over = [s for s in order if plans[s].safe_count is not None
            and plans[s].running > (plans[s].safe_count or 0)]
    if over:
        shown = ", ".join(over[:_SHOWN]) + (
            f" and {len(over) - _SHOWN} more" if len(over) > _SHOWN else "")
        lines.append(f"{len(over)} service(s) run more containers than their safe count: "
                     f"{shown}.")
    if undefined:
        shown = ", ".join(undefined[:_SHOWN]) + (
            f" and {len(undefined) - _SHOWN} more" if len(undefined) > _SHOWN else "")
        lines.append(f"{len(undefined)} of the {n_services} services have no safe count "
                     f"({shown}: see the status): their own containers are not counted in "
                     "the figures above, so the host has less free than they say.")
    if unknown:
        lines.append("Not planned, capacity unknown: " + "; ".join(
            f"{label} ({why})" for label, why in unknown) + ".")
    return HostAnswer(verdict, headline, tuple(lines), tuple(res), bind.resource, tuple(move),
                      more_mixes, tuple(unknown))
