"""The collection loop: list containers, read every one's counters each round, keep them.

A round lists the running containers through an :class:`Engine`, reads each one through a
:class:`~capacity.sources.CounterReader` and hands the readings, with the host's totals, to a
:class:`RoundSink` (the SQLite :class:`~capacity.store.Store`, or a :class:`Collection` in
memory). Around the rounds, :class:`Collector` also

- writes the host facts once per run;
- pumps lifecycle events (start, die, oom, restart, kill, ...) from the engine's event stream
  in a background thread (:class:`EventPump`) and writes them each round;
- measures per-container disk usage on a slow schedule in a background thread
  (:class:`DiskUsageSampler`): it is expensive (the engine walks the writable layer);
- survives faults: a container that vanishes between listing and reading is skipped (counted
  in :attr:`Collector.gone`) and the round completes; an engine that stops answering is
  retried with exponential backoff, and the outage is written as one ``collector_gap`` event
  when it answers again.

Time comes from an injected clock pair and an injected ``sleep``, so tests can drive rounds
without waiting. Only the thread that calls :meth:`Collector.run` touches the sink (SQLite
connections belong to one thread); the background threads hand their results over through
queues.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import pandas as pd

from ._errors import ContainerGone, DockerUnavailable, InvalidParameter, NoContainers
from .sources import _cgroup_v1, _cgroup_v2
from .sources._cgroup import CgroupLocation, CgroupReader, HeldFiles, _FdBudget, _is_gone
from .sources._types import ContainerCounters, ContainerInfo, CounterReader, HostCounters

__all__ = [
    "GAP_ACTION",
    "LIFECYCLE_ACTIONS",
    "CachedCgroupReader",
    "Collection",
    "Collector",
    "ContainerEvent",
    "DiskUsageSampler",
    "DockerEngine",
    "Engine",
    "EventPump",
    "EventSource",
    "RoundSink",
    "choose_reader",
]

log = logging.getLogger("capacity.collect")

#: Engine event actions kept as lifecycle events (``exec_*``, ``attach``, ``top``, ``resize``
#: and the like are noise for capacity planning and are dropped)
LIFECYCLE_ACTIONS = frozenset(
    {
        "create",
        "start",
        "restart",
        "die",
        "kill",
        "oom",
        "stop",
        "pause",
        "unpause",
        "destroy",
        "update",
        "rename",
        "health_status",
    }
)
#: actions after which a cached ``ContainerInfo`` is stale (new pid, start time or limits)
_STALE_ACTIONS = frozenset({"start", "restart", "die", "stop", "destroy", "update", "rename"})
#: actions after which the set of running containers (or their metadata) may have changed
_MEMBERSHIP_ACTIONS = _STALE_ACTIONS | {"create", "kill", "pause", "unpause"}
#: Engine event attributes worth keeping (the rest are the container's labels, stored already)
_EVENT_ATTRIBUTES = ("name", "image", "exitCode", "signal", "execDuration")
#: container-listing filter -> event-stream filter of the same meaning
_EVENT_FILTERS = {"label": "label", "name": "container", "id": "container", "ancestor": "image"}
#: the ``action`` of the event row that records an outage of the engine (container_id "")
GAP_ACTION = "collector_gap"


@dataclass(frozen=True)
class ContainerEvent:
    """One lifecycle event of a container, as the engine reported it.

    ``time`` is UTC with the engine's nanosecond stamp cut to microseconds; ``attributes``
    keeps the exit code, signal, name and image (not the labels).
    """

    time: datetime
    container_id: str
    action: str
    attributes: Mapping[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "time": self.time,
            "container_id": self.container_id,
            "action": self.action,
            "attributes": dict(self.attributes),
        }


class Engine(Protocol):
    """What the collector needs from the container engine: the running containers.

    ``containers`` raises :class:`~capacity.DockerUnavailable` when the engine does not
    answer; the collector then retries with backoff.
    """

    def containers(self) -> list[ContainerInfo]: ...


class EventSource(Protocol):
    """The engine's event stream, read window by window.

    ``events(since, until)`` yields the container events in ``[since, until]`` and returns
    once the engine's clock passes ``until`` (the call blocks until then when ``until`` is
    in the future). The returned iterable may have a ``close()`` that ends it early.
    """

    def events(self, since: datetime, until: datetime) -> Iterable[ContainerEvent]: ...


class RoundSink(Protocol):
    """Where rounds go (the SQLite store implements this).

    A sink may also have ``write_events(records)``, ``write_disk_usage(time, rows)``,
    ``write_host_facts(time, facts)`` and ``flush()``; the collector uses them when present.
    """

    def write_round(
        self,
        time: datetime,
        monotonic_s: float,
        containers: Sequence[ContainerInfo],
        counters: Sequence[ContainerCounters],
        host: Any = None,
    ) -> None: ...


@dataclass
class Collection:
    """Rounds kept in memory: the counters table and one metadata row per container.

    Also keeps what a store would: events, disk usage readings and host facts.
    """

    rows: list[dict[str, Any]] = field(default_factory=list)
    containers: dict[tuple[str, datetime], ContainerInfo] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    disk_usage: list[tuple[datetime, str, datetime, int]] = field(default_factory=list)
    host_facts: list[tuple[datetime, Mapping[str, Any]]] = field(default_factory=list)
    rounds: int = 0
    gone: int = 0

    def write_round(
        self,
        time: datetime,
        monotonic_s: float,
        containers: Sequence[ContainerInfo],
        counters: Sequence[ContainerCounters],
        host: Any = None,
    ) -> None:
        by_id = {c.id: c for c in containers}
        for counter in counters:
            info = by_id[counter.container_id]
            self.containers[(info.id, info.started_at)] = info
            row = counter.to_dict()
            row["time"] = time
            row["monotonic_s"] = monotonic_s
            row["started_at"] = info.started_at
            self.rows.append(row)
        self.rounds += 1

    def write_events(self, events: Iterable[Mapping[str, Any]]) -> None:
        self.events.extend(dict(e) for e in events)

    def write_disk_usage(self, time: datetime, usage: Iterable[tuple[str, datetime, int]]) -> None:
        self.disk_usage.extend((time, cid, started, int(b)) for cid, started, b in usage)

    def write_host_facts(self, time: datetime, facts: Mapping[str, Any]) -> None:
        self.host_facts.append((time, dict(facts)))

    def counters_frame(self) -> pd.DataFrame:
        """The counters table (see :mod:`capacity._columns`)."""
        df = pd.DataFrame(self.rows)
        if not df.empty:
            df["time"] = pd.to_datetime(df["time"], utc=True)
            df["started_at"] = pd.to_datetime(df["started_at"], utc=True)
        return df

    def containers_frame(self) -> pd.DataFrame:
        """One row per container lifecycle: id, started_at, name, image, service, limits."""
        rows = []
        for info in self.containers.values():
            d = info.to_dict()
            d["container_id"] = d.pop("id")
            d["started_at"] = info.started_at
            rows.append(d)
        df = pd.DataFrame(rows)
        if not df.empty:
            df["started_at"] = pd.to_datetime(df["started_at"], utc=True)
        return df


class EventPump:
    """Read an :class:`EventSource` in a background thread, in windows of ``window_s``.

    Parameters
    ----------
    source : EventSource
        The engine's event stream.
    start : datetime
        Aware UTC time of the first window's ``since`` (the start of the run).
    window_s : float
        Length of one ``events(since, until)`` call, seconds. Each call ends by itself at
        ``until``, so the thread never blocks forever; :meth:`stop` also closes the call in
        flight.
    wall_clock : callable
        Aware UTC "now".
    retry_s : float
        Wait after a failed call (engine down) before the next one, seconds; the next call
        starts from the same ``since``, so events the engine still holds are not lost.

    Notes
    -----
    Windows overlap by a little (the engine compares whole timestamps); events are
    de-duplicated on ``(time, id, action)``. Only :meth:`drain` is called from the
    collector's thread.
    """

    def __init__(
        self,
        source: EventSource,
        *,
        start: datetime,
        window_s: float = 2.0,
        wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        retry_s: float = 1.0,
    ) -> None:
        self.source = source
        self.window_s = window_s
        self.wall_clock = wall_clock
        self.retry_s = retry_s
        self._since = start
        self._queue: queue.SimpleQueue[ContainerEvent] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._seen: dict[tuple[datetime, str, str], None] = {}
        self._current: Any = None
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._loop, name="capacity-events", daemon=True)
        self.errors = 0

    def start(self) -> EventPump:
        self._thread.start()
        return self

    def _take(self, events: Iterable[ContainerEvent]) -> None:
        with self._lock:
            self._current = events
        try:
            for event in events:
                key = (event.time, event.container_id, event.action)
                if key in self._seen:
                    continue
                self._seen[key] = None
                if len(self._seen) > 10_000:  # keep the de-dup memory bounded
                    for old in list(self._seen)[:5_000]:
                        del self._seen[old]
                self._queue.put(event)
        finally:
            with self._lock:
                self._current = None

    def _loop(self) -> None:
        while not self._stop.is_set():
            until = self.wall_clock() + timedelta(seconds=self.window_s)
            try:
                self._take(self.source.events(self._since, until))
            except Exception as exc:  # the engine went away: retry from the same since
                if self._stop.is_set():
                    break
                self.errors += 1
                log.debug("event stream failed (%s); retrying in %.1f s", exc, self.retry_s)
                self._stop.wait(self.retry_s)
                continue
            # a stream can also end early (engine shutting down): resume from where it ended;
            # the engine compares whole seconds, so step back one to lose nothing at the edge
            self._since = min(until, self.wall_clock()) - timedelta(seconds=1)

    def drain(self) -> list[ContainerEvent]:
        """Events read since the last call, in arrival order."""
        out: list[ContainerEvent] = []
        while True:
            try:
                out.append(self._queue.get_nowait())
            except queue.Empty:
                return out

    def stop(self, *, catch_up: bool = True) -> list[ContainerEvent]:
        """Stop the thread; with ``catch_up``, read the events up to now once more.

        Returns what :meth:`drain` would. The catch-up call has ``until`` in the past, so the
        engine answers at once.
        """
        self._stop.set()
        with self._lock:
            current = self._current
        close = getattr(current, "close", None)
        if close is not None:
            with contextlib.suppress(Exception):
                close()
        self._thread.join(timeout=self.window_s + 5)
        if catch_up:
            with contextlib.suppress(Exception):
                self._take(self.source.events(self._since, self.wall_clock()))
        return self.drain()


class DiskUsageSampler:
    """Measure per-container disk usage in one background thread, on a slow schedule.

    Parameters
    ----------
    measure : callable
        ``measure(container_id) -> bytes or None`` (for Docker:
        :func:`capacity.sources._disk_usage.disk_usage_bytes` with a client). May raise
        :class:`ContainerGone`. Expensive: the engine walks the writable layer.
    every_s : float
        Seconds between the starts of two measurements of all containers.

    Notes
    -----
    A measurement of every container runs in the thread while rounds go on; :meth:`poll`
    returns the finished readings ``(time, container_id, started_at, bytes)``. If one pass
    takes longer than ``every_s``, the next one starts when it ends (never two at once).
    """

    def __init__(self, measure: Callable[[str], int | None], every_s: float) -> None:
        if not every_s > 0:
            raise InvalidParameter(
                "every_s", "DiskUsageSampler", "a number of seconds > 0", every_s
            )
        self.measure = measure
        self.every_s = every_s
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="capacity-disk")
        self._future: Future[list[tuple[datetime, str, datetime, int]]] | None = None
        self._next_at: float | None = None
        self._cancel = threading.Event()

    def _measure_all(
        self, containers: Sequence[ContainerInfo], wall_clock: Callable[[], datetime]
    ) -> list[tuple[datetime, str, datetime, int]]:
        out = []
        for info in containers:
            if self._cancel.is_set():
                break
            try:
                size = self.measure(info.id)
            except ContainerGone:
                continue
            except Exception as exc:  # one container's failure must not stop the others
                log.debug("disk usage of %s failed: %s", info.id[:12], exc)
                continue
            if size is not None:
                out.append((wall_clock(), info.id, info.started_at, int(size)))
        return out

    def maybe_start(
        self,
        monotonic_s: float,
        containers: Sequence[ContainerInfo],
        wall_clock: Callable[[], datetime],
    ) -> None:
        """Start a pass over ``containers`` if one is due and none is running."""
        if self._future is not None or not containers:
            return
        if self._next_at is not None and monotonic_s < self._next_at:
            return
        self._next_at = monotonic_s + self.every_s
        self._future = self._pool.submit(self._measure_all, list(containers), wall_clock)

    def poll(self) -> list[tuple[datetime, str, datetime, int]]:
        """Readings of a finished pass (empty while one runs or none was started)."""
        if self._future is None or not self._future.done():
            return []
        future, self._future = self._future, None
        try:
            return future.result()
        except Exception as exc:
            log.warning("disk usage pass failed: %s", exc)
            return []

    def close(self, wait_s: float = 10.0) -> list[tuple[datetime, str, datetime, int]]:
        """Let a running pass finish (cancelling the containers not started yet)."""
        self._cancel.set()
        out: list[tuple[datetime, str, datetime, int]] = []
        if self._future is not None:
            try:
                out = self._future.result(timeout=wait_s)
            except Exception:
                out = []
            self._future = None
        self._pool.shutdown(wait=False, cancel_futures=True)
        return out


class Collector:
    """Sample running containers every ``interval_s`` seconds into a sink.

    Parameters
    ----------
    engine : Engine
        Lists running containers (every round, so new and removed ones are seen).
    reader : CounterReader
        Reads one container's counters; raises :class:`ContainerGone` for a vanished one. A
        reader with ``read_many(containers) -> (counters, gone_ids)`` (the stats API reader)
        reads a round in parallel.
    sink : RoundSink
        Receives each round (a :class:`Collection` in memory, or the SQLite store).
    wall_clock, monotonic_clock : callable
        Injected clocks: aware UTC wall time for the record, monotonic seconds for rates.
    sleep : callable
        Injected sleep (seconds), so tests run rounds without waiting; the CLI passes the
        ``wait`` of its stop event so a signal ends a sleep at once.
    host_reader : object, optional
        ``read() -> HostCounters`` each round (:class:`~capacity.sources.HostReader`).
    host_facts : mapping, optional
        Written once per run (``sink.write_host_facts``).
    events : EventSource, optional
        The engine's event stream, pumped in a background thread while :meth:`run` runs.
    disk_usage : DiskUsageSampler, optional
        Per-container disk usage on its own slow schedule.
    backoff_initial_s, backoff_max_s : float
        Waits between retries while the engine does not answer: doubling from the first to
        the second, seconds.
    api_workers : int
        Stats API calls in flight at once (readers with ``read_many``). Trap: the engine
        answers each call at its next 1 s sampling tick, even with ``one-shot``, so a round
        takes about ceil(containers / api_workers) seconds (8 workers, 100 containers:
        13 s); the calls wait, they do not work, so many threads are cheap.
    relist_s : float, optional
        With ``events``, while :meth:`run` pumps them: list the running containers only when
        the event stream reports a change of the running set (start, die, stop, pause, ...)
        and at least every ``relist_s`` seconds (a safety net for a missed event, and how an
        engine that stopped answering is noticed); between listings a round reads the last
        listing minus the containers found gone. Listing is an HTTP call the engine answers
        with JSON for every container: the largest cost of a round once the cgroup files are
        held open. None (default): list every round. ``capacity collect`` passes 10 s.

    Attributes
    ----------
    rounds, rows_written, gone, read_errors, listings : int
        Rounds completed, counters rows handed to the sink, containers skipped because they
        vanished, readings that failed otherwise (logged, skipped), and listings of the
        running containers asked of the engine.
    containers_seen : set of str
        Ids of every container read at least once.
    outages : list of dict
        Engine outages survived: ``since``, ``until`` (aware UTC), ``gap_s``, ``error``.
    """

    def __init__(
        self,
        engine: Engine,
        reader: CounterReader,
        sink: RoundSink,
        *,
        wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        monotonic_clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Any] = time.sleep,
        host_reader: Any = None,
        host_facts: Mapping[str, Any] | None = None,
        events: EventSource | None = None,
        disk_usage: DiskUsageSampler | None = None,
        backoff_initial_s: float = 1.0,
        backoff_max_s: float = 30.0,
        api_workers: int = 128,
        relist_s: float | None = None,
    ) -> None:
        if relist_s is not None and not relist_s > 0:
            raise InvalidParameter("relist_s", "Collector", "a number of seconds > 0 or None",
                                   relist_s)
        self.relist_s = relist_s
        self._listed: list[ContainerInfo] | None = None
        self._listed_at = -math.inf
        self.listings = 0
        self.engine = engine
        self.reader = reader
        self.sink = sink
        self.wall_clock = wall_clock
        self.monotonic_clock = monotonic_clock
        self.sleep = sleep
        self.host_reader = host_reader
        self.host_facts = host_facts
        self.events = events
        self.disk_usage = disk_usage
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self.api_workers = api_workers
        self.rounds = 0
        self.rows_written = 0
        self.gone = 0
        self.read_errors = 0
        self.events_written = 0
        self.containers_seen: set[str] = set()
        self.outages: list[dict[str, Any]] = []
        #: True while the engine does not answer (an outage in progress)
        self.engine_down = False
        self._pump: EventPump | None = None

    # -- one round -------------------------------------------------------------------------

    def _read_all(
        self, containers: Sequence[ContainerInfo]
    ) -> tuple[list[ContainerInfo], list[ContainerCounters]]:
        read_many = getattr(self.reader, "read_many", None)
        if read_many is not None:
            # the engine answers a stats call only at its next 1 s sampling tick, so calls
            # are waits, not work: run them all at once (up to api_workers)
            workers = max(1, min(self.api_workers, len(containers)))
            counters, gone_ids = read_many(containers, max_workers=workers)
            gone = set(gone_ids)
            self.gone += len(gone)
            self._forget(gone)
            got = {c.container_id for c in counters}
            return [c for c in containers if c.id in got], list(counters)
        read: list[ContainerInfo] = []
        counters = []
        for info in containers:
            try:
                counters.append(self.reader.read(info))
            except ContainerGone:
                self.gone += 1
                self._forget((info.id,))
                continue
            except DockerUnavailable:
                raise
            except OSError as exc:  # e.g. permissions changed under us: skip, say it once
                self.read_errors += 1
                if self.read_errors <= 3:
                    log.warning("reading %s failed, skipped: %s", info.name or info.id[:12], exc)
                continue
            read.append(info)
        return read, counters

    def _forget(self, ids: Iterable[str]) -> None:
        """Drop cached metadata (engine) and cgroup locations (reader) of these containers."""
        for owner in (self.engine, self.reader):
            forget = getattr(owner, "forget", None)
            if forget is not None:
                for cid in ids:
                    forget(cid)

    def _write_events(self, events: Sequence[ContainerEvent]) -> None:
        if not events:
            return
        stale = {e.container_id for e in events if e.action in _STALE_ACTIONS}
        self._forget(stale)
        write = getattr(self.sink, "write_events", None)
        if write is not None:
            write([e.to_dict() for e in events])
            self.events_written += len(events)

    def _write_disk_usage(self, rows: Sequence[tuple[datetime, str, datetime, int]]) -> None:
        write = getattr(self.sink, "write_disk_usage", None)
        if not rows or write is None:
            return
        # one write per pass, stamped with the pass's last reading
        write(max(r[0] for r in rows), [(cid, started, size) for _, cid, started, size in rows])

    def round(self) -> int:
        """Read every running container once; return how many were read.

        Raises :class:`DockerUnavailable` when the engine does not answer (nothing is
        written for the round).
        """
        events = self._pump.drain() if self._pump is not None else []
        self._write_events(events)
        containers = self._containers(events)
        monotonic_s = self.monotonic_clock()
        now = self.wall_clock()
        read, counters = self._read_all(containers)
        self._listed = read  # the gone and unreadable are dropped until the next listing
        prune = getattr(self.reader, "prune", None)
        if prune is not None:
            prune(c.id for c in containers)
        self.containers_seen.update(c.id for c in read)
        host: HostCounters | None = self.host_reader.read() if self.host_reader else None
        self.sink.write_round(now, monotonic_s, read, counters, host)
        self.rounds += 1
        self.rows_written += len(counters)
        if self.disk_usage is not None:
            self._write_disk_usage(self.disk_usage.poll())
            # not in the first round: Store.samples() puts a reading on the nearest counters
            # row, and a container's first row has no rate, so the reading would be lost
            if self.rounds >= 2:
                self.disk_usage.maybe_start(monotonic_s, read, self.wall_clock)
        return len(counters)

    def _containers(self, events: Sequence[ContainerEvent]) -> list[ContainerInfo]:
        """The running containers: listed by the engine, or the last listing (``relist_s``)."""
        now = self.monotonic_clock()
        if (
            self.relist_s is None
            or self._pump is None
            or self._listed is None
            or now - self._listed_at >= self.relist_s
            or any(e.action in _MEMBERSHIP_ACTIONS for e in events)
        ):
            self._listed = self.engine.containers()
            self._listed_at = now
            self.listings += 1
        return list(self._listed)

    # -- the loop --------------------------------------------------------------------------

    def _record_gap(self, outage: dict[str, Any]) -> None:
        self.outages.append(outage)
        log.warning(
            "the engine answers again after %.1f s; the gap is recorded (%s)",
            outage["gap_s"],
            outage["error"],
        )
        self._write_events(
            [
                ContainerEvent(
                    time=outage["since"],
                    container_id="",
                    action=GAP_ACTION,
                    attributes={
                        "gap_s": f"{outage['gap_s']:.3f}",
                        "until": outage["until"].isoformat(),
                        "error": outage["error"],
                        "retries": str(outage["retries"]),
                    },
                )
            ]
        )

    def run(
        self,
        *,
        interval_s: float,
        duration_s: float | None,
        on_round: Callable[[Collector, float], None] | None = None,
        should_stop: Callable[[], bool] = lambda: False,
        require_containers: bool = True,
    ) -> None:
        """Run rounds every ``interval_s`` until ``duration_s`` has passed (None: forever).

        Rounds are scheduled on the monotonic clock (no drift: a late round does not shift
        the later ones; a round due already starts at once). The first
        round happens at once; a run of duration D at interval I takes floor(D / I) + 1
        rounds, giving floor(D / I) intervals of rates.

        While the engine does not answer, rounds are replaced by retries after 1, 2, 4, ...
        ``backoff_max_s`` seconds; the outage ends up as one :data:`GAP_ACTION` event. A run
        with a duration still ends on time during an outage.

        Buffered rounds are flushed (``sink.flush``) when the run ends, also on an exception
        or a stop request. Raises :class:`NoContainers` if no round saw any container and
        ``require_containers``.
        """
        if not interval_s > 0:
            raise InvalidParameter("interval_s", "Collector.run", "a number of seconds > 0",
                                   interval_s)
        start = self.monotonic_clock()
        write_facts = getattr(self.sink, "write_host_facts", None)
        if self.host_facts is not None and write_facts is not None:
            write_facts(self.wall_clock(), self.host_facts)
        if self.events is not None:
            self._pump = EventPump(self.events, start=self.wall_clock(),
                                   wall_clock=self.wall_clock).start()
        next_at = start
        failures = 0
        outage: dict[str, Any] | None = None
        try:
            while not should_stop():
                try:
                    self.round()
                except DockerUnavailable as exc:
                    if outage is None:
                        outage = {"since": self.wall_clock(), "since_mono": self.monotonic_clock(),
                                  "error": str(exc), "retries": 0}
                        log.warning("the engine does not answer: %s; retrying with backoff", exc)
                    outage["retries"] += 1
                    self.engine_down = True
                    delay = min(self.backoff_max_s, self.backoff_initial_s * 2**failures)
                    failures += 1
                    now = self.monotonic_clock()
                    if duration_s is not None:
                        left = start + duration_s - now
                        if left <= 0:
                            break
                        delay = min(delay, left)
                    self.sleep(delay)
                    next_at = self.monotonic_clock()  # resume the schedule from here
                    continue
                self.engine_down = False
                if outage is not None:
                    outage["until"] = self.wall_clock()
                    outage["gap_s"] = self.monotonic_clock() - outage.pop("since_mono")
                    self._record_gap(outage)
                    outage, failures = None, 0
                elapsed = self.monotonic_clock() - start
                if on_round is not None:
                    on_round(self, elapsed)
                next_at += interval_s
                if duration_s is not None and next_at - start > duration_s + 1e-9:
                    break
                delay = next_at - self.monotonic_clock()
                if delay > 0:
                    self.sleep(delay)
        finally:
            self._finish(outage)
        if require_containers and not self.containers_seen:
            raise NoContainers(
                "no running containers to sample: start some, or try "
                "'capacity report --demo' to plan from the bundled recording"
            )

    def _finish(self, outage: dict[str, Any] | None) -> None:
        """Stop the threads, write what they still hold, flush the sink."""
        try:
            if self._pump is not None:
                self._write_events(self._pump.stop())
                self._pump = None
            if self.disk_usage is not None:
                self._write_disk_usage(self.disk_usage.close())
            if outage is not None and "since_mono" in outage:
                outage["until"] = self.wall_clock()
                outage["gap_s"] = self.monotonic_clock() - outage.pop("since_mono")
                outage["error"] += " (still down when the run ended)"
                self._record_gap(outage)
        finally:
            close = getattr(self.reader, "close", None)  # files a reader holds open
            if close is not None:
                close()
            flush = getattr(self.sink, "flush", None)
            if flush is not None:
                flush()


def _engine_down(exc: Exception, base_url: str | None) -> DockerUnavailable:
    return DockerUnavailable(f"no Docker Engine answers at {base_url}: {exc}", base_url=base_url)


def _ns_text(value: datetime) -> str:
    """An aware datetime as the engine's ``seconds.nanoseconds`` timestamp text."""
    ns = (value - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1) * 1000
    return f"{ns // 1_000_000_000}.{ns % 1_000_000_000:09d}"


