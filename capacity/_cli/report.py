"""``capacity report``: collect or load, fit, plan, write a report folder, and exit with the
ops status (0 ok, 1 warning, 2 critical, 3 unknown)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from .._columns import CPU, MEMORY
from .._errors import CapacityError, DockerUnavailable, NoContainers
from ._common import (
    DURATION,
    check_report_name,
    parse_filters,
    print_summary,
    settings_options,
    stderr,
)
from ._prometheus import PrometheusSource, prometheus_options

#: every setting of a plan and its status: the same options as 'capacity plan'
REPORT_SETTINGS = ("epsilon", "incompressible_epsilon", "method", "seed", "horizon_s",
                   "valid_for_s", "quantile_level", "independent_offsets",
                   "require_confidence", "accept_unseen_hours", "warn_headroom")


@click.command()
@click.option("--duration", type=DURATION, default=None,
              help="Collect live for this long (e.g. 10s, 5m). Default 15s: at 1s that is "
                   "15 intervals, a margin over the 10 samples a plan needs.")
@click.option("--interval", type=DURATION, default="1s", show_default=True,
              help="Sampling interval.")
@click.option("--demo", is_flag=True, help="Plan from the bundled real recording.")
@click.option("--samples", "samples_file", type=click.Path(path_type=Path), default=None,
              help="Plan from a samples table in a Parquet or CSV file.")
@click.option("--store", "store_path", type=click.Path(path_type=Path), default=None,
              help="Plan from the SQLite store written by 'capacity collect'.")
@click.option("--since", "since_s", type=DURATION, default=None,
              help="With --store: only the last DURATION (e.g. 24h). Default: everything.")
@click.option("--profiles", "profiles_file", type=click.Path(path_type=Path), default=None,
              help="Plan from a profiles.json (no fitting; nothing counted as running).")
@click.option("--machine", "machine_spec", default=None,
              help="Target machine, e.g. cpus=8,memory=32GiB. Default: this host.")
@click.option("--filter", "filters", multiple=True,
              help="Only containers matching label=K[=V], name=N, ancestor=IMAGE (repeatable).")
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=Path("reports"),
              show_default=True, help="Folder the report folder is written into.")
@click.option("--name", "name", default=None,
              help="Report folder name (default <host>-<UTC time>); an earlier report of that "
                   "name is replaced, anything else of that name refused (exit 3).")
@click.option("--keep", type=click.IntRange(min=1), default=None,
              help="Keep only the newest N <host>-<UTC time> report folders under --out.")
@click.option("--json", "as_json", is_flag=True, help="Print plan.json to stdout only.")
@click.option("--check", is_flag=True,
              help="Print one Nagios-style status line with performance data, nothing else.")
@click.option("--quiet", is_flag=True, help="No summary table.")
@click.option("--png", is_flag=True,
              help="Also write each chart as PNG (report.html inlines them as SVG and "
                   "report.md links the .svg files; a PNG draws each chart again).")
@prometheus_options
@settings_options(*REPORT_SETTINGS)
def report(
    duration: float | None,
    interval: float,
    demo: bool,
    samples_file: Path | None,
    store_path: Path | None,
    since_s: float | None,
    profiles_file: Path | None,
    machine_spec: str | None,
    settings: Any,
    filters: tuple[str, ...],
    out_dir: Path,
    name: str | None,
    keep: int | None,
    as_json: bool,
    check: bool,
    quiet: bool,
    png: bool,
    prometheus: PrometheusSource | None,
) -> int:
    """Collect (or load), fit, plan, and write a report folder under reports/.

    Sources (one): --duration (collect now), --demo, --samples FILE, --store PATH [--since],
    --profiles FILE, --prometheus URL [--since]. With none given it collects 15 s from the
    local engine. When no engine answers, that is UNKNOWN (exit 3) with --check or --json or
    when stdout is not a terminal (cron, pipes, Nagios); only an interactive run on a
    terminal plans from the bundled recording instead, and says so (also when the engine runs
    no container, or none the filters match).

    Old data: from --store or --prometheus, when the newest sample is more than 10 sampling
    intervals (and more than 10 min) old, what runs now is unknown: the status is UNKNOWN
    (exit 3) with the sample's age, no headroom is judged, and the safe counts sized from the
    history (beside what ran at its last instant) are still reported. --demo and --samples
    FILE are recordings: their newest sample's date is stated in the report, not judged.

    Exit status: 0 ok; 1 warning (least headroom below --warn-headroom, or a safe count
    undefined); 2 critical (more containers running than the safe count); 3 unknown (the run
    failed: no engine, bad input, bad flags, nothing to plan, report folder not writable; or
    the newest sample is too old to tell what runs now).
    """
    sources = [flag for flag, v in (("--duration", duration is not None), ("--demo", demo),
                                    ("--samples", samples_file), ("--store", store_path),
                                    ("--profiles", profiles_file),
                                    ("--prometheus", prometheus)) if v]
    if len(sources) > 1:
        raise click.UsageError(f"give one source, not {' and '.join(sources)}")
    if since_s is not None and store_path is None and prometheus is None:
        raise click.UsageError("--since needs --store or --prometheus")
    if as_json and check:
        raise click.UsageError("give --json or --check, not both")
    check_report_name(name)
    try:
        if name is not None:  # refuse a NAME that is not ours before collecting anything
            from ..reporting._render import refuse_unless_report_folder

            refuse_unless_report_folder(out_dir / name)
        return _report(
            duration=duration, interval=interval, demo=demo, samples_file=samples_file,
            store_path=store_path, since_s=since_s, profiles_file=profiles_file,
            machine_spec=machine_spec, settings=settings, filters=filters, out_dir=out_dir,
            name=name, keep=keep, as_json=as_json, check=check,
            quiet=quiet or as_json or check, png=png, prometheus=prometheus,
        )
    except (CapacityError, KeyboardInterrupt) as exc:
        if check:  # a Nagios plugin says UNKNOWN on stdout; main() adds the line on stderr
            from ..reporting._status import nagios_text

            why = "interrupted" if isinstance(exc, KeyboardInterrupt) else exc
            click.echo(nagios_text(f"CAPACITY UNKNOWN - {why}"))
        raise


def _report(
    *, duration: float | None, interval: float, demo: bool, samples_file: Path | None,
    store_path: Path | None, since_s: float | None, profiles_file: Path | None,
    machine_spec: str | None, settings: Any, filters: tuple[str, ...], out_dir: Path,
    name: str | None, keep: int | None, as_json: bool, check: bool, quiet: bool,
    png: bool = False, prometheus: PrometheusSource | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> int:
    """The report; ``clock`` gives "now" (UTC, timezone-aware) for judging the newest
    sample's age (:func:`capacity._pipeline.stale_reason`): tests inject one."""
    from .._pipeline import (
        fit_profiles,
        plan_all,
        recording_note,
        resolve_machine,
        running_counts,
        stale_reason,
    )
    from ..model._profile import Profiles
    from ..reporting._render import rotate_reports, write_report
    from ..reporting._status import check_line

    notices: list[str] = []
    # a spec is parsed before any collection (a typo fails fast); 'local' (the default) is
    # built once the samples are in: it counts the disk space the running containers use as
    # the machine's, since the plan counts it as theirs (as capacity.plan_all does)
    from ..solver._machine import local_spec_keys

    local = local_spec_keys(machine_spec) is not None  # a typo fails before collecting
    machine = None if local else resolve_machine(machine_spec)
    samples = host_usage = None
    stale: str | None = None
    if profiles_file is not None:
        profiles = Profiles.from_json(_readable(profiles_file, "--profiles"))
        running: dict[str, int] = {}
        source = f"profiles {profiles_file}"
        notices.append("planned from profiles alone (--profiles): nothing is counted as "
                       "running, so 'more' is the whole safe count and no time series is drawn")
    else:
        if prometheus is not None:
            data = prometheus.load(since_s)
            if machine_spec is None:
                notices.append("read from Prometheus but planned on this host's capacity: "
                               "give --machine for the fleet's hosts")
        else:
            data = _load(duration=duration, interval=interval, demo=demo,
                         samples_file=samples_file, store_path=store_path, since_s=since_s,
                         filters=filters, notices=notices, quiet=quiet,
                         fallback=not (as_json or check) and sys.stdout.isatty())
        samples, source = data.samples, data.source
        newest_round = None
        if store_path is not None:
            host_usage = _store_host_usage(store_path, since_s)
            if host_usage is not None and len(host_usage):
                # the collector's newest round: later than every container's last sample
                # when they all stopped (then none runs), and the source is current
                newest_round = host_usage["time"].max()
        profiles = fit_profiles(data)
        running = running_counts(samples, latest=newest_round)
        if store_path is not None or prometheus is not None:  # live sources: judged
            stale = stale_reason(samples, data.interval_s, now=clock(),
                                 newest_round=newest_round)
        elif samples_file is not None:  # a recording the user chose: its age is stated
            note = recording_note(samples, now=clock())
            if note is not None:
                notices.append(f"--samples {samples_file}: {note}")
        if stale is not None:
            # the last instant's containers are not "running now": the status is UNKNOWN and
            # says why; they still stand beside each service in its plan, so the safe counts
            # are those the history gives (counting none sized each service on an empty
            # host: 7 -> 13 safe beside 3 others, a final review's finding)
            stderr(f"capacity: notice: {stale}")
    if machine is None:
        # the fleet's samples use no disk on this host: nothing to add back for them
        machine = resolve_machine(machine_spec, samples if prometheus is None else None)
    plans = plan_all(profiles, machine, running=running, settings=settings)
    paths = write_report(plans, profiles, out_dir=out_dir, name=name, source=source,
                         notices=notices, samples=samples, host_usage=host_usage,
                         warn_headroom=settings.warn_headroom, png=png, stale=stale)
    if keep is not None:
        for old in rotate_reports(out_dir, keep):
            stderr(f"capacity: removed old report {old}")
    if as_json:
        # exactly the plan.json just written (strict JSON: NaN is never written)
        click.echo(paths.plan_json.read_text(), nl=False)
    elif check:
        click.echo(check_line(plans, paths.status))
    else:
        if not quiet:
            print_summary(plans, paths.status)
        stderr(f"capacity: report written to {paths.folder}")
    return paths.status.code


