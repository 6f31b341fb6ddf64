"""The report folder of a fleet sizing (``capacity size --report``).

The same machinery as :mod:`capacity.reporting._render` (the folder writer, the formatters, the
base template and its shared sections, the chart helpers) with a fleet's own context,
templates (``fleet.html.j2``, ``fleet.md.j2``) and charts: one host at the chosen packing, and
hosts needed against the replica count. Every number shown is one of ``fleet.json``'s.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..model._profile import Profiles
from ..solver._display import fleet_answer
from ..solver._mix import FleetPlan
from ._charts import fleet_packing, hosts_vs_replicas
from ._format import format_count, format_percent, format_probability, format_value
from ._host import resource_name
from ._render import (
    Chart,
    charts_context,
    default_folder_name,
    profiles_context,
    render_html,
    render_markdown,
    save_charts,
    write_folder,
)

__all__ = [
    "FOLDER_SUFFIX",
    "FleetReportPaths",
    "build_fleet_charts",
    "fleet_report_context",
    "write_fleet_report",
]

#: default folder names are ``<host>-<UTC time>-size`` (never rotated by ``--keep``)
FOLDER_SUFFIX = "-size"


def build_fleet_charts(fleet: FleetPlan) -> list[Chart]:
    """The charts of a fleet report, in report order; a chart that cannot be drawn carries
    the reason instead of a figure."""
    from matplotlib import rc_context

    with rc_context({"text.parse_math": False}):  # a "$" in a name is text, not mathtext
        return _build_fleet_charts(fleet)


def _build_fleet_charts(fleet: FleetPlan) -> list[Chart]:
    steps = hosts_vs_replicas(fleet)
    return [
        Chart("fleet_packing", "One host at the chosen packing",
              "Replicas of each service on one host, and each resource's utilisation of "
              "that host (reserve, others and the method's bound on the replicas' total, as "
              "a share of capacity); the binding resource in red.", fleet_packing(fleet)),
        Chart("hosts_vs_replicas", "Hosts needed against replica count",
              "Hosts needed (without spare) for 0 to twice the requested replicas, with the "
              "requested count, the hosts it needs and the N+k line (spare included) marked.",
              steps, "" if steps is not None else
              f"no replica count can be placed: {fleet.reason or 'nothing to place'}"),
    ]


def fleet_report_context(
    fleet: FleetPlan,
    profiles: Profiles,
    *,
    charts: Sequence[Chart] = (),
    notices: Sequence[str] = (),
    source: str = "",
    host: str = "",
    now: datetime | None = None,
) -> dict[str, Any]:
    """Everything ``fleet.html.j2`` and ``fleet.md.j2`` show, as formatted strings.

    Parameters
    ----------
    fleet : FleetPlan
        The sizing.
    profiles : Profiles
        The profiles it was made from (the sized services' tables, warnings and confidence
        are shown).
    charts : Sequence[Chart]
        From :func:`build_fleet_charts`, already saved (their layout settled).
    notices, source, host, now
        Shown in the report; ``now`` defaults to the clock.

    Returns
    -------
    dict[str, Any]
    """
    now = now or datetime.now(UTC)
    rows = []
    for r, m in fleet.per_resource.items():
        rows.append({
            "resource": r,
            "name": resource_name(r),
            "binds": r == fleet.binding_resource,
            "capacity": format_value(r, m.capacity),
            "reserve": format_value(r, m.reserve),
            "occupied": format_value(r, m.occupied),
            "demand": format_value(r, m.demand),
            "mean_demand": format_value(r, m.mean_demand),
            "utilisation": format_percent(m.utilisation),
            "p_overload": format_probability(m.p_overload),
            "epsilon": format_probability(m.epsilon),
            "fits": "yes" if m.fits else "no",
        })
    services = [{"service": s, "replicas": format_count(n),
                 "per_host": format_count(fleet.per_host.get(s))}
                for s, n in fleet.replicas.items()]
    sized = Profiles({s: profiles[s] for s in fleet.replicas if s in profiles.services})
    profile_rows, warnings = profiles_context(sized, notices)
    warnings += [f"machine capacity unknown, not planned: {m}" for m in fleet.machine.missing]
    return {
        "title": f"Fleet sizing: {fleet.machine.name}",
        "generated_at": now.strftime("%Y-%m-%d %H:%M:%S UTC"),
        "host": host,
        "source": source,
        "machine": fleet.machine.name,
        "answer": fleet_answer(fleet),
        "reason": fleet.reason,
        "hosts": format_count(fleet.hosts),
        "hosts_needed": format_count(fleet.hosts_needed),
        "spare": format_count(fleet.spare),
        "binding": resource_name(fleet.binding_resource),
        "services": services,
        "rows": rows,
        "charts": charts_context(charts),
        "profiles": profile_rows,
        "warnings": warnings,
        "assumptions": list(fleet.assumptions),
        "method": fleet.method,
        "epsilon": format_probability(fleet.epsilon),
    }


@dataclass(frozen=True)
class FleetReportPaths:
    """Where a fleet report was written."""

    folder: Path
    fleet_json: Path
    profiles_json: Path
    report_md: Path
    report_html: Path
    charts: tuple[Path, ...]


def write_fleet_report(
    fleet: FleetPlan,
    profiles: Profiles,
    *,
    out_dir: str | Path = "reports",
    name: str | None = None,
    source: str = "",
    host: str | None = None,
    now: datetime | None = None,
    notices: Sequence[str] = (),
) -> FleetReportPaths:
    """Write a fleet report folder: fleet.json, profiles.json, report.html, report.md, the
    charts as SVG and PNG.

    Parameters
    ----------
    fleet : FleetPlan
        The sizing; ``fleet.json`` is its :meth:`~FleetPlan.to_dict`.
    profiles : Profiles
        The profiles it was made from.
    out_dir : str or Path
        Parent folder, created if missing.
    name : str, optional
        Folder name; default ``<host>-<UTC time>-size``. An existing folder of that name is
        replaced whole.
    source, host, now, notices
        Shown in the report; ``host`` defaults to this host's name, ``now`` to the clock.

    Returns
    -------
    FleetReportPaths

    Raises
    ------
    CapacityError
        The folder cannot be written (one line naming it and the fix); nothing is left
        behind (built in a temporary folder, then renamed).
    """
    now = now or datetime.now(UTC)
    host = host or socket.gethostname()

    def fill(tmp: Path) -> list[Chart]:
        text = json.dumps(fleet.to_dict(), indent=2, allow_nan=False)
        (tmp / "fleet.json").write_text(text + "\n")
        profiles.to_json(tmp / "profiles.json")
        charts = build_fleet_charts(fleet)
        save_charts(charts, tmp, png=True)  # two small charts: the PNGs cost little
        context = fleet_report_context(fleet, profiles, charts=charts, notices=notices,
                                       source=source, host=host, now=now)
        (tmp / "report.html").write_text(render_html(context, "fleet.html.j2"))
        (tmp / "report.md").write_text(render_markdown(context, "fleet.md.j2"))
        return charts

    final, charts = write_folder(
        out_dir, name or default_folder_name(host, now, FOLDER_SUFFIX), fill)
    return FleetReportPaths(
        folder=final,
        fleet_json=final / "fleet.json",
        profiles_json=final / "profiles.json",
        report_md=final / "report.md",
        report_html=final / "report.html",
        charts=tuple(final / c.png for c in charts if c.figure is not None),
    )