class _Closing:
    """An iterator over decoded engine events that ``close()`` ends from another thread."""

    def __init__(self, stream: Any, convert: Callable[[Mapping[str, Any]], ContainerEvent | None]):
        self.stream = stream
        self.convert = convert

    def __iter__(self) -> Iterator[ContainerEvent]:
        for raw in self.stream:
            event = self.convert(raw)
            if event is not None:
                yield event

    def close(self) -> None:
        self.stream.close()


class DockerEngine:
    """:class:`Engine` and :class:`EventSource` over a docker SDK client.

    Parameters
    ----------
    client : docker.DockerClient
        A connected client (:func:`capacity.sources._docker.connect`).
    filters : mapping, optional
        The Engine's container filters (``{"label": ["app=web"]}``), applied to the listing
        and to the event stream.

    Notes
    -----
    One ``GET /containers/json`` per round; ``inspect`` only for containers not seen before
    (metadata is read once per lifecycle). A cached entry is dropped when the collector
    reports the container gone, when it leaves the listing, and on a ``start``, ``restart``,
    ``die`` or ``update`` event: a restart keeps the id but changes the pid and start time.
    Errors talking to the engine become :class:`~capacity.DockerUnavailable`.
    """

    def __init__(self, client: Any, *, filters: Mapping[str, Any] | None = None) -> None:
        self.client = client
        self.filters = dict(filters or {})
        self._cache: dict[str, ContainerInfo] = {}
        self._lock = threading.Lock()  # forget() may come from the event thread's results

    @property
    def base_url(self) -> str | None:
        return getattr(getattr(self.client, "api", None), "base_url", None)

    def containers(self) -> list[ContainerInfo]:
        import docker.errors
        import requests.exceptions

        from .sources._docker import container_info

        api = self.client.api
        flt: dict[str, Any] = dict(self.filters)
        flt["status"] = "running"
        try:
            summaries = api.containers(filters=flt)
        except (docker.errors.DockerException, requests.exceptions.RequestException,
                OSError) as exc:
            raise _engine_down(exc, self.base_url) from exc
        result: list[ContainerInfo] = []
        ids = []
        for summary in summaries:
            cid = str(summary["Id"])
            ids.append(cid)
            with self._lock:
                info = self._cache.get(cid)
            if info is None:
                try:
                    info = container_info(api.inspect_container(cid))
                except (docker.errors.NotFound, ContainerGone):
                    continue
                except (docker.errors.DockerException, requests.exceptions.RequestException,
                        OSError) as exc:
                    raise _engine_down(exc, self.base_url) from exc
                with self._lock:
                    self._cache[cid] = info
            result.append(info)
        with self._lock:
            for cid in set(self._cache) - set(ids):
                del self._cache[cid]
        return result

    def forget(self, container_id: str) -> None:
        """Drop the cached metadata of one container (re-inspected when listed again)."""
        with self._lock:
            self._cache.pop(container_id, None)

    @staticmethod
    def _event(raw: Mapping[str, Any]) -> ContainerEvent | None:
        action = str(raw.get("Action") or raw.get("status") or "")
        action = action.split(":", 1)[0].strip()  # "exec_start: sh -c ..." -> "exec_start"
        if raw.get("Type", "container") != "container" or action not in LIFECYCLE_ACTIONS:
            return None
        actor = raw.get("Actor") or {}
        attrs = actor.get("Attributes") or {}
        time_ns = int(raw.get("timeNano") or int(raw.get("time") or 0) * 1_000_000_000)
        when = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=time_ns // 1000)
        return ContainerEvent(
            time=when,
            container_id=str(actor.get("ID") or raw.get("id") or ""),
            action=action,
            attributes={k: str(attrs[k]) for k in _EVENT_ATTRIBUTES if k in attrs},
        )

    def events(self, since: datetime, until: datetime) -> Iterable[ContainerEvent]:
        """Container events in ``[since, until]``; blocks until ``until`` if it is ahead.

        Raises :class:`DockerUnavailable` when the engine does not answer.
        """
        import docker.errors
        import requests.exceptions

        flt: dict[str, Any] = {"type": "container"}
        # the event stream has its own filter names: 'label' is shared, container names and
        # ids are both 'container' (exact match, not the listing's substring match), and an
        # image is 'image'; unknown names are ignored by the engine, not refused
        for listing, stream in _EVENT_FILTERS.items():
            if listing in self.filters:
                values = self.filters[listing]
                values = [values] if isinstance(values, str) else list(values)
                flt.setdefault(stream, []).extend(values)
        try:
            stream = self.client.api.events(
                since=_ns_text(since), until=_ns_text(until), filters=flt, decode=True
            )
        except (docker.errors.DockerException, requests.exceptions.RequestException,
                OSError) as exc:
            raise _engine_down(exc, self.base_url) from exc
        return _Closing(stream, self._event)


