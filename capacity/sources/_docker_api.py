"""The fallback path: container counters from the Engine's stats API.

Use it when cgroupfs is out of reach: a remote ``DOCKER_HOST``, or a collector without
``/sys/fs/cgroup`` (see :func:`~capacity.sources.cgroupfs_readable`). It is slower than
:class:`~capacity.sources.CgroupReader` (one HTTP round trip per container, during which the
engine reads the same cgroup files) and knows less: no network namespace, no OOM kill count.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import quote_plus

import docker.errors
import requests.exceptions
from docker.utils import version_gte

from .._errors import ContainerGone, DockerUnavailable, InvalidParameter
from ._cgroup_v1 import UNLIMITED_THRESHOLD_BYTES
from ._types import ContainerCounters, ContainerInfo

__all__ = ["ONE_SHOT_MIN_API_VERSION", "StatsApiReader", "counters_from_stats"]

#: ``one-shot=true`` (skip the second sample the engine waits ~1 s for) needs API 1.41
#: (Engine 20.10).
ONE_SHOT_MIN_API_VERSION = "1.41"

#: the ``read`` time of a stats answer for a container that is not running
_ZERO_TIME_PREFIX = "0001-01-01"


def _sum_blkio(entries: Iterable[Mapping[str, Any]] | None) -> tuple[int, int] | None:
    if entries is None:
        return None
    read = written = 0
    for entry in entries:
        op = str(entry.get("op", "")).lower()  # "Read" on v1, "read" on v2
        if op == "read":
            read += int(entry.get("value", 0))
        elif op == "write":
            written += int(entry.get("value", 0))
    return read, written


def counters_from_stats(
    container_id: str, stats: Mapping[str, Any], *, host_memory_bytes: int | None = None
) -> ContainerCounters:
    """Map one stats API answer (``GET /containers/{id}/stats?stream=false``) to counters.

    Parameters
    ----------
    container_id : str
        The container the answer is about.
    stats : Mapping
        The decoded JSON body.
    host_memory_bytes : int, optional
        The engine host's total memory (``docker info`` ``MemTotal``). On cgroup v1 the engine
        reports an unlimited container's ``memory_stats.limit`` as the host total; with this
        value known such a limit becomes ``None``, as :class:`CgroupReader` reports it.

    Returns
    -------
    ContainerCounters
        ``net_namespace`` and ``memory_oom_kills_total`` are ``None`` (the API does not tell).
        Network fields are ``None`` when the answer has no ``networks`` (``--network host``
        or ``none``).

    Raises
    ------
    ContainerGone
        The answer describes a container that is not running: the engine answers 200 with a
        zero ``read`` time and empty ``memory_stats`` and ``pids_stats``.
    """
    memory = stats.get("memory_stats") or {}
    read_time = str(stats.get("read") or "")
    if not memory or "usage" not in memory or read_time.startswith(_ZERO_TIME_PREFIX):
        raise ContainerGone(container_id, "the stats API answered for a stopped container")

    cpu = stats.get("cpu_stats") or {}
    throttling = cpu.get("throttling_data") or {}
    mem_stat: Mapping[str, int] = memory.get("stats") or {}
    v1 = "total_inactive_file" in mem_stat or "max_usage" in memory
    usage = int(memory["usage"])
    inactive = mem_stat.get("total_inactive_file", mem_stat.get("inactive_file"))
    limit = memory.get("limit")
    if limit is not None and (
        int(limit) >= UNLIMITED_THRESHOLD_BYTES
        or (host_memory_bytes is not None and int(limit) >= host_memory_bytes)
    ):
        limit = None
    blkio = stats.get("blkio_stats") or {}
    io_bytes = _sum_blkio(blkio.get("io_service_bytes_recursive"))
    io_ops = _sum_blkio(blkio.get("io_serviced_recursive"))
    nets = stats.get("networks")
    net: tuple[int, int, int, int] | None = None
    if nets is not None:
        rows = [v for name, v in nets.items() if name != "lo"]
        net = (
            sum(int(r.get("rx_bytes", 0)) for r in rows),
            sum(int(r.get("tx_bytes", 0)) for r in rows),
            sum(int(r.get("rx_packets", 0)) for r in rows),
            sum(int(r.get("tx_packets", 0)) for r in rows),
        )
    throttled_ns = throttling.get("throttled_time")
    return ContainerCounters(
        container_id=container_id,
        cpu_usage_seconds_total=int((cpu.get("cpu_usage") or {}).get("total_usage", 0)) / 1e9,
        memory_usage_bytes=usage,
        memory_working_set_bytes=max(0, usage - int(inactive or 0)),
        cpu_periods_total=throttling.get("periods"),
        cpu_throttled_periods_total=throttling.get("throttled_periods"),
        cpu_throttled_seconds_total=throttled_ns / 1e9 if throttled_ns is not None else None,
        memory_rss_bytes=mem_stat.get("total_rss", mem_stat.get("rss", mem_stat.get("anon"))),
        memory_cache_bytes=mem_stat.get("total_cache", mem_stat.get("cache", mem_stat.get("file"))),
        memory_inactive_file_bytes=inactive,
        memory_limit_bytes=int(limit) if limit is not None else None,
        # v1 only; the engine omits both keys when they are 0 (Go's omitempty)
        memory_peak_bytes=memory.get("max_usage") if v1 else None,
        memory_failcnt_total=int(memory.get("failcnt", 0)) if v1 else None,
        disk_read_bytes_total=io_bytes[0] if io_bytes else None,
        disk_write_bytes_total=io_bytes[1] if io_bytes else None,
        disk_read_ops_total=io_ops[0] if io_ops else None,
        disk_write_ops_total=io_ops[1] if io_ops else None,
        net_rx_bytes_total=net[0] if net else None,
        net_tx_bytes_total=net[1] if net else None,
        net_rx_packets_total=net[2] if net else None,
        net_tx_packets_total=net[3] if net else None,
        pids=(stats.get("pids_stats") or {}).get("current"),
    )


class StatsApiReader:
    """Read container counters through the Engine's stats API (the fallback path).

    Parameters
    ----------
    client : docker.DockerClient
        A connected client (see :func:`~capacity.sources.connect`).
    timeout_s : float
        Per-call HTTP timeout, seconds. A call that takes longer raises
        :class:`~capacity.DockerUnavailable`.

    Notes
    -----
    The request is ``GET /containers/{id}/stats?stream=false&one-shot=true``, the one
    ``client.api.stats(id, stream=False, one_shot=True)`` sends; it is issued through the
    client's HTTP session because ``stats()`` takes no timeout. Before API 1.41 ``one-shot``
    is left out and each call takes about two seconds (the engine waits for a second
    sample to fill ``precpu_stats``). Even with ``one-shot``, Engine 20.10 answered the first
    call at once and later calls for the same container after about 1 s (its collection
    tick): :meth:`read_many` runs calls in parallel for that reason. Numbers are read by the
    engine at the ``read`` time of the answer, not when the call returns.

    Examples
    --------
    >>> reader = StatsApiReader(connect())  # doctest: +SKIP
    >>> counters, gone = reader.read_many(list_containers(reader.client))  # doctest: +SKIP
    """

    name = "stats-api"

    def __init__(self, client: Any, timeout_s: float = 5.0) -> None:
        self.client = client
        self.timeout_s = timeout_s
        self._host_memory_bytes: int | None = None

    def _host_memory(self) -> int | None:
        if self._host_memory_bytes is None:
            try:
                total = self.client.api.info().get("MemTotal")
            except (docker.errors.DockerException, requests.exceptions.RequestException):
                return None
            self._host_memory_bytes = int(total) if total else None
        return self._host_memory_bytes

    def fetch(self, container_id: str) -> dict[str, Any]:
        """The raw stats answer for one container (decoded JSON).

        Raises :class:`ContainerGone` on 404 or 409 (not running), and
        :class:`DockerUnavailable` on a timeout or a connection error.
        """
        api = self.client.api
        params: dict[str, str] = {"stream": "false"}
        if version_gte(api.api_version, ONE_SHOT_MIN_API_VERSION):
            params["one-shot"] = "true"
        url = f"{api.base_url}/v{api.api_version}/containers/{quote_plus(container_id)}/stats"
        try:
            response = api.get(url, params=params, timeout=self.timeout_s)
        except requests.exceptions.Timeout as exc:
            raise DockerUnavailable(
                f"the stats API took more than {self.timeout_s} s for container "
                f"{container_id[:12]}; the engine is overloaded or the link is slow: raise "
                "timeout_s or sample fewer containers per round",
                base_url=api.base_url,
            ) from exc
        except requests.exceptions.ConnectionError as exc:
            raise DockerUnavailable(
                f"lost the connection to the engine while reading stats: {exc}",
                base_url=api.base_url,
            ) from exc
        if response.status_code in (404, 409):
            raise ContainerGone(container_id, f"the stats API answered {response.status_code}")
        try:
            response.raise_for_status()
        except requests.exceptions.HTTPError as exc:
            raise docker.errors.create_api_error_from_http_exception(exc) from exc
        body = response.content
        if not body.strip():  # the engine closes the stream empty when the container went away
            raise ContainerGone(container_id, "the stats API answered with an empty body")
        try:
            result: dict[str, Any] = response.json()
        except ValueError as exc:
            raise DockerUnavailable(
                f"the stats API answered with a body that is not JSON for container "
                f"{container_id[:12]} ({len(body)} bytes, starting {body[:60]!r}): {exc}; "
                "check the engine's log",
                base_url=api.base_url,
            ) from exc
        return result

    def read(self, container: ContainerInfo) -> ContainerCounters:
        """Read one container's counters. Raises :class:`ContainerGone` if it stopped."""
        stats = self.fetch(container.id)
        return counters_from_stats(container.id, stats, host_memory_bytes=self._host_memory())

    def read_many(
        self, containers: Iterable[ContainerInfo], max_workers: int = 8
    ) -> tuple[list[ContainerCounters], list[str]]:
        """Read many containers in parallel, at most ``max_workers`` calls at a time.

        Returns
        -------
        tuple
            ``(counters, gone)``: the readings in the order of ``containers``, and the ids of
            containers that vanished meanwhile (skipped, not zero-filled).

        Raises
        ------
        DockerUnavailable
            A call timed out or the engine went away: the round cannot be trusted.
        """
        if max_workers < 1:
            raise InvalidParameter("max_workers", "read_many", "an int >= 1", max_workers)
        items = list(containers)
        self._host_memory()  # once, before the threads race for it
        counters: list[ContainerCounters] = []
        gone: list[str] = []
        with ThreadPoolExecutor(max_workers=min(max_workers, max(1, len(items)))) as pool:
            futures = [pool.submit(self.read, c) for c in items]
            for container, future in zip(items, futures, strict=True):
                try:
                    counters.append(future.result())
                except ContainerGone:
                    gone.append(container.id)
        return counters, gone
