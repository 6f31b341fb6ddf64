"""How the Prometheus reader puts raw series together: parts (NICs, devices) that come and
go, the scrape interval of containers scraped at different rates, a pod sandbox's network.

A loopback server answers like Prometheus from a table of series (nothing is patched)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest
from fake_prometheus import fake_prometheus, matrix

from capacity._columns import CPU, NET_RX
from capacity._pipeline import load_prometheus
from capacity.sources._prometheus import PrometheusAPI, _fast_matrix, read_prometheus

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
END_S = NOW.timestamp()

#: metric name -> [(labels, times s, values)]
Table = dict[str, list[tuple[dict[str, str], np.ndarray, np.ndarray]]]


def _serve(table: Table):
    """Answer ``metric{}[<n>ms]`` at ``time`` with the table's raw samples in the window
    (both ends included, as Prometheus 2 does); anything else is empty."""

    def answer(path: str, q: dict[str, str]) -> tuple[int, Any, float]:
        match = re.fullmatch(r"(\w+)\{[^}]*\}\[(\d+)(ms|s)\]", q.get("query", ""))
        if not path.endswith("/query") or match is None:
            return 200, matrix([]), 0
        hi = float(q["time"])
        lo = hi - int(match[2]) / (1000 if match[3] == "ms" else 1)
        out = []
        for labels, t, v in table.get(match[1], []):
            inside = (t >= lo) & (t <= hi)
            if inside.any():
                out.append((labels, list(zip(t[inside].tolist(), v[inside].tolist(),
                                             strict=True))))
        return 200, matrix(out), 0

    return answer


def _times(every_s: float, n: int) -> np.ndarray:
    return END_S - 1 - every_s * np.arange(n)[::-1]


def _cpu(labels: dict[str, str], t: np.ndarray, cores: float = 0.5):
    return (labels, t, 100.0 + cores * (t - t[0]))


def test_a_nic_added_for_good_keeps_every_scrape_and_is_one_reset() -> None:
    """A NIC that appears halfway: before, only scrapes with both NICs were kept (half the
    series lost); now every scrape is kept and the change of set is read as a reset."""
    web = {"id": "/docker/" + "a" * 64, "name": "web", "image": "web:1"}
    t = _times(10.0, 60)
    late = t[30:]
    table: Table = {
        "container_cpu_usage_seconds_total": [_cpu(web, t)],
        "container_network_receive_bytes_total": [
            ({**web, "interface": "eth0"}, t, 1e6 + 1000.0 * (t - t[0])),
            ({**web, "interface": "eth1"}, late, 5e9 + 300.0 * (late - late[0])),
        ],
    }
    with fake_prometheus(_serve(table)) as fake:
        data = load_prometheus(PrometheusAPI(fake.url), since_s=900, now=NOW)
    samples = data.samples
    assert len(samples) == 59  # every scrape is a row: 60 scrapes, 59 intervals
    assert samples[CPU].to_numpy() == pytest.approx(0.5)
    rx = samples[NET_RX].to_numpy()
    # the two intervals around the scrape where eth1 appeared have no rate; never a spike
    assert np.isnan(rx).sum() == 2
    assert rx[:29] == pytest.approx(1000.0) and rx[31:] == pytest.approx(1300.0)
    warnings = data.warnings["web:1"]
    assert any(w.startswith("1 change(s) of the CPUs, NICs or devices") for w in warnings), \
        warnings


def test_the_scrape_interval_is_every_containers_not_the_first_ones() -> None:
    fast = {"id": "/docker/" + "a" * 64, "name": "a", "image": "a:1"}
    slow = [{"id": "/docker/" + c * 64, "name": c, "image": c + ":1"} for c in "bc"]
    table: Table = {"container_cpu_usage_seconds_total": [
        _cpu(fast, _times(10.0, 80)), *(_cpu(s, _times(30.0, 27)) for s in slow)]}
    with fake_prometheus(_serve(table)) as fake:
        data = read_prometheus(PrometheusAPI(fake.url), since_s=900, now=NOW)
    assert data.step_s == pytest.approx(30.0)  # the median of 10, 30, 30


def _pod(container: str) -> dict[str, str]:
    return {"namespace": "prod", "pod": "api-5f7c9d8b7c-q8z2m", "container": container,
            "image": f"registry/{container}:1", "job": "kubelet"}


def test_a_pods_network_goes_to_a_kept_container() -> None:
    """The pod's first container by name ("aaa-init") has no CPU scrape in the range (its
    one sample is on the range's start, which is left out): the sandbox's traffic goes to
    the next one, not lost with it."""
    t = _times(15.0, 40)
    sandbox = {**_pod(""), "image": "registry/pause:3.9", "interface": "eth0"}
    table: Table = {
        "container_cpu_usage_seconds_total": [
            _cpu(_pod("api"), t), _cpu(_pod("aaa-init"), np.array([END_S - 900]))],
        "container_network_receive_bytes_total": [(sandbox, t, 700.0 * (t - t[0]))],
    }
    with fake_prometheus(_serve(table)) as fake:
        data = load_prometheus(PrometheusAPI(fake.url), since_s=900, now=NOW)
    samples = data.samples
    assert list(samples["service"].unique()) == ["prod/api"]
    assert samples[NET_RX].to_numpy() == pytest.approx(700.0)


def test_a_pods_network_is_not_counted_twice() -> None:
    """A container ("web", not the first by name) reports the pod's network itself: the
    sandbox's copy is not given to "api" too."""
    t = _times(15.0, 40)
    sandbox = {**_pod(""), "image": "registry/pause:3.9", "interface": "eth0"}
    table: Table = {
        "container_cpu_usage_seconds_total": [_cpu(_pod("api"), t), _cpu(_pod("web"), t)],
        "container_network_receive_bytes_total": [
            (sandbox, t, 700.0 * (t - t[0])),
            ({**_pod("web"), "interface": "eth0"}, t, 700.0 * (t - t[0])),
        ],
    }
    with fake_prometheus(_serve(table)) as fake:
        data = load_prometheus(PrometheusAPI(fake.url), since_s=900, now=NOW)
    by_name = data.samples.groupby("container_id")[NET_RX]
    total = by_name.mean().sum()
    assert total == pytest.approx(700.0)  # once, by web


def test_the_fast_parser_refuses_what_it_cannot_read_whole() -> None:
    """A value numpy cannot parse: the fast path hands the answer to json (numpy < 2 would
    only warn and return the numbers before it)."""
    body = {"status": "success", "data": {"resultType": "matrix", "result": [
        {"metric": {"id": "/a"}, "values": [[1700000000, "1.5"], [1700000015, "1.5x"],
                                            [1700000030, "2"]]}]}}
    assert _fast_matrix(json.dumps(body, separators=(",", ":"))) is None