class _Plan:
    """How one container is read once its files are held: a ``pread`` per descriptor, in the
    order of :meth:`CgroupReader._paths` (-1: a file this kernel lacks).

    Slow-changing files (:data:`SLOW_SLOTS`: the memory limit, and v1's ``memory.failcnt``)
    are read on the first call and every :data:`SLOW_EVERY_READS` calls after; between, their
    last text is reused. Trap: at ``--interval 1s`` a ``docker update --memory`` or a failcnt
    increase shows up to ``SLOW_EVERY_READS - 1`` readings late (the counter stays monotone
    and exact at each full reading). Every other file is read every time.
    """

    __slots__ = ("all_held", "calls", "fast_all_held", "fast_fds", "fds", "files", "leaf",
                 "namespace", "slow", "slow_texts", "version")

    def __init__(self, fds: list[int], version: int, files: HeldFiles, namespace: int,
                 leaf: str) -> None:
        self.fds = fds
        self.all_held = min(fds) >= 0
        self.version = version
        self.files = files
        self.namespace = namespace
        self.leaf = leaf
        self.slow = SLOW_SLOTS[version]
        self.fast_fds = [fd for i, fd in enumerate(fds) if i not in self.slow]
        self.fast_all_held = min(self.fast_fds) >= 0
        self.slow_texts: list[tuple[int, str | None]] = []
        self.calls = 0

    def texts(self) -> list[str | None]:
        self.calls += 1
        if self.calls % SLOW_EVERY_READS == 1:
            texts = _read_fds(self.fds, self.all_held)
            self.slow_texts = [(i, texts[i]) for i in self.slow]
            return texts
        texts = _read_fds(self.fast_fds, self.fast_all_held)
        for i, text in self.slow_texts:  # ascending slots: each lands where it was read
            texts.insert(i, text)
        return texts


