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
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property, lru_cache
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
    MAX_SAFE_COUNT_BARS,
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
    "REPORT_MARKER",
    "REPORT_NAME_PATTERN",
    "Chart",
    "ReportPaths",
    "answer_sentence",
    "charts_context",
    "default_folder_name",
    "format_value",
    "md_escape",
    "not_a_report_folder",
    "plans_to_dict",
    "profiles_context",
    "refuse_unless_report_folder",
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
#: the file :func:`write_folder` puts in every folder it makes, listing the folder's files:
#: only a folder holding it (and nothing it does not list) is ever replaced or rotated away
REPORT_MARKER = ".capacity-report.json"
_MARKER_KIND = "capacity.report-folder"
#: the files a report folder held before the marker existed (plan/fleet JSON, profiles,
#: HTML, Markdown, the charts' PNGs): such a folder is recognised by its contents instead
_LEGACY_FILES = frozenset(
    {"plan.json", "fleet.json", "profiles.json", "report.html", "report.md"}
    | {f"{key}.{ext}" for key in ("safe_counts", "demand_vs_count", "risk_curve",
                                   "demand_cdf", "usage_timeseries", "utilisation",
                                   "fleet_packing", "hosts_vs_replicas")
       for ext in ("png", "svg")}
)
#: most names listed when a folder is refused
_MAX_NAMES_SHOWN = 5
#: the services table of a report lists every service when there are at most
#: SERVICES_FOLD_ABOVE; a longer one shows its SERVICES_SHOWN most urgent rows and folds the
#: rest below them (HTML ``<details>``, no script), so the charts follow the answer
#: within a screen or two; every row stays in the page, and in plan.json
SERVICES_SHOWN = 15
SERVICES_FOLD_ABOVE = 20
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
    with least headroom first. Text is never read as mathtext: a ``$`` in a service name is
    shown as itself (and a malformed one cannot fail the report)."""
    with rc_context({"text.parse_math": False}):
        return _build_charts(plans, profiles, samples=samples, host_usage=host_usage)


def _build_charts(
    plans: Mapping[str, Plan],
    profiles: Profiles,
    *,
    samples: pd.DataFrame | None,
    host_usage: pd.DataFrame | None,
) -> list[Chart]:
    n_services = len(plans)
    few = (" (the services with least headroom; every service is in the table)"
           if n_services > MAX_PANELS else "")
    charts = [
        Chart("safe_counts", "Safe count per service",
              "One bar per service, least headroom first: how many of its containers fit, "
              "coloured by the resource that binds; the black tick is what runs now (past "
              "the bar's end: more run than is safe)."
              + (f" The {MAX_SAFE_COUNT_BARS} most urgent of {n_services} services; every "
                 "service is in the table." if n_services > MAX_SAFE_COUNT_BARS else ""),
              safe_counts(plans)),
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
    stale: str | None = None,
) -> dict[str, Any]:
    """Everything a template shows, as formatted strings (one place formats numbers);
    ``stale``: why what runs now is unknown (status UNKNOWN, :func:`status`)."""
    now = now or datetime.now(UTC)
    st = status(plans, warn_headroom=warn_headroom, stale=stale)
    order = urgency_order(plans, st)
    host_ans = host_answer(plans, profiles, st, order=order)
    services: list[dict[str, Any]] = []
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
            "index": len(services) + 1,  # 1-based, urgency order: the fold's id (svc-N)
            "service": service,
            "flag": flag,
            "answer": answer_sentence(plan),
            "safe_count": format_count(plan.safe_count),
            "running": format_count(plan.running),
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
        "warn_headroom": format_percent(warn_headroom, trim=True),
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
            } for h in host_ans.resources] + [{
                # capacities not found (a virtual NIC, no disk probe): a row each, beside
                # CPU and memory; why and the flag that sets it are in the lines above
                "resource": label, "name": label, "capacity": "unknown", "reserve": "-",
                "in_use": "-", "headroom": "not planned", "binds": False,
            } for label, _why in host_ans.unknown],
        },
        "services": services,
        "services_shown": SERVICES_SHOWN,
        "services_fold_above": SERVICES_FOLD_ABOVE,
        "charts": charts_context(charts),
        "profiles": profile_rows,
        "profile_of": {p["service"]: p for p in profile_rows},
        "warnings": warnings,
        "assumptions": assumptions,
        "method": first.method if first is not None else "-",
        "risk_model": (getattr(first, "risk_model", "") or "-") if first is not None else "-",
        "epsilon": format_probability(first.epsilon, trim=True) if first is not None else "-",
        "incompressible_epsilon": format_probability(
            getattr(first, "incompressible_epsilon", None), trim=True)
        if first is not None else "-",
    }


@lru_cache(maxsize=2)
def _environment(autoescape: bool = True) -> Any:
    """The templates' environment (one per escaping, made once a process: building one and
    compiling its templates again for each format cost 0.1 s a report)."""
    from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

    env = Environment(
        loader=PackageLoader("capacity.reporting", "templates"),
        autoescape=select_autoescape(enabled_extensions=("html", "html.j2"),
                                     default_for_string=True, default=True)
        if autoescape else False,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    # report.md's values are escaped as a whole by render_markdown; the filter stays for the
    # templates' table cells, where it has nothing left to do
    env.filters["md"] = str
    return env


#: Markdown punctuation that can start markup anywhere in a line (emphasis, code, links,
#: images, tables, strikethrough, escapes); ``_`` only at a word's edge (inside a word, as
#: in ``memory_working_set_bytes``, it is plain text in CommonMark and GitHub Markdown)
_MD_ANYWHERE = re.compile(r"([\\`*\[\]|~]|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9]))")
#: what makes a block of a line's first characters: heading, list item, quote, rule
_MD_LINE_START = re.compile(r"^(\s*)([#+\-=]|\d{1,9}[.)])(?=\s|$)")
_MD_HTML = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u0085\u2028\u2029]+")


def md_escape(text: str) -> str:
    """``text`` shown as itself in Markdown: on one line, HTML as entities (``<b>`` stays
    text, never a tag), and every character that could start emphasis, code, a link, an
    image, a table cell or a block (heading, list, quote) backslash-escaped. Names come from
    Compose labels and container names: anyone who can start a container chooses them.

    >>> md_escape("<img src=x onerror=alert(1)> *web* [x](y) a|b")
    '&lt;img src=x onerror=alert(1)&gt; \\\\*web\\\\* \\\\[x\\\\](y) a\\\\|b'
    >>> md_escape("memory_working_set_bytes")
    'memory_working_set_bytes'
    """
    text = _CONTROL.sub(" ", str(text))
    text = _MD_ANYWHERE.sub(r"\\\1", text)
    text = "".join(_MD_HTML.get(c, c) for c in text)
    m = _MD_LINE_START.match(text)
    if m and text.strip() != "-":  # "-" alone is the reports' "no value", never a block
        cut = m.end(2) - 1 if m.group(2)[0].isdigit() else m.start(2)  # 1\. or \#
        text = f"{text[:cut]}\\{text[cut:]}"
    return text


def _md_tree(value: Any) -> Any:
    """Every string in a template context escaped with :func:`md_escape` (Markup, the
    inline SVG of the HTML report, is left as it is: report.md does not show it)."""
    if isinstance(value, Markup):
        return value
    if isinstance(value, str):
        return md_escape(value)
    if isinstance(value, Mapping):
        return {k: _md_tree(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_md_tree(v) for v in value]
    return value


def _render(template: str, context: Mapping[str, Any], *, autoescape: bool) -> str:
    return str(_environment(autoescape).get_template(template).render(**context))


def render_html(context: Mapping[str, Any], template: str = "report.html.j2") -> str:
    """``report.html`` from :func:`report_context` (HTML-escaped, charts inline); another
    ``template`` (``fleet.html.j2``) for another context."""
    return _render(template, context, autoescape=True)


def render_markdown(context: Mapping[str, Any], template: str = "report.md.j2") -> str:
    """``report.md`` from :func:`report_context` (charts linked as PNG files); another
    ``template`` (``fleet.md.j2``) for another context. Every string of the context is
    shown as itself (:func:`md_escape`): a name with Markdown or HTML in it stays text."""
    return _render(template, _md_tree(context), autoescape=False)


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
    stale: str | None = None,
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
        names :func:`rotate_reports` removes). An existing report folder of that name is
        replaced; anything else of that name (a file, a folder of yours) is refused with
        :class:`CapacityError` and left as it was.
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
    stale : str, optional
        Why what runs now is unknown (:func:`capacity._pipeline.stale_reason`): the status
        is UNKNOWN with it as the first reason, at the top of the report.

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
                                 warn_headroom=warn_headroom, stale=stale)
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
        status=status(plans, warn_headroom=warn_headroom, stale=stale),
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


def not_a_report_folder(path: str | Path) -> str | None:
    """Why ``path`` is not a report folder capacity wrote, or None when it is one.

    Ours: a real folder (not a link) holding only regular files, with :data:`REPORT_MARKER`
    listing every one of them; or, for folders written before the marker existed, only the
    files a report had (plan/fleet JSON, profiles.json, report.html/.md, chart PNGs) with a
    ``plan.json`` or ``fleet.json`` of capacity's. Anything else (a user's file, a folder
    with a file added by hand, a link) is not ours, and is never replaced or removed.
    """
    p = Path(path)
    if p.is_symlink():
        return "it is a symbolic link"
    if not p.is_dir():
        return "it is a file" if p.exists() else "it does not exist"
    try:
        entries = list(p.iterdir())
    except OSError as exc:
        return f"it cannot be listed ({exc.strerror or exc})"
    odd = sorted(e.name for e in entries if e.is_symlink() or not e.is_file())
    if odd:
        return f"it holds folders or links: {', '.join(odd[:_MAX_NAMES_SHOWN])}"
    names = {e.name for e in entries}
    marker = p / REPORT_MARKER
    if REPORT_MARKER in names:
        try:
            doc = json.loads(marker.read_text())
            listed = set(doc["files"]) if doc.get("kind") == _MARKER_KIND else None
        except (OSError, ValueError, TypeError, KeyError, AttributeError):
            listed = None
        if listed is None:
            return f"its {REPORT_MARKER} is not one capacity wrote"
        extra = sorted(names - listed - {REPORT_MARKER})
    else:
        extra = sorted(names - _LEGACY_FILES)
        if not extra and not _capacity_json(p / "plan.json") \
                and not _capacity_json(p / "fleet.json"):
            return "it holds no plan.json or fleet.json written by capacity"
    if extra:
        return f"it holds files a report does not: {', '.join(extra[:_MAX_NAMES_SHOWN])}"
    return None


def _capacity_json(path: Path) -> bool:
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(doc, dict) and str(doc.get("kind", "")).startswith("capacity.")


def refuse_unless_report_folder(final: str | Path) -> None:
    """Raise :class:`CapacityError` when ``final`` exists and is not a report folder
    capacity wrote (so a command can refuse before it collects or draws anything)."""
    final = Path(final)
    if not (final.exists() or final.is_symlink()):
        return
    why = not_a_report_folder(final)
    if why is not None:
        raise CapacityError(
            f"{final} exists and is not a report folder written by capacity ({why}); "
            "nothing was changed. Pick another --name (or --out), or move it away yourself "
            "if it may go"
        )


def write_folder(out_dir: str | Path, name: str,
                 fill: Callable[[Path], _T]) -> tuple[Path, _T]:
    """Make ``<out_dir>/<name>`` whole or not at all: ``fill`` writes into a temporary folder
    beside it, which is then renamed into place. An existing ``<name>`` is replaced only when
    it is a report folder capacity wrote (:func:`not_a_report_folder`); anything else is
    refused before anything is written. Every folder made holds :data:`REPORT_MARKER`.

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
        ``<name>`` exists and is not a report folder capacity wrote (nothing is changed), or
        the folder cannot be written (the message names it and the fix). The temporary
        folder is removed on any failure (Ctrl-C included), so nothing is left half-written.
    """
    out = Path(out_dir)
    final = out / name
    refuse_unless_report_folder(final)
    try:
        out.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-report-", dir=out))
        tmp.chmod(0o755)  # mkdtemp makes it private; a report is meant to be read
    except OSError as exc:
        raise CapacityError(
            f"cannot write a report under {out}: {exc.strerror or exc}; "
            "pick another folder with --out"
        ) from exc
    try:
        result = fill(tmp)
        files = sorted(p.name for p in tmp.iterdir())
        (tmp / REPORT_MARKER).write_text(json.dumps(
            {"kind": _MARKER_KIND, "version": 1, "files": files,
             "note": "written by capacity: this folder may be replaced by a report of the "
                     "same name, or removed by --keep; add no file of yours to it"},
            indent=2) + "\n")
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
    after, so at no moment is there a half-written folder under the final name. SIGINT and
    SIGTERM are held back during the two renames (either between them would leave no report
    at all: the old one hidden, the new one removed), and the old one is removed whatever
    arrives when they are delivered."""
    refuse_unless_report_folder(final)  # again: it may have appeared while the report was drawn
    if final.exists() or final.is_symlink():
        trash = Path(tempfile.mkdtemp(prefix=".old-report-", dir=final.parent))
        try:
            with _signals_held():
                os.replace(final, trash / final.name)
                try:
                    os.replace(tmp, final)
                except OSError:
                    os.replace(trash / final.name, final)  # put the old one back
                    raise
        finally:
            shutil.rmtree(trash, ignore_errors=True)
    else:
        os.replace(tmp, final)


