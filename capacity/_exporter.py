"""``capacity collect --serve``: expose what the collector reads, with cAdvisor's names.

:class:`ExporterSink` sits between the :class:`~capacity._collect.Collector` and its sink (the
store): it forwards every call unchanged and keeps the latest round in memory; on each scrape
it yields that round as cAdvisor-compatible series, plus the collector's own health. A host
that runs the collector is thereby part of any Prometheus fleet, and
``capacity fit --prometheus`` reads it back like cAdvisor.

Series (each sample carries the time of the reading, as cAdvisor's do, so Prometheus stores
the reading's time, not the scrape's):

- ``container_cpu_usage_seconds_total``, ``container_memory_working_set_bytes``,
  ``container_memory_usage_bytes``, ``container_network_{receive,transmit}_bytes_total``,
  ``container_fs_{reads,writes}_bytes_total``, ``container_fs_usage_bytes``,
  ``container_cpu_cfs_{periods,throttled_periods}_total``, ``container_oom_events_total``,
  ``container_spec_memory_limit_bytes``, ``container_spec_cpu_quota`` /
  ``container_spec_cpu_period``, ``container_start_time_seconds``;
  labels ``id`` (``/docker/<id>``), ``name``, ``image`` and ``container_label_<label>`` for
  every Docker label (cAdvisor's sanitising: any character outside ``[a-zA-Z0-9_]`` -> ``_``).
  Unlike cAdvisor there is no ``interface`` or ``device`` label: the collector reads totals.
- ``capacity_collector_rounds_total``, ``capacity_collector_read_errors_total``,
  ``capacity_collector_containers_gone_total``, ``capacity_collector_engine_outages_total``,
  ``capacity_collector_engine_up`` (0 while the engine does not answer),
  ``capacity_collector_last_round_timestamp_seconds``,
  ``capacity_collector_store_lag_seconds`` (age of the oldest round not yet committed to the
  store; 0 when all are committed).
"""

from __future__ import annotations

import re
import threading
import time as _time
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import Any

from ._errors import CapacityError
from .sources._types import ContainerCounters, ContainerInfo

__all__ = ["ExporterSink", "parse_listen_address", "serve"]

_LABEL_CHARS = re.compile(r"[^a-zA-Z0-9_]")

#: (metric, type, help, ContainerCounters field)
_COUNTER_SERIES: tuple[tuple[str, str, str, str], ...] = (
    ("container_cpu_usage_seconds_total", "counter",
     "Cumulative cpu time consumed in seconds.", "cpu_usage_seconds_total"),
    ("container_memory_working_set_bytes", "gauge",
     "Current working set in bytes.", "memory_working_set_bytes"),
    ("container_memory_usage_bytes", "gauge",
     "Current memory usage in bytes, including all memory regardless of when it was "
     "accessed.", "memory_usage_bytes"),
    ("container_network_receive_bytes_total", "counter",
     "Cumulative count of bytes received (all interfaces).", "net_rx_bytes_total"),
    ("container_network_transmit_bytes_total", "counter",
     "Cumulative count of bytes transmitted (all interfaces).", "net_tx_bytes_total"),
    ("container_fs_reads_bytes_total", "counter",
     "Cumulative count of bytes read (all devices).", "disk_read_bytes_total"),
    ("container_fs_writes_bytes_total", "counter",
     "Cumulative count of bytes written (all devices).", "disk_write_bytes_total"),
    ("container_cpu_cfs_periods_total", "counter",
     "Number of elapsed enforcement period intervals.", "cpu_periods_total"),
    ("container_cpu_cfs_throttled_periods_total", "counter",
     "Number of throttled period intervals.", "cpu_throttled_periods_total"),
    ("container_oom_events_total", "counter",
     "Count of out of memory events observed for the container.", "memory_oom_kills_total"),
)
#: CFS period the quota is expressed in, microseconds (Docker's default)
_CFS_PERIOD_US = 100_000


