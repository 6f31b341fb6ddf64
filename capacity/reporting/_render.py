"""Report formats and the report folder writer.

A report is rendered from one plain context (:func:`report_context`: strings already formatted
by :mod:`capacity.reporting._format`, so HTML, Markdown and the console show the same figures)
through Jinja2 templates in ``capacity/reporting/templates/``: ``report.html.j2`` (autoescaped;
charts inlined as SVG, no external asset, no JavaScript) and ``report.md.j2`` (charts linked
as PNG files beside it). :func:`write_report` builds the folder under a temporary name and
renames it into place, so a failure leaves nothing half-written.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import socket
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd
from markupsafe import Markup
from matplotlib import rc_context
from matplotlib.figure import Figure

from .._errors import CapacityError
from .._settings import DEFAULTS, Settings
from .._units import format_duration
from ..model._profile import Profiles
from ..solver._display import answer
from ..solver._machine import machine_lines
from ..solver._plan import PLAN_SCHEMA_VERSION, Plan
from ._charts import (
    MAX_ALL_RESOURCE_PANELS,
    MAX_PANELS,
    demand_cdfs,
    demand_vs_count,
    risk_curves,
    risk_curves_missing_reason,
    safe_counts,
    usage_timeseries,
    utilisation,
)
from ._format import format_count, format_percent, format_probability, format_value
from ._host import host_answer, natural_key, resource_name, urgency_order
from ._status import DEFAULT_WARN_HEADROOM, Status, status

__all__ = [
    "PLANS_KIND",
    "REPORT_NAME_PATTERN",
    "Chart",
    "ReportPaths",
    "answer_sentence",
    "charts_context",
    "default_folder_name",
    "format_value",
    "plans_to_dict",
    "profiles_context",
    "render_html",
    "render_markdown",
    "report_context",
    "rotate_reports",
    "save_charts",
    "write_folder",
    "write_report",
]

PLANS_KIND = "capacity.plans"
#: names of the folders :func:`write_report` makes by default: ``<host>-<UTC time>``
REPORT_NAME_PATTERN = re.compile(r"^(?P<host>.+)-(?P<time>\d{8}T\d{6}Z)$")
_PNG_DPI = 96
_T = TypeVar("_T")


def answer_sentence(plan: Plan) -> str:
    """The answer in one sentence: how many more fit, what binds, the risk accepted.

    The same sentence as ``Plan._repr_html_`` shows in a notebook (one implementation, in the
    solver's display module), e.g. ``"12 more containers of web fit beside the 2 running
    (14 in all) on cpus=8,memory=32GiB; memory_working_set_bytes binds; at most 0.1 % of
    instants over capacity."``
    """
    return answer(plan)


def plans_to_dict(
    plans: Mapping[str, Plan], *, source: str, settings: Settings | None = None
) -> dict[str, Any]:
    """``plan.json``: the versioned plan of every service (``kind: "capacity.plans"``), with
    the ``settings`` it was made with (default: the first plan's)."""
    if settings is None:
        settings = next(iter(plans.values())).settings if plans else DEFAULTS
    return {
        "schema_version": PLAN_SCHEMA_VERSION,
        "kind": PLANS_KIND,
        "source": source,
        "settings": settings.to_dict(),
        "plans": {s: p.to_dict() for s, p in plans.items()},
    }


@dataclass(frozen=True)
class Chart:
    """One chart of a report: its file name, title, caption, and the figure (or why not).

    The figure is drawn once, as SVG (:attr:`svg_text`, cached): inline in report.html and
    the ``<key>.svg`` file report.md links; a PNG is drawn only when asked for.
    """

    key: str
    title: str
    caption: str
    figure: Figure | None
    missing: str = ""

    @property
    def png(self) -> str:
        return f"{self.key}.png"

    @property
    def svg(self) -> str:
        return f"{self.key}.svg"

    @cached_property
    def svg_text(self) -> str:
        """The figure as an inline ``<svg>`` element ("" without a figure); drawn once."""
        return _svg(self.figure, self.key) if self.figure is not None else ""


def build_charts(
    plans: Mapping[str, Plan],
    profiles: Profiles,
    *,
    samples: pd.DataFrame | None = None,
    host_usage: pd.DataFrame | None = None,
) -> list[Chart]:
    """The charts of a report, in report order (the answer at a glance first); a chart that
    cannot be drawn carries the reason instead of a figure. Per-service charts are small
    multiples of at most :data:`~capacity.reporting._charts.MAX_PANELS` panels, the services
    with least headroom first."""
    n_services = len(plans)
    few = (" (the services with least headroom; every service is in the table)"
           if n_services > MAX_PANELS else "")
    charts = [
        Chart("safe_counts", "Safe count per service",
              "One bar per service, least headroom first: how many of its containers fit, "
              "coloured by the resource that binds; the black tick is what runs now (past "
              "the bar's end: more run than is safe).", safe_counts(plans)),
        Chart("demand_vs_count", "Total demand against container count",
              "Per service" + few + " and resource (every resource while that makes at most "
              f"{MAX_ALL_RESOURCE_PANELS} panels, else the binding one): what is kept back, "
              "plus the replicas' "
              "total demand (median and the band up to the 1-epsilon quantile), the capacity "
              "line, and the safe count.", demand_vs_count(plans, profiles)),
    ]
    risk = risk_curves(plans)
    charts.append(Chart("risk_curve", "P(overload) against container count",
                        "The probability that total demand exceeds the capacity at a random "
                        "instant, against the count" + few + "; epsilon and the safe count "
                        "marked.",
                        risk, "" if risk is not None else risk_curves_missing_reason(plans)))
    charts.append(Chart("demand_cdf", "One replica's demand distribution",
                        "Cumulative distribution of one replica's demand per service" + few
                        + ", with the profile's quantiles and the per-replica figure the plan "
                        "sized with.", demand_cdfs(profiles, plans, samples)))
    series = usage_timeseries(samples, host_usage)
    charts.append(Chart("usage_timeseries", "Usage over the collection window",
                        "Summed over each service's containers (the services with the highest "
                        "peaks by name, the rest as one line), and over all of them"
                        + (", with the host's own total." if host_usage is not None else "."),
                        series, "" if series is not None else
                        "no samples table: the report was made from profiles alone "
                        "(--profiles), which keep distributions, not the time series"))
    charts.append(Chart("utilisation", "Utilisation at the safe count",
                        "Share of capacity used at the safe count per resource" + few
                        + "; the binding resource in red; diamonds: expected utilisation with "
                        "mean demand.", utilisation(plans)))
    return charts


#: one font family in every ``<text>``'s style (matplotlib writes its whole fallback list in
#: each, a third of a chart's size); the browser's sans-serif stands in where it is missing
_SVG_FONT = ["DejaVu Sans"]
_ATTRIBUTE = re.compile(r'="[^"]*"')
_LONG_DECIMAL = re.compile(r"(\d\.\d\d)\d+")


def _svg(fig: Figure, salt: str) -> str:
    """The figure as an inline ``<svg>`` element: no XML prolog, no fixed size (it scales to
    the page width), IDs salted per chart so several SVGs in one page never clash, text as
    ``<text>`` (searchable, a tenth of the size of glyph paths; the browser's sans-serif).
    Coordinates are cut to 2 decimals (of a point: invisible) and indentation dropped, which
    halves the size; text content is left as drawn."""
    buf = io.StringIO()
    with rc_context({"svg.hashsalt": salt, "svg.fonttype": "none",
                     "font.family": "sans-serif", "font.sans-serif": _SVG_FONT}):
        fig.savefig(buf, format="svg", metadata={"Date": None})
    text = buf.getvalue()
    start = text.index("<svg")
    text = text[start:]
    text = re.sub(r"\n[ ]+", "\n", text)
    text = _ATTRIBUTE.sub(lambda m: _LONG_DECIMAL.sub(r"\1", m.group(0)), text)
    head_end = text.index(">")
    head = re.sub(r'\s(width|height)="[^"]*"', "", text[:head_end])
    return head + f' role="img" aria-label="{salt}"' + text[head_end:]


def _headroom_text(st: Status, service: str) -> str:
    h = st.headrooms.get(service)
    if h is None or h.share is None:
        return "-"
    return f"{format_percent(h.share)} ({resource_name(h.basis)})"


def profiles_context(
    profiles: Profiles, notices: Sequence[str] = ()
) -> tuple[list[dict[str, Any]], list[str]]:
    """The per-service profile rows of a report, and the data quality warnings (``notices``
    first, then each profile's warnings and low confidence), as formatted strings."""
    profile_rows = []
    warnings: list[str] = list(notices)
    for name in sorted(profiles.services, key=natural_key):
        sp = profiles.services[name]
        res = []
        for r, prof in sp.resources.items():
            fit = getattr(prof, "fit", None)
            burst = getattr(prof, "burst", None)
            res.append({
                "resource": r,
                "name": resource_name(r),
                "count": str(prof.count),
                "mean": format_value(r, prof.mean),
                "p50": format_value(r, prof.p50),
                "p95": format_value(r, prof.p95),
                "p99": format_value(r, prof.p99),
                "max": format_value(r, prof.max),
                "sized_by": f"{prof.demand_statistic} = {format_value(r, prof.demand)}",
                "fit": getattr(fit, "family", "-") if fit is not None else "-",
                "burst": ("-" if burst is None or getattr(burst, "mean_run_s", None) is None
                          else f"{burst.mean_run_s:.3g} s mean, {burst.max_run_s:.3g} s max"),
            })
        confidence = getattr(sp, "confidence", "unknown")
        profile_rows.append({
            "service": name,
            "summary": (f"{sp.n_samples} samples from {sp.replicas_seen} replica(s) over "
                        f"{format_duration(sp.span_s)} at {sp.interval_s:.3g} s intervals; "
                        f"confidence {confidence}"),
            "window": (f"{sp.time_start} to {sp.time_end}"
                       if getattr(sp, "time_start", "") else ""),
            "resources": res,
            "warnings": list(getattr(sp, "warnings", ())),
            "notes": list(getattr(sp, "notes", ())),
        })
        warnings += [f"{name}: {w}" for w in getattr(sp, "warnings", ())]
        if confidence == "low":
            warnings.append(f"{name}: profile confidence is low")
    return profile_rows, warnings


def charts_context(charts: Sequence[Chart]) -> list[dict[str, Any]]:
    """The charts as a template shows them: inline SVG (or why not drawn) and the file name
    report.md links (``<key>.svg``)."""
    return [{"key": c.key, "title": c.title, "caption": c.caption, "png": c.png,
             "file": c.svg,
             "svg": Markup(c.svg_text) if c.figure is not None else None,
             "missing": c.missing} for c in charts]


def report_context(
    plans: Mapping[str, Plan],
    profiles: Profiles,
    *,
    charts: Sequence[Chart] = (),
    notices: Sequence[str] = (),
    source: str = "",
    host: str = "",
    now: datetime | None = None,
    warn_headroom: float = DEFAULT_WARN_HEADROOM,
) -> dict[str, Any]:
    """Everything a template shows, as formatted strings (one place formats numbers)."""
    now = now or datetime.now(UTC)
    st = status(plans, warn_headroom=warn_headroom)
    order = urgency_order(plans, st)
    host_ans = host_answer(plans, profiles, st, order=order)
    services = []
    for service in order:
        plan = plans[service]
        rows, unplanned = [], []
        for r, rp in plan.per_resource.items():
            if rp.safe_count is None:
                unplanned.append({"resource": r, "name": resource_name(r),
                                  "reason": rp.reason or "no reason given"})
                continue
            rows.append({
                "resource": r,
                "name": resource_name(r),
                "binds": r == plan.binding_resource,
                "safe_count": format_count(rp.safe_count),
                "reason": rp.reason,
                "capacity": format_value(r, rp.capacity),
                "reserve": format_value(r, rp.reserve),
                "occupied": format_value(r, rp.occupied),
                "per_replica": format_value(r, rp.demand_per_replica),
                "at_safe_count": format_value(r, rp.demand_at_safe_count),
                "utilisation": format_percent(rp.utilisation_at_safe_count),
                "expected_utilisation": format_percent(
                    getattr(rp, "expected_utilisation_at_safe_count", None)),
                "p_overload": format_probability(getattr(rp, "p_overload_at_safe_count", None)),
                "p_overload_next": format_probability(getattr(rp, "p_overload_at_next", None)),
                "epsilon": format_probability(rp.epsilon),
                "method": rp.method or plan.method,
            })
        methods = [{"method": m, "safe_count": format_count(v.get("safe_count")),
                    "binding": resource_name(v.get("binding_resource"))}
                   for m, v in (getattr(plan, "methods", None) or {}).items()]
        h = st.headrooms.get(service)
        if plan.safe_count is None:
            flag = "undefined"
        elif plan.running > plan.safe_count:
            flag = "over"
        elif h is not None and h.share is not None and h.share < warn_headroom:
            flag = "tight"
        else:
            flag = "ok"
        services.append({
            "service": service,
            "flag": flag,
            "answer": answer_sentence(plan),
            "safe_count": format_count(plan.safe_count),
            "running": str(plan.running),
            "more": format_count(plan.more),
            "binding": resource_name(plan.binding_resource),
            "binding_resource": plan.binding_resource or "",
            "headroom": _headroom_text(st, service),
            "headroom_share": format_percent(h.share) if h and h.share is not None else "-",
            "method": plan.method,
            "risk_model": getattr(plan, "risk_model", "") or "-",
            "rows": rows,
            "unplanned": unplanned,
            "methods": methods,
        })
    profile_rows, warnings = profiles_context(profiles, notices)
    missing = sorted({m for p in plans.values() for m in p.machine.missing})
    warnings += [f"machine capacity unknown, not planned: {m}" for m in missing]
    assumptions: list[str] = []
    for plan in plans.values():
        for a in plan.assumptions:
            if a not in assumptions:
                assumptions.append(a)
    first = next(iter(plans.values()), None)
    return {
        "title": f"Capacity report: {host}" if host else "Capacity report",
        "generated_at": now.strftime("%Y-%m-%d %H:%M:%S UTC"),
        "host": host,
        "source": source,
        "machine": first.machine.name if first is not None else "-",
        "machine_lines": machine_lines(first.machine) if first is not None else [],
        "status": st.name,
        "status_reasons": list(st.reasons),
        "warn_headroom": format_percent(warn_headroom),
        "least_headroom": (_headroom_text(st, st.least.service) if st.least else "-"),
        "host_answer": {
            "verdict": host_ans.verdict,
            "headline": host_ans.headline,
            "lines": list(host_ans.lines),
            "binding": resource_name(host_ans.binding),
            "binding_resource": host_ans.binding or "",
            "resources": [{
                "resource": h.resource, "name": resource_name(h.resource),
                "capacity": format_value(h.resource, h.capacity),
                "reserve": format_value(h.resource, h.reserve),
                "in_use": format_value(h.resource, h.in_use),
                "headroom": format_percent(h.headroom),
                "binds": h.resource == host_ans.binding,
            } for h in host_ans.resources],
        },
        "services": services,
        "charts": charts_context(charts),
        "profiles": profile_rows,
        "profile_of": {p["service"]: p for p in profile_rows},
        "warnings": warnings,
        "assumptions": assumptions,
        "method": first.method if first is not None else "-",
        "risk_model": (getattr(first, "risk_model", "") or "-") if first is not None else "-",
        "epsilon": format_probability(first.epsilon) if first is not None else "-",
        "incompressible_epsilon": format_probability(
            getattr(first, "incompressible_epsilon", None)) if first is not None else "-",
    }


def _environment() -> Any:
    from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

    env = Environment(
        loader=PackageLoader("capacity.reporting", "templates"),
        autoescape=select_autoescape(enabled_extensions=("html", "html.j2"),
                                     default_for_string=True, default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["md"] = _md_cell
    return env


def _md_cell(text: Any) -> str:
    """Text safe inside a Markdown table cell: pipes escaped, newlines flattened."""
    return str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _render(template: str, context: Mapping[str, Any], *, autoescape: bool) -> str:
    env = _environment()
    if not autoescape:
        env.autoescape = False
    return str(env.get_template(template).render(**context))


def render_html(context: Mapping[str, Any], template: str = "report.html.j2") -> str:
    """``report.html`` from :func:`report_context` (HTML-escaped, charts inline); another
    ``template`` (``fleet.html.j2``) for another context."""
    return _render(template, context, autoescape=True)


def render_markdown(context: Mapping[str, Any], template: str = "report.md.j2") -> str:
    """``report.md`` from :func:`report_context` (charts linked as PNG files); another
    ``template`` (``fleet.md.j2``) for another context."""
    return _render(template, context, autoescape=False)


@dataclass(frozen=True)
class ReportPaths:
    """Where a report was written, and the status of its plans."""

    folder: Path
    plan_json: Path
    profiles_json: Path
    report_md: Path
    report_html: Path
    charts: tuple[Path, ...]
    status: Status


def write_report(
    plans: Mapping[str, Plan],
    profiles: Profiles,
    *,
    out_dir: str | Path = "reports",
    name: str | None = None,
    source: str = "",
    host: str | None = None,
    now: datetime | None = None,
    notices: Sequence[str] = (),
    samples: pd.DataFrame | None = None,
    host_usage: pd.DataFrame | None = None,
    warn_headroom: float = DEFAULT_WARN_HEADROOM,
    png: bool = False,
) -> ReportPaths:
    """Write a report folder: plan.json, profiles.json, report.html, report.md, the charts
    as SVG files (and PNG when ``png``).

    Parameters
    ----------
    plans : Mapping[str, Plan]
        Per service.
    profiles : Profiles
        The profiles the plans were made from.
    out_dir : str or Path
        Parent folder, created if missing.
    name : str, optional
        Folder name; default ``<host>-<UTC time>`` (:data:`REPORT_NAME_PATTERN`, the only
        names :func:`rotate_reports` removes). An existing folder of that name is replaced.
    source, host, now, notices
        Shown in the report; ``host`` defaults to this host's name, ``now`` to the clock.
    samples : pandas.DataFrame, optional
        The samples table, for the time series and the empirical CDFs.
    host_usage : pandas.DataFrame, optional
        Host rates (same resource columns) for the host total in the time series.
    warn_headroom : float
        Headroom share below which the report's status is WARNING.
    png : bool
        Also write each chart as ``<key>.png`` (drawn a second time; off by default, as
        report.html inlines the SVG and report.md links the ``.svg`` files).

    Returns
    -------
    ReportPaths

    Raises
    ------
    CapacityError
        The folder cannot be written (the message names it and the fix). Nothing is left
        behind: the report is built in a temporary folder and renamed into place.
    """
    now = now or datetime.now(UTC)
    host = host or socket.gethostname()

    def fill(tmp: Path) -> list[str]:
        first = next(iter(plans.values())).settings if plans else DEFAULTS
        text = json.dumps(plans_to_dict(plans, source=source,
                                        settings=first.replace(warn_headroom=warn_headroom)),
                          indent=2, allow_nan=False)
        (tmp / "plan.json").write_text(text + "\n")
        profiles.to_json(tmp / "profiles.json")
        charts = build_charts(plans, profiles, samples=samples, host_usage=host_usage)
        written = save_charts(charts, tmp, png=png)
        context = report_context(plans, profiles, charts=charts, notices=notices,
                                 source=source, host=host, now=now,
                                 warn_headroom=warn_headroom)
        (tmp / "report.html").write_text(render_html(context))
        (tmp / "report.md").write_text(render_markdown(context))
        return [p.name for p in written]

    final, files = write_folder(out_dir, name or default_folder_name(host, now), fill)
    return ReportPaths(
        folder=final,
        plan_json=final / "plan.json",
        profiles_json=final / "profiles.json",
        report_md=final / "report.md",
        report_html=final / "report.html",
        charts=tuple(final / f for f in files),
        status=status(plans, warn_headroom=warn_headroom),
    )


def default_folder_name(host: str, now: datetime, suffix: str = "") -> str:
    """``<host>-<UTC time>`` (:data:`REPORT_NAME_PATTERN`), with ``suffix`` after it (a
    suffixed name, e.g. ``-size``, is never rotated away)."""
    return f"{host}-{now.strftime('%Y%m%dT%H%M%SZ')}{suffix}"


def save_charts(charts: Sequence[Chart], folder: Path, *, png: bool = False) -> list[Path]:
    """Each drawn chart as ``<key>.svg`` in ``folder`` (the same SVG report.html inlines, so
    it is drawn once), and as ``<key>.png`` too when ``png`` (a second drawing, by Agg);
    returns the files written."""
    written = []
    for c in charts:
        if c.figure is None:
            continue
        path = folder / c.svg
        text = c.svg_text
        head_end = text.index(">")
        # a file stands alone: it needs the SVG namespace's fixed size back to open anywhere
        w, h = c.figure.get_size_inches() * 72
        path.write_text(text[:head_end] + f' width="{w:.0f}pt" height="{h:.0f}pt"'
                        + text[head_end:] + "\n")
        written.append(path)
        if png:
            c.figure.savefig(folder / c.png, dpi=_PNG_DPI, metadata={"Software": None})
            written.append(folder / c.png)
    return written


def write_folder(out_dir: str | Path, name: str,
                 fill: Callable[[Path], _T]) -> tuple[Path, _T]:
    """Make ``<out_dir>/<name>`` whole or not at all: ``fill`` writes into a temporary folder
    beside it, which is then renamed into place (an existing folder of that name replaced).

    Parameters
    ----------
    out_dir : str or Path
        Parent folder, created if missing.
    name : str
        The folder's name.
    fill : Callable[[Path], T]
        Writes the files into the folder it is given; its result is returned.

    Returns
    -------
    tuple[Path, T]
        The final folder and what ``fill`` returned.

    Raises
    ------
    CapacityError
        The folder cannot be written (the message names it and the fix). The temporary
        folder is removed on any failure, so nothing is left half-written.
    """
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-report-", dir=out))
        tmp.chmod(0o755)  # mkdtemp makes it private; a report is meant to be read
    except OSError as exc:
        raise CapacityError(
            f"cannot write a report under {out}: {exc.strerror or exc}; "
            "pick another folder with --out"
        ) from exc
    final = out / name
    try:
        result = fill(tmp)
        _replace_dir(tmp, final)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise CapacityError(
            f"cannot write the report {final}: {exc.strerror or exc}; "
            "pick another folder with --out"
        ) from exc
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final, result


def _replace_dir(tmp: Path, final: Path) -> None:
    """Rename ``tmp`` to ``final``; an existing ``final`` is moved aside first and removed
    after, so at no moment is there a half-written folder under the final name."""
    if final.exists():
        trash = Path(tempfile.mkdtemp(prefix=".old-report-", dir=final.parent))
        os.replace(final, trash / final.name)
        os.replace(tmp, final)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        os.replace(tmp, final)


def rotate_reports(out_dir: str | Path, keep: int, *,
                   remove: Callable[[Path], None] = shutil.rmtree) -> list[Path]:
    """Remove all but the newest ``keep`` report folders in ``out_dir``; return the removed.

    Only folders named like :data:`REPORT_NAME_PATTERN` (``<host>-<YYYYmmddTHHMMSSZ>``) are
    touched, ordered by the time in their name; anything else (``example``, files, temporary
    folders) is left alone.
    """
    if keep < 0:
        raise CapacityError(f"--keep must be >= 0; got {keep}")
    out = Path(out_dir)
    found = []
    for p in out.iterdir() if out.is_dir() else ():
        m = REPORT_NAME_PATTERN.match(p.name)
        if m and p.is_dir() and not p.is_symlink():
            found.append((m.group("time"), p.name, p))
    found.sort(reverse=True)
    removed = [p for _, _, p in found[keep:]]
    for p in removed:
        remove(p)
    return removed
