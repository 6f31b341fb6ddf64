"""Prometheus as a source: cAdvisor and kubelet container series over the HTTP API.

:func:`read_prometheus` asks a Prometheus server (``/api/v1/query_range``) for the series
cAdvisor and the kubelet expose, and returns the same two tables the store keeps: a
counters table (raw cumulative counters and gauges, one row per container per scrape) and a
containers table (one row per container). The rates are then computed by
:func:`capacity.store._rates.counters_to_samples`, the one function that handles resets,
gaps and churn for the local store too; Prometheus' ``rate()`` is never used, so a profile
read from Prometheus and one read from the local store are computed the same way.

Why httpx: one small, typed, well-kept client with per-request timeouts, basic auth, custom
headers and TLS options (CA bundle, client certificate) in one place, and a transport that
can be replaced for tests; ``requests`` would do too, but has no typed API and no
per-phase timeouts.

Series read (cAdvisor names; the kubelet's ``/metrics/cadvisor`` uses the same):

=================================================  ====================================
``container_cpu_usage_seconds_total``              ``cpu_usage_seconds_total`` (summed
                                                    over ``cpu`` on per-CPU exporters)
``container_memory_working_set_bytes``             ``memory_working_set_bytes``
``container_network_receive_bytes_total``          ``net_rx_bytes_total`` (all interfaces)
``container_network_transmit_bytes_total``         ``net_tx_bytes_total``
``container_fs_reads_bytes_total``                 ``disk_read_bytes_total`` (all devices)
``container_fs_writes_bytes_total``                ``disk_write_bytes_total``
``container_fs_usage_bytes``                       ``disk_usage_bytes``
=================================================  ====================================

Traps:

- ``query_range`` resamples: the value at each step is the newest raw sample at or before
  it, so a step shorter than the scrape interval repeats samples (a counter would look idle
  for one step, then busy). We also ask for ``timestamp()`` of the CPU counter and keep one
  row per real scrape, stamped with the scrape's own time; the rates divide by the time
  between scrapes, never by the step.
- The server refuses more than 11,000 points per series per request: long ranges are split
  into chunks of at most :data:`MAX_POINTS_PER_SERIES` steps.
- cAdvisor also exports the host's and systemd's cgroups (``id="/"``,
  ``id="/system.slice/..."``) without an ``image`` label: only series with an image are
  containers (``image!=""`` is added to every selector).
- On Kubernetes the kubelet reports the pod sandbox (``container=""`` or ``"POD"``, the
  pause image) beside the containers; it is skipped. The pod's network counters live on
  that sandbox, so a Kubernetes profile has no network figures (a known gap).
- One container can come as several series: two scrapers (HA Prometheus, two jobs), or one
  cgroup seen at two paths (kind's nested ``/docker/<node>/kubelet/...``). One is kept (the
  first by scraper labels and cgroup path) and the others counted in the warnings.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from .._errors import InvalidParameter, PrometheusError

__all__ = [
    "CADVISOR_QUERIES",
    "DEFAULT_GROUP_BY",
    "MAX_POINTS_PER_SERIES",
    "NodeHost",
    "PrometheusAPI",
    "PrometheusData",
    "host_kinds",
    "parse_group_by",
    "parse_selector",
    "read_node_hosts",
    "read_prometheus",
    "service_from_labels",
]

#: the server's limit of points per series in one query_range answer
MAX_POINTS_PER_SERIES = 11_000
#: points (all series together) asked for in one request: bounds the memory a parsed
#: answer takes (about 150 bytes of Python objects per point), whatever the fleet's size
MAX_POINTS_PER_REQUEST = 500_000

#: counters-table column -> PromQL template (``{sel}`` is the label selector)
CADVISOR_QUERIES: dict[str, str] = {
    "cpu_usage_seconds_total": "sum without (cpu) (container_cpu_usage_seconds_total{sel})",
    "memory_working_set_bytes": "container_memory_working_set_bytes{sel}",
    "net_rx_bytes_total": "sum without (interface) (container_network_receive_bytes_total{sel})",
    "net_tx_bytes_total": "sum without (interface) (container_network_transmit_bytes_total{sel})",
    "disk_read_bytes_total": "sum without (device) (container_fs_reads_bytes_total{sel})",
    "disk_write_bytes_total": "sum without (device) (container_fs_writes_bytes_total{sel})",
    "disk_usage_bytes": "sum without (device) (container_fs_usage_bytes{sel})",
}
#: the real time of each scrape (see the module docstring)
_TIMESTAMP_QUERY = "max without (cpu) (timestamp(container_cpu_usage_seconds_total{sel}))"
#: how far back ``step=None`` looks for raw samples to measure the scrape interval, seconds
_STEP_PROBE_WINDOW_S = 300.0
#: step used when the scrape interval cannot be measured (Prometheus' default interval)
FALLBACK_STEP_S = 15.0

#: labels that differ between two scrapers of one container (not part of its identity)
_SCRAPER_LABELS = ("job", "instance", "prometheus", "prometheus_replica", "replica",
                   "endpoint", "service", "metrics_path")

#: default grouping chain: first rule that gives a name wins
DEFAULT_GROUP_BY: tuple[str, ...] = ("compose", "pod-owner", "image", "name")
_GROUP_RULES = ("compose", "pod-owner", "image", "name")

_COMPOSE_SERVICE = "container_label_com_docker_compose_service"
_COMPOSE_PROJECT = "container_label_com_docker_compose_project"

#: Deployment pods: <owner>-<replicaset hash>-<5 chars>; DaemonSet/Job: <owner>-<5 chars>;
#: StatefulSet: <owner>-<ordinal>. Kubernetes draws the random parts from an alphabet without
#: vowels, 0, 1 and 3, so a static pod's node suffix (``etcd-kind-control-plane``) is not
#: taken for one.
_K8S_RAND = "[bcdfghjklmnpqrstvwxz2456789]"
_POD_DEPLOYMENT = re.compile(rf"^(?P<owner>.+)-{_K8S_RAND}{{6,10}}-{_K8S_RAND}{{5}}$")
_POD_SHORT = re.compile(rf"^(?P<owner>.+)-{_K8S_RAND}{{5}}$")
_POD_ORDINAL = re.compile(r"^(?P<owner>.+)-\d+$")

_SELECTOR = re.compile(r"^\s*\{(?P<body>.*)\}\s*$", re.S)


def parse_selector(selector: str | None) -> str:
    """``'{job="cadvisor"}'`` -> the matchers used in every query, with ``image!=""`` added.

    Raises :class:`InvalidParameter` unless the selector is empty or one ``{...}`` block
    (PromQL's own syntax errors come back from the server, with its message).
    """
    text = (selector or "").strip()
    if not text:
        return '{image!=""}'
    match = _SELECTOR.match(text)
    if match is None or "{" in match["body"] or "}" in match["body"]:
        raise InvalidParameter(
            "selector", "read_prometheus", "one label selector such as '{job=\"cadvisor\"}'",
            selector,
        )
    body = match["body"].strip().rstrip(",")
    return '{image!=""' + (f", {body}" if body else "") + "}"


def parse_group_by(text: str | Sequence[str]) -> tuple[str, ...]:
    """``"compose,image"`` -> ``("compose", "image")``; ``label:NAME`` takes a label's value.

    Rules: ``compose`` (Compose project/service labels), ``pod-owner`` (the Deployment,
    StatefulSet or DaemonSet a pod belongs to, from its name), ``image``, ``name``,
    ``label:NAME`` (any Prometheus label).
    """
    rules = [r.strip() for r in (text.split(",") if isinstance(text, str) else text)]
    rules = [r for r in rules if r]
    bad = [r for r in rules
           if r not in _GROUP_RULES and not (r.startswith("label:") and len(r) > len("label:"))]
    if not rules or bad:
        raise InvalidParameter(
            "group_by", "read_prometheus",
            "a comma-separated list of compose, pod-owner, image, name or label:NAME",
            text,
        )
    return tuple(rules)


def pod_owner(pod: str) -> str:
    """The workload a pod belongs to, from the names Kubernetes gives pods.

    >>> pod_owner("web-7d4b9c8f6b-x2x9k"), pod_owner("db-0"), pod_owner("agent-q8z2m")
    ('web', 'db', 'agent')
    >>> pod_owner("etcd-kind-control-plane")  # a static pod: <name>-<node>
    'etcd-kind-control-plane'
    """
    for pattern in (_POD_DEPLOYMENT, _POD_ORDINAL, _POD_SHORT):
        match = pattern.match(pod)
        if match:
            return match["owner"]
    return pod


def service_from_labels(labels: Mapping[str, str], group_by: Sequence[str]) -> str:
    """The service a series belongs to: the first rule of ``group_by`` that gives a name.

    >>> service_from_labels({"container_label_com_docker_compose_project": "shop",
    ...     "container_label_com_docker_compose_service": "web", "image": "web:1"},
    ...     DEFAULT_GROUP_BY)
    'shop/web'
    >>> service_from_labels({"namespace": "prod", "pod": "api-5f7c9d8b7c-q8z2m",
    ...     "container": "api", "image": "api:2"}, DEFAULT_GROUP_BY)
    'prod/api'
    """
    for rule in group_by:
        value = ""
        if rule == "compose":
            service = labels.get(_COMPOSE_SERVICE, "")
            project = labels.get(_COMPOSE_PROJECT, "")
            value = f"{project}/{service}" if service and project else service
        elif rule == "pod-owner":
            pod = labels.get("pod", "")
            if pod:
                owner = pod_owner(pod)
                namespace = labels.get("namespace", "")
                value = f"{namespace}/{owner}" if namespace else owner
        elif rule == "image":
            value = labels.get("image", "")
        elif rule == "name":
            value = _display_name(labels)
        else:
            value = labels.get(rule.removeprefix("label:"), "")
        if value:
            return value
    return _display_name(labels) or "unknown"


def _display_name(labels: Mapping[str, str]) -> str:
    pod, container = labels.get("pod", ""), labels.get("container", "")
    if pod:
        return f"{pod}/{container}" if container else pod
    return labels.get("name", "") or labels.get("id", "")


def _identity(labels: Mapping[str, str]) -> str:
    """One container, whoever scraped it: the kubelet's (namespace, pod, container), else
    cAdvisor's cgroup ``id`` (it holds the container id), else the name on its instance."""
    if labels.get("pod"):
        return f"{labels.get('namespace', '')}/{labels['pod']}/{labels.get('container', '')}"
    if labels.get("id"):
        return labels["id"]
    return f"{labels.get('instance', '')}/{labels.get('name', '')}"


@dataclass
class PrometheusAPI:
    """A small client of the Prometheus HTTP API: auth, TLS, bounded time, retries.

    Parameters
    ----------
    url : str
        The server's base URL (``http://prometheus:9090``, or with a path prefix).
    username, password : str, optional
        HTTP basic auth.
    bearer_token : str, optional
        Sent as ``Authorization: Bearer ...`` (not together with basic auth).
    ca_file : str, optional
        A CA bundle to verify the server's certificate; ``verify=False`` skips verification
        (a self-signed test server only: it makes the connection open to interception).
    cert_file, key_file : str, optional
        A client certificate (mutual TLS).
    timeout_s : float
        Bound on each request, seconds (connect, read and the server's own evaluation,
        which is passed as the ``timeout`` parameter).
    retries : int
        Extra attempts after a connection error, a timeout, or a 429/502/503/504; waits
        ``backoff_s``, then twice that, and so on. Other 4xx/5xx answers are not retried.
    sleep : callable
        Injected sleep, so tests do not wait.
    transport : httpx transport, optional
        Injected transport (tests); default: the network.
    """

    url: str
    username: str | None = None
    password: str | None = None
    bearer_token: str | None = None
    ca_file: str | None = None
    verify: bool = True
    cert_file: str | None = None
    key_file: str | None = None
    timeout_s: float = 30.0
    retries: int = 3
    backoff_s: float = 0.5
    sleep: Callable[[float], Any] = time.sleep
    transport: Any = None
    requests_made: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        self.url = self.url.rstrip("/")
        if not re.match(r"^https?://[^/]", self.url):
            raise InvalidParameter("url", "PrometheusAPI", "an http:// or https:// URL", self.url)
        if not (math.isfinite(self.timeout_s) and self.timeout_s > 0):
            raise InvalidParameter("timeout_s", "PrometheusAPI", "a number of seconds > 0",
                                   self.timeout_s)
        if self.bearer_token and self.username:
            raise InvalidParameter("bearer_token", "PrometheusAPI",
                                   "given without basic auth (one of the two)", "both")
        self._client: Any = None

    def _http(self) -> Any:
        if self._client is None:
            import httpx

            headers = {"Accept": "application/json", "User-Agent": "capacity"}
            if self.bearer_token:
                headers["Authorization"] = f"Bearer {self.bearer_token}"
            auth = (self.username, self.password or "") if self.username else None
            verify: Any = self.ca_file if (self.ca_file and self.verify) else self.verify
            cert: Any = (self.cert_file, self.key_file) if self.cert_file else None
            kwargs: dict[str, Any] = {}
            if cert is not None:  # httpx deprecates cert= in favour of an SSL context
                import ssl

                context = ssl.create_default_context(
                    cafile=self.ca_file if self.verify else None)
                if not self.verify:
                    context.check_hostname = False
                    context.verify_mode = ssl.CERT_NONE
                context.load_cert_chain(self.cert_file or "", self.key_file)
                verify = context
            if self.transport is not None:
                kwargs["transport"] = self.transport
            self._client = httpx.Client(
                headers=headers, auth=auth, verify=verify,
                timeout=httpx.Timeout(self.timeout_s), **kwargs,
            )
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def __enter__(self) -> PrometheusAPI:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def get(self, path: str, params: Mapping[str, str]) -> Any:
        """GET ``/api/v1/<path>`` and return ``data``; raise :class:`PrometheusError`.

        A 200 answer with ``warnings`` is a partial result (a shard or a remote read
        failed): it is refused, since a profile from part of the data looks complete.
        """
        import httpx

        where = f"Prometheus at {self.url}"
        params = {**params, "timeout": f"{self.timeout_s:g}s"}
        attempt = 0
        while True:
            retry_reason = ""
            try:
                self.requests_made += 1
                response = self._http().get(f"{self.url}/api/v1/{path}", params=params)
            except httpx.TimeoutException:
                retry_reason = f"did not answer within {self.timeout_s:g} s"
            except httpx.TransportError as exc:
                retry_reason = f"cannot be reached ({type(exc).__name__}: {exc})"
            else:
                if response.status_code in (429, 502, 503, 504):
                    retry_reason = f"answered HTTP {response.status_code}" + _said(response)
                else:
                    return _data(response, where)
            if attempt >= self.retries:
                tries = f" after {attempt + 1} attempt(s)" if attempt else ""
                raise PrometheusError(
                    f"{where} {retry_reason}{tries}: check the URL and that the server is up, "
                    "or raise --timeout",
                    url=self.url,
                )
            self.sleep(self.backoff_s * 2**attempt)
            attempt += 1


def _said(response: Any) -> str:
    try:
        body = response.json()
        text = f"{body.get('errorType', '')}: {body.get('error', '')}".strip(": ")
    except ValueError:
        text = response.text.strip().splitlines()[0][:200] if response.text.strip() else ""
    return f" ({text})" if text else ""


def _data(response: Any, where: str) -> Any:
    url = where.removeprefix("Prometheus at ")
    status = response.status_code
    try:
        body = response.json()
    except ValueError:
        raise PrometheusError(
            f"{where} answered HTTP {status} that is not Prometheus JSON"
            f"{_said(response)}: is the URL a Prometheus server (without /api/v1)?",
            url=url, status=status,
        ) from None
    if not isinstance(body, dict) or "status" not in body:
        raise PrometheusError(
            f"{where} answered HTTP {status} without a 'status' field: "
            "is the URL a Prometheus server?", url=url, status=status,
        )
    if body["status"] != "success" or status >= 400:
        error = f"{body.get('errorType', 'error')}: {body.get('error', 'no message')}"
        hint = ""
        if "points per timeseries" in str(body.get("error", "")):
            hint = " (the series limit: give a longer --step)"
        elif status in (401, 403):
            hint = " (check the credentials)"
        raise PrometheusError(f"{where} answered HTTP {status}: {error}{hint}",
                              url=url, status=status)
    if body.get("warnings"):
        raise PrometheusError(
            f"{where} answered a partial result with warnings: {'; '.join(body['warnings'])}; "
            "nothing was read (a profile from part of the data would look complete)",
            url=url, status=status,
        )
    return body.get("data")


@dataclass(frozen=True)
class PrometheusData:
    """What :func:`read_prometheus` read.

    ``counters`` and ``containers`` are the store's tables (see
    :func:`capacity.store._rates.counters_to_samples`); ``warnings`` maps a service to what
    was found and handled in its series (resets, gaps, duplicate series); ``step_s`` is the
    query step used and ``requests`` the number of HTTP requests made.
    """

    counters: pd.DataFrame
    containers: pd.DataFrame
    warnings: Mapping[str, tuple[str, ...]]
    step_s: float
    requests: int


def _chunks(start_s: float, end_s: float, step_s: float, max_points: int
            ) -> list[tuple[float, float]]:
    """[start, end] in chunks of at most ``max_points`` steps, none overlapping."""
    out = []
    t = start_s
    while t <= end_s:
        last = min(end_s, t + (max_points - 1) * step_s)
        out.append((t, last))
        t = last + step_s
    return out


def _matrix(data: Any, where: str) -> list[dict[str, Any]]:
    if not isinstance(data, dict) or data.get("resultType") != "matrix":
        kind = data.get("resultType") if isinstance(data, dict) else type(data).__name__
        raise PrometheusError(f"{where} answered a {kind!r} result, not a matrix",
                              url=where.removeprefix("Prometheus at "))
    return list(data.get("result") or [])


def _count_series(api: PrometheusAPI, sel: str, start_s: float, end_s: float) -> int:
    """How many CPU series the range holds (the index only: ``/api/v1/series``)."""
    data = api.get("series", {"match[]": f"container_cpu_usage_seconds_total{sel}",
                              "start": f"{start_s:.3f}", "end": f"{end_s:.3f}"})
    return len(data) if isinstance(data, list) else 0


def _measure_step(api: PrometheusAPI, sel: str, end_s: float, window_s: float) -> float | None:
    """The scrape interval: the median time between raw samples of the CPU counter in the
    last ``window_s`` seconds (a range-vector query returns raw samples, not a grid)."""
    window = max(1, int(min(window_s, _STEP_PROBE_WINDOW_S)))
    data = api.get("query", {"query": f"container_cpu_usage_seconds_total{sel}[{window}s]",
                             "time": f"{end_s:.3f}"})
    diffs: list[float] = []
    for result in (data or {}).get("result", []) if isinstance(data, dict) else []:
        times = [float(v[0]) for v in result.get("values") or []]
        diffs.extend(np.diff(times))
    if not diffs:
        return None
    return max(1.0, float(round(float(np.median(diffs)))))


def read_prometheus(
    api: PrometheusAPI,
    *,
    since_s: float,
    step_s: float | None = None,
    selector: str | None = None,
    group_by: Sequence[str] = DEFAULT_GROUP_BY,
    now: datetime | None = None,
    max_points: int = MAX_POINTS_PER_SERIES,
) -> PrometheusData:
    """Read cAdvisor/kubelet container series of the last ``since_s`` seconds.

    Parameters
    ----------
    api : PrometheusAPI
        The server.
    since_s : float
        How far back from ``now``, seconds.
    step_s : float, optional
        The query resolution, seconds. Default: the scrape interval, measured as the median
        time between raw samples in the last 5 minutes of the range (15 s when none).
    selector : str, optional
        A label selector such as ``{job="cadvisor", instance=~"web-.*"}``.
    group_by : sequence of str
        Grouping rules, see :func:`parse_group_by`.
    now : datetime, optional
        The end of the range (aware UTC); default: the current time.
    max_points : int
        Points per series per request (the server refuses more than 11,000). Fewer are
        asked for when the range holds many series, so that one answer stays under
        :data:`MAX_POINTS_PER_REQUEST` points (its parsed JSON is held in memory whole).

    Returns
    -------
    PrometheusData

    Raises
    ------
    PrometheusError
        The server is down, slow, answered an error or a partial result. Nothing is
        returned then: a fit never sees half the data.
    InvalidParameter
        A bad ``since_s``, ``step_s``, ``selector`` or ``group_by``.
    """
    if not (math.isfinite(since_s) and since_s > 0):
        raise InvalidParameter("since_s", "read_prometheus", "a number of seconds > 0", since_s)
    if step_s is not None and not (math.isfinite(step_s) and step_s > 0):
        raise InvalidParameter("step_s", "read_prometheus", "a number of seconds > 0", step_s)
    if not 2 <= max_points <= MAX_POINTS_PER_SERIES:
        raise InvalidParameter("max_points", "read_prometheus",
                               f"in [2, {MAX_POINTS_PER_SERIES}]", max_points)
    rules = parse_group_by(group_by)
    sel = parse_selector(selector)
    end_s = (now or datetime.now(UTC)).timestamp()
    start_s = end_s - since_s
    if step_s is None:
        step_s = _measure_step(api, sel, end_s, since_s) or FALLBACK_STEP_S
    where = f"Prometheus at {api.url}"
    # as many steps per request as keep every answer under MAX_POINTS_PER_REQUEST points
    n_series = _count_series(api, sel, start_s, end_s)
    max_points = max(2, min(max_points, MAX_POINTS_PER_REQUEST // max(1, n_series)))

    # column -> identity -> (labels, times, values); and the scrape times
    series: dict[str, dict[str, list[tuple[dict[str, str], np.ndarray, np.ndarray]]]] = {}
    queries = {"_scrape_time": _TIMESTAMP_QUERY, **CADVISOR_QUERIES}
    for column, template in queries.items():
        found = series.setdefault(column, {})
        for lo, hi in _chunks(start_s, end_s, step_s, max_points):
            data = api.get("query_range", {
                "query": template.format(sel=sel), "start": f"{lo:.3f}", "end": f"{hi:.3f}",
                "step": f"{step_s:g}s",
            })
            for result in _matrix(data, where):
                labels = {k: str(v) for k, v in (result.get("metric") or {}).items()}
                values = result.get("values") or []
                if not values or _sandbox(labels):
                    continue
                arr = np.asarray(values, dtype=object)
                t = arr[:, 0].astype("float64")
                v = pd.to_numeric(pd.Series(arr[:, 1]), errors="coerce").to_numpy("float64")
                found.setdefault(_identity(labels), []).append((labels, t, v))
    limits = _read_limits(api, sel, end_s, since_s)
    data = _assemble(series, rules, step_s, api.requests_made)
    if limits and not data.containers.empty:
        containers = data.containers.copy()
        for column, by_identity in limits.items():
            containers[column] = containers["container_id"].map(by_identity)
        data = PrometheusData(data.counters, containers, data.warnings, data.step_s,
                              api.requests_made)
    return data


#: declared limits, read once at the end of the range (cAdvisor's container_spec_* gauges)
_LIMIT_QUERIES: dict[str, str] = {
    "cpu_limit_cores": "last_over_time(container_spec_cpu_quota{sel}[{w}s])"
                       " / last_over_time(container_spec_cpu_period{sel}[{w}s])",
    "memory_limit_bytes": "last_over_time(container_spec_memory_limit_bytes{sel}[{w}s])",
}
#: cAdvisor reports "no memory limit" as 0 or as the kernel's huge page-rounded maximum
_NO_MEMORY_LIMIT_BYTES = 2.0**62


def _read_limits(api: PrometheusAPI, sel: str, end_s: float, window_s: float
                 ) -> dict[str, dict[str, float]]:
    """Identity -> declared CPU (cores) and memory (bytes) limits; absent when unlimited.

    The last value in the range: a container gone before its end (its series stale) keeps
    its limit."""
    out: dict[str, dict[str, float]] = {}
    for column, template in _LIMIT_QUERIES.items():
        query = template.replace("{sel}", sel).replace("{w}", str(max(1, int(window_s))))
        data = api.get("query", {"query": query, "time": f"{end_s:.3f}"})
        found = out.setdefault(column, {})
        for result in (data or {}).get("result", []) if isinstance(data, dict) else []:
            labels = {k: str(v) for k, v in (result.get("metric") or {}).items()}
            try:
                value = float(result["value"][1])
            except (KeyError, IndexError, TypeError, ValueError):
                continue
            unlimited = value <= 0 or (column == "memory_limit_bytes"
                                       and value >= _NO_MEMORY_LIMIT_BYTES)
            if math.isfinite(value) and not unlimited and not _sandbox(labels):
                found.setdefault(_identity(labels), value)
    return out


def _assemble(
    series: Mapping[str, Mapping[str, list[tuple[dict[str, str], np.ndarray, np.ndarray]]]],
    rules: Sequence[str],
    step_s: float,
    requests: int,
) -> PrometheusData:
    """Series per column -> the counters and containers tables, and the warnings."""
    frames: list[pd.DataFrame] = []
    labels_of: dict[str, dict[str, str]] = {}
    duplicates: dict[str, int] = {}
    for column, by_identity in series.items():
        for identity, parts in by_identity.items():
            # parts: chunks of one series, or several series of one container (two
            # scrapers, or one cgroup seen at two paths as in kind's nested kubelet)
            origins = {_origin(p[0]) for p in parts}
            if len(origins) > 1 and column == "_scrape_time":
                duplicates[identity] = len(origins) - 1
            keep = min(origins)  # one origin per container: the first in label order
            chosen = [p for p in parts if _origin(p[0]) == keep]
            labels_of.setdefault(identity, chosen[0][0])
            t = np.concatenate([p[1] for p in chosen])
            v = np.concatenate([p[2] for p in chosen])
            frames.append(pd.DataFrame({"identity": identity, "step_s": t, column: v}))
    if not frames or "_scrape_time" not in series or not series["_scrape_time"]:
        return PrometheusData(_empty_counters(), pd.DataFrame(), {}, step_s, requests)
    long = pd.concat(frames, ignore_index=True)
    wide = long.groupby(["identity", "step_s"], sort=True).first().reset_index()
    wide = wide.dropna(subset=["_scrape_time"])
    # one row per real scrape: a step that repeats the previous scrape is dropped
    wide = wide.sort_values(["identity", "_scrape_time", "step_s"], kind="stable")
    wide = wide.drop_duplicates(["identity", "_scrape_time"], keep="first")
    identities = wide["identity"].to_numpy()
    scrape = wide["_scrape_time"].to_numpy("float64")
    first_seen = wide.groupby("identity")["_scrape_time"].transform("min")

    counters = pd.DataFrame({
        "time": pd.to_datetime(scrape, unit="s", utc=True),
        "monotonic_s": scrape,
        "container_id": identities,
        "started_at": pd.to_datetime(first_seen.to_numpy("float64"), unit="s", utc=True),
        **{c: wide[c].to_numpy("float64") if c in wide.columns else np.nan
           for c in CADVISOR_QUERIES},
    }).reset_index(drop=True)

    started = counters.groupby("container_id", sort=False)["started_at"].first()
    rows = []
    for ident, started_at in started.items():
        labels = labels_of[str(ident)]
        rows.append({
            "container_id": ident,
            "started_at": started_at,
            "name": _display_name(labels) or ident,
            "image": labels.get("image", ""),
            "service": service_from_labels(labels, rules),
            "instance": labels.get("instance", ""),
        })
    containers = pd.DataFrame(rows)
    warnings = _warnings(counters, containers, duplicates)
    return PrometheusData(counters, containers, warnings, step_s, requests)


def _origin(labels: Mapping[str, str]) -> tuple[str, ...]:
    """Where a series comes from: its scraper's labels and its cgroup path."""
    return (*(labels.get(k, "") for k in _SCRAPER_LABELS), labels.get("id", ""))


def _sandbox(labels: Mapping[str, str]) -> bool:
    """The kubelet's pod sandbox (pause) container: ``container`` empty or ``POD``."""
    return bool(labels.get("pod")) and labels.get("container", "") in ("", "POD")


def _empty_counters() -> pd.DataFrame:
    return pd.DataFrame({
        "time": pd.Series([], dtype="datetime64[ns, UTC]"),
        "monotonic_s": pd.Series([], dtype="float64"),
        "container_id": pd.Series([], dtype="str"),
        "started_at": pd.Series([], dtype="datetime64[ns, UTC]"),
        **{c: pd.Series([], dtype="float64") for c in CADVISOR_QUERIES},
    })


def _warnings(counters: pd.DataFrame, containers: pd.DataFrame,
              duplicates: Mapping[str, int]) -> dict[str, tuple[str, ...]]:
    """Per service: counter resets, gaps between scrapes, duplicate series dropped."""
    from ..store._rates import COUNTER_TOTAL_COLUMNS

    service_of = dict(zip(containers["container_id"], containers["service"], strict=True))
    totals = [c for c in CADVISOR_QUERIES if c in COUNTER_TOTAL_COLUMNS]
    out: dict[str, list[str]] = {}
    resets: dict[str, int] = {}
    gaps: dict[str, int] = {}
    for ident, rows in counters.groupby("container_id", sort=False):
        service = service_of[ident]
        dt = np.diff(rows["monotonic_s"].to_numpy())
        reset = np.zeros(len(dt), dtype=bool)
        for column in totals:
            d = np.diff(rows[column].to_numpy())
            reset |= d < 0
        resets[service] = resets.get(service, 0) + int(reset.sum())
        if len(dt):
            median = float(np.median(dt))
            gaps[service] = gaps.get(service, 0) + int((dt > 2.0 * median).sum())
    for service, n in resets.items():
        if n:
            out.setdefault(service, []).append(
                f"{n} counter reset(s) in the Prometheus series (restarts): those intervals "
                "were dropped, not read as a spike")
    for service, n in gaps.items():
        if n:
            out.setdefault(service, []).append(
                f"{n} gap(s) in the Prometheus series (missed scrapes or stale series): "
                "those intervals were dropped, not interpolated")
    dup: dict[str, int] = {}
    for ident, n in duplicates.items():
        if ident in service_of:
            dup[service_of[ident]] = dup.get(service_of[ident], 0) + n
    for service, n in dup.items():
        out.setdefault(service, []).append(
            f"{n} duplicate series (the same container from another scraper) ignored")
    return {k: tuple(v) for k, v in out.items()}


# -- host capacities from node_exporter -------------------------------------------------------

#: node_exporter queries, one value per ``instance`` (``{sel}``: the user's matchers)
_NODE_QUERIES: dict[str, str] = {
    "cpus": 'count by (instance) (node_cpu_seconds_total{mode="idle"{sel}})',
    "memory_bytes": "max by (instance) (node_memory_MemTotal_bytes{{{sel0}}})",
    # the filesystem Docker keeps its data on, else the root filesystem
    "disk_bytes": 'max by (instance) (node_filesystem_size_bytes{mountpoint="/var/lib/docker"'
                  '{sel}}) or max by (instance) (node_filesystem_size_bytes{mountpoint="/"{sel}})',
    # the fastest physical NIC (bridges, veths and loopback are not links)
    "nic_bytes_per_second": 'max by (instance) (node_network_speed_bytes{device!~"lo|veth.*|'
                            'docker.*|br-.*|virbr.*|cni.*|flannel.*|cali.*"{sel}})',
}


@dataclass(frozen=True)
class NodeHost:
    """One host's capacity as node_exporter reports it (None: not reported)."""

    instance: str
    cpus: int
    memory_bytes: float
    disk_bytes: float | None = None
    nic_bytes_per_second: float | None = None

    def spec(self) -> str:
        """A machine spec for :meth:`capacity.solver.Machine.from_spec`.

        >>> NodeHost("a:9100", 8, 32 * 2**30, None, 1.25e9).spec()
        'cpus=8,memory=34359738368B,net=1250000000B/s'
        """
        parts = [f"cpus={self.cpus}", f"memory={self.memory_bytes:.0f}B"]
        if self.disk_bytes:
            parts.append(f"disk={self.disk_bytes:.0f}B")
        if self.nic_bytes_per_second:
            parts.append(f"net={self.nic_bytes_per_second:.0f}B/s")
        return ",".join(parts)


def read_node_hosts(
    api: PrometheusAPI, *, selector: str | None = None, now: datetime | None = None
) -> list[NodeHost]:
    """Each host's CPUs, memory, disk and NIC speed from node_exporter series at ``now``.

    ``selector`` (e.g. ``{job="node"}``) narrows the hosts. Hosts without a CPU count or
    memory size are left out. Raises :class:`PrometheusError` as :func:`read_prometheus`.
    """
    text = (selector or "").strip()
    body = ""
    if text:
        match = _SELECTOR.match(text)
        if match is None:
            raise InvalidParameter("selector", "read_node_hosts",
                                   "one label selector such as '{job=\"node\"}'", selector)
        body = match["body"].strip().rstrip(",")
    sel = f", {body}" if body else ""
    at = f"{(now or datetime.now(UTC)).timestamp():.3f}"
    values: dict[str, dict[str, float]] = {}
    for field_name, template in _NODE_QUERIES.items():
        query = template.replace("{sel0}", body).replace("{sel}", sel)
        query = query.replace("{{", "{").replace("}}", "}")
        data = api.get("query", {"query": query, "time": at})
        for result in (data or {}).get("result", []) if isinstance(data, dict) else []:
            instance = str((result.get("metric") or {}).get("instance", ""))
            try:
                value = float(result["value"][1])
            except (KeyError, IndexError, TypeError, ValueError):
                continue
            if math.isfinite(value) and value > 0:
                values.setdefault(instance, {})[field_name] = value
    hosts = []
    for instance, got in sorted(values.items()):
        if "cpus" in got and "memory_bytes" in got:
            hosts.append(NodeHost(instance, int(got["cpus"]), got["memory_bytes"],
                                  got.get("disk_bytes"), got.get("nic_bytes_per_second")))
    return hosts


def host_kinds(hosts: Sequence[NodeHost]) -> dict[str, list[str]]:
    """Machine spec -> the hosts of that kind (same CPUs, memory, disk and NIC speed).

    Memory and disk are rounded down to a GiB first: two hosts of one model report a few
    MiB apart (firmware reservations), and should be one kind.
    """
    kinds: dict[str, list[str]] = {}
    for host in hosts:
        rounded = NodeHost(
            host.instance, host.cpus, math.floor(host.memory_bytes / 2**30) * 2**30,
            math.floor(host.disk_bytes / 2**30) * 2**30 if host.disk_bytes else None,
            host.nic_bytes_per_second)
        kinds.setdefault(rounded.spec(), []).append(host.instance)
    return kinds
