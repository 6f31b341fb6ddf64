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

import re
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullLocator

from .._columns import CPU, DISK_READ, DISK_USAGE, DISK_WRITE, MEMORY, NET_RX, NET_TX
from ..model._profile import Profiles
from ..solver._mix import FleetPlan
from ..solver._plan import Plan
from ._bands import DemandBand, demand_bands
from ._format import format_percent, format_value
from ._host import natural_key, resource_name

__all__ = [
    "MAX_ALL_RESOURCE_PANELS",
    "MAX_PANELS",
    "RESOURCE_AXIS",
    "RESOURCE_COLOURS",
    "demand_cdfs",
    "demand_vs_count",
    "fleet_packing",
    "hosts_vs_replicas",
    "risk_curves",
    "safe_counts",
    "usage_timeseries",
    "utilisation",
]

#: (axis label with unit, divisor from the column's unit)
RESOURCE_AXIS: dict[str, tuple[str, float]] = {
    CPU: ("CPU demand (cores)", 1.0),
    MEMORY: ("memory working set (GiB)", 1024.0**3),
    NET_RX: ("network in (MB/s)", 1e6),
    NET_TX: ("network out (MB/s)", 1e6),
    DISK_READ: ("disk read (MB/s)", 1e6),
    DISK_WRITE: ("disk write (MB/s)", 1e6),
    DISK_USAGE: ("disk space (GiB)", 1024.0**3),
}

#: the colour of each resource where a chart colours by the binding resource
RESOURCE_COLOURS: dict[str, str] = {
    CPU: "tab:orange",
    MEMORY: "tab:purple",
    NET_RX: "tab:cyan",
    NET_TX: "tab:olive",
    DISK_READ: "tab:brown",
    DISK_WRITE: "tab:pink",
    DISK_USAGE: "tab:gray",
    "count": "tab:green",
}
_UNDEFINED_COLOUR = "lightgrey"

#: smallest probability drawn on the log axis of the risk chart (0 is drawn there)
RISK_FLOOR = 1e-6
#: most panels a per-service chart draws: the services with least headroom first (the
#: report's table has every service); a chart over many services is a page nobody reads
MAX_PANELS = 12
#: every planned resource of every service is drawn while that makes at most this many
#: panels; past it, each service's binding resource only (the others are in its table)
MAX_ALL_RESOURCE_PANELS = 6
_BIND_COLOUR = "tab:red"
_OTHER_COLOUR = "tab:blue"
_MAX_COLUMNS = 3
#: most points an empirical CDF draws (evenly spaced ranks; the label keeps the sample count)
_MAX_CDF_POINTS = 300
#: services drawn by name in the time series; the rest are summed into one line
_MAX_SERIES = 8


#: tick labels as plain text (1e-06, 1000): a log axis's default writes TeX (10^{-6}), whose
#: parser costs a second to build in every process that draws one
_PLAIN = FuncFormatter(lambda value, _pos: f"{value:g}")


def _title(ax: Axes, text: str, **kwargs: Any) -> None:
    """``ax.set_title`` at a fixed height (``y=1``: matplotlib otherwise measures every tick
    label of the axes on each draw to lift the title over top ticks, which no chart has)."""
    ax.set_title(text, y=1.0, **kwargs)


def axis_of(resource: str, largest: float | None = None) -> tuple[str, float]:
    """(axis label with unit, divisor) of a resource column; a size axis whose ``largest``
    value (column unit) is under 1 GiB is in MiB (0.0629 GiB tick labels are unreadable)."""
    label, scale = RESOURCE_AXIS.get(resource, (f"{resource} (column unit)", 1.0))
    if scale == 1024.0**3 and largest is not None and largest < 1024.0**3:
        return label.replace("(GiB)", "(MiB)"), 1024.0**2
    return label, scale


def _planned(plan: Plan) -> list[str]:
    return [r for r, rp in plan.per_resource.items() if rp.safe_count is not None]


def _empty(title: str) -> Figure:
    fig = Figure(figsize=(6, 1.5))
    ax = fig.add_subplot()
    _title(ax, title)
    ax.set_axis_off()
    return fig