#: per cgroup version, the slots of :meth:`CgroupReader._paths` that change only on
#: ``docker update`` or a limit hit: v1 ``memory.limit_in_bytes`` and ``memory.failcnt``,
#: v2 ``memory.max`` (ascending)
SLOW_SLOTS: dict[int, tuple[int, ...]] = {
    1: tuple(i for i, (_, names, _) in enumerate(_cgroup_v1.FILES)
             if names[0] in ("memory.limit_in_bytes", "memory.failcnt")),
    2: tuple(i for i, (name, _) in enumerate(_cgroup_v2.FILES) if name == "memory.max"),
}
#: a held container's slow slots are read on every this many readings
SLOW_EVERY_READS = 10


def _read_fds(fds: list[int], all_held: bool) -> list[str | None]:
    pread = os.pread
    if all_held:  # the usual case: one comprehension, no branch per file
        raw = [pread(fd, _CHUNK_BYTES, 0) for fd in fds]
        if max(map(len, raw)) < _CHUNK_BYTES:
            return [chunk.decode() for chunk in raw]
    return [None if fd < 0 else _pread_all(fd) for fd in fds]


#: a file's first read asks for this much; the kernel files of a container are far shorter
#: (memory.stat: 0.8-1.5 KB), except net/dev of a namespace with hundreds of interfaces
_CHUNK_BYTES = 65536


