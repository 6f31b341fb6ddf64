"""``capacity report``: collect or load, fit, plan, and write a report folder."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from .._errors import DockerUnavailable
from ._common import DURATION, parse_filters, plans_status, print_summary, stderr


@click.command()
@click.option("--duration", type=DURATION, default=None,
              help="Collect live for this long (e.g. 10s, 5m). Default 10s.")
@click.option("--interval", type=DURATION, default="1s", show_default=True,
              help="Sampling interval.")
@click.option("--demo", is_flag=True, help="Plan from the bundled real recording.")
@click.option("--machine", "machine_spec", default=None,
              help="Target machine, e.g. cpus=8,memory=32GiB. Default: this host.")
@click.option("--filter", "filters", multiple=True,
              help="Only containers matching label=K[=V], name=N, ancestor=IMAGE (repeatable).")
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=Path("reports"),
              show_default=True, help="Folder the report folder is written into.")
@click.option("--json", "as_json", is_flag=True, help="Print plan.json to stdout only.")
@click.option("--quiet", is_flag=True, help="No summary table.")
def report(
    duration: float | None,
    interval: float,
    demo: bool,
    machine_spec: str | None,
    filters: tuple[str, ...],
    out_dir: Path,
    as_json: bool,
    quiet: bool,
) -> int:
    """Collect (or load), fit, plan, and write a report folder under reports/.

    With no source given it collects 10 s from the local engine; when no engine answers it
    plans from the bundled recording instead and says so. With --duration given, a missing
    engine is an error (exit 3).
    """
    from .._pipeline import fit_profiles, load_demo, plan_all, running_counts
    from ..report._render import plans_to_dict, write_report
    from ..solver._machine import Machine

    notices: list[str] = []
    machine = Machine.from_spec(machine_spec) if machine_spec else Machine.local()
    if demo:
        data = load_demo()
        notices.append("planned from the bundled recording (--demo), not from this host")
    else:
        from ..sources._docker import connect

        try:
            client = connect()
        except DockerUnavailable as exc:
            if duration is not None:
                raise
            notices.append(f"{exc}; planning from the bundled recording instead (--demo)")
            stderr(f"capacity: notice: {notices[-1]}")
            data = load_demo()
        else:
            data = _collect_with_progress(
                client, interval_s=interval, duration_s=duration or 10.0,
                filters=parse_filters(filters), quiet=quiet or as_json,
            )
    profiles = fit_profiles(data.samples)
    running = running_counts(data.samples)
    plans = plan_all(profiles, machine, running=running)
    paths = write_report(plans, profiles, out_dir=out_dir, source=data.source, notices=notices)
    if as_json:
        click.echo(json.dumps(plans_to_dict(plans, source=data.source), indent=2))
    else:
        if not quiet:
            print_summary(plans)
        stderr(f"capacity: report written to {paths.folder}")
    return plans_status(plans)


def _collect_with_progress(
    client: Any, *, interval_s: float, duration_s: float, filters: Any, quiet: bool
) -> Any:
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from .._pipeline import collect_samples

    if quiet or not sys.stderr.isatty():
        return collect_samples(
            client, interval_s=interval_s, duration_s=duration_s, filters=filters
        )
    progress = Progress(
        TextColumn("collecting"), BarColumn(), TimeRemainingColumn(),
        TextColumn("{task.fields[containers]} containers, {task.fields[rows]} rows"),
        console=Console(stderr=True), transient=True,
    )
    with progress:
        task = progress.add_task("collect", total=duration_s, containers=0, rows=0)

        def on_round(collector: Any, elapsed: float) -> None:
            progress.update(task, completed=min(elapsed, duration_s),
                            containers=len(collector.containers_seen),
                            rows=collector.rows_written)

        return collect_samples(
            client, interval_s=interval_s, duration_s=duration_s, filters=filters,
            on_round=on_round,
        )
