"""Typed records that sources return: who a container is, and one raw reading of its counters.

Counters are stored exactly as read (cumulative totals since the container started, in seconds,
bytes or events); the store turns them into rates later. A field is ``None`` when the source
cannot read it on this host (for example ``memory_peak_bytes`` on a kernel without
``memory.peak``); it is never filled with 0, since 0 is a real reading.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

__all__ = [
    "COMPOSE_PROJECT_LABEL",
    "COMPOSE_SERVICE_LABEL",
    "ContainerCounters",
    "ContainerInfo",
    "CounterReader",
    "HostCounters",
]

COMPOSE_SERVICE_LABEL = "com.docker.compose.service"
COMPOSE_PROJECT_LABEL = "com.docker.compose.project"


@dataclass(frozen=True)
class ContainerInfo:
    """Metadata of one running container, read once per container lifecycle.

    ``service`` is the grouping key profiles are fitted by: the Compose service label, else
    the image name, else the container name. ``started_at`` (UTC) tells a restart apart: a
    restart keeps the id but resets every counter. Limits are ``None`` when none is declared.
    """

    id: str
    name: str
    image: str
    service: str
    pid: int
    started_at: datetime
    image_id: str = ""
    compose_project: str | None = None
    compose_service: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    restart_policy: str = ""
    network_mode: str = ""
    cpu_limit_cores: float | None = None
    memory_limit_bytes: int | None = None
    memory_reservation_bytes: int | None = None
    published_host_ports: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["started_at"] = self.started_at.isoformat()
        d["labels"] = dict(self.labels)
        d["published_host_ports"] = list(self.published_host_ports)
        return d


@dataclass(frozen=True)
class ContainerCounters:
    """One raw reading of one container's cgroup (or stats API) counters.

    Units are in the names. ``*_total`` fields are cumulative since the container started and
    only go down on a restart. ``memory_working_set_bytes`` is usage minus inactive file cache,
    clamped at 0 (as the docker CLI, kubelet and cAdvisor compute it). ``net_namespace`` is the
    inode of the container's network namespace: containers that share one (``--network host``
    or ``container:X``) share their network counters, and must not be summed twice.
    """

    container_id: str
    cpu_usage_seconds_total: float
    memory_usage_bytes: int
    memory_working_set_bytes: int
    cpu_periods_total: int | None = None
    cpu_throttled_periods_total: int | None = None
    cpu_throttled_seconds_total: float | None = None
    memory_rss_bytes: int | None = None
    memory_cache_bytes: int | None = None
    memory_inactive_file_bytes: int | None = None
    memory_limit_bytes: int | None = None
    memory_peak_bytes: int | None = None
    memory_oom_kills_total: int | None = None
    memory_failcnt_total: int | None = None
    disk_read_bytes_total: int | None = None
    disk_write_bytes_total: int | None = None
    disk_read_ops_total: int | None = None
    disk_write_ops_total: int | None = None
    net_rx_bytes_total: int | None = None
    net_tx_bytes_total: int | None = None
    net_rx_packets_total: int | None = None
    net_tx_packets_total: int | None = None
    net_namespace: int | None = None
    pids: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class HostCounters:
    """Host-wide totals, read each round through psutil (cumulative counters and gauges)."""

    cpu_usage_seconds_total: float
    memory_used_bytes: int
    memory_total_bytes: int
    net_rx_bytes_total: int
    net_tx_bytes_total: int
    disk_read_bytes_total: int
    disk_write_bytes_total: int
    logical_cpus: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@runtime_checkable
class CounterReader(Protocol):
    """Anything that reads one container's counters: the cgroup files, or the Engine API.

    ``read`` raises :class:`capacity.ContainerGone` when the container vanished meanwhile;
    the collector skips it and completes the round.
    """

    name: str

    def read(self, container: ContainerInfo) -> ContainerCounters: ...
