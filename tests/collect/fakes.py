"""Injected fakes for collector tests that need no engine: containers, readers, clocks.

They are handed to :class:`capacity._collect.Collector` as arguments; nothing is patched.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from capacity._collect import ContainerEvent
from capacity._errors import ContainerGone, DockerUnavailable
from capacity.sources._types import ContainerCounters, ContainerInfo

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def info(i: int) -> ContainerInfo:
    return ContainerInfo(
        id=f"{i:064x}", name=f"c{i}", image="img:1", service="svc", pid=1000 + i, started_at=T0
    )


class FakeClock:
    """A monotonic clock that only moves when the collector sleeps (or by ``advance``)."""

    def __init__(self) -> None:
        self.now_s = 0.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now_s

    def wall(self) -> datetime:
        return T0 + timedelta(seconds=self.now_s)

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 6))
        self.now_s += seconds


class FlakyEngine:
    """Lists ``infos``; calls ``fail_from`` .. ``fail_from + failures - 1`` (0-based) raise
    :class:`DockerUnavailable`, as a real engine does while dockerd restarts."""

    def __init__(self, infos: list[ContainerInfo], *, fail_from: int, failures: int) -> None:
        self.infos = infos
        self.fail_from = fail_from
        self.failures = failures
        self.calls = 0
        self.forgotten: list[str] = []

    def containers(self) -> list[ContainerInfo]:
        call = self.calls
        self.calls += 1
        if self.fail_from <= call < self.fail_from + self.failures:
            raise DockerUnavailable(
                "no Docker Engine answers at unix:///var/run/docker.sock: connection refused",
                base_url="unix:///var/run/docker.sock",
            )
        return list(self.infos)

    def forget(self, container_id: str) -> None:
        self.forgotten.append(container_id)


class CountingReader:
    """Counters that grow by one CPU second per read; ids in ``gone`` raise ContainerGone."""

    name = "fake"

    def __init__(self, gone: Iterable[str] = ()) -> None:
        self.gone = set(gone)
        self.reads: dict[str, int] = {}

    def read(self, container: ContainerInfo) -> ContainerCounters:
        if container.id in self.gone:
            raise ContainerGone(container.id, "removed by the test")
        k = self.reads[container.id] = self.reads.get(container.id, 0) + 1
        return ContainerCounters(
            container_id=container.id,
            cpu_usage_seconds_total=float(k),
            memory_usage_bytes=1 << 20,
            memory_working_set_bytes=1 << 20,
        )


class FakeEvents:
    """An EventSource that hands out ``events`` whose time falls in the window asked for."""

    def __init__(self, events: list[ContainerEvent]) -> None:
        self.events_ = events
        self.windows: list[tuple[datetime, datetime]] = []

    def events(self, since: datetime, until: datetime) -> Iterable[ContainerEvent]:
        self.windows.append((since, until))
        return [e for e in self.events_ if since <= e.time <= until]


def event(seconds: float, cid: str, action: str, **attrs: Any) -> ContainerEvent:
    return ContainerEvent(T0 + timedelta(seconds=seconds), cid, action, attrs)
