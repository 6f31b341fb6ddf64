"""Prometheus as a source: cAdvisor and kubelet container series over the HTTP API.

:func:`read_prometheus` asks a Prometheus server (``/api/v1/query``, raw samples) for the series
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

- ``query_range`` resamples onto a grid of steps (a step shorter than the scrape interval
  repeats a sample: a counter would look idle for one step, then busy), and the one way to
  get each sample's own time from it, ``timestamp()``, costs Prometheus 2.42 time quadratic
  in the steps (86 s for one 2,500-step request over 200 series). So the raw samples are
  read instead: an instant query of a range selector, ``metric{sel}[<w>ms]`` at the window's
  end, returns each series' samples with their own times. One counters row per scrape of
  the CPU counter; the rates divide by the time between scrapes.
- A range selector's window is closed at both ends in Prometheus 2 (a sample on the edge
  comes in two windows): samples at a window's start are dropped, and each series' times
  are made unique.
- Windows are sized so that one answer holds at most :data:`MAX_POINTS_PER_REQUEST`
  samples of all series together, and at most 11,000 per series (the series are counted
  first through ``/api/v1/series``, the scrape interval measured from the last 5 minutes).
- A container split over labels (``cpu``, ``interface``, ``device``) is summed at each
  scrape, only where every part has a sample: a sum missing a part would look like a
  counter reset, then a spike.
- cAdvisor also exports the host's and systemd's cgroups (``id="/"``,
  ``id="/system.slice/..."``) without an ``image`` label: only series with an image are
  containers (``image!=""`` is added to every selector).
- On Kubernetes the kubelet reports the pod sandbox (``container=""`` on containerd and
  kind, ``"POD"`` under dockershim; the pause image) beside the containers. It is not a
  replica, but it holds the pod's network namespace, so its network counters are the pod's:
  they go to the pod's first container by name (unless a container of the pod has network
  series of its own), taken at each of that container's scrapes as the sandbox's newest
  sample at most one scrape interval old (the kubelet stamps each cgroup's stats apart).
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

#: the server's limit of points per series in one ``query_range`` answer; the raw reads used
#: here are not bound by it, but each request stays under it per series all the same
MAX_POINTS_PER_SERIES = 11_000
#: raw samples (all series together) asked for in one request: bounds the memory a parsed
#: answer takes (about 150 bytes of Python objects per point), whatever the fleet's size
MAX_POINTS_PER_REQUEST = 500_000

#: counters-table column -> the cAdvisor metric read raw (``{sel}`` is the label selector)
CADVISOR_QUERIES: dict[str, str] = {
    "cpu_usage_seconds_total": "container_cpu_usage_seconds_total{sel}",
    "memory_working_set_bytes": "container_memory_working_set_bytes{sel}",
    "net_rx_bytes_total": "container_network_receive_bytes_total{sel}",
    "net_tx_bytes_total": "container_network_transmit_bytes_total{sel}",
    "disk_read_bytes_total": "container_fs_reads_bytes_total{sel}",
    "disk_write_bytes_total": "container_fs_writes_bytes_total{sel}",
    "disk_usage_bytes": "container_fs_usage_bytes{sel}",
}
#: labels that split one container's value into parts, summed (per-CPU exporters, NICs,
#: block devices)
_PART_LABELS = ("cpu", "interface", "device")
#: columns the pod sandbox holds on Kubernetes: the pod's network namespace is the sandbox's
_SANDBOX_COLUMNS = ("net_rx_bytes_total", "net_tx_bytes_total")
#: the column whose samples are the scrapes (one counters row each)
_SCRAPE_COLUMN = "cpu_usage_seconds_total"
#: how far back ``read_prometheus`` looks for raw samples to measure the scrape interval, s
_STEP_PROBE_WINDOW_S = 300.0
#: interval assumed when it cannot be measured (Prometheus' default scrape interval)
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
#: a CronJob's pod: <cronjob>-<scheduled time>-<5 chars>, the time in minutes since the
#: epoch (8 digits; the controller since Kubernetes 1.21) or seconds (10 digits, before)
_POD_CRONJOB = re.compile(rf"^(?P<owner>.+)-\d{{8,10}}-{_K8S_RAND}{{5}}$")

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
    StatefulSet, DaemonSet or CronJob a pod belongs to, from its name), ``image``, ``name``,
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

    A CronJob's pods (``<cronjob>-<minute>-<5 chars>``) belong to the CronJob, not to each
    run's Job: every run is one replica of the same service over time.

    >>> pod_owner("backup-27442143-q8z2m"), pod_owner("backup-27442143-24567")
    ('backup', 'backup')
    """
    for pattern in (_POD_CRONJOB, _POD_DEPLOYMENT, _POD_ORDINAL, _POD_SHORT):
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
        return _data(self._get(path, params), f"Prometheus at {self.url}")

    def get_matrix(self, path: str, params: Mapping[str, str]
                   ) -> list[tuple[dict[str, str], np.ndarray, np.ndarray]]:
        """As :meth:`get` for a matrix answer: ``(labels, times s, values)`` per series.

        A success answer in Prometheus' own compact JSON is parsed by :func:`_fast_matrix`
        (numpy parses the sample pairs: about 5x faster than ``json`` building two Python
        objects per sample); anything else goes through ``json`` and the same checks."""
        where = f"Prometheus at {self.url}"
        response = self._get(path, params)
        if response.status_code == 200:
            fast = _fast_matrix(response.text)
            if fast is not None:
                return fast
        out = []
        for result in _matrix(_data(response, where), where):
            labels = {k: str(v) for k, v in (result.get("metric") or {}).items()}
            values = result.get("values") or []
            out.append((labels, *_points(values)))
        return out

    def _get(self, path: str, params: Mapping[str, str]) -> Any:
        """The answer (httpx response) to GET ``/api/v1/<path>``, retried as documented."""
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
                    return response
            if attempt >= self.retries:
                tries = f" after {attempt + 1} attempt(s)" if attempt else ""
                raise PrometheusError(
                    f"{where} {retry_reason}{tries}: check the URL and that the server is up, "
                    "or raise --timeout",
                    url=self.url,
                )
            self.sleep(self.backoff_s * 2**attempt)
            attempt += 1


