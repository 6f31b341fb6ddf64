"""``capacity collect``: sample running containers into the SQLite store.

A thin layer: it connects, opens the store, picks the reader and hands everything to
:class:`capacity._collect.Collector`. SIGINT and SIGTERM end the run cleanly: buffered rounds
are flushed and it exits 0 (SIGTERM is how a service manager stops it), except that a Ctrl-C
(SIGINT) cutting a ``--duration`` run short says so in one line and exits 3. A missing
engine, a refused socket, an unusable store or bad flags exit 3 with one line on stderr.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from .._units import format_duration
from ._common import DURATION, EXIT_OK, EXIT_UNKNOWN, parse_filters, stderr

#: how often buffered rounds are committed by default, seconds (a SIGKILL loses at most this)
DEFAULT_COMMIT_EVERY_S = 5.0
#: how often ``--keep`` deletes old rows during a long run, seconds
RETAIN_EVERY_S = 3600.0
#: list the running containers at least this often; between, the event stream says when
#: the set changed (see Collector's relist_s)
RELIST_S = 10.0


class _Stop(threading.Event):
    """Set by a signal; ``signals`` lists which ones came."""

    def __init__(self) -> None:
        super().__init__()
        self.signals: list[int] = []


@contextmanager
def _stop_on_signals() -> Iterator[_Stop]:
    """An event set by SIGINT or SIGTERM while the block runs (handlers restored after)."""
    stop = _Stop()

    def handler(signum: int, frame: Any) -> None:
        stop.signals.append(signum)
        stop.set()

    previous = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, handler)
    try:
        yield stop
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _log_to_stderr() -> None:
    logger = logging.getLogger("capacity.collect")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("capacity: %(levelname)s: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False


@contextmanager
def _progress(
    duration_s: float | None, enabled: bool
) -> Iterator[Callable[[Any, float], None] | None]:
    if not enabled:
        yield None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns: list[Any] = [TextColumn("collecting")]
    if duration_s is not None:
        columns += [BarColumn(), TimeRemainingColumn()]
    else:
        columns += [TimeElapsedColumn()]
    columns.append(
        TextColumn("{task.fields[containers]} containers seen, {task.fields[rows]} rows written")
    )
    progress = Progress(*columns, console=Console(stderr=True), transient=True)
    with progress:
        task = progress.add_task("collect", total=duration_s, containers=0, rows=0)

        def on_round(collector: Any, elapsed: float) -> None:
            done = elapsed if duration_s is None else min(elapsed, duration_s)
            progress.update(task, completed=done, containers=len(collector.containers_seen),
                            rows=collector.rows_written)

        yield on_round


def _with_retention(
    store: Any, keep_s: float | None, then: Callable[[Any, float], None] | None
) -> Callable[[Any, float], None] | None:
    """An on_round callback that applies ``--keep`` now and every hour, then calls ``then``."""
    if keep_s is None:
        return then
    store.retain(keep_s)
    last = [0.0]

    def on_round(collector: Any, elapsed: float) -> None:
        if elapsed - last[0] >= RETAIN_EVERY_S:
            last[0] = elapsed
            store.retain(keep_s)
        if then is not None:
            then(collector, elapsed)

    return on_round


@contextmanager
def _serving(stop: Callable[[], None] | None) -> Iterator[None]:
    """Stop the metrics server (if any) when the block ends, however it ends."""
    try:
        yield
    finally:
        if stop is not None:
            stop()


@click.command()
@click.option("--interval", type=DURATION, default="1s", show_default=True,
              help="Sampling interval.")
@click.option("--duration", type=DURATION, default=None,
              help="Collect for this long (e.g. 10m, 2h).")
@click.option("--forever", is_flag=True, help="Collect until SIGINT or SIGTERM.")
@click.option("--store", "store_path", type=click.Path(path_type=Path), default=None,
              help="The SQLite store. Default: $CAPACITY_STORE, else "
                   "$XDG_DATA_HOME/capacity/samples.sqlite.")
@click.option("--filter", "filters", multiple=True,
              help="Only containers matching label=K[=V], name=N, ancestor=IMAGE (repeatable).")
@click.option("--disk-usage-every", type=DURATION, default="5m", show_default=True,
              help="How often to measure each container's disk usage (expensive); 0: never.")
@click.option("--source", type=click.Choice(["auto", "cgroup", "api"]), default="auto",
              show_default=True,
              help="Read counters from cgroup files (fast, local) or the Engine stats API; "
                   "auto: cgroup files when readable.")
@click.option("--commit-every", type=DURATION, default=f"{DEFAULT_COMMIT_EVERY_S:g}s",
              show_default=True,
              help="Commit buffered rounds this often; a SIGKILL loses at most this much.")
@click.option("--keep", type=DURATION, default=None,
              help="Delete rows older than this (e.g. 14d) at the start and every hour.")
@click.option("--quiet", is_flag=True, help="No progress bar and no summary line.")
@click.option("--serve", "serve_address", metavar="[HOST]:PORT", default=None,
              help="Also expose what is collected on http://HOST:PORT/metrics with cAdvisor's "
                   "metric names, plus the collector's health (e.g. :9105).")
def collect(
    interval: float,
    duration: float | None,
    forever: bool,
    store_path: Path | None,
    filters: tuple[str, ...],
    disk_usage_every: float,
    source: str,
    commit_every: float,
    keep: float | None,
    quiet: bool,
    serve_address: str | None,
) -> int:
    """Sample running containers into the SQLite store (counters, host, events, disk usage).

    SIGINT/SIGTERM: flush and exit 0, except Ctrl-C (SIGINT) before --duration is over: one
    line, exit 3. No engine, a refused socket or bad flags: exit 3.
    """
    if interval <= 0:
        raise click.BadParameter("must be > 0", param_hint="--interval")
    if forever == (duration is not None):
        raise click.UsageError("give exactly one of --duration and --forever")
    if duration is not None and duration <= 0:
        raise click.BadParameter("must be > 0", param_hint="--duration")
    if keep is not None and keep <= 0:
        raise click.BadParameter("must be > 0", param_hint="--keep")

    from .._collect import Collector, DiskUsageSampler, DockerEngine, choose_reader
    from ..sources._docker import connect
    from ..sources._host import HostReader, host_facts
    from ..store import Store, default_store_path

    engine_filters = parse_filters(filters)
    exporter = stop_serving = None
    if serve_address is not None:
        from .._exporter import parse_listen_address

        parse_listen_address(serve_address)  # a bad address: one line, exit 3, nothing bound
    client = connect()  # DockerUnavailable: one line, exit 3
    engine = DockerEngine(client, filters=engine_filters)
    reader = choose_reader(client, engine.containers(), source=source)
    docker_root = Path(str(client.info().get("DockerRootDir") or "/var/lib/docker"))
    facts = host_facts(docker_root).to_dict()
    facts["reader"] = reader.name
    facts["interval_s"] = interval

    disk = None
    if disk_usage_every > 0:
        from ..sources._disk_usage import AmortisedTreeSize, disk_usage_bytes

        volume_size = AmortisedTreeSize()
        disk = DiskUsageSampler(
            lambda cid: disk_usage_bytes(client, cid, tree_size=volume_size), disk_usage_every
        )

    path = store_path if store_path is not None else default_store_path()
    batch_rounds = max(1, round(commit_every / interval))
    _log_to_stderr()
    show = not quiet and sys.stderr.isatty()
    if serve_address is not None:
        from .._exporter import ExporterSink, serve

        exporter = ExporterSink(None)
        # bound before the store is opened: a taken port exits 3 with nothing written
        stop_serving = serve(exporter, serve_address)[1]
    with (
        _serving(stop_serving),
        Store(path, batch_rounds=batch_rounds) as store,
        _stop_on_signals() as stop,
        _progress(duration, show) as progress,
    ):
        on_round = _with_retention(store, keep, progress)
        sink: Any = store
        if exporter is not None:
            exporter.sink = store
            sink = exporter
        collector = Collector(
            engine,
            reader,
            sink,
            sleep=stop.wait,
            host_reader=HostReader(),
            host_facts=facts,
            events=engine,
            relist_s=RELIST_S,
            disk_usage=disk,
        )
        if exporter is not None:
            exporter.collector = collector
        collector.run(
            interval_s=interval,
            duration_s=duration,
            on_round=on_round,
            should_stop=stop.is_set,
            require_containers=False,
        )
    if signal.SIGINT in stop.signals and duration is not None:  # Ctrl-C, not a service stop
        stderr(f"capacity: interrupted after {collector.rounds} of the rounds asked for; the "
               f"{collector.rows_written} rows written are kept in {path}")
        return EXIT_UNKNOWN
    if not quiet:
        gaps = f", {len(collector.outages)} engine outage(s)" if collector.outages else ""
        stopped = " (stopped by a signal)" if stop.is_set() else ""
        stderr(
            f"capacity: {collector.rounds} rounds at {format_duration(interval)} through "
            f"{reader.name}: {len(collector.containers_seen)} containers, "
            f"{collector.rows_written} rows, {collector.events_written} events, "
            f"{collector.gone} gone mid-round{gaps}{stopped} -> {path}"
        )
        if not collector.containers_seen:
            stderr("capacity: notice: no running container matched; nothing was sampled")
    return EXIT_OK
