"""Charts, drawn on matplotlib ``Figure`` objects (never the pyplot state machine).

Each function returns a :class:`~matplotlib.figure.Figure` (or None when there is nothing to
draw, with the reason given by :func:`risk_curves_missing_reason` and friends) so a notebook
shows it and the report writer saves it as PNG and SVG. Units are in every axis label.

Lines a test (or a reader) can find by their label:

- ``"capacity = <value>"``: a horizontal line at the capacity, in the axis unit;
- ``"reserve"``, ``"reserve + others running"``: what is kept back before any replica;
- ``"safe count = N"``: a vertical line at the safe count;
- ``"epsilon = <value>"``: a horizontal line at the allowed P(overload);
- fleet sizing: ``"requested = N"`` (vertical), ``"hosts needed = H"`` and
  ``"N+k = H + k = T hosts"`` (horizontal).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, NullLocator

from .._columns import CPU, DISK_READ, DISK_USAGE, DISK_WRITE, MEMORY, NET_RX, NET_TX
from ..model._profile import Profiles
from ..solver._mix import FleetPlan
from ..solver._plan import Plan
from ._bands import DemandBand, demand_bands
from ._format import format_percent, format_value

__all__ = [
    "RESOURCE_AXIS",
    "demand_cdfs",
    "demand_vs_count",
    "fleet_packing",
    "hosts_vs_replicas",
    "risk_curves",
    "usage_timeseries",
    "utilisation",
]

#: (axis label with unit, divisor from the column's unit)
RESOURCE_AXIS: dict[str, tuple[str, float]] = {
    CPU: ("CPU demand (cores)", 1.0),
    MEMORY: ("memory working set (GiB)", 1024.0**3),
    NET_RX: ("network rx (MB/s)", 1e6),
    NET_TX: ("network tx (MB/s)", 1e6),
    DISK_READ: ("disk read (MB/s)", 1e6),
    DISK_WRITE: ("disk write (MB/s)", 1e6),
    DISK_USAGE: ("disk space (GiB)", 1024.0**3),
}

#: smallest probability drawn on the log axis of the risk chart (0 is drawn there)
RISK_FLOOR = 1e-6
_BIND_COLOUR = "tab:red"
_OTHER_COLOUR = "tab:blue"
_MAX_COLUMNS = 3


def axis_of(resource: str) -> tuple[str, float]:
    """(axis label with unit, divisor) of a resource column."""
    return RESOURCE_AXIS.get(resource, (f"{resource} (column unit)", 1.0))


def _planned(plan: Plan) -> list[str]:
    return [r for r, rp in plan.per_resource.items() if rp.safe_count is not None]


def _empty(title: str) -> Figure:
    fig = Figure(figsize=(6, 1.5), layout="constrained")
    ax = fig.add_subplot()
    ax.set_title(title)
    ax.set_axis_off()
    return fig


def _grid(
    n_rows: int, n_cols: int, width: float = 4.6, height: float = 3.4
) -> tuple[Figure, np.ndarray]:
    fig = Figure(figsize=(width * n_cols, height * n_rows), layout="constrained")
    return fig, fig.subplots(n_rows, n_cols, squeeze=False)


def _n_max(plan: Plan, resource: str) -> int:
    """Right end of a count axis: past the safe count and what runs now."""
    top = plan.per_resource[resource].safe_count or 0
    return max(int(top * 1.3) + 2, plan.running + 2)


# -- (1) total demand against count -------------------------------------------------------


def demand_vs_count(
    plans: Mapping[str, Plan],
    profiles: Profiles | None = None,
    *,
    bands: Mapping[str, Mapping[str, DemandBand]] | None = None,
) -> Figure:
    """Total demand against container count: one row per service, one panel per resource.

    Each panel stacks what is kept back (reserve, and the other services' running containers)
    under the replicas' total demand for N = 0 .. beyond the safe count: its median and the
    band up to the ``1 - epsilon`` quantile (from the plan's curve, or recomputed from the
    profile with the solver's model; the legend says which). Without either, only the plan's
    own figure is drawn: N times the per-replica demand the method sized with, labelled so.
    The capacity line, the reserve lines and the safe count are marked; the demand the method
    compared with the capacity at the safe count is a dot.

    Parameters
    ----------
    plans : Mapping[str, Plan]
        Per service.
    profiles : Profiles, optional
        Needed for the band when the plan has no demand curve.
    bands : Mapping[str, Mapping[str, DemandBand]], optional
        Precomputed bands per service and resource (default: computed here).
    """
    rows = [(s, _planned(p)) for s, p in plans.items()]
    rows = [(s, rs) for s, rs in rows if rs]
    n_cols = max((len(rs) for _, rs in rows), default=0)
    if n_cols == 0:
        return _empty("no resource could be planned")
    fig, grid = _grid(len(rows), n_cols)
    for row_axes, (service, planned) in zip(grid, rows, strict=True):
        plan = plans[service]
        n_max = {r: _n_max(plan, r) for r in planned}
        service_bands = (bands or {}).get(service)
        if service_bands is None:
            service_bands = demand_bands(plan, profiles, n_max=n_max)
        for ax in row_axes[len(planned):]:
            ax.set_axis_off()
        for ax, r in zip(row_axes, planned, strict=False):
            _demand_panel(ax, plan, r, n_max[r], service_bands.get(r))
    return fig


def _demand_panel(ax: Axes, plan: Plan, r: str, n_max: int, band: DemandBand | None) -> None:
    rp = plan.per_resource[r]
    label, scale = axis_of(r)
    capacity = float(rp.capacity or 0.0)
    base = rp.reserve + rp.occupied
    if band is not None:
        counts = np.asarray(band.counts)
        med = base + np.asarray(band.median)
        up = base + np.asarray(band.upper)
        short = "bootstrap" if "bootstrap" in band.source else (
            "normal approx." if "normal" in band.source else band.source)
        ax.fill_between(counts, med / scale, up / scale, color="tab:blue", alpha=0.25,
                        label=f"to the {1 - band.epsilon:.4g} quantile ({short})")
        ax.plot(counts, med / scale, color="tab:blue", label="median total demand")
        top = float(up.max())
    else:
        counts = np.arange(0, n_max + 1)
        per = rp.demand_per_replica or 0.0
        ax.plot(counts, (base + counts * per) / scale, color="tab:blue",
                label="N x per-replica figure of the plan (no distribution)")
        top = base + n_max * per
    ax.axhline(capacity / scale, color="black", label=f"capacity = {format_value(r, capacity)}")
    if rp.reserve:
        ax.axhline(rp.reserve / scale, color="grey", linestyle="-.", label="reserve")
    if rp.occupied:
        ax.axhline(base / scale, color="grey", linestyle="--", label="reserve + others running")
    n = rp.safe_count
    if n is not None:
        ax.axvline(n, color=_BIND_COLOUR, linestyle=":", label=f"safe count = {n}")
    if rp.demand_at_safe_count is not None and n is not None:
        ax.plot([n], [(base + rp.demand_at_safe_count) / scale], "o", color=_BIND_COLOUR,
                label="plan's total at the safe count")
    if plan.running:
        ax.axvline(plan.running, color="tab:green", linestyle="--",
                   label=f"running now = {plan.running}")
    binds = " (binds)" if r == plan.binding_resource else ""
    ax.set_title(f"{plan.service}: {r}{binds}", fontsize="medium")
    ax.set_xlabel("containers of this service (count)")
    ax.set_ylabel(label)
    ax.set_xlim(0, n_max)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylim(0, min(max(top, capacity), capacity * 1.3) / scale)
    ax.legend(loc="best", fontsize="xx-small")


# -- (2) P(overload) against count ---------------------------------------------------------


def risk_curves_missing_reason(plans: Mapping[str, Plan]) -> str:
    """Why :func:`risk_curves` draws nothing, or ``""`` when it draws."""
    if any(getattr(rp, "risk_curve", ()) for p in plans.values()
           for rp in p.per_resource.values()):
        return ""
    return ("the plans carry no risk curve (P(overload) against count): the solver that made "
            "them does not compute one, or no resource could be planned")


def risk_curves(plans: Mapping[str, Plan]) -> Figure | None:
    """P(overload) against container count, per service and resource, epsilon marked.

    The y axis is logarithmic; a probability of 0 is drawn at :data:`RISK_FLOOR` (the label
    says so). Returns None when no plan carries a risk curve
    (:func:`risk_curves_missing_reason` says why).
    """
    rows = []
    for s, p in plans.items():
        rs = [r for r, rp in p.per_resource.items() if getattr(rp, "risk_curve", ())]
        if rs:
            rows.append((s, rs))
    if not rows:
        return None
    n_cols = max(len(rs) for _, rs in rows)
    fig, grid = _grid(len(rows), n_cols)
    for row_axes, (service, rs) in zip(grid, rows, strict=True):
        plan = plans[service]
        for ax in row_axes[len(rs):]:
            ax.set_axis_off()
        for ax, r in zip(row_axes, rs, strict=False):
            rp = plan.per_resource[r]
            curve = np.asarray(rp.risk_curve, dtype=float)
            ax.plot(curve[:, 0], np.maximum(curve[:, 1], RISK_FLOOR), "-o", markersize=2.5,
                    color=_OTHER_COLOUR, label=f"P(overload), {plan.risk_model or 'risk'} model")
            eps = float(rp.epsilon if rp.epsilon is not None else plan.epsilon)
            ax.axhline(eps, color="black", linestyle="--", label=f"epsilon = {eps:g}")
            if rp.safe_count is not None:
                ax.axvline(rp.safe_count, color=_BIND_COLOUR, linestyle=":",
                           label=f"safe count = {rp.safe_count}")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_yscale("log")
            ax.yaxis.set_minor_locator(NullLocator())
            ax.set_ylim(RISK_FLOOR / 2, 1.5)
            binds = " (binds)" if r == plan.binding_resource else ""
            ax.set_title(f"{service}: {r}{binds}", fontsize="medium")
            ax.set_xlabel("containers of this service (count)")
            ax.set_ylabel(f"P(overload) (probability; 0 drawn at {RISK_FLOOR:g})")
            ax.legend(loc="lower right", fontsize="xx-small")
    return fig


# -- (3) per-service demand distributions ------------------------------------------------


_QUANTILE_STYLE = {"p50": ":", "p95": "--", "p99": "-.", "max": "-"}


def demand_cdfs(
    profiles: Profiles,
    plans: Mapping[str, Plan] | None = None,
    samples: pd.DataFrame | None = None,
) -> Figure:
    """One replica's demand as a cumulative distribution, per service and resource.

    From the samples table when given (the empirical CDF of every sample of the service),
    else from the profile's decaying-weight histogram. Vertical lines mark the profile's
    p50, p95, p99 and max; the per-replica figure the plan sized with is drawn in red.
    Only resources with a safe count in the plan (or, without plans, every resource with a
    non-zero maximum) are drawn.
    """
    rows = []
    for s, sp in profiles.services.items():
        plan = (plans or {}).get(s)
        if plan is not None:
            rs = [r for r in _planned(plan) if r in sp.resources]
        else:
            rs = [r for r, rp in sp.resources.items() if rp.max > 0]
        if rs:
            rows.append((s, rs))
    if not rows:
        return _empty("no demand distribution to draw")
    n_cols = max(len(rs) for _, rs in rows)
    fig, grid = _grid(len(rows), n_cols, height=3.0)
    for row_axes, (service, rs) in zip(grid, rows, strict=True):
        sp = profiles[service]
        plan = (plans or {}).get(service)
        for ax in row_axes[len(rs):]:
            ax.set_axis_off()
        for ax, r in zip(row_axes, rs, strict=False):
            label, scale = axis_of(r)
            rprof = sp.resources[r]
            values = None
            if samples is not None and r in samples.columns and "service" in samples.columns:
                col = samples.loc[samples["service"] == service, r].dropna().to_numpy(float)
                if col.size:
                    values = np.sort(col)
            if values is not None:
                ax.step(values / scale, np.arange(1, values.size + 1) / values.size,
                        where="post", color=_OTHER_COLOUR,
                        label=f"empirical CDF ({values.size} samples)")
            elif rprof.histogram_weights:
                edges = np.asarray(rprof.histogram_edges)
                cdf = np.concatenate([[0.0], np.cumsum(rprof.histogram_weights)])
                ax.plot(edges / scale, cdf / cdf[-1], color=_OTHER_COLOUR,
                        label="CDF of the profile's histogram (recent samples weigh more)")
            for name, style in _QUANTILE_STYLE.items():
                v = rprof.quantiles.get(name, getattr(rprof, name, None))
                if v is not None:
                    ax.axvline(float(v) / scale, color="grey", linestyle=style, linewidth=0.9,
                               label=f"{name} = {format_value(r, float(v))}")
            rplan = plan.per_resource.get(r) if plan is not None else None
            sized = rplan.demand_per_replica if rplan is not None else rprof.demand
            if sized is not None:
                what = (f"sized per replica ({rplan.method})" if rplan is not None
                        else f"sized by {rprof.demand_statistic}")
                ax.axvline(float(sized) / scale, color=_BIND_COLOUR, linewidth=1.5,
                           label=f"{what} = {format_value(r, float(sized))}")
            ax.set_ylim(0, 1.02)
            ax.set_title(f"{service}: {r}", fontsize="medium")
            ax.set_xlabel(f"one replica: {label}")
            ax.set_ylabel("share of samples at or below (fraction)")
            ax.legend(loc="lower right", fontsize="xx-small")
    return fig


# -- (4) usage over the collection window -------------------------------------------------

#: at most this many points per line (longer windows are averaged into bins)
_MAX_POINTS = 600


def _binned(frame: pd.DataFrame, value: str, by: str | None) -> pd.DataFrame:
    """Sum over containers per instant (and ``by``), then mean into at most 600 time bins."""
    keys = ["time"] if by is None else ["time", by]
    total = frame.groupby(keys, observed=True)[value].sum(min_count=1).reset_index()
    span = (total["time"].max() - total["time"].min()).total_seconds()
    n_times = total["time"].nunique()
    if n_times > _MAX_POINTS and span > 0:
        width = pd.Timedelta(seconds=span / _MAX_POINTS)
        total["time"] = total["time"].dt.floor(width)
        total = total.groupby(keys, observed=True)[value].mean().reset_index()
    return total


def usage_timeseries(
    samples: pd.DataFrame | None, host: pd.DataFrame | None = None
) -> Figure | None:
    """Usage over the collection window: per service (all its containers) and in total,
    one panel per resource with any non-zero sample; the host's own total when ``host``
    (a host rates table with the same columns) is given. Returns None without samples.
    """
    if samples is None or samples.empty or "time" not in samples.columns:
        return None
    resources = [r for r in RESOURCE_AXIS
                 if r in samples.columns and samples[r].fillna(0).abs().sum() > 0]
    if not resources:
        return None
    n_cols = min(len(resources), 2)
    n_rows = -(-len(resources) // n_cols)
    fig, grid = _grid(n_rows, n_cols, width=6.0, height=3.4)
    for ax in grid.flat[len(resources):]:
        ax.set_axis_off()
    for ax, r in zip(grid.flat, resources, strict=False):
        label, scale = axis_of(r)
        frame = samples[["time", "service", r]].dropna(subset=[r])
        per_service = _binned(frame, r, "service")
        for service, part in per_service.groupby("service", observed=True):
            ax.plot(part["time"], part[r] / scale, linewidth=0.9, label=str(service))
        total = _binned(frame, r, None)
        ax.plot(total["time"], total[r] / scale, color="black", linewidth=1.4,
                label="all containers")
        if host is not None and r in host.columns and "time" in host.columns:
            h = _binned(host[["time", r]].dropna(subset=[r]), r, None)
            ax.plot(h["time"], h[r] / scale, color="grey", linewidth=1.4, linestyle="--",
                    label="host total")
        ax.set_title(r, fontsize="medium")
        ax.set_xlabel("time (UTC)")
        ax.set_ylabel(label)
        ax.set_ylim(bottom=0)
        ax.legend(loc="upper left", fontsize="xx-small")
        for tick in ax.get_xticklabels():
            tick.set_rotation(20)
    return fig


# -- (5) utilisation at the safe count -----------------------------------------------------


def utilisation(plans: Mapping[str, Plan]) -> Figure:
    """Utilisation of each resource at the safe count, one panel per service.

    Bars: the demand the plan compared with capacity (reserve, others and the replicas'
    sized total) as a share of capacity; dots: the expected utilisation with mean demand.
    The binding resource is red and labelled; the 100 % line is capacity.
    """
    rows = [(s, [r for r in _planned(p)
                 if p.per_resource[r].utilisation_at_safe_count is not None])
            for s, p in plans.items()]
    rows = [(s, rs) for s, rs in rows if rs]
    if not rows:
        return _empty("no resource could be planned")
    n_cols = min(len(rows), _MAX_COLUMNS)
    n_rows = -(-len(rows) // n_cols)
    fig, grid = _grid(n_rows, n_cols, width=4.2, height=1.2 + 0.5 * max(len(r) for _, r in rows))
    for ax in grid.flat[len(rows):]:
        ax.set_axis_off()
    for ax, (service, rs) in zip(grid.flat, rows, strict=False):
        plan = plans[service]
        _utilisation_panel(
            ax, {r: plan.per_resource[r].utilisation_at_safe_count for r in rs},
            plan.binding_resource,
            {r: getattr(plan.per_resource[r], "expected_utilisation_at_safe_count", None)
             for r in rs},
            xlabel=f"utilisation at N = {plan.safe_count} (% of capacity)", title=service)
    return fig


def _utilisation_panel(
    ax: Axes,
    utils: Mapping[str, float | None],
    binding: str | None,
    expected: Mapping[str, float | None] | None = None,
    *,
    xlabel: str,
    title: str,
) -> None:
    """Horizontal bars of utilisation per resource (shares, drawn in %), the binding one red
    and labelled, diamonds at ``expected`` where given, and the 100 % capacity line."""
    rs = list(utils)
    pct = [float(utils[r] or 0.0) * 100 for r in rs]
    colours = [_BIND_COLOUR if r == binding else _OTHER_COLOUR for r in rs]
    y = np.arange(len(rs))
    bars = ax.barh(y, pct, color=colours)
    for bar, r, u in zip(bars, rs, pct, strict=True):
        bar.set_label(f"{r}{' (binds)' if r == binding else ''}: {format_percent(u / 100)}")
    exp = [(expected or {}).get(r) for r in rs]
    if any(e is not None for e in exp):
        xs = [e * 100 if e is not None else np.nan for e in exp]
        ax.plot(xs, y, "D", color="black", markersize=4, label="expected (mean demand)")
    ax.axvline(100, color="black", linewidth=1, label="capacity = 100 %")
    ax.set_yticks(y, [f"{r} (binds)" if r == binding else r for r in rs], fontsize="x-small")
    ax.set_xlim(0, max(110.0, max(pct, default=0.0) * 1.05))
    ax.set_xlabel(xlabel)
    ax.set_title(title, fontsize="medium")


# -- fleet sizing (capacity size) ----------------------------------------------------------


def fleet_packing(fleet: FleetPlan) -> Figure:
    """One host at the packing a fleet sizing chose: replicas of each service per host (left)
    and each resource's utilisation of that host (right; the binding resource red, the
    100 % line is capacity). Utilisation is what the method compared with capacity: reserve,
    others and the bound on the replicas' total, as a share of capacity."""
    if not fleet.per_host or not fleet.per_resource:
        return _empty("no packing: " + (fleet.reason or "nothing to place"))
    height = 1.2 + 0.5 * max(len(fleet.per_host), len(fleet.per_resource))
    fig, grid = _grid(1, 2, width=4.6, height=height)
    left, right = grid[0]
    services = list(fleet.per_host)
    y = np.arange(len(services))
    counts = [fleet.per_host[s] for s in services]
    bars = left.barh(y, counts, color=_OTHER_COLOUR)
    for bar, s, n in zip(bars, services, counts, strict=True):
        bar.set_label(f"{s}: {n} per host")
    left.set_yticks(y, services, fontsize="x-small")
    left.xaxis.set_major_locator(MaxNLocator(integer=True))
    left.set_xlim(0, max(counts, default=0) * 1.15 + 1)
    left.set_xlabel("replicas on one host (count)")
    left.set_title(f"per host, {fleet.hosts_needed} host(s) needed", fontsize="medium")
    rs = [r for r, m in fleet.per_resource.items() if m.utilisation is not None]
    _utilisation_panel(right, {r: fleet.per_resource[r].utilisation for r in rs},
                       fleet.binding_resource, xlabel="utilisation of one host (% of capacity)",
                       title=f"one host of {fleet.machine.name}")
    return fig


def hosts_vs_replicas(fleet: FleetPlan) -> Figure | None:
    """Hosts needed against the total replica count (the fleet's ``hosts_curve``, a step
    chart from 0 to twice the request), with the requested count (``"requested = N"``), the
    hosts needed (``"hosts needed = H"``) and the N+k line (``"N+k = H + k hosts"``, at the
    hosts including spare) marked. None when the fleet has no curve (nothing fits)."""
    if not fleet.hosts_curve or fleet.hosts is None or fleet.hosts_needed is None:
        return None
    curve = np.asarray(fleet.hosts_curve, dtype=float)
    total = sum(fleet.replicas.values())
    fig = Figure(figsize=(7.0, 3.6), layout="constrained")
    ax = fig.add_subplot()
    ax.step(curve[:, 0], curve[:, 1], where="post", color=_OTHER_COLOUR,
            label="hosts needed (without spare)")
    ax.axvline(total, color="black", linestyle=":", label=f"requested = {total}")
    ax.axhline(fleet.hosts_needed, color=_OTHER_COLOUR, linestyle="--", linewidth=0.9,
               label=f"hosts needed = {fleet.hosts_needed}")
    ax.axhline(fleet.hosts, color=_BIND_COLOUR, linestyle="-.",
               label=f"N+k = {fleet.hosts_needed} + {fleet.spare} = {fleet.hosts} hosts")
    ax.plot([total], [fleet.hosts_needed], "o", color=_BIND_COLOUR,
            label="the request")
    mix = "" if len(fleet.replicas) == 1 else ", the mix's proportions kept"
    ax.set_xlabel(f"replicas in all (count{mix})")
    ax.set_ylabel("hosts (count)")
    ax.set_xlim(0, max(float(curve[-1, 0]), 1.0))
    ax.set_ylim(0, max(float(curve[:, 1].max()), fleet.hosts) * 1.1 + 0.5)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title(f"hosts of {fleet.machine.name} against replicas", fontsize="medium")
    ax.legend(loc="upper left", fontsize="x-small")
    return fig