_MATRIX_HEAD = '{"status":"success","data":{"resultType":"matrix","result":['
_SAMPLE_CHARS = str.maketrans("", "", '[]"')


def _fast_matrix(text: str) -> list[tuple[dict[str, str], np.ndarray, np.ndarray]] | None:
    """A matrix success answer, as Prometheus writes it (compact JSON, ``metric`` then
    ``values`` in each result), parsed with the sample pairs handed to numpy in one go.

    Returns None for anything else (spaces, other keys such as ``warnings`` or
    ``histograms``, another result type), which the caller parses with ``json``."""
    import json

    if not text.startswith(_MATRIX_HEAD):
        return None
    decoder = json.JSONDecoder()
    out = []
    pos = len(_MATRIX_HEAD)
    try:
        while text[pos] != "]":
            if not text.startswith('{"metric":', pos):
                return None
            labels, pos = decoder.raw_decode(text, pos + len('{"metric":'))
            if not isinstance(labels, dict) or not text.startswith(',"values":[', pos):
                return None
            start = pos + len(',"values":[')
            if text[start] == "]":
                end = start  # no samples
                flat = np.empty(0)
            else:
                end = text.index("]]", start) + 1
                pairs = text[start:end].translate(_SAMPLE_CHARS)
                flat = np.fromstring(pairs, sep=",")  # text mode: not the deprecated binary
                # numpy < 2 only warns on text it cannot parse and returns what it read
                # before: a short array is refused here, the json path reads it instead
                if len(flat) != pairs.count(",") + 1:
                    return None
            if text[end + 1] != "}" or len(flat) % 2:
                return None
            out.append(({str(k): str(v) for k, v in labels.items()}, flat[0::2].copy(),
                        flat[1::2].copy()))
            pos = end + 2
            if text[pos] == ",":
                pos += 1
        if text[pos:] != "]}}":  # the end of result, data and the answer: nothing else
            return None
    except (IndexError, ValueError):
        return None
    return out


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
            hint = (" (the server's limit of points per series: the reader asks for at most "
                    f"{MAX_POINTS_PER_SERIES:,} raw samples per series per request, whatever "
                    "--step; a lower limit is not supported)")
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