def container_labels(info: ContainerInfo) -> dict[str, str]:
    """cAdvisor's label set for a Docker container.

    >>> from datetime import datetime, UTC
    >>> info = ContainerInfo(id="ab" * 32, name="web-1", image="web:1", service="web", pid=1,
    ...     started_at=datetime(2024, 1, 1, tzinfo=UTC),
    ...     labels={"com.docker.compose.service": "web"})
    >>> container_labels(info)["container_label_com_docker_compose_service"]
    'web'
    """
    labels = {"id": f"/docker/{info.id}", "name": info.name, "image": info.image}
    for key, value in info.labels.items():
        labels["container_label_" + _LABEL_CHARS.sub("_", key)] = str(value)
    return labels


class ExporterSink:
    """A sink that forwards to another one and serves the latest round to Prometheus.

    Parameters
    ----------
    sink : object
        The real sink (the store); every method call is forwarded to it.
    clock : callable
        Wall clock in seconds since the epoch (for the store lag), injected for tests.

    Attributes
    ----------
    sink : object
        The wrapped sink; may be set after construction (the server starts before the
        store is opened, so a taken port leaves nothing written).
    collector : object, optional
        The :class:`~capacity._collect.Collector`, set after it is built: its counters
        (rounds, errors, outages) are served as the tool's health.
    """

    def __init__(self, sink: Any, *, clock: Callable[[], float] = _time.time) -> None:
        self.sink = sink
        self._clock = clock
        self._lock = threading.Lock()
        self._latest: list[tuple[ContainerInfo, ContainerCounters]] = []
        self._latest_time_s: float | None = None
        self._disk_usage: dict[str, tuple[float, int]] = {}
        self._uncommitted_since_s: float | None = None
        self.collector: Any = None

    def __getattr__(self, name: str) -> Any:  # write_events, write_host_facts, retain, ...
        if name == "sink":  # not set yet (only during __init__)
            raise AttributeError(name)
        return getattr(self.sink, name)

    def write_round(
        self,
        time: datetime,
        monotonic_s: float,
        containers: Sequence[ContainerInfo],
        counters: Sequence[ContainerCounters],
        host: Any = None,
    ) -> None:
        self.sink.write_round(time, monotonic_s, containers, counters, host)
        by_id = {c.id: c for c in containers}
        latest = [(by_id[c.container_id], c) for c in counters if c.container_id in by_id]
        t = time.timestamp()
        with self._lock:
            self._latest = latest
            self._latest_time_s = t
            pending = getattr(self.sink, "_pending_rounds", 0)
            if not pending:
                self._uncommitted_since_s = None
            elif self._uncommitted_since_s is None:
                self._uncommitted_since_s = t

    def write_disk_usage(self, time: datetime, usage: Any) -> None:
        rows = list(usage)
        write = getattr(self.sink, "write_disk_usage", None)
        if write is not None:
            write(time, rows)
        with self._lock:
            for cid, _started, size in rows:
                self._disk_usage[cid] = (time.timestamp(), int(size))

    def flush(self) -> None:
        flush = getattr(self.sink, "flush", None)
        if flush is not None:
            flush()
        with self._lock:
            self._uncommitted_since_s = None

    # -- prometheus_client's Collector protocol --------------------------------------------

    def describe(self) -> list[Any]:
        return []  # unchecked collector: the label sets vary with the containers

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import Metric

        with self._lock:
            latest = list(self._latest)
            at = self._latest_time_s
            disk = dict(self._disk_usage)
            uncommitted = self._uncommitted_since_s
        families = {name: Metric(name.removesuffix("_total") if kind == "counter" else name,
                                 doc, kind)
                    for name, kind, doc, _ in _COUNTER_SERIES}
        extra = {
            "container_fs_usage_bytes": Metric(
                "container_fs_usage_bytes", "Number of bytes that are consumed by the "
                "container on this filesystem (writable layer).", "gauge"),
            "container_spec_memory_limit_bytes": Metric(
                "container_spec_memory_limit_bytes", "Memory limit for the container.", "gauge"),
            "container_spec_cpu_quota": Metric(
                "container_spec_cpu_quota", "CPU quota of the container.", "gauge"),
            "container_spec_cpu_period": Metric(
                "container_spec_cpu_period", "CPU period of the container.", "gauge"),
            "container_start_time_seconds": Metric(
                "container_start_time_seconds", "Start time of the container since unix epoch "
                "in seconds.", "gauge"),
        }
        for info, counters in latest:
            labels = container_labels(info)
            for name, _kind, _doc, attr in _COUNTER_SERIES:
                value = getattr(counters, attr)
                if value is not None:
                    families[name].add_sample(name, labels, float(value), timestamp=at)
            if info.id in disk:
                read_at, size = disk[info.id]
                extra["container_fs_usage_bytes"].add_sample(
                    "container_fs_usage_bytes", labels, float(size), timestamp=read_at)
            if info.memory_limit_bytes:
                extra["container_spec_memory_limit_bytes"].add_sample(
                    "container_spec_memory_limit_bytes", labels, float(info.memory_limit_bytes))
            if info.cpu_limit_cores:
                extra["container_spec_cpu_quota"].add_sample(
                    "container_spec_cpu_quota", labels, info.cpu_limit_cores * _CFS_PERIOD_US)
                extra["container_spec_cpu_period"].add_sample(
                    "container_spec_cpu_period", labels, float(_CFS_PERIOD_US))
            extra["container_start_time_seconds"].add_sample(
                "container_start_time_seconds", labels, info.started_at.timestamp())
        yield from families.values()
        yield from extra.values()
        yield from self._health(at, uncommitted)

    def _health(self, at: float | None, uncommitted: float | None) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        c = self.collector
        outages = list(getattr(c, "outages", []) or [])
        counters = (
            ("capacity_collector_rounds", "Collection rounds completed.", "rounds"),
            ("capacity_collector_read_errors", "Container readings that failed (skipped).",
             "read_errors"),
            ("capacity_collector_containers_gone", "Containers that vanished mid-round.",
             "gone"),
        )
        for name, doc, attr in counters:
            yield CounterMetricFamily(name, doc, value=float(getattr(c, attr, 0) or 0))
        yield CounterMetricFamily("capacity_collector_engine_outages",
                                  "Engine outages survived (ended).", value=float(len(outages)))
        down = bool(getattr(c, "engine_down", False))
        yield GaugeMetricFamily("capacity_collector_engine_up",
                                "1 while the Docker Engine answers, 0 during an outage.",
                                value=0.0 if down else 1.0)
        if at is not None:
            yield GaugeMetricFamily("capacity_collector_last_round_timestamp_seconds",
                                    "Wall time of the last round, seconds since the epoch.",
                                    value=at)
        lag = 0.0 if uncommitted is None else max(0.0, self._clock() - uncommitted)
        yield GaugeMetricFamily("capacity_collector_store_lag_seconds",
                                "Age of the oldest round not yet committed to the store.",
                                value=lag)


