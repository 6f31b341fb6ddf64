"""The ``capacity`` command line: a thin layer from library results to output and exit codes.

Exit status follows the Nagios convention: 0 ok, 1 warning, 2 critical (more containers
running than the safe count), 3 unknown (the run itself failed: no engine, bad input, bad
flags). Results go to stdout; progress, notices and errors to stderr.

Click was chosen over Typer: it is already a dependency of much of the scientific stack, it
needs no runtime type introspection, and ``standalone_mode=False`` lets us map usage errors to
exit 3 instead of Click's 2 (which would read as "critical" to an alerting system).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import click

from . import __version__
from ._errors import CapacityError, DockerUnavailable
from ._units import parse_duration

EXIT_OK, EXIT_WARNING, EXIT_CRITICAL, EXIT_UNKNOWN = 0, 1, 2, 3


def _stderr(message: str) -> None:
    click.echo(message, err=True)


class _Duration(click.ParamType):
    name = "duration"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, float):
            return value
        try:
            return parse_duration(value, name=param.name if param and param.name else "duration")
        except CapacityError as exc:
            self.fail(str(exc), param, ctx)


DURATION = _Duration()


def _parse_filters(values: Sequence[str]) -> dict[str, list[str]]:
    filters: dict[str, list[str]] = {}
    for value in values:
        key, sep, rest = value.partition("=")
        if not sep or key not in ("label", "name", "ancestor", "id"):
            raise click.BadParameter(
                f"{value!r}: use label=KEY[=VALUE], name=NAME, ancestor=IMAGE or id=ID",
                param_hint="--filter",
            )
        filters.setdefault(key, []).append(rest)
    return filters


def _status(plans: Mapping[str, Any]) -> int:
    critical = any(p.safe_count is not None and p.running > p.safe_count for p in plans.values())
    return EXIT_CRITICAL if critical else EXIT_OK


def _print_summary(plans: Mapping[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    from .report._render import format_value

    console = Console(no_color=bool(os.environ.get("NO_COLOR")), highlight=False)
    table = Table(title="capacity: safe container count per service")
    for column in ("service", "running", "safe count", "more", "binding", "per replica"):
        table.add_column(column, justify="left" if column in ("service", "binding") else "right")
    for service, plan in plans.items():
        binding = plan.binding_resource
        per = plan.per_resource.get(binding) if binding else None
        table.add_row(
            service,
            str(plan.running),
            "-" if plan.safe_count is None else str(plan.safe_count),
            "-" if plan.more is None else str(plan.more),
            binding or "-",
            format_value(binding, per.demand_per_replica) if per and binding else "-",
        )
    console.print(table)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="capacity")
def cli() -> None:
    """How many containers fit safely on this machine, from what they really use."""


@cli.command()
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
    from ._pipeline import fit_profiles, load_demo, plan_all, running_counts
    from .report._render import plans_to_dict, write_report
    from .solver._machine import Machine

    notices: list[str] = []
    machine = Machine.from_spec(machine_spec) if machine_spec else Machine.local()
    if demo:
        data = load_demo()
        notices.append("planned from the bundled recording (--demo), not from this host")
    else:
        from .sources._docker import connect

        try:
            client = connect()
        except DockerUnavailable as exc:
            if duration is not None:
                raise
            notices.append(f"{exc}; planning from the bundled recording instead (--demo)")
            _stderr(f"capacity: notice: {notices[-1]}")
            data = load_demo()
        else:
            data = _collect_with_progress(
                client, interval_s=interval, duration_s=duration or 10.0,
                filters=_parse_filters(filters), quiet=quiet or as_json,
            )
    profiles = fit_profiles(data.samples)
    running = running_counts(data.samples)
    plans = plan_all(profiles, machine, running=running)
    paths = write_report(plans, profiles, out_dir=out_dir, source=data.source, notices=notices)
    if as_json:
        click.echo(json.dumps(plans_to_dict(plans, source=data.source), indent=2))
    else:
        if not quiet:
            _print_summary(plans)
        _stderr(f"capacity: report written to {paths.folder}")
    return _status(plans)


def _collect_with_progress(
    client: Any, *, interval_s: float, duration_s: float, filters: Any, quiet: bool
) -> Any:
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from ._pipeline import collect_samples

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


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: run the CLI and map every failure to the documented exit status."""
    try:
        result = cli.main(args=list(argv) if argv is not None else None,
                          prog_name="capacity", standalone_mode=False)
    except click.exceptions.Exit as exc:  # --help, --version
        return int(exc.exit_code or 0)
    except click.exceptions.Abort:
        _stderr("capacity: aborted")
        return EXIT_UNKNOWN
    except click.ClickException as exc:  # usage errors: exit 3, not Click's 2
        exc.show()
        return EXIT_UNKNOWN
    except CapacityError as exc:
        _stderr(f"capacity: error: {exc}")
        return EXIT_UNKNOWN
    return int(result) if isinstance(result, int) else EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