def _pread_all(fd: int) -> str:
    chunk = os.pread(fd, _CHUNK_BYTES, 0)
    if len(chunk) < _CHUNK_BYTES:
        return chunk.decode()
    chunks, offset = [chunk], len(chunk)
    while chunk := os.pread(fd, _CHUNK_BYTES, offset):
        chunks.append(chunk)
        offset += len(chunk)
    return b"".join(chunks).decode()


class CachedCgroupReader(CgroupReader):
    """:class:`~capacity.sources.CgroupReader` that resolves a container's cgroup once and
    keeps its files open.

    ``CgroupReader.read`` locates the cgroup on every call (reads ``/proc/<pid>/cgroup``
    and stats the v1 mount points) and opens, reads and closes a dozen files. A location
    only changes with the container's process, so it is cached per ``(id, pid)`` (a restart
    brings a new pid and a new lookup), with the process's network namespace and the
    container's files held open (:class:`~capacity.sources._cgroup.HeldFiles`: one
    ``pread`` per file per round). Safe against a vanished container: its cgroup is removed
    with it, the held files then fail with ``ENODEV`` and ``read`` raises ``ContainerGone``.
    Any failure to read drops the container's held files, so the next round starts afresh
    (a descriptor closed behind our back costs one skipped reading, never the collector).

    After a container's first reading its descriptors are kept in slot order (a ``_Plan``):
    later readings are one ``pread`` per descriptor and the shared parsers
    (``fields_from_texts``), with no path built, no lookup per file and, for a container in
    the host's network namespace, no ``net/dev`` read at all (it would be the host's). The
    memory limit and v1 ``memory.failcnt`` are re-read only every ``SLOW_EVERY_READS``
    readings (see ``_Plan``: up to 9 s late at ``--interval 1s``). What
    is left per container per round, 50 containers on this 2-core VM: ~20 us of kernel time
    in ``pread`` (``memory.stat`` and ``net/dev`` are most of it) and ~11 us of Python.

    The collector calls :meth:`forget` for a container gone and :meth:`prune` each round;
    :meth:`close` releases every file.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._locations: dict[tuple[str, int], CgroupLocation] = {}
        self._files: dict[tuple[str, int], HeldFiles] = {}
        self._namespaces: dict[tuple[str, int], int] = {}
        self._plans: dict[tuple[str, int], _Plan] = {}
        self._budget = _FdBudget()

    def locate(self, container: ContainerInfo) -> CgroupLocation:
        key = (container.id, container.pid)
        location = self._locations.get(key)
        if location is None:
            location = self._locations[key] = super().locate(container)
        return location

    def _file_reader(self, container: ContainerInfo) -> Callable[[str], str]:
        key = (container.id, container.pid)
        files = self._files.get(key)
        if files is None:
            files = self._files[key] = HeldFiles(self._budget)
        return files.read

    def _net_namespace(self, container: ContainerInfo) -> int:
        # a container's processes keep the namespace they were started in
        key = (container.id, container.pid)
        namespace = self._namespaces.get(key)
        if namespace is None:
            namespace = self._namespaces[key] = super()._net_namespace(container)
        return namespace

    def _leaf_check_due(self, container: ContainerInfo) -> bool:
        files = self._files.get((container.id, container.pid))
        return files is None or files.leaf_check_due()

    def read(self, container: ContainerInfo) -> ContainerCounters:
        key = (container.id, container.pid)
        plan = self._plans.get(key)
        if plan is None:
            try:
                counters = super().read(container)
            except (ContainerGone, OSError):
                self.forget(container.id)
                raise
            # the files are open now: next time, read them straight through the descriptors
            location, files = self._locations.get(key), self._files.get(key)
            if location is not None and files is not None:
                fds = files.plan(self._paths(container, location))
                if fds is not None:
                    namespace = self._namespaces[key]
                    if container.network_mode == "host" or namespace == self.host_net_namespace():
                        fds[-1] = -1  # the host's net/dev (every veth): never used, not read
                    self._plans[key] = _Plan(fds, location.version, files, namespace,
                                             location.text[1])
            return counters
        try:
            texts = plan.texts()
        except OSError as exc:
            self.forget(container.id)
            if _is_gone(exc):
                raise ContainerGone(container.id, f"cgroup {plan.leaf} vanished: {exc}") from exc
            raise
        if plan.files.leaf_check_due() and not os.path.isdir(plan.leaf):
            self.forget(container.id)
            raise ContainerGone(container.id, f"cgroup {plan.leaf} vanished while being read")
        return self._counters(container, plan.version, texts, plan.namespace)

    def forget(self, container_id: str) -> None:
        """Drop the cached location and close the held files of one container."""
        self._drop(k for k in set(self._locations) | set(self._files) if k[0] == container_id)

    def prune(self, container_ids: Iterable[str]) -> None:
        """Keep only the cached locations and files of these containers."""
        keep = set(container_ids)
        self._drop(k for k in set(self._locations) | set(self._files) if k[0] not in keep)

    def close(self) -> None:
        """Close every held file."""
        self._drop(list(set(self._locations) | set(self._files)))

    def _drop(self, keys: Iterable[tuple[str, int]]) -> None:
        for key in list(keys):
            self._locations.pop(key, None)
            self._namespaces.pop(key, None)
            self._plans.pop(key, None)
            files = self._files.pop(key, None)
            if files is not None:
                files.close()


def choose_reader(client: Any, containers: Sequence[ContainerInfo], *, source: str = "auto") -> Any:
    """The counter reader for this engine: the cgroup fast path, or the stats API.

    Parameters
    ----------
    client : docker.DockerClient
        The connected client (the stats API reader talks through it).
    containers : sequence of ContainerInfo
        The containers running now; the first one's cgroup files are probed.
    source : {"auto", "cgroup", "api"}
        ``auto`` takes the cgroup files when the engine is on a local socket and the files of
        a running container are readable (or, with nothing running yet, when this host has a
        cgroup filesystem); otherwise the stats API.

    Raises
    ------
    InvalidParameter
        ``source`` is not one of the three, or ``"cgroup"`` was asked for but the files are
        not readable (remote engine, private cgroup namespace, permissions).

    Notes
    -----
    Trap: a pid from a remote engine can name an unrelated local process; the cgroup reader
    refuses such a pid (its cgroup path must contain the container id), but only a local
    socket lets ``auto`` pick the fast path at all.
    """
    from .sources._cgroup import cgroup_version, cgroupfs_readable
    from .sources._docker_api import StatsApiReader

    if source not in ("auto", "cgroup", "api"):
        raise InvalidParameter("source", "collect", "one of 'auto', 'cgroup', 'api'", source)
    if source == "api":
        return StatsApiReader(client)
    base_url = str(getattr(getattr(client, "api", None), "base_url", "") or "")
    # docker-py names a unix socket "http+docker://localhost" (ssh: "http+docker://ssh")
    local = base_url == "http+docker://localhost"
    if containers:
        readable = local and cgroupfs_readable(containers[0].pid)
    else:
        readable = local and cgroup_version() is not None
    if readable:
        return CachedCgroupReader()
    if source == "cgroup":
        raise InvalidParameter(
            "source",
            "collect",
            "'api' or 'auto' here: the cgroup files of the engine's containers are not "
            "readable from this process (remote engine, private cgroup namespace, or not root)",
            source,
        )
    return StatsApiReader(client)