def _windows(start_s: float, end_s: float, window_s: float) -> list[tuple[float, float]]:
    """(start, end] as contiguous windows (lo, hi] of at most ``window_s`` seconds."""
    out = []
    hi = end_s
    while hi > start_s:
        lo = max(start_s, hi - window_s)
        out.append((lo, hi))
        hi = lo
    return out[::-1]


def _points(values: Sequence[Sequence[Any]]) -> tuple[np.ndarray, np.ndarray]:
    """``[[t, "v"], ...]`` (the API's sample pairs) -> float64 times and values.

    Values are strings in the API ("NaN", "+Inf" included); numpy parses them in one call,
    without building a float object per sample."""
    n = len(values)
    t = np.fromiter((p[0] for p in values), dtype=np.float64, count=n)
    v = np.array([p[1] for p in values], dtype=np.float64)
    return t, v


#: one container's raw series of one column: origin -> part label value -> chunks (t, v)
_Parts = dict[tuple[str, ...], dict[str, list[tuple[np.ndarray, np.ndarray]]]]


def _combine(parts: Mapping[str, list[tuple[np.ndarray, np.ndarray]]]
             ) -> tuple[np.ndarray, np.ndarray, int]:
    """One origin's parts (per CPU, NIC or device) -> one series, summed at each scrape,
    and the number of times the set of parts changed.

    Every scrape is kept. A scrape whose set of parts differs from the previous scrape's (a
    NIC or device added or removed, for good or for one scrape) is a reset: its value is NaN,
    so no interval is read across the change (the intervals on both sides of that scrape are
    dropped), never summed short: a sum missing a part would look like a counter reset, and
    one gaining a part like a spike.
    """
    series = []
    for chunks in parts.values():
        t = np.concatenate([c[0] for c in chunks])
        v = np.concatenate([c[1] for c in chunks])
        t, first = np.unique(t, return_index=True)  # sorted; a window edge read twice once
        series.append((t, v[first]))
    if len(series) == 1:
        return series[0][0], series[0][1], 0
    union = np.unique(np.concatenate([s[0] for s in series]))
    total = np.zeros(len(union))
    changed = np.zeros(len(union), dtype=bool)
    for t, v in series:  # one part at a time: memory of one scrape column, not parts x scrapes
        where = np.searchsorted(union, t)
        total[where] += v  # times are unique within a part
        present = np.zeros(len(union), dtype=bool)
        present[where] = True
        changed[1:] |= present[1:] != present[:-1]
    total[changed] = np.nan
    return union, total, int(changed.sum())


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

    The raw samples are read (``/api/v1/query`` of a range selector, ``metric{sel}[w]``),
    so each counters row is one real scrape, stamped with its own time: no grid, no
    resampling, and no ``timestamp()`` (which Prometheus 2.42 evaluates in time quadratic in
    the steps of a range query: 86 s for 2,500 steps of 200 series).

    Parameters
    ----------
    api : PrometheusAPI
        The server.
    since_s : float
        How far back from ``now``, seconds.
    step_s : float, optional
        Keep at most one scrape per ``step_s`` seconds, once read (counters stay exact,
        rates average over the longer intervals, gauges are sampled; fewer rows). Every raw
        sample is still downloaded and parsed: it does not make the read lighter.
        Default: every scrape.
    selector : str, optional
        A label selector such as ``{job="cadvisor", instance=~"web-.*"}``.
    group_by : sequence of str
        Grouping rules, see :func:`parse_group_by`.
    now : datetime, optional
        The end of the range (aware UTC); default: the current time.
    max_points : int
        Raw samples per series per request, at most 11,000. Fewer are asked for when the
        range holds many series, so that one answer stays under
        :data:`MAX_POINTS_PER_REQUEST` samples (its parsed JSON is held in memory whole).

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
    # windows of as many scrapes as keep every answer under MAX_POINTS_PER_REQUEST samples
    n_series = _count_series(api, sel, start_s, end_s)
    interval_s = _measure_step(api, sel, end_s, since_s) or FALLBACK_STEP_S
    per_series = max(2, min(max_points, MAX_POINTS_PER_REQUEST // max(1, n_series)))
    windows = _windows(start_s, end_s, per_series * interval_s)

    # column -> identity -> origin -> part -> chunks; the pod sandboxes' network apart
    series: dict[str, dict[str, _Parts]] = {}
    sandboxes: dict[str, dict[str, _Parts]] = {}
    labels_of: dict[str, dict[str, str]] = {}
    for column, template in CADVISOR_QUERIES.items():
        found = series.setdefault(column, {})
        for lo, hi in windows:
            span_ms = max(1, round((hi - lo) * 1000))
            answer = api.get_matrix("query", {
                "query": f"{template.format(sel=sel)}[{span_ms}ms]", "time": f"{hi:.3f}"})
            for labels, t, v in answer:
                if not len(t):
                    continue
                if _sandbox(labels):
                    if column not in _SANDBOX_COLUMNS:
                        continue
                    into = sandboxes.setdefault(column, {})
                    ident = _pod_key(labels)
                else:
                    into = found
                    ident = _identity(labels)
                    if column == _SCRAPE_COLUMN:
                        labels_of.setdefault(ident, labels)
                inside = t > lo  # the range selector's window is closed at both ends
                part = "/".join(labels.get(k, "") for k in _PART_LABELS)
                chunks = into.setdefault(ident, {}).setdefault(_origin(labels), {})
                chunks.setdefault(part, []).append((t[inside], v[inside]))
    limits = _read_limits(api, sel, end_s, since_s)
    data = _assemble(series, sandboxes, labels_of, rules, step_s, start_s, api.requests_made)
    if limits and not data.containers.empty:
        containers = data.containers.copy()
        for column, by_identity in limits.items():
            containers[column] = containers["container_id"].map(by_identity)
        data = PrometheusData(data.counters, containers, data.warnings, data.step_s,
                              data.requests)
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


def _concat_free(parts: list[np.ndarray]) -> np.ndarray:
    """Concatenate, emptying ``parts`` (its arrays are freed once copied)."""
    out = np.concatenate(parts)
    parts.clear()
    return out


def _pod_key(labels: Mapping[str, str]) -> str:
    return f"{labels.get('namespace', '')}/{labels.get('pod', '')}"


def _assemble(
    series: dict[str, dict[str, _Parts]],
    sandboxes: dict[str, dict[str, _Parts]],
    labels_of: Mapping[str, Mapping[str, str]],
    rules: Sequence[str],
    step_s: float | None,
    start_s: float,
    requests: int,
) -> PrometheusData:
    """Raw series per column -> the counters and containers tables, and the warnings.

    Each container's rows are its CPU counter's scrapes; every other column takes, at each
    scrape, its newest sample at or before it, at most one scrape interval old (cAdvisor
    stamps all of a container's series with one time, so this is usually an exact match;
    the pod sandbox's network is stamped apart)."""
    scrapes = series.get(_SCRAPE_COLUMN) or {}
    if not scrapes:
        return PrometheusData(_empty_counters(), pd.DataFrame(), {}, step_s or 0.0, requests)
    duplicates: dict[str, int] = {}
    part_changes: dict[str, int] = {}  # identity -> changes of its set of CPUs/NICs/devices
    # the pod's network lives on its sandbox: give it to the pod's first container (by name)
    # among those kept (with CPU scrapes), unless a container of the pod has network series
    # of its own (the same namespace: counted twice otherwise)
    first_of_pod: dict[str, str] = {}
    for ident in sorted(scrapes):
        labels = labels_of.get(ident, {})
        if labels.get("pod") and _has_samples(scrapes[ident]):
            first_of_pod.setdefault(_pod_key(labels), ident)
    own_network = {column: {_pod_key(labels_of.get(ident, {}))
                            for ident in series.get(column) or {}
                            if labels_of.get(ident, {}).get("pod")}
                   for column in _SANDBOX_COLUMNS}

    def one(column: str, ident: str) -> tuple[np.ndarray, np.ndarray] | None:
        by_origin = (series.get(column) or {}).pop(ident, None)  # freed as it is used
        if not by_origin and column in _SANDBOX_COLUMNS:
            labels = labels_of.get(ident, {})
            pod = _pod_key(labels) if labels.get("pod") else ""
            if pod and first_of_pod.get(pod) == ident and pod not in own_network[column]:
                by_origin = (sandboxes.get(column) or {}).pop(pod, None)
        if not by_origin:
            return None
        keep = min(by_origin)  # one origin per container: the first in label order
        if column == _SCRAPE_COLUMN and len(by_origin) > 1:
            duplicates[ident] = len(by_origin) - 1
        t, v, changes = _combine(by_origin[keep])
        if changes:
            part_changes[ident] = part_changes.get(ident, 0) + changes
        return t, v

    idents: list[str] = []
    lengths: list[int] = []
    times: list[np.ndarray] = []
    firsts: list[float] = []
    lags: list[float] = []  # each kept container's median scrape interval, s
    columns: dict[str, list[np.ndarray]] = {c: [] for c in CADVISOR_QUERIES}
    for ident in sorted(scrapes):
        got = one(_SCRAPE_COLUMN, ident)
        if got is None or not len(got[0]):
            continue
        t, cpu = got
        if step_s is not None:  # at most one scrape per step
            bucket = np.floor((t - start_s) / step_s)
            first = np.concatenate([[True], bucket[1:] != bucket[:-1]])
            t, cpu = t[first], cpu[first]
        lag_s = float(np.median(np.diff(t))) if len(t) > 1 else FALLBACK_STEP_S
        if len(t) > 1:
            lags.append(lag_s)
        idents.append(ident)
        lengths.append(len(t))
        times.append(t)
        firsts.append(float(t[0]))
        columns[_SCRAPE_COLUMN].append(cpu)
        for column in CADVISOR_QUERIES:
            if column == _SCRAPE_COLUMN:
                continue
            other = one(column, ident)
            if other is None:
                columns[column].append(np.full(len(t), np.nan))
                continue
            ot, ov = other
            i = np.searchsorted(ot, t, side="right") - 1
            ok = (i >= 0) & (t - ot[np.maximum(i, 0)] <= lag_s * (1 + 1e-9))
            columns[column].append(np.where(ok, ov[np.maximum(i, 0)], np.nan))
    if not idents:
        return PrometheusData(_empty_counters(), pd.DataFrame(), {}, step_s or 0.0, requests)
    scrape = np.concatenate(times)
    times.clear()
    counts = np.asarray(lengths)
    # a category per container, not a string per row (4 M rows: 32 MB of codes, not 300 MB)
    container_id = pd.Categorical.from_codes(
        np.repeat(np.arange(len(idents), dtype=np.int32), counts), categories=pd.Index(idents))
    counters = pd.DataFrame({
        "time": pd.to_datetime(scrape, unit="s", utc=True),
        "monotonic_s": scrape,
        "container_id": container_id,
        "started_at": pd.to_datetime(np.repeat(np.asarray(firsts), counts), unit="s",
                                     utc=True),
        **{c: _concat_free(columns[c]) for c in list(columns)},
    })
    containers = pd.DataFrame([{
        "container_id": ident,
        "started_at": pd.Timestamp(first, unit="s", tz="UTC"),
        "name": _display_name(labels_of[ident]) or ident,
        "image": labels_of[ident].get("image", ""),
        "service": service_from_labels(labels_of[ident], rules),
        "instance": labels_of[ident].get("instance", ""),
    } for ident, first in zip(idents, firsts, strict=True)])
    warnings = _warnings(counters, containers, duplicates, part_changes)
    if step_s is None:  # the scrape interval, as read: the median of the containers' medians
        step_s = float(np.median(lags)) if lags else 0.0
    return PrometheusData(counters, containers, warnings, step_s, requests)


def _has_samples(by_origin: _Parts) -> bool:
    """Whether the origin :func:`_assemble` keeps (the first) has any sample."""
    if not by_origin:
        return False
    return any(len(t) for chunks in by_origin[min(by_origin)].values() for t, _ in chunks)


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
              duplicates: Mapping[str, int], part_changes: Mapping[str, int]
              ) -> dict[str, tuple[str, ...]]:
    """Per service: counter resets, gaps between scrapes, duplicate series dropped, changes
    of the set of CPUs, NICs or devices summed."""
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
    changed: dict[str, int] = {}
    for ident, n in part_changes.items():
        if ident in service_of:
            changed[service_of[ident]] = changed.get(service_of[ident], 0) + n
    for service, n in changed.items():
        out.setdefault(service, []).append(
            f"{n} change(s) of the CPUs, NICs or devices summed in the Prometheus series: "
            "read as resets, the intervals across them were dropped")
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
