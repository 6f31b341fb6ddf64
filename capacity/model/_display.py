"""How profiles show in a notebook: tables, a one-sentence summary, and matplotlib charts.

The classes in :mod:`capacity.model._profile` delegate ``to_frame``, ``_repr_html_`` and
``plot`` here, so the data classes stay small. Charts are drawn on
:class:`matplotlib.figure.Figure` objects, never through the pyplot state machine: without an
``ax``, a new Figure is made and its Axes returned (show it with ``ax.figure`` in a notebook).
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .._columns import CPU, DISK_READ, DISK_USAGE, DISK_WRITE, MEMORY, NET_RX, NET_TX, RESOURCES
from .._units import format_duration, format_value

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from ._profile import Profiles, ServiceProfile

__all__ = [
    "AXIS",
    "axes_or_new",
    "format_value",
    "html_table",
    "plot_profiles",
    "plot_service",
    "profiles_frame",
    "profiles_html",
    "profiles_summary",
    "service_frame",
    "service_html",
    "service_summary",
]

#: resource column -> (axis label with unit, divisor from the column's unit)
AXIS: Mapping[str, tuple[str, float]] = {
    CPU: ("CPU (cores)", 1.0),
    MEMORY: ("memory working set (MiB)", 1024.0**2),
    NET_RX: ("network rx (MB/s)", 1e6),
    NET_TX: ("network tx (MB/s)", 1e6),
    DISK_READ: ("disk read (MB/s)", 1e6),
    DISK_WRITE: ("disk write (MB/s)", 1e6),
    DISK_USAGE: ("disk space (MiB)", 1024.0**2),
}

#: the per-resource statistics a profile table shows, in order
_PROFILE_COLUMNS = ("count", "mean", "p50", "p95", "p99", "max", "demand", "demand_statistic",
                    "replica_correlation", "fit")
_MAX_HTML_ROWS = 40


def _ordered(resources: Sequence[str]) -> list[str]:
    known = [r for r in RESOURCES if r in resources]
    return known + sorted(r for r in resources if r not in RESOURCES)


# -- tables ---------------------------------------------------------------------------------


def service_frame(sp: ServiceProfile) -> pd.DataFrame:
    """One row per resource of one service, in the resource's column unit.

    Columns: ``count`` (samples), ``mean``, ``p50``, ``p95``, ``p99``, ``max``, ``demand``
    (the per-replica figure the quantile method sizes with), ``demand_statistic``,
    ``replica_correlation`` (None with one replica), ``fit`` (the parametric family, or
    ``"none"``).
    """
    rows = []
    for r in _ordered(list(sp.resources)):
        rp = sp.resources[r]
        rows.append({
            "resource": r, "count": rp.count, "mean": rp.mean, "p50": rp.p50, "p95": rp.p95,
            "p99": rp.p99, "max": rp.max, "demand": rp.demand,
            "demand_statistic": rp.demand_statistic,
            "replica_correlation": rp.replica_correlation, "fit": rp.fit.family,
        })
    return pd.DataFrame(rows, columns=["resource", *_PROFILE_COLUMNS]).set_index("resource")


def profiles_frame(profiles: Profiles) -> pd.DataFrame:
    """One row per (service, resource), indexed by both; columns as :func:`service_frame`,
    plus ``replicas_seen`` and ``confidence`` of the service."""
    frames = []
    for name, sp in profiles.services.items():
        f = service_frame(sp).reset_index()
        f.insert(0, "service", name)
        f.insert(2, "replicas_seen", sp.replicas_seen)
        f["confidence"] = sp.confidence
        frames.append(f)
    if not frames:
        cols = ["service", "resource", "replicas_seen", *_PROFILE_COLUMNS, "confidence"]
        return pd.DataFrame(columns=cols).set_index(["service", "resource"])
    return pd.concat(frames, ignore_index=True).set_index(["service", "resource"])


def html_table(header: Sequence[str], rows: Sequence[Sequence[str]], *,
               caption: str = "") -> str:
    """A small escaped HTML table (the text of every cell is escaped here)."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>"
        for row in rows[:_MAX_HTML_ROWS]
    )
    more = ""
    if len(rows) > _MAX_HTML_ROWS:
        more = (f"<tr><td colspan='{len(header)}'>... {len(rows) - _MAX_HTML_ROWS} more rows: "
                "see to_frame()</td></tr>")
    cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    return f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{body}{more}</tbody></table>"