@contextmanager
def _signals_held() -> Iterator[None]:
    """Hold back SIGINT and SIGTERM in the block; one that arrives meanwhile is raised again
    to the handlers in place before (a Ctrl-C as KeyboardInterrupt) when it ends.

    Trap: blocking them with ``pthread_sigmask`` in the main thread is not enough when other
    threads run (the kernel hands a process signal to any thread that does not block it,
    and Python then runs the handler in the main thread at once): the handlers are swapped
    for one that only notes the signal.
    """
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []

    def note(signum: int, frame: Any) -> None:
        pending.append(signum)

    previous = {sig: signal.signal(sig, note) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        _raise_all(list(dict.fromkeys(pending)))


def _raise_all(signums: list[int]) -> None:
    """Raise each signal to its handler, every one even when a handler raises (a Ctrl-C's
    KeyboardInterrupt must not swallow a SIGTERM held with it)."""
    import signal

    if signums:
        try:
            signal.raise_signal(signums[0])
        finally:
            _raise_all(signums[1:])


def rotate_reports(out_dir: str | Path, keep: int, *,
                   remove: Callable[[Path], None] = shutil.rmtree) -> list[Path]:
    """Remove all but the newest ``keep`` report folders in ``out_dir``; return the removed.

    Only folders named like :data:`REPORT_NAME_PATTERN` (``<host>-<YYYYmmddTHHMMSSZ>``) that
    are report folders capacity wrote (:func:`not_a_report_folder`) are touched, ordered by
    the time in their name; anything else (``example``, files, temporary folders, a folder
    of that name with a file of yours in it) is left alone.
    """
    if keep < 0:
        raise CapacityError(f"--keep must be >= 0; got {keep}")
    out = Path(out_dir)
    found = []
    for p in out.iterdir() if out.is_dir() else ():
        m = REPORT_NAME_PATTERN.match(p.name)
        if m and not_a_report_folder(p) is None:
            found.append((m.group("time"), p.name, p))
    found.sort(reverse=True)
    removed = [p for _, _, p in found[keep:]]
    for p in removed:
        remove(p)
    return removed
