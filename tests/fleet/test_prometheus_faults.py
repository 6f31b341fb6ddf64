"""The Prometheus source against a tiny loopback server that answers like Prometheus:
faults (down, slow, error JSON, partial answers, the series limit, 4xx/5xx) and awkward
series (resets, staleness, two scrapers, a step shorter than the scrape interval).

Nothing is patched: the real client talks HTTP to the fake server; its sleep is injected.
"""

from __future__ import annotations

import itertools
import json
import re
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fake_prometheus import error, fake_prometheus, matrix
from prometheus_helpers import free_port

from capacity._columns import CPU, MEMORY
from capacity._errors import InvalidParameter, PrometheusError
from capacity._pipeline import fit_profiles, load_prometheus
from capacity.cli import main
from capacity.sources._prometheus import (
    MAX_POINTS_PER_SERIES,
    PrometheusAPI,
    parse_selector,
    read_prometheus,
    service_from_labels,
)

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
SCRAPE_S = 10.0
CPU_CORES = 0.5
MEMORY_BYTES = 100 * 2**20
RESET_AT = 30  # scrape index where the counter restarts (a container restart)
STALE = range(50, 56)  # scrapes missing: the series went stale, then came back
N_SCRAPES = 80


def _api(url: str, sleeps: list[float] | None = None, **kw: Any) -> PrometheusAPI:
    return PrometheusAPI(url, sleep=(sleeps if sleeps is not None else []).append, **kw)


def _empty() -> dict[str, Any]:
    return matrix([])


# -- faults -----------------------------------------------------------------------------------