def _resource_cells(r: str, sp: ServiceProfile) -> list[str]:
    rp = sp.resources[r]
    corr = "-" if rp.replica_correlation is None else f"{rp.replica_correlation:.2f}"
    return [r, format_value(r, rp.p50), format_value(r, rp.p95), format_value(r, rp.p99),
            format_value(r, rp.max), f"{format_value(r, rp.demand)} ({rp.demand_statistic})",
            corr]


_RESOURCE_HEADER = ("resource", "p50", "p95", "p99", "max", "sized with", "replica corr.")


def profiles_summary(profiles: Profiles) -> str:
    """One sentence: how many services, from how many samples, and how many are thin.

    Examples
    --------
    ``"5 services profiled from 1620 samples (2m59s, a sample every 1 s); 5 with low
    confidence: see each profile's warnings."``
    """
    n = len(profiles.services)
    if n == 0:
        return "No service profiled."
    samples = sum(sp.n_samples for sp in profiles.services.values())
    span = max(sp.span_s for sp in profiles.services.values())
    interval = float(np.median([sp.interval_s for sp in profiles.services.values()]))
    low = [s for s, sp in profiles.services.items() if sp.confidence != "ok"]
    noun = "service" if n == 1 else "services"
    text = (f"{n} {noun} profiled from {samples} samples ({format_duration(round(span))}, a "
            f"sample every {interval:.3g} s)")
    if low:
        text += f"; {len(low)} with low confidence: see each profile's warnings"
    return text + "."


def service_summary(sp: ServiceProfile) -> str:
    """One sentence about one service's profile."""
    text = (f"{sp.service}: {sp.replicas_seen} replica(s) seen, {sp.n_samples} samples over "
            f"{format_duration(round(sp.span_s))}; confidence {sp.confidence}")
    if sp.warnings:
        text += f" ({sp.warnings[0]})"
    return text + "."


def _shown(sp: ServiceProfile) -> list[str]:
    """Resources worth a row: any non-zero sample (all zeros: never used, left out)."""
    return [r for r in _ordered(list(sp.resources)) if sp.resources[r].max > 0]


def service_html(sp: ServiceProfile) -> str:
    """The compact table of one service and its one-sentence summary, as HTML (resources
    that stayed at 0 are left out; ``to_frame()`` has them all)."""
    rows = [_resource_cells(r, sp) for r in _shown(sp)]
    return (f"<div><p>{html.escape(service_summary(sp))}</p>"
            f"{html_table(_RESOURCE_HEADER, rows)}</div>")


def profiles_html(profiles: Profiles) -> str:
    """Every service's resources in one compact table, under the one-sentence summary
    (resources that stayed at 0 are left out; ``to_frame()`` has them all)."""
    rows = []
    for name, sp in profiles.services.items():
        for r in _shown(sp):
            cells = _resource_cells(r, sp)
            rows.append([name, str(sp.replicas_seen), *cells, sp.confidence])
    header = ("service", "replicas", *_RESOURCE_HEADER, "confidence")
    return (f"<div><p>{html.escape(profiles_summary(profiles))}</p>"
            f"{html_table(header, rows)}</div>")


# -- charts ---------------------------------------------------------------------------------


def axes_or_new(ax: Axes | None, *, width: float = 6.4, height: float = 3.6) -> Axes:
    """``ax``, or the Axes of a new :class:`~matplotlib.figure.Figure` (not through pyplot)."""
    if ax is not None:
        return ax
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    new: Axes = fig.add_subplot()
    return new


