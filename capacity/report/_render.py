"""Report formats: plain functions from results to text, and the report folder writer."""

from __future__ import annotations

import json
import os
import shutil
import socket
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .._columns import CPU, MEMORY
from .._errors import CapacityError
from .._units import format_bytes
from ..model._profile import Profiles
from ..solver._plan import PLAN_SCHEMA_VERSION, Plan
from ._charts import demand_vs_count

__all__ = [
    "ReportPaths",
    "answer_sentence",
    "format_value",
    "plans_to_dict",
    "render_markdown",
    "write_report",
]


def format_value(resource: str, value: float | None) -> str:
    """A per-resource value in a human unit (cores, MiB/GiB, MB/s)."""
    if value is None:
        return "-"
    if resource == CPU:
        return f"{value:.3f} cores"
    if resource in (MEMORY, "disk_usage_bytes"):
        return format_bytes(value)
    return f"{value / 1e6:.3f} MB/s"


def answer_sentence(plan: Plan) -> str:
    """The answer in one sentence."""
    if plan.safe_count is None:
        return f"No safe count for {plan.service}: no resource could be planned."
    return (
        f"{plan.safe_count} containers of {plan.service} fit on {plan.machine.name} "
        f"({plan.more} more beside the {plan.running} running); "
        f"{plan.binding_resource} binds."
    )


PLANS_KIND = "capacity.plans"


def plans_to_dict(plans: Mapping[str, Plan], *, source: str) -> dict[str, Any]:
    """``plan.json``: the versioned plan of every service, and the overall status."""
    return {
        "schema_version": PLAN_SCHEMA_VERSION,
        "kind": PLANS_KIND,
        "source": source,
        "plans": {s: p.to_dict() for s, p in plans.items()},
    }


def render_markdown(
    plans: Mapping[str, Plan],
    profiles: Profiles,
    *,
    charts: Sequence[str] = (),
    notices: Sequence[str] = (),
) -> str:
    """``report.md``: the answers, per-resource tables, charts, profiles and assumptions."""
    lines = ["# Capacity report", ""]
    for notice in notices:
        lines += [f"> {notice}", ""]
    for plan in plans.values():
        lines += [f"## {plan.service}", "", answer_sentence(plan), ""]
        lines += [
            "| resource | safe count | capacity | reserve | used by others | per replica "
            "| at safe count | utilisation |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for r, rp in plan.per_resource.items():
            util = (
                "-" if rp.utilisation_at_safe_count is None
                else f"{rp.utilisation_at_safe_count:.1%}"
            )
            count = str(rp.safe_count) if rp.safe_count is not None else f"undefined: {rp.reason}"
            lines.append(
                f"| {r} | {count} | {format_value(r, rp.capacity)} | "
                f"{format_value(r, rp.reserve)} | {format_value(r, rp.occupied)} | "
                f"{format_value(r, rp.demand_per_replica)} | "
                f"{format_value(r, rp.demand_at_safe_count)} | {util} |"
            )
        lines.append("")
    for chart in charts:
        lines += [f"![{chart}]({chart})", ""]
    lines += ["## Profiles (one replica)", ""]
    for name, sp in profiles.services.items():
        lines.append(
            f"- **{name}**: {sp.n_samples} samples from {sp.replicas_seen} replica(s) over "
            f"{sp.span_s:.0f} s at {sp.interval_s:g} s intervals"
        )
        for r, rp in sp.resources.items():
            lines.append(
                f"  - {r}: mean {format_value(r, rp.mean)}, p95 {format_value(r, rp.p95)}, "
                f"max {format_value(r, rp.max)}; sized by {rp.demand_statistic}"
            )
        for w in sp.warnings:
            lines.append(f"  - warning: {w}")
    lines += ["", "## Assumptions", ""]
    first = next(iter(plans.values()), None)
    if first is not None:
        lines += [f"- machine: {first.machine.name}; method: {first.method}"]
        lines += [f"- {a}" for a in first.assumptions]
    lines.append("")
    return "\n".join(lines)


@dataclass(frozen=True)
class ReportPaths:
    """Where a report was written."""

    folder: Path
    plan_json: Path
    profiles_json: Path
    report_md: Path
    charts: tuple[Path, ...]


def write_report(
    plans: Mapping[str, Plan],
    profiles: Profiles,
    *,
    out_dir: str | Path = "reports",
    source: str = "",
    host: str | None = None,
    now: datetime | None = None,
    notices: Sequence[str] = (),
) -> ReportPaths:
    """Write ``<out_dir>/<host>-<UTC timestamp>/`` with plan.json, profiles.json, report.md
    and the chart PNG. The folder is built under a temporary name and renamed into place,
    so a failure leaves nothing half-written."""
    now = now or datetime.now(UTC)
    host = host or socket.gethostname()
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-report-", dir=out))
    except OSError as exc:
        raise CapacityError(
            f"cannot write a report under {out}: {exc.strerror or exc}; "
            "pick another folder with --out"
        ) from exc
    final = out / f"{host}-{now.strftime('%Y%m%dT%H%M%SZ')}"
    chart = "demand_vs_count.png"
    try:
        text = json.dumps(plans_to_dict(plans, source=source), indent=2, allow_nan=False)
        (tmp / "plan.json").write_text(text + "\n")
        profiles.to_json(tmp / "profiles.json")
        demand_vs_count(plans).savefig(tmp / chart, dpi=100)
        (tmp / "report.md").write_text(
            render_markdown(plans, profiles, charts=[chart], notices=notices)
        )
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return ReportPaths(
        folder=final,
        plan_json=final / "plan.json",
        profiles_json=final / "profiles.json",
        report_md=final / "report.md",
        charts=(final / chart,),
    )