def test_a_server_that_is_down_is_one_line_and_exit_3(tmp_path: Path, capsys) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    out = tmp_path / "profiles.json"
    code = main(["fit", "--prometheus", url, "--since", "1h", "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 3
    assert len(err) == 1 and err[0].startswith("capacity: error: Prometheus at " + url)
    assert "cannot be reached" in err[0] and "after 4 attempt(s)" in err[0]
    assert not out.exists() and not list(tmp_path.iterdir())


def test_error_json_names_the_url_and_what_it_said(tmp_path: Path, capsys) -> None:
    said = "1:10: parse error: unexpected character inside braces: '!'"
    with fake_prometheus(lambda p, q: (400, error("bad_data", said), 0)) as fake:
        out = tmp_path / "profiles.json"
        code = main(["fit", "--prometheus", fake.url, "--step", "30s", "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 3 and len(err) == 1
    assert f"Prometheus at {fake.url} answered HTTP 400: bad_data: {said}" in err[0]
    assert not out.exists()
    assert len(fake.requests) == 1  # a 400 is not retried


def test_slow_server_is_bounded_and_retried_with_backoff() -> None:
    sleeps: list[float] = []
    with fake_prometheus(lambda p, q: (200, _empty(), 1.5)) as fake:
        api = _api(fake.url, sleeps, timeout_s=0.2, retries=2, backoff_s=0.5)
        with pytest.raises(PrometheusError, match=r"did not answer within 0\.2 s after 3"):
            read_prometheus(api, since_s=600, step_s=10, now=NOW)
    assert sleeps == [0.5, 1.0]


def test_5xx_is_retried_and_a_recovery_is_used() -> None:
    answers = iter([(503, error("unavailable", "starting up"), 0),
                    (502, "<html>bad gateway</html>", 0)])

    def answer(path: str, q: dict[str, str]) -> tuple[int, Any, float]:
        return next(answers, (200, _empty(), 0))

    sleeps: list[float] = []
    with fake_prometheus(answer) as fake:
        data = read_prometheus(_api(fake.url, sleeps), since_s=600, step_s=10, now=NOW)
    assert data.counters.empty and sleeps == [0.5, 1.0]


def test_5xx_that_persists_is_an_error_naming_what_it_said() -> None:
    unavailable = error("unavailable", "TSDB not ready")
    with (fake_prometheus(lambda p, q: (503, unavailable, 0)) as fake,
          pytest.raises(PrometheusError) as info):
        read_prometheus(_api(fake.url, retries=1), since_s=600, step_s=10, now=NOW)
    assert str(info.value).startswith(f"Prometheus at {fake.url} answered HTTP 503")
    assert "TSDB not ready" in str(info.value) and info.value.url == fake.url


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (400, error("bad_data", "exceeded maximum resolution of 11,000 points per timeseries. "
                    "Try decreasing the query resolution (?step=XX)"),
         r"11,000 points per timeseries.*limit of points per series.*whatever --step"),
        (422, error("execution", "query processing would load too many samples into memory"),
         r"HTTP 422: execution: query processing would load too many samples"),
        (401, "Unauthorized", r"HTTP 401 that is not Prometheus JSON \(Unauthorized\)"),
        (403, error("forbidden", "no"), r"HTTP 403: forbidden: no \(check the credentials\)"),
        (404, "<html><body>404 page not found</body></html>", r"is the URL a Prometheus"),
        (200, {"status": "success", "data": _empty()["data"], "warnings": [
            "remote read: store eu-1 unavailable"]},
         r"partial result with warnings: remote read: store eu-1 unavailable"),
        (200, {"hello": "world"}, r"without a 'status' field"),
    ],
)
def test_answers_that_are_refused(status: int, body: Any, expected: str) -> None:
    with (fake_prometheus(lambda p, q: (status, body, 0)) as fake,
          pytest.raises(PrometheusError, match=expected) as info):
        read_prometheus(_api(fake.url), since_s=600, step_s=10, now=NOW)
    assert fake.url in str(info.value)


def test_bad_parameters_are_refused_before_any_request() -> None:
    with pytest.raises(InvalidParameter, match="an http:// or https:// URL"):
        PrometheusAPI("prometheus:9090")
    with pytest.raises(InvalidParameter, match="one label selector"):
        parse_selector('job="cadvisor"')
    with fake_prometheus(lambda p, q: (200, _empty(), 0)) as fake:
        with pytest.raises(InvalidParameter, match="since_s"):
            read_prometheus(_api(fake.url), since_s=0, now=NOW)
        with pytest.raises(InvalidParameter, match="group_by"):
            read_prometheus(_api(fake.url), since_s=60, group_by=("owner",), now=NOW)
    assert fake.requests == []


def test_credentials_and_the_selector_reach_the_server(tmp_path: Path) -> None:
    seen: list[dict[str, str]] = []

    with fake_prometheus(lambda p, q: (seen.append(q) or 200, _empty(), 0)) as fake:
        read_prometheus(_api(fake.url, bearer_token="s3cret"), since_s=600, step_s=10,
                        selector='{job="cadvisor", instance=~"web-.*"}', now=NOW)
    assert all('{image!="", job="cadvisor", instance=~"web-.*"}' in (q.get("query")
               or q["match[]"]) for q in seen)
    assert {q["timeout"] for q in seen} == {"30s"}


# -- long ranges --------------------------------------------------------------------------------


def _probe_answer(n_series: int, scrape_s: float = 30.0):
    """Answers: ``n_series`` CPU series in the index, raw samples ``scrape_s`` apart in the
    probe of the last 5 minutes (``[300s]``), and nothing in the data windows."""

    def answer(path: str, q: dict[str, str]) -> tuple[int, Any, float]:
        if path.endswith("/series"):
            return 200, {"status": "success", "data": [
                {"__name__": "container_cpu_usage_seconds_total", "id": f"/docker/{i}"}
                for i in range(n_series)]}, 0
        if q.get("query", "").endswith("[300s]"):
            end = float(q["time"])
            return 200, matrix([({"id": "/docker/0", "image": "x"},
                                 [(end - scrape_s * k, k) for k in range(10, 0, -1)])]), 0
        return 200, _empty(), 0

    return answer


def _windows_read(fake: Any) -> list[tuple[float, float]]:
    """(start, end) of each raw read ``metric{...}[<n>ms]`` at ``time``, once per window."""
    out = set()
    for path, q in fake.requests:
        match = re.search(r"\[(\d+)ms\]$", q.get("query", ""))
        if path.endswith("/query") and match:
            end = float(q["time"])
            out.add((round(end - int(match[1]) / 1000, 3), end))
    return sorted(out)


def test_a_week_at_30s_is_read_raw_in_windows_under_the_points_limit() -> None:
    with fake_prometheus(_probe_answer(1)) as fake:
        read_prometheus(_api(fake.url), since_s=7 * 86400, now=NOW, selector='{job="x"}')
    windows = _windows_read(fake)
    # raw samples, never resampled: no query_range, no timestamp()
    assert not any(p.endswith("query_range") for p, q in fake.requests)
    assert not any("timestamp(" in q.get("query", "") for p, q in fake.requests)
    scrapes = [(hi - lo) / 30 for lo, hi in windows]
    assert len(windows) == 2 and max(scrapes) <= MAX_POINTS_PER_SERIES  # 20,160 scrapes
    assert windows[0][0] == NOW.timestamp() - 7 * 86400 and windows[-1][1] == NOW.timestamp()
    assert all(a[1] == b[0] for a, b in itertools.pairwise(windows))  # contiguous


# -- awkward series ------------------------------------------------------------------------------


def _scrape_times(end: float) -> np.ndarray:
    times = end - SCRAPE_S * np.arange(N_SCRAPES)[::-1]
    return np.delete(times, list(STALE))


def _cpu_total(k: np.ndarray) -> np.ndarray:
    seconds = k * SCRAPE_S * CPU_CORES
    return np.where(k < RESET_AT, 1000.0 + seconds, seconds - RESET_AT * SCRAPE_S * CPU_CORES)


def _synthetic(path: str, q: dict[str, str], end_s: float = NOW.timestamp()
               ) -> tuple[int, Any, float]:
    """One container served by two scrapers (instance a and b), scraped every 10 s until
    ``end_s``, with a restart and a stale stretch; raw samples of a range selector
    ``metric{...}[<n>ms]`` at ``time``, both ends of the window included (Prometheus 2)."""
    query = q.get("query", "")
    match = re.search(r"\[(\d+)(ms|s)\]$", query)
    if not path.endswith("/query") or match is None:
        return 200, _empty(), 0
    hi = float(q["time"])
    lo = hi - int(match[1]) / (1000 if match[2] == "ms" else 1)
    scrapes = _scrape_times(end_s)
    first = end_s - SCRAPE_S * (N_SCRAPES - 1)
    inside = scrapes[(scrapes >= lo) & (scrapes <= hi)]
    k = np.round((inside - first) / SCRAPE_S)
    if query.startswith("container_cpu_usage_seconds_total"):
        values = _cpu_total(k)
    elif query.startswith("container_memory_working_set_bytes"):
        values = np.full(len(k), float(MEMORY_BYTES))
    else:
        return 200, _empty(), 0
    series = []
    for instance in ("a:8080", "b:8080"):
        labels = {"id": "/docker/" + "c" * 64, "name": "web-1", "image": "shop/web:3",
                  "instance": instance, "job": "cadvisor",
                  "container_label_com_docker_compose_project": "shop",
                  "container_label_com_docker_compose_service": "web"}
        if len(inside):
            series.append((labels, list(zip(inside.tolist(), values.tolist(), strict=True))))
    return 200, matrix(series), 0


def test_resets_staleness_and_two_scrapers_never_make_a_spike() -> None:
    with fake_prometheus(_synthetic) as fake:
        # a step of half the scrape interval keeps every scrape, once
        data = load_prometheus(_api(fake.url), since_s=SCRAPE_S * N_SCRAPES, step_s=5,
                               now=NOW)
    samples = data.samples
    assert list(samples["service"].unique()) == ["shop/web"]
    assert samples["container_id"].nunique() == 1
    # every interval is one real scrape interval, and the rate is the true one: no zero
    # (a sample read twice at a window edge) and no spike (the reset, the stale gap, the
    # second scraper)
    assert samples["interval_s"].max() == pytest.approx(SCRAPE_S)
    assert samples[CPU].min() == pytest.approx(CPU_CORES)
    assert samples[CPU].max() == pytest.approx(CPU_CORES)
    assert (samples[MEMORY] == MEMORY_BYTES).all()
    # scrapes: 80 - 6 stale = 74; intervals: 73 - the reset - the gap after the stale stretch
    assert len(samples) == N_SCRAPES - len(STALE) - 1 - 2
    warnings = data.warnings["shop/web"]
    assert any(w.startswith("1 counter reset(s)") for w in warnings), warnings
    assert any(w.startswith("1 gap(s)") for w in warnings), warnings
    assert any(w.startswith("1 duplicate series") for w in warnings), warnings
    # and they reach the profile
    profile = fit_profiles(data)["shop/web"]
    assert set(warnings) <= set(profile.warnings)


def test_grouping_rules() -> None:
    kube = {"namespace": "prod", "pod": "api-5f7c9d8b7c-q8z2m", "container": "api",
            "image": "registry/api:2", "name": "k8s_api_api-5f7c9d8b7c-q8z2m_prod_1"}
    assert service_from_labels(kube, ("compose", "pod-owner", "image")) == "prod/api"
    assert service_from_labels({**kube, "pod": "db-2"}, ("pod-owner",)) == "prod/db"
    assert service_from_labels(kube, ("image",)) == "registry/api:2"
    assert service_from_labels(kube, ("label:namespace",)) == "prod"
    assert service_from_labels(kube, ("name",)) == "api-5f7c9d8b7c-q8z2m/api"
    docker = {"name": "web-1", "image": "web:1",
              "container_label_com_docker_compose_service": "web"}
    assert service_from_labels(docker, ("compose", "image")) == "web"
    assert service_from_labels({"name": "x", "image": "i"}, ("compose", "name")) == "x"


def test_report_reads_prometheus_through_the_same_pipeline(tmp_path: Path, capsys) -> None:
    end_s = time.time()
    with fake_prometheus(lambda p, q: _synthetic(p, q, end_s)) as fake:
        code = main(["report", "--prometheus", fake.url, "--since", "15m", "--step", "10s",
                     "--machine", "cpus=4,memory=8GiB", "--out", str(tmp_path), "--json"])
    out, err = capsys.readouterr()
    assert code in (0, 1, 2), err
    plan = json.loads(out)
    assert "shop/web" in json.dumps(plan)


def test_many_series_are_read_in_smaller_windows_so_an_answer_stays_bounded() -> None:
    from capacity.sources._prometheus import MAX_POINTS_PER_REQUEST

    n_series = 200
    with fake_prometheus(_probe_answer(n_series)) as fake:
        read_prometheus(_api(fake.url), since_s=7 * 86400, now=NOW)
    windows = _windows_read(fake)
    scrapes = [(hi - lo) / 30 for lo, hi in windows]  # the interval measured: 30 s
    assert max(scrapes) * n_series <= MAX_POINTS_PER_REQUEST
    assert windows[0][0] == NOW.timestamp() - 7 * 86400 and windows[-1][1] == NOW.timestamp()
    assert sum(scrapes) == 7 * 86400 / 30  # still the whole range, once


def test_the_fast_matrix_parser_agrees_with_json_and_steps_aside_when_unsure() -> None:
    from capacity.sources._prometheus import _fast_matrix

    body = {"status": "success", "data": {"resultType": "matrix", "result": [
        {"metric": {"__name__": "x", "id": "/docker/a]]\"b", "image": "i"},
         "values": [[1700000000, "1.5"], [1700000015.25, "NaN"], [1700000030, "+Inf"],
                    [1700000045, "-2e+06"]]},
        {"metric": {"id": "/e"}, "values": []},
    ]}}
    compact = json.dumps(body, separators=(",", ":"))  # as Prometheus writes it
    parsed = _fast_matrix(compact)
    assert parsed is not None and [p[0] for p in parsed] == [
        {"__name__": "x", "id": "/docker/a]]\"b", "image": "i"}, {"id": "/e"}]
    assert parsed[0][1].tolist() == [1700000000, 1700000015.25, 1700000030, 1700000045]
    values = parsed[0][2]
    assert values[0] == 1.5 and np.isnan(values[1]) and values[2] == np.inf
    assert values[3] == -2e6 and len(parsed[1][1]) == 0
    # anything it does not know goes to json and its checks
    assert _fast_matrix(json.dumps(body)) is None  # spaces
    assert _fast_matrix(compact[:-3] + ',"warnings":["w"]}') is None
    assert _fast_matrix(compact.replace('"values"', '"histograms"')) is None
    assert _fast_matrix(compact[:-10]) is None  # cut short


@pytest.mark.parametrize("url, timeout_s", [
    ("http://[::1", 30.0),              # was: unexpected InvalidURL, mid-run
    ("http://127.0.0.1:99999", 30.0),   # a port out of range
    ("http://127.0.0.1:x", 30.0),
    ("http://127.0.0.1:1", 1e308),      # was: unexpected OverflowError (time_t)
])
def test_a_bad_url_or_timeout_is_refused_up_front(url: str, timeout_s: float) -> None:
    from capacity.sources._prometheus import PrometheusAPI

    with pytest.raises(InvalidParameter, match=r"'(url|timeout_s)' parameter of PrometheusAPI"):
        PrometheusAPI(url, timeout_s=timeout_s)


def test_a_since_of_centuries_is_refused_not_read_for_hours() -> None:
    """Before: --since 100000d against an empty server made 52,000 range queries a metric
    (killed at 60 s), and --since 1e308 looped on windows without end."""
    import httpx

    from capacity.sources._prometheus import MAX_WINDOWS, PrometheusAPI, read_prometheus

    def empty(request: httpx.Request) -> httpx.Response:
        data: object = ([] if request.url.path.endswith("/series")
                        else {"resultType": "matrix", "result": []})
        return httpx.Response(200, json={"status": "success", "data": data})

    api = PrometheusAPI("http://127.0.0.1:9", transport=httpx.MockTransport(empty))
    for since_s in (100_000 * 86_400.0, 1e308):
        with pytest.raises(InvalidParameter, match=f"at most {MAX_WINDOWS:,} queries"):
            read_prometheus(api, since_s=since_s)
    assert api.requests_made <= 4, "refused before the range is read"