def _default_resource(resources: Sequence[str]) -> str:
    for r in (CPU, MEMORY):
        if r in resources:
            return r
    if not resources:
        from .._errors import InsufficientData

        raise InsufficientData("no resource was profiled: nothing to plot")
    return _ordered(list(resources))[0]


def _check_resource(resource: str, available: Sequence[str], owner: str) -> None:
    if resource not in available:
        from .._errors import InvalidParameter

        raise InvalidParameter("resource", owner, f"one of {_ordered(list(available))}",
                               resource)


def plot_profiles(profiles: Profiles, ax: Axes | None = None, *,
                  resource: str | None = None) -> Axes:
    """One replica's demand distribution per service for one resource (a CDF).

    The curve is the profile's decaying-weight histogram (recent samples weigh more); the
    dot on each curve is the per-replica figure the quantile method sizes with. Default
    resource: ``cpu_cores`` if profiled, else memory.
    """
    available = sorted({r for sp in profiles.services.values() for r in sp.resources})
    resource = resource or _default_resource(available)
    _check_resource(resource, available, "Profiles.plot")
    label, scale = AXIS.get(resource, (f"{resource} (column unit)", 1.0))
    ax = axes_or_new(ax)
    for name, sp in profiles.services.items():
        rp = sp.resources.get(resource)
        if rp is None or not rp.histogram_weights:
            continue
        edges = np.asarray(rp.histogram_edges, dtype=float) / scale
        cdf = np.concatenate([[0.0], np.cumsum(rp.histogram_weights)])
        cdf = cdf / cdf[-1] if cdf[-1] > 0 else cdf
        line = ax.plot(edges, cdf, drawstyle="default", label=name)[0]
        level = {"p50": 0.5, "p90": 0.9, "p95": 0.95, "p99": 0.99, "max": 1.0}.get(
            rp.demand_statistic, 1.0)
        ax.plot([rp.demand / scale], [level], "o", color=line.get_color(), markersize=4)
    ax.set_xlabel(f"one replica's demand: {label}")
    ax.set_ylabel("share of time at or below (CDF)")
    ax.set_ylim(0, 1.02)
    ax.set_title(f"per-replica {resource} by service (dot: the figure sized with)",
                 fontsize="medium")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize="x-small", loc="lower right")
    return ax


def plot_service(sp: ServiceProfile, ax: Axes | None = None, *,
                 resource: str | None = None) -> Axes:
    """One service's per-replica demand over time for one resource, with its quantiles.

    The line is the profile's ``trace`` (the mean over replicas sampled at once, averaged
    down to at most ~2,000 points); dashed lines mark p50, p95, p99 and max.
    """
    resource = resource or _default_resource(list(sp.resources))
    _check_resource(resource, list(sp.resources), "ServiceProfile.plot")
    rp = sp.resources[resource]
    label, scale = AXIS.get(resource, (f"{resource} (column unit)", 1.0))
    ax = axes_or_new(ax)
    if rp.trace:
        t = np.arange(len(rp.trace)) * (rp.trace_interval_s or sp.interval_s or 1.0)
        ax.plot(t, np.asarray(rp.trace, dtype=float) / scale, linewidth=1.0,
                label="mean per replica")
    styles = {"p50": ":", "p95": "--", "p99": "-.", "max": "-"}
    for name, style in styles.items():
        value = rp.quantiles.get(name)
        if value is not None:
            ax.axhline(value / scale, linestyle=style, color="grey", linewidth=0.8,
                       label=f"{name} = {format_value(resource, value, trim=True)}")
    ax.set_xlabel("time since the first sample (s)")
    ax.set_ylabel(label)
    ax.set_ylim(bottom=0)
    ax.set_title(f"{sp.service}: {resource}", fontsize="medium")
    ax.legend(fontsize="x-small", loc="upper right")
    return ax
