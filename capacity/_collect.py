"""The collection loop: list containers, read every one's counters each round, keep them.

A round reads every running container once through a :class:`~capacity.sources.CounterReader`;
a container that vanishes in the middle of a round is skipped (it is counted in
``Collection.gone``), never fatal. Time is read from an injected clock pair so tests can drive it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import pandas as pd

from ._errors import ContainerGone, NoContainers
from .sources._types import ContainerCounters, ContainerInfo, CounterReader

__all__ = ["Collection", "Collector", "Engine", "RoundSink"]


class Engine(Protocol):
    """What the collector needs from the container engine: the running containers."""

    def containers(self) -> list[ContainerInfo]: ...


class RoundSink(Protocol):
    """Where rounds go (the SQLite store implements this)."""

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
    """Rounds kept in memory: the counters table and one metadata row per container."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    containers: dict[tuple[str, datetime], ContainerInfo] = field(default_factory=dict)
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


class Collector:
    """Sample running containers every ``interval_s`` seconds into a sink.

    Parameters
    ----------
    engine
        Lists running containers (re-listed every round, so new and removed ones are seen).
    reader
        Reads one container's counters; raises :class:`ContainerGone` for a vanished one.
    sink
        Receives each round (a :class:`Collection` in memory, or the SQLite store).
    wall_clock, monotonic_clock
        Injected clocks: UTC wall time for the record, monotonic seconds for rates.
    sleep
        Injected sleep, so tests can run rounds without waiting.
    """

    def __init__(
        self,
        engine: Engine,
        reader: CounterReader,
        sink: RoundSink,
        *,
        wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        monotonic_clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        host_reader: Any = None,
    ) -> None:
        self.engine = engine
        self.reader = reader
        self.sink = sink
        self.wall_clock = wall_clock
        self.monotonic_clock = monotonic_clock
        self.sleep = sleep
        self.host_reader = host_reader
        self.rounds = 0
        self.rows_written = 0
        self.gone = 0
        self.containers_seen: set[str] = set()

    def round(self) -> int:
        """Read every running container once; return how many were read."""
        containers = self.engine.containers()
        monotonic_s = self.monotonic_clock()
        now = self.wall_clock()
        counters: list[ContainerCounters] = []
        read: list[ContainerInfo] = []
        for info in containers:
            try:
                counters.append(self.reader.read(info))
            except ContainerGone:
                self.gone += 1
                continue
            read.append(info)
            self.containers_seen.add(info.id)
        host = self.host_reader.read() if self.host_reader is not None else None
        self.sink.write_round(now, monotonic_s, read, counters, host)
        self.rounds += 1
        self.rows_written += len(counters)
        return len(counters)

    def run(
        self,
        *,
        interval_s: float,
        duration_s: float | None,
        on_round: Callable[[Collector, float], None] | None = None,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> None:
        """Run rounds every ``interval_s`` until ``duration_s`` has passed (None: forever).

        Rounds are scheduled on the monotonic clock (no drift). The first round happens at
        once; a run of duration D at interval I takes floor(D / I) + 1 rounds, giving
        floor(D / I) intervals of rates. Raises :class:`NoContainers` if no round saw any
        container.
        """
        start = self.monotonic_clock()
        next_at = start
        while not should_stop():
            self.round()
            elapsed = self.monotonic_clock() - start
            if on_round is not None:
                on_round(self, elapsed)
            next_at += interval_s
            if duration_s is not None and next_at - start > duration_s + 1e-9:
                break
            delay = next_at - self.monotonic_clock()
            if delay > 0:
                self.sleep(delay)
        if not self.containers_seen:
            raise NoContainers(
                "no running containers to sample: start some, or try "
                "'capacity report --demo' to plan from the bundled recording"
            )


class DockerEngine:
    """:class:`Engine` over a docker SDK client, with optional Engine-side filters."""

    def __init__(self, client: Any, *, filters: Mapping[str, Any] | None = None) -> None:
        self.client = client
        self.filters = dict(filters or {})

    def containers(self) -> list[ContainerInfo]:
        from .sources._docker import list_containers

        return list_containers(self.client, filters=self.filters)