def _grid(
    n_rows: int, n_cols: int, width: float = 4.6, height: float = 3.4, *,
    left: float = 0.8, right: float = 0.2, top: float = 0.4, bottom: float = 0.65,
    wgap: float = 0.9, hgap: float = 0.9, n: int | None = None,
) -> tuple[Figure, list[Axes]]:
    """A fixed grid of panels (no layout engine: margins and gaps in inches, so tick labels,
    axis labels and titles get their room without the cost of a constrained layout).
    ``width`` and ``height`` are one panel's cell, inches. Only the first ``n`` cells (row
    by row; default all) get an Axes: an empty cell costs as much to make as a drawn one."""
    fig_w, fig_h = width * n_cols, height * n_rows
    ax_w = max((fig_w - left - right - wgap * (n_cols - 1)) / n_cols, 0.5)
    ax_h = max((fig_h - top - bottom - hgap * (n_rows - 1)) / n_rows, 0.5)
    fig = Figure(figsize=(fig_w, fig_h))
    spec = fig.add_gridspec(
        n_rows, n_cols, left=left / fig_w, right=1 - right / fig_w, bottom=bottom / fig_h,
        top=1 - top / fig_h, wspace=wgap / ax_w, hspace=hgap / ax_h)
    cells = n_rows * n_cols if n is None else min(n, n_rows * n_cols)
    axes = [fig.add_subplot(spec[i // n_cols, i % n_cols]) for i in range(cells)]
    return fig, axes


def _n_max(plan: Plan, resource: str) -> int:
    """Right end of a count axis: past the safe count and what runs now."""
    top = plan.per_resource[resource].safe_count or 0
    return max(int(top * 1.3) + 2, plan.running + 2)


def _urgency(plans: Mapping[str, Plan]) -> list[str]:
    """Services most urgent first (over their safe count, undefined, then least headroom)."""
    from ._host import urgency_order
    from ._status import status

    return urgency_order(plans, status(plans))


def _panels(
    plans: Mapping[str, Plan], resources: Mapping[str, list[str]], limit: int,
) -> tuple[list[tuple[str, str]], int]:
    """(service, resource) panels to draw, most urgent service first: every resource of
    every service when that is at most :data:`MAX_ALL_RESOURCE_PANELS` panels (and
    ``limit``), else each service's binding resource (or its first) for the ``limit`` most
    urgent services. Also returns how many services were left out."""
    order = [s for s in _urgency(plans) if resources.get(s)]
    every = [(s, r) for s in order for r in _binding_first(plans[s], resources[s])]
    if len(every) <= min(limit, MAX_ALL_RESOURCE_PANELS):
        return every, 0
    chosen = [(s, _binding_first(plans[s], resources[s])[0]) for s in order[:limit]]
    return chosen, max(len(order) - limit, 0)


def _binding_first(plan: Plan, resources: list[str]) -> list[str]:
    return sorted(resources, key=lambda r: r != plan.binding_resource)


def _panel_grid(n: int, width: float = 4.4, height: float = 3.4,
                **margins: float) -> tuple[Figure, list[Axes]]:
    n_cols = min(n, _MAX_COLUMNS)
    n_rows = -(-n // n_cols)
    return _grid(n_rows, n_cols, width, height, n=n, **margins)


#: a legend's column, inches (x-small text of the longest generic label)
_LEGEND_COLUMN_IN = 3.0
#: a legend row and the band's padding, inches
_LEGEND_ROW_IN, _LEGEND_PAD_IN = 0.2, 0.12
_VALUE = re.compile(r" = .*$")


def _generic(label: str) -> str:
    """A line's label without the panel's own value: ``"capacity = 2 cores"`` ->
    ``"capacity"``, ``"to the 0.99 quantile (bootstrap)"`` -> ``"band up to the 1 - epsilon
    quantile (bootstrap)"``, ``"empirical CDF (360 samples)"`` -> ``"empirical CDF"``."""
    if label.startswith("to the ") and " quantile" in label:
        return "band up to the 1 - epsilon quantile" + label[label.index(" quantile") + 9:]
    if label.startswith("empirical CDF ("):
        return "empirical CDF"
    return _VALUE.sub("", label)


def _shared_legend(fig: Figure, axes: list[Axes]) -> None:
    """One legend for all panels, in a band added below them: each kind of line once, by its
    generic label (:func:`_generic`; the lines keep their own labels, values included). A
    legend per panel covers its data, and costs as much to draw as the panel; the values
    are on the axes, by the safe-count line, and in the report's tables."""
    seen: dict[str, Any] = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            seen.setdefault(_generic(label), handle)
    if not seen:
        return
    w, h = fig.get_size_inches()
    ncol = max(1, min(len(seen), int(w // _LEGEND_COLUMN_IN)))
    band = _LEGEND_PAD_IN * 2 + _LEGEND_ROW_IN * -(-len(seen) // ncol)
    boxes = [ax.get_position() for ax in axes]  # figure fractions of the old height
    fig.set_size_inches(w, h + band)
    for ax, b in zip(axes, boxes, strict=True):  # the same place in inches, from the top
        ax.set_position((b.x0, (b.y0 * h + band) / (h + band), b.width,
                         b.height * h / (h + band)))
    fig.legend(list(seen.values()), list(seen), loc="lower left", ncol=ncol,
               bbox_to_anchor=(0.1 / w, _LEGEND_PAD_IN / 2 / (h + band)),
               fontsize="small", frameon=False, borderaxespad=0)


def _mark_safe_count(ax: Axes, n: int) -> None:
    """The safe count's value by its vertical line, at the top of the panel."""
    ax.annotate(f"safe {n}", (n, 1.0), xycoords=("data", "axes fraction"), xytext=(2, -2),
                textcoords="offset points", va="top", fontsize="x-small", color=_BIND_COLOUR,
                bbox={"boxstyle": "square,pad=0.1", "facecolor": "white", "edgecolor": "none",
                      "alpha": 0.8})


def _left_out_note(fig: Figure, left_out: int) -> None:
    if left_out:
        fig.text(0.005, 0.995, f"{left_out} more service(s) with more headroom not drawn "
                 "(every service is in the table)", fontsize="x-small", va="top",
                 color="dimgrey")


# -- (0) the answer at a glance -------------------------------------------------------------


#: bars of the safe-count chart: the most urgent services (100 bars made a page-long chart)
MAX_SAFE_COUNT_BARS = 30


def safe_counts(plans: Mapping[str, Plan]) -> Figure:
    """The answer at a glance: one bar per service, its safe count, coloured by the resource
    that binds (grey: no safe count), most urgent service at the top; a black tick at the
    containers running now (past the bar's end: more run than is safe).

    Each bar's label is ``"<service>: safe count N, <resource> binds"``; each tick's
    ``"<service>: running now = R"``. The legend names the binding resources drawn.
    """
    order = _urgency(plans)
    if not order:
        return _empty("no service to plan")
    total = len(order)
    order = order[:MAX_SAFE_COUNT_BARS]  # the most urgent: the table has every service
    n = len(order)
    longest = max(len(s) for s in order)
    left = min(0.3 + 0.075 * longest, 3.5)
    height = 1.3 + 0.24 * n
    fig, (ax,) = _grid(1, 1, width=left + 7.0, height=height, left=left, right=1.9,
                       top=0.45, bottom=0.75)
    y = np.arange(n)[::-1]
    counts = [plans[s].safe_count for s in order]
    widths = [float(c) if c is not None else 0.0 for c in counts]
    colours = [RESOURCE_COLOURS.get(plans[s].binding_resource or "", _OTHER_COLOUR)
               if plans[s].safe_count is not None else _UNDEFINED_COLOUR for s in order]
    bars = ax.barh(y, widths, color=colours, height=0.7)
    running = np.array([plans[s].running for s in order], dtype=float)
    top = max(max(widths, default=0.0), float(running.max(initial=0.0)), 1.0)
    for bar, s, c, yy in zip(bars, order, counts, y, strict=True):
        p = plans[s]
        if c is None:
            bar.set_label(f"{s}: no safe count")
            text = f"no safe count ({p.running} running)"
        else:
            bar.set_label(f"{s}: safe count {c}, {resource_name(p.binding_resource)} binds")
            over = p.running - c
            text = f"{c} ({p.running} running{f', {over} over' if over > 0 else ''})"
        ax.annotate(text, (max(float(c or 0), p.running), yy), xytext=(4, 0),
                    textcoords="offset points", va="center", fontsize="x-small",
                    color=_BIND_COLOUR if c is None or p.running > c else "black")
    for s, r, yy in zip(order, running, y, strict=True):
        ax.plot([r, r], [yy - 0.42, yy + 0.42], color="black", linewidth=1.6,
                label=f"{s}: running now = {int(r)}")
    ax.set_yticks(y, order, fontsize="x-small" if n > 20 else "small")
    ax.set_ylim(-0.6, n - 0.4)
    known = sorted(w for w in widths if w > 0)
    if known and known[-1] > 20 * max(known[len(known) // 2], 1.0):
        # one service fits thousands, the others a few: a linear axis hides the few
        ax.set_xscale("symlog", linthresh=10)
        ax.set_xlim(0, top * 3)
        ax.xaxis.set_minor_locator(NullLocator())
        ax.xaxis.set_major_formatter(_PLAIN)
    else:
        ax.set_xlim(0, top * 1.6 + 1)  # room for the count beside the longest bar
        ax.xaxis.set_major_locator(MaxNLocator(nbins=6, integer=True))
    ax.set_xlabel("safe count: containers of the service that fit (count)")
    _title(ax, "Safe count per service, least headroom first; colour: what binds"
           + (f" ({n} most urgent of {total})" if total > n else ""),
           fontsize="medium", loc="left")
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    seen = dict.fromkeys(plans[s].binding_resource for s in order
                         if plans[s].safe_count is not None)
    handles: list[Any] = [Patch(color=RESOURCE_COLOURS.get(r or "", _OTHER_COLOUR),
                                label=f"{resource_name(r)} binds") for r in seen]
    if any(plans[s].safe_count is None for s in order):
        handles.append(Patch(color=_UNDEFINED_COLOUR, label="no safe count"))
    handles.append(Line2D([], [], color="black", linewidth=1.6, label="running now"))
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0),
              fontsize="x-small", borderaxespad=0)
    return fig


# -- (1) total demand against count -------------------------------------------------------


def demand_vs_count(
    plans: Mapping[str, Plan],
    profiles: Profiles | None = None,
    *,
    bands: Mapping[str, Mapping[str, DemandBand]] | None = None,
    limit: int = MAX_PANELS,
) -> Figure:
    """Total demand against container count: small multiples, one panel per service and
    resource (every planned resource while that makes at most
    :data:`MAX_ALL_RESOURCE_PANELS` panels, else the binding resource of the ``limit`` most
    urgent services).

    Each panel stacks what is kept back (reserve, and the other services' running containers)
    under the replicas' total demand for N = 0 .. beyond the safe count: its median and the
    band up to the ``1 - epsilon`` quantile (from the plan's curve, or recomputed from the
    profile with the solver's model; the legend says which). Without either, only the plan's
    own figure is drawn: N times the per-replica demand the method sized with, labelled so.
    The capacity line, the reserve lines and the safe count are marked; the demand the method
    compared with the capacity at the safe count is a dot. Titles read
    ``"<service>: <resource name>"`` with ``" (binds)"`` on the binding resource.

    Parameters
    ----------
    plans : Mapping[str, Plan]
        Per service.
    profiles : Profiles, optional
        Needed for the band when the plan has no demand curve.
    bands : Mapping[str, Mapping[str, DemandBand]], optional
        Precomputed bands per service and resource (default: computed here, for the panels
        drawn only).
    limit : int
        Most panels drawn.
    """
    panels, left_out = _panels(plans, {s: _planned(p) for s, p in plans.items()}, limit)
    if not panels:
        return _empty("no resource could be planned")
    fig, axes = _panel_grid(len(panels))
    for ax, (service, r) in zip(axes, panels, strict=True):
        plan = plans[service]
        n_max = _n_max(plan, r)
        service_bands = (bands or {}).get(service)
        if service_bands is None:
            service_bands = demand_bands(plan, profiles, n_max={r: n_max}, resources=[r])
        _demand_panel(ax, plan, r, n_max, service_bands.get(r))
    _shared_legend(fig, axes)
    _left_out_note(fig, left_out)
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
    ax.axhline(capacity / scale, color="black",
               label=f"capacity = {format_value(r, capacity, trim=True)}")
    if rp.reserve:
        ax.axhline(rp.reserve / scale, color="grey", linestyle="-.", label="reserve")
    if rp.occupied:
        ax.axhline(base / scale, color="grey", linestyle="--", label="reserve + others running")
    n = rp.safe_count
    if n is not None:
        ax.axvline(n, color=_BIND_COLOUR, linestyle=":", label=f"safe count = {n}")
        _mark_safe_count(ax, n)
    if rp.demand_at_safe_count is not None and n is not None:
        ax.plot([n], [(base + rp.demand_at_safe_count) / scale], "o", color=_BIND_COLOUR,
                label="plan's total at the safe count")
    if plan.running:
        ax.axvline(plan.running, color="tab:green", linestyle="--",
                   label=f"running now = {plan.running}")
    binds = " (binds)" if r == plan.binding_resource else ""
    _title(ax, f"{plan.service}: {resource_name(r)}{binds}", fontsize="medium")
    ax.set_xlabel("containers of this service (count)")
    ax.set_ylabel(label)
    ax.set_xlim(0, n_max)
    ax.xaxis.set_major_locator(MaxNLocator(nbins=5, integer=True))
    upper = min(max(top, capacity), capacity * 1.3)
    if base >= capacity:  # over capacity already: show what is kept back, above the line
        upper = max(upper, base * 1.15)
    ax.set_ylim(0, upper / scale)
    ax.yaxis.set_major_locator(MaxNLocator(nbins=5))


# -- (2) P(overload) against count ---------------------------------------------------------


def risk_curves_missing_reason(plans: Mapping[str, Plan]) -> str:
    """Why :func:`risk_curves` draws nothing, or ``""`` when it draws."""
    if any(getattr(rp, "risk_curve", ()) for p in plans.values()
           for rp in p.per_resource.values()):
        return ""
    return ("the plans carry no risk curve (P(overload) against count): the solver that made "
            "them does not compute one, or no resource could be planned")


def risk_curves(plans: Mapping[str, Plan], *, limit: int = MAX_PANELS) -> Figure | None:
    """P(overload) against container count, per service and resource, epsilon marked;
    panels chosen as in :func:`demand_vs_count`.

    The y axis is logarithmic; a probability of 0 is drawn at :data:`RISK_FLOOR` (the label
    says so). Returns None when no plan carries a risk curve
    (:func:`risk_curves_missing_reason` says why).
    """
    with_curve = {s: [r for r, rp in p.per_resource.items() if getattr(rp, "risk_curve", ())]
                  for s, p in plans.items()}
    panels, left_out = _panels(plans, with_curve, limit)
    if not panels:
        return None
    fig, axes = _panel_grid(len(panels))
    for ax, (service, r) in zip(axes, panels, strict=True):
        plan = plans[service]
        rp = plan.per_resource[r]
        curve = np.asarray(rp.risk_curve, dtype=float)
        ax.plot(curve[:, 0], np.maximum(curve[:, 1], RISK_FLOOR), "-o", markersize=2.5,
                color=_OTHER_COLOUR, label=f"P(overload), {plan.risk_model or 'risk'} model")
        eps = float(rp.epsilon if rp.epsilon is not None else plan.epsilon)
        ax.axhline(eps, color="black", linestyle="--", label=f"epsilon = {eps:g}")
        ax.annotate(f"epsilon {eps:g}", (1.0, eps), xycoords=("axes fraction", "data"),
                    xytext=(-2, 2), textcoords="offset points", ha="right", va="bottom",
                    fontsize="x-small")
        if rp.safe_count is not None:
            ax.axvline(rp.safe_count, color=_BIND_COLOUR, linestyle=":",
                       label=f"safe count = {rp.safe_count}")
            _mark_safe_count(ax, rp.safe_count)
        ax.xaxis.set_major_locator(MaxNLocator(nbins=5, integer=True))
        ax.set_yscale("log")
        # every other decade labelled: 1e-06 0.0001 0.01 1 (each tick costs as much as a line)
        ax.yaxis.set_major_locator(LogLocator(numticks=5))
        ax.yaxis.set_minor_locator(NullLocator())
        ax.yaxis.set_major_formatter(_PLAIN)
        ax.set_ylim(RISK_FLOOR / 2, 1.5)
        binds = " (binds)" if r == plan.binding_resource else ""
        _title(ax, f"{service}: {resource_name(r)}{binds}", fontsize="medium")
        ax.set_xlabel("containers of this service (count)")
        ax.set_ylabel(f"P(overload) (probability; 0 at {RISK_FLOOR:g})")
    _shared_legend(fig, axes)
    _left_out_note(fig, left_out)
    return fig


# -- (3) per-service demand distributions ------------------------------------------------


_QUANTILE_STYLE = {"p50": ":", "p95": "--", "p99": "-.", "max": "-"}


def demand_cdfs(
    profiles: Profiles,
    plans: Mapping[str, Plan] | None = None,
    samples: pd.DataFrame | None = None,
    *,
    limit: int = MAX_PANELS,
) -> Figure:
    """One replica's demand as a cumulative distribution, per service and resource.

    From the samples table when given (the empirical CDF of every sample of the service,
    drawn at up to 300 evenly spaced ranks; the label gives the sample count), else from
    the profile's decaying-weight histogram. Vertical lines mark the profile's p50, p95, p99
    and max; the per-replica figure the plan sized with is drawn in red. Only resources with
    a safe count in the plan (or, without plans, every resource with a non-zero maximum) are
    drawn, panels chosen as in :func:`demand_vs_count` (with plans: most urgent first).
    """
    chosen: dict[str, list[str]] = {}
    for s, sp in profiles.services.items():
        plan = (plans or {}).get(s)
        if plan is not None:
            chosen[s] = [r for r in _planned(plan) if r in sp.resources]
        else:
            chosen[s] = [r for r, rp in sp.resources.items() if rp.max > 0]
    if plans:
        in_plans = {s: p for s, p in plans.items() if s in chosen}
        panels, left_out = _panels(in_plans, chosen, limit)
    else:
        every = [(s, r) for s in sorted(chosen, key=natural_key) for r in chosen[s]]
        panels, left_out = every[:limit], max(len({s for s, _ in every[limit:]}), 0)
    if not panels:
        return _empty("no demand distribution to draw")
    groups = None
    if samples is not None and "service" in samples.columns:
        wanted = {s for s, _ in panels}
        part = samples[samples["service"].isin(wanted)]
        groups = dict(tuple(part.groupby("service", observed=True)))
    fig, axes = _panel_grid(len(panels), height=3.0)
    for ax, (service, r) in zip(axes, panels, strict=True):
        sp = profiles[service]
        plan = (plans or {}).get(service)
        rprof = sp.resources[r]
        label, scale = axis_of(r, rprof.max)
        values = None
        if groups is not None and service in groups and r in groups[service].columns:
            col = groups[service][r].dropna().to_numpy(float)
            if col.size:
                values = np.sort(col)
        if values is not None:
            ranks = np.arange(1, values.size + 1) / values.size
            if values.size > _MAX_CDF_POINTS:
                idx = np.unique(np.linspace(0, values.size - 1, _MAX_CDF_POINTS).astype(int))
                xs, ys = values[idx], ranks[idx]
            else:
                xs, ys = values, ranks
            ax.step(xs / scale, ys, where="post", color=_OTHER_COLOUR,
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
                           label=f"{name} = {format_value(r, float(v), trim=True)}")
        rplan = plan.per_resource.get(r) if plan is not None else None
        sized = rplan.demand_per_replica if rplan is not None else rprof.demand
        if sized is not None:
            what = (f"sized per replica ({rplan.method})" if rplan is not None
                    else f"sized by {rprof.demand_statistic}")
            ax.axvline(float(sized) / scale, color=_BIND_COLOUR, linewidth=1.5,
                       label=f"{what} = {format_value(r, float(sized), trim=True)}")
        ax.set_ylim(0, 1.02)
        ax.set_yticks([0.0, 0.25, 0.5, 0.75, 1.0])
        ax.xaxis.set_major_locator(MaxNLocator(nbins=4))
        _title(ax, f"{service}: {resource_name(r)}", fontsize="medium")
        ax.set_xlabel(f"one replica: {label}")
        ax.set_ylabel("share of samples at or below (fraction)")
    _shared_legend(fig, axes)
    _left_out_note(fig, left_out)
    return fig


# -- (4) usage over the collection window -------------------------------------------------

#: at most this many points per line (longer windows are averaged into bins)
_MAX_POINTS = 300


def _binned(frame: pd.DataFrame, value: str, by: str | None) -> pd.DataFrame:
    """Sum over containers per instant (and ``by``), then mean into at most 300 time bins."""
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
    """Usage over the collection window, one panel per resource with any non-zero sample:
    the 8 services with the highest peak by name (all their containers summed), the rest
    summed into one ``"other services (K)"`` line, and all containers in total; the host's
    own total when ``host`` (a host rates table with the same columns) is given. Panel
    titles are the resource's human name. Returns None without samples.
    """
    if samples is None or samples.empty or "time" not in samples.columns:
        return None
    resources = [r for r in RESOURCE_AXIS
                 if r in samples.columns and samples[r].fillna(0).abs().sum() > 0]
    if not resources:
        return None
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter

    n_cols = min(len(resources), 2)
    n_rows = -(-len(resources) // n_cols)
    fig, axes = _grid(n_rows, n_cols, width=6.4, height=3.4, right=1.9, wgap=2.6,
                      n=len(resources))
    for ax, r in zip(axes, resources, strict=True):
        label, scale = axis_of(r)
        frame = samples[["time", "service", r]].dropna(subset=[r])
        per_service = _binned(frame, r, "service")
        peaks = per_service.groupby("service", observed=True)[r].max()
        named = list(peaks.sort_values(ascending=False).index[:_MAX_SERIES])
        named.sort(key=lambda s: natural_key(str(s)))
        for service in named:
            part = per_service[per_service["service"] == service]
            ax.plot(part["time"], part[r] / scale, linewidth=0.9, label=str(service))
        rest = per_service[~per_service["service"].isin(named)]
        if not rest.empty:
            other = rest.groupby("time")[r].sum().reset_index()
            n_rest = rest["service"].nunique()
            ax.plot(other["time"], other[r] / scale, color="grey", linewidth=0.9,
                    label=f"other services ({n_rest})")
        total = _binned(frame, r, None)
        ax.plot(total["time"], total[r] / scale, color="black", linewidth=1.4,
                label="all containers")
        if host is not None and r in host.columns and "time" in host.columns:
            h = _binned(host[["time", r]].dropna(subset=[r]), r, None)
            ax.plot(h["time"], h[r] / scale, color="grey", linewidth=1.4, linestyle="--",
                    label="host total")
        locator = AutoDateLocator(minticks=3, maxticks=8)
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))
        _title(ax, resource_name(r), fontsize="medium")
        ax.set_xlabel("time (UTC)")
        ax.set_ylabel(label)
        ax.set_ylim(bottom=0)
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="xx-small",
                  borderaxespad=0)
    return fig


# -- (5) utilisation at the safe count -----------------------------------------------------


def utilisation(plans: Mapping[str, Plan], *, limit: int = MAX_PANELS) -> Figure:
    """Utilisation of each resource at the safe count, one panel per service (the ``limit``
    most urgent services).

    Bars: the demand the plan compared with capacity (reserve, others and the replicas'
    sized total) as a share of capacity; dots: the expected utilisation with mean demand.
    The binding resource is red and labelled; the 100 % line is capacity.
    """
    with_util = {s: [r for r in _planned(p)
                     if p.per_resource[r].utilisation_at_safe_count is not None]
                 for s, p in plans.items()}
    order = [s for s in _urgency(plans) if with_util.get(s)]
    if not order:
        return _empty("no resource could be planned")
    rows, left_out = order[:limit], max(len(order) - limit, 0)
    n_cols = min(len(rows), _MAX_COLUMNS)
    n_rows = -(-len(rows) // n_cols)
    fig, axes = _grid(n_rows, n_cols, width=4.2, n=len(rows),
                      height=1.5 + 0.3 * max(len(with_util[s]) for s in rows),
                      left=1.3, wgap=1.4, hgap=1.0)
    for ax, service in zip(axes, rows, strict=True):
        plan = plans[service]
        rs = with_util[service]
        _utilisation_panel(
            ax, {r: plan.per_resource[r].utilisation_at_safe_count for r in rs},
            plan.binding_resource,
            {r: getattr(plan.per_resource[r], "expected_utilisation_at_safe_count", None)
             for r in rs},
            xlabel=f"utilisation at N = {plan.safe_count} (% of capacity)", title=service)
    _left_out_note(fig, left_out)
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
    and labelled ``"<resource name> (binds): <percent>"``, diamonds at ``expected`` where
    given, and the 100 % capacity line."""
    rs = list(utils)
    pct = [float(utils[r] or 0.0) * 100 for r in rs]
    colours = [_BIND_COLOUR if r == binding else _OTHER_COLOUR for r in rs]
    y = np.arange(len(rs))
    bars = ax.barh(y, pct, color=colours)
    names = [f"{resource_name(r)} (binds)" if r == binding else resource_name(r) for r in rs]
    for bar, name, u in zip(bars, names, pct, strict=True):
        bar.set_label(f"{name}: {format_percent(u / 100, trim=True)}")
    exp = [(expected or {}).get(r) for r in rs]
    if any(e is not None for e in exp):
        xs = [e * 100 if e is not None else np.nan for e in exp]
        ax.plot(xs, y, "D", color="black", markersize=4, label="expected (mean demand)")
    ax.axvline(100, color="black", linewidth=1, label="capacity = 100 %")
    ax.set_yticks(y, names, fontsize="x-small")
    ax.set_xlim(0, max(110.0, max(pct, default=0.0) * 1.05))
    ax.xaxis.set_major_locator(MaxNLocator(nbins=5, steps=[1, 2, 2.5, 5, 10]))
    ax.set_xlabel(xlabel)
    _title(ax, title, fontsize="medium")


# -- fleet sizing (capacity size) ----------------------------------------------------------


def fleet_packing(fleet: FleetPlan) -> Figure:
    """One host at the packing a fleet sizing chose: replicas of each service per host (left)
    and each resource's utilisation of that host (right; the binding resource red, the
    100 % line is capacity). Utilisation is what the method compared with capacity: reserve,
    others and the bound on the replicas' total, as a share of capacity."""
    if not fleet.per_host or not fleet.per_resource:
        return _empty("no packing: " + (fleet.reason or "nothing to place"))
    height = 1.5 + 0.35 * max(len(fleet.per_host), len(fleet.per_resource))
    longest = max((len(s) for s in fleet.per_host), default=4)
    fig, grid = _grid(1, 2, width=4.8, height=height, left=min(0.3 + 0.075 * longest, 3.0),
                      wgap=1.5, top=0.45)
    left, right = grid
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
    _title(left, f"per host, {fleet.hosts_needed} host(s) needed", fontsize="medium")
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
    fig, (ax,) = _grid(1, 1, width=7.0, height=3.6)
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
    _title(ax, f"hosts of {fleet.machine.name} against replicas", fontsize="medium")
    ax.legend(loc="upper left", fontsize="x-small")
    return fig
