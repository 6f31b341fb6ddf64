"""Charts, drawn on matplotlib ``Figure`` objects (never the pyplot state machine)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from matplotlib.figure import Figure

from .._columns import CPU, MEMORY
from ..solver._plan import Plan

__all__ = ["RESOURCE_AXIS", "demand_vs_count"]

#: (axis label with unit, divisor from the column's unit)
RESOURCE_AXIS: dict[str, tuple[str, float]] = {
    CPU: ("CPU demand (cores)", 1.0),
    MEMORY: ("memory working set (GiB)", 1024.0**3),
    "net_rx_bytes_per_second": ("network rx (MB/s)", 1e6),
    "net_tx_bytes_per_second": ("network tx (MB/s)", 1e6),
    "disk_read_bytes_per_second": ("disk read (MB/s)", 1e6),
    "disk_write_bytes_per_second": ("disk write (MB/s)", 1e6),
    "disk_usage_bytes": ("disk space (GiB)", 1024.0**3),
}


def demand_vs_count(plans: Mapping[str, Plan]) -> Figure:
    """Total demand against container count: one row per service, one panel per resource.

    Each panel shows what is already used (reserve and other services' running containers)
    plus the summed per-replica demand for N = 0 .. beyond the safe count, the capacity line,
    and marks the safe count. Units are on the y axis labels.
    """
    rows = [(s, [p for p in plan.per_resource.values() if p.safe_count is not None])
            for s, plan in plans.items()]
    n_cols = max((len(r) for _, r in rows), default=0)
    fig = Figure(figsize=(4.5 * max(n_cols, 1), 3.6 * max(len(rows), 1)), layout="constrained")
    if n_cols == 0:
        ax = fig.add_subplot()
        ax.set_title("no resource could be planned")
        ax.set_axis_off()
        return fig
    grid = fig.subplots(len(rows), n_cols, squeeze=False)
    for row_axes, (service, planned) in zip(grid, rows, strict=True):
        plan = plans[service]
        n_max = max(int(max((p.safe_count or 0) for p in planned) * 1.3) + 2, plan.running + 2)
        for ax in row_axes[len(planned):]:
            ax.set_axis_off()
        for ax, rp in zip(row_axes, planned, strict=False):
            label, scale = RESOURCE_AXIS.get(rp.resource, (rp.resource, 1.0))
            demand = rp.demand_per_replica or 0.0
            base = rp.reserve + rp.occupied
            capacity = rp.capacity or 0.0
            counts = np.arange(0, n_max + 1)
            ax.plot(counts, (base + counts * demand) / scale, label="demand")
            ax.axhline(capacity / scale, color="black", label="capacity")
            if base:
                ax.axhline(base / scale, color="grey", linestyle="--",
                           label="reserve + others")
            ax.axvline(rp.safe_count, color="tab:red", linestyle=":",
                       label=f"safe count = {rp.safe_count}")
            binds = " (binds)" if rp.resource == plan.binding_resource else ""
            ax.set_title(f"{service}: {rp.resource}{binds}", fontsize="medium")
            ax.set_xlabel("containers")
            ax.set_ylabel(label)
            ax.set_xlim(0, n_max)
            ax.legend(loc="upper left", fontsize="x-small")
    return fig