def _readable(path: Path, flag: str) -> Path:
    if not path.is_file():
        raise CapacityError(f"{flag} {path}: no such file; give the path of an existing file")
    return path


def _load(
    *, duration: float | None, interval: float, demo: bool, samples_file: Path | None,
    store_path: Path | None, since_s: float | None, filters: tuple[str, ...],
    notices: list[str], quiet: bool, fallback: bool,
) -> Any:
    """The samples of the one source given; with none, a live collection. ``fallback``: when
    no engine answers and no source was given, plan from the bundled recording (interactive
    use on a terminal only; for a script or a check that would pass demo data off as this
    host's, so the missing engine is raised: exit 3)."""
    from .._pipeline import load_demo, load_samples

    if demo:
        data = load_demo()
        notices.append("planned from the bundled recording (--demo), not from this host; "
                       f"recorded up to {data.samples['time'].max():%Y-%m-%d %H:%M} UTC, its "
                       "'running' is what ran then")
        return data
    if samples_file is not None:
        return load_samples(samples_file=_readable(samples_file, "--samples"))
    if store_path is not None:
        return load_samples(store=store_path, since_s=since_s)
    from ..sources._docker import connect

    try:
        client = connect()
    except DockerUnavailable as exc:
        if duration is not None:
            raise
        if not fallback:
            raise DockerUnavailable(
                f"{exc}; or give a source: --store PATH, --samples FILE or --profiles FILE "
                "(--demo plans from the bundled recording, not this host)",
                base_url=exc.base_url) from exc
        notices.append(f"{exc}; planning from the bundled recording instead (--demo)")
        stderr(f"capacity: notice: {notices[-1]}")
        return load_demo()
    try:
        return _collect_with_progress(
            client, interval_s=interval, duration_s=duration or 15.0,
            filters=parse_filters(filters), quiet=quiet,
        )
    except NoContainers as exc:
        # an engine with nothing (matching) running: on a terminal, without a duration
        # asked for, the same fallback as no engine (README's first command on a new host)
        if duration is not None or not fallback:
            raise
        notices.append(f"{exc}; planning from the bundled recording instead (--demo), not "
                       "from this host")
        stderr(f"capacity: notice: {notices[-1]}")
        return load_demo()


def _store_host_usage(store_path: Path, since_s: float | None) -> Any:
    """Host rates from the store for the time series (None when it has none)."""
    from .._pipeline import since_time
    from ..store._sqlite import Store

    with Store(store_path, read_only=True) as st:
        host = st.host_rates()
    if host.empty or "time" not in host.columns:
        return None
    host = host.rename(columns={"host_cpu_cores": CPU, "host_memory_used_bytes": MEMORY})
    since = since_time(since_s)
    if since is not None:
        host = host[host["time"] >= since]
    return host


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