def parse_listen_address(text: str) -> tuple[str, int]:
    """``":9105"``, ``"9105"``, ``"127.0.0.1:9105"``, ``"[::1]:9105"`` -> (host, port).

    An empty host means every interface (``0.0.0.0``), as exporters do.

    >>> parse_listen_address(":9105"), parse_listen_address("127.0.0.1:0")
    (('0.0.0.0', 9105), ('127.0.0.1', 0))
    """
    value = text.strip()
    host, sep, port = value.rpartition(":")
    if not sep:
        host, port = "", value
    host = host.strip("[]") or "0.0.0.0"
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise CapacityError(
            f"--serve {text!r}: give [HOST]:PORT with a port from 0 to 65535, e.g. :9105"
        )
    return host, int(port)


def serve(sink: ExporterSink, address: str) -> tuple[Any, Callable[[], None]]:
    """Serve ``/metrics`` on ``address`` in a daemon thread; return (server, stop).

    Raises :class:`CapacityError` with one clear line when the port is taken or the
    address cannot be bound, before anything is collected.
    """
    from prometheus_client import CollectorRegistry, start_http_server

    host, port = parse_listen_address(address)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(sink)
    try:
        server, thread = start_http_server(port, addr=host, registry=registry)
    except OSError as exc:
        raise CapacityError(
            f"cannot serve metrics on {host}:{port}: {exc.strerror or exc}; pick another "
            "port with --serve HOST:PORT"
        ) from exc

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)

    return server, stop
