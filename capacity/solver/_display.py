"""How plans show in a notebook: a table, the one-sentence answer, and a risk chart.

:class:`capacity.solver.Plan` delegates ``to_frame``, ``_repr_html_`` and ``plot`` here; the
functions on a mapping of plans (``service -> Plan``, as ``capacity report`` makes) serve the
public :class:`capacity.Plans`. Charts go on :class:`matplotlib.figure.Figure` objects, never
through pyplot.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .._units import format_percent, format_value, resource_name
from ..model._display import axes_or_new, html_table

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from ._mix import FleetPlan
    from ._plan import Plan

__all__ = [
    "RISK_FLOOR",
    "answer",
    "fleet_answer",
    "plan_frame",
    "plan_html",
    "plans_frame",
    "plans_html",
    "plot_plan",
    "plot_plans",
]

#: smallest probability drawn on the log axis of the risk chart (0 is drawn there)
RISK_FLOOR = 1e-6

_PLAN_COLUMNS = ("safe_count", "capacity", "reserve", "occupied", "demand_per_replica",
                 "demand_at_safe_count", "utilisation_at_safe_count", "epsilon",
                 "p_overload_at_safe_count", "p_overload_at_next", "binding", "reason")


def answer(plan: Plan) -> str:
    """The answer in one sentence: how many more fit, what binds, the risk accepted.

    Examples
    --------
    >>> from capacity.solver import Machine, plan
    >>> from capacity.solver._testing import constant_profiles
    >>> p = plan(constant_profiles({"cpu_cores": 0.5}), Machine.from_spec("cpus=4"),
    ...          valid_for_s=None)  # demand as recorded
    >>> answer(p)  # doctest: +NORMALIZE_WHITESPACE
    '7 more containers of svc fit beside the 0 running (7 in all) on cpus=4;
     CPU binds; at most 1 % of instants over capacity.'
    """
    if plan.safe_count is None:
        return (f"No safe count for {plan.service} on {plan.machine.name}: "
                f"{plan.reason or 'no resource could be planned'}.")
    binding = plan.binding_resource
    rp = plan.per_resource.get(binding or "")
    if rp is not None:
        eps = rp.epsilon if rp.epsilon is not None else plan.epsilon
        risk = (f"{resource_name(binding)} binds; at most {format_percent(eps, trim=True)} of "
                "instants over capacity")
    else:
        risk = f"{resource_name(binding)} binds (one replica per host)"
    more = plan.more
    noun = "container" if more == 1 else "containers"
    return (f"{more} more {noun} of {plan.service} fit beside the {plan.running} running "
            f"({plan.safe_count} in all) on {plan.machine.name}; {risk}.")


def _replicas_text(counts: Mapping[str, int], suffix: str) -> str:
    """``"120 replicas of web"`` for one service, ``"120 web + 40 worker replicas"`` for
    a mix (``suffix`` replaces ``replicas`` after a mix, e.g. ``"per host"``)."""
    if len(counts) == 1:
        ((service, n),) = counts.items()
        return f"{n} {'replica' if n == 1 else 'replicas'} of {service}"
    return " + ".join(f"{n} {s}" for s, n in counts.items()) + f" {suffix}"


def fleet_answer(fleet: FleetPlan) -> str:
    """The answer of a fleet sizing in one sentence: hosts (N + k), what binds at how many
    per host, the risk accepted.

    Examples
    --------
    >>> from capacity.solver import Machine, size_fleet
    >>> from capacity.solver._testing import constant_profiles
    >>> f = size_fleet(constant_profiles({"cpu_cores": 0.5}),
    ...                Machine.from_spec("cpus=8,cpu_saturation=1"), {"svc": 120}, spare=1)
    >>> fleet_answer(f)  # a 200 s history: x1.10, floor(8 / 0.55) = 14 per host
    ... # doctest: +NORMALIZE_WHITESPACE
    '120 replicas of svc need 10 hosts of cpus=8,cpu_saturation=1 (9 + 1 spare);
     CPU binds at 14 per host; at most 1 % of instants over capacity.'
    """
    what = _replicas_text(fleet.replicas, "replicas")
    if fleet.hosts is None or fleet.hosts_needed is None:
        return (f"{what} cannot be placed on hosts of {fleet.machine.name}: "
                f"{fleet.reason or 'no host holds one replica of each service'}.")
    hosts = f"{fleet.hosts} {'host' if fleet.hosts == 1 else 'hosts'}"
    verb = "needs" if sum(fleet.replicas.values()) == 1 and len(fleet.replicas) == 1 \
        else "need"
    per_host = (f"{next(iter(fleet.per_host.values()))} per host" if len(fleet.per_host) == 1
                else " + ".join(f"{n} {s}" for s, n in fleet.per_host.items()) + " per host")
    binding = fleet.binding_resource
    rp = fleet.per_resource.get(binding or "")
    eps = rp.epsilon if rp is not None else fleet.epsilon
    if binding is None:
        stop = f"one host holds them all ({per_host})" if fleet.per_host else "nothing to place"
    else:
        stop = f"{resource_name(binding)} binds at {per_host}"
    return (f"{what} {verb} {hosts} of {fleet.machine.name} ({fleet.hosts_needed} + "
            f"{fleet.spare} spare); {stop}; at most {format_percent(eps, trim=True)} of instants "
            "over capacity.")


def plan_frame(plan: Plan) -> pd.DataFrame:
    """One row per resource, in the resource column's unit (shares and probabilities as
    fractions). ``binding`` is True on the binding resource; ``safe_count`` is None where it
    cannot be computed, and ``reason`` says why."""
    rows = []
    for r, rp in plan.per_resource.items():
        rows.append({
            "resource": r, "safe_count": rp.safe_count, "capacity": rp.capacity,
            "reserve": rp.reserve, "occupied": rp.occupied,
            "demand_per_replica": rp.demand_per_replica,
            "demand_at_safe_count": rp.demand_at_safe_count,
            "utilisation_at_safe_count": rp.utilisation_at_safe_count,
            "epsilon": rp.epsilon, "p_overload_at_safe_count": rp.p_overload_at_safe_count,
            "p_overload_at_next": rp.p_overload_at_next,
            "binding": r == plan.binding_resource, "reason": rp.reason,
        })
    frame = pd.DataFrame(rows, columns=["resource", *_PLAN_COLUMNS]).set_index("resource")
    frame["safe_count"] = frame["safe_count"].astype("Int64")
    return frame


def plan_html(plan: Plan) -> str:
    """The one-sentence answer over a compact per-resource table, as HTML."""
    rows = []
    for r, rp in plan.per_resource.items():
        rows.append([
            r + (" (binds)" if r == plan.binding_resource else ""),
            "-" if rp.safe_count is None else str(rp.safe_count),
            format_value(r, rp.capacity),
            format_value(r, rp.reserve + rp.occupied),
            format_value(r, rp.demand_per_replica),
            format_percent(rp.utilisation_at_safe_count),
            format_percent(rp.p_overload_at_safe_count),
            format_percent(rp.epsilon),
            rp.reason or "",
        ])
    header = ("resource", "safe count", "capacity", "reserve + others", "per replica",
              "utilisation at N", "P(overload) at N", "epsilon", "note")
    caption = f"method {plan.method}, risk model {plan.risk_model or '-'}"
    return (f"<div><p><b>{html.escape(answer(plan))}</b></p>"
            f"{html_table(header, rows, caption=caption)}</div>")


def plans_frame(plans: Mapping[str, Plan]) -> pd.DataFrame:
    """One row per service: ``running``, ``safe_count``, ``more``, ``binding_resource``,
    ``method``, ``epsilon``, ``machine`` and ``reason`` (why a count is undefined)."""
    rows = [{"service": s, "running": p.running, "safe_count": p.safe_count, "more": p.more,
             "binding_resource": p.binding_resource, "method": p.method,
             "epsilon": p.epsilon, "machine": p.machine.name, "reason": p.reason}
            for s, p in plans.items()]
    frame = pd.DataFrame(rows, columns=["service", "running", "safe_count", "more",
                                        "binding_resource", "method", "epsilon", "machine",
                                        "reason"]).set_index("service")
    for c in ("safe_count", "more"):
        frame[c] = frame[c].astype("Int64")
    return frame


def plans_html(plans: Mapping[str, Plan]) -> str:
    """One row per service with its answer, under a one-line summary."""
    rows = [[s, str(p.running), "-" if p.safe_count is None else str(p.safe_count),
             "-" if p.more is None else str(p.more), p.binding_resource or "-", answer(p)]
            for s, p in plans.items()]
    machines = sorted({p.machine.name for p in plans.values()})
    summary = (f"{len(plans)} service(s) planned on {', '.join(machines) or '-'}: how many of "
               "each fit beside what the others use now.")
    header = ("service", "running", "safe count", "more", "binding", "answer")
    return f"<div><p>{html.escape(summary)}</p>{html_table(header, rows)}</div>"


def plot_plan(plan: Plan, ax: Axes | None = None) -> Axes:
    """P(overload) against the container count, one line per resource with a risk curve.

    Dashed horizontal lines are each resource's epsilon (memory's is stricter), the dotted
    vertical line is the safe count. The y axis is logarithmic; a probability of 0 is drawn at
    :data:`RISK_FLOOR`.
    """
    ax = axes_or_new(ax)
    drawn = False
    epsilons: set[float] = set()
    for r, rp in plan.per_resource.items():
        if not rp.risk_curve:
            continue
        curve = np.asarray(rp.risk_curve, dtype=float)
        binds = " (binds)" if r == plan.binding_resource else ""
        ax.plot(curve[:, 0], np.maximum(curve[:, 1], RISK_FLOOR), "-o", markersize=2.5,
                linewidth=2.0 if binds else 1.0, label=f"{r}{binds}")
        epsilons.add(float(rp.epsilon if rp.epsilon is not None else plan.epsilon))
        drawn = True
    if not drawn:
        ax.text(0.5, 0.5, "no risk curve: no resource could be planned",
                ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return ax
    for eps in sorted(epsilons):
        ax.axhline(eps, color="black", linestyle="--", linewidth=0.8, label=f"epsilon = {eps:g}")
    if plan.safe_count is not None:
        ax.axvline(plan.safe_count, color="tab:red", linestyle=":",
                   label=f"safe count = {plan.safe_count}")
    ax.set_yscale("log")
    ax.set_ylim(RISK_FLOOR / 2, 1.5)
    ax.set_xlabel(f"containers of {plan.service} (count)")
    ax.set_ylabel(f"P(overload) (0 drawn at {RISK_FLOOR:g})")
    ax.set_title(f"{plan.service} on {plan.machine.name}", fontsize="medium")
    ax.legend(fontsize="x-small", loc="lower right")
    return ax


def plot_plans(plans: Mapping[str, Plan], ax: Axes | None = None) -> Axes:
    """The safe count per service as bars, with what runs now marked.

    The x axis is logarithmic when the counts span more than a factor of 100 (an idle
    service fits by the thousand beside a busy one). A service without a count is named
    with its reason on the y axis.
    """
    ax = axes_or_new(ax, height=1.2 + 0.45 * max(len(plans), 1))
    names = list(plans)
    y = np.arange(len(names))
    counts = [plans[s].safe_count for s in names]
    values = [float(c) if c is not None else 0.0 for c in counts]
    ax.barh(y, values, color="tab:blue", label="safe count")
    ax.plot([plans[s].running for s in names], y, "D", color="black", markersize=5,
            label="running now")
    for yi, c in zip(y, counts, strict=True):
        if c is not None:
            ax.annotate(str(c), (c, yi), xytext=(3, 0), textcoords="offset points",
                        va="center", fontsize="x-small")
    labels = [s if plans[s].safe_count is not None else f"{s} (undefined)" for s in names]
    ax.set_yticks(y, labels, fontsize="x-small")
    positive = [v for v in values if v > 0]
    if positive and max(positive) / max(min(positive), 1.0) > 100:
        ax.set_xscale("log")
    ax.set_xlabel("containers of the service (count)")
    machines = sorted({p.machine.name for p in plans.values()})
    ax.set_title(f"safe count per service on {', '.join(machines)}", fontsize="medium")
    ax.legend(fontsize="x-small", loc="lower right")
    return ax
