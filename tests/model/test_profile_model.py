"""ProfileModel on the bundled recording (against pandas) and on built series with known
structure: decaying histogram, slow/fast split, replica and service correlation, limits."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from capacity._columns import CPU, MEMORY, NET_RX
from capacity._pipeline import load_demo
from capacity.model import ProfileModel

#: float rounding between our vectorised sums and pandas' own
PANDAS_REL_TOL = 1e-9
#: error allowed on a variance or correlation estimated from a few thousand samples
STAT_ABS_TOL = 0.05


@pytest.fixture(scope="module")
def demo() -> tuple[pd.DataFrame, pd.DataFrame]:
    data = load_demo()
    return data.samples, data.containers


def test_demo_profile_matches_pandas(demo) -> None:
    samples, _ = demo
    profiles = ProfileModel().fit(samples).profiles_
    assert set(profiles.services) == set(samples["service"])
    for service, group in samples.groupby("service"):
        sp = profiles[service]
        assert sp.replicas_seen == group["container_id"].nunique()
        assert sp.n_samples == len(group)
        span = (group["time"].max() - group["time"].min()).total_seconds()
        assert sp.span_s == pytest.approx(span, rel=PANDAS_REL_TOL)
        assert sp.interval_s == pytest.approx(group["interval_s"].median())
        for column, rp in sp.resources.items():
            values = group[column].dropna()
            assert rp.count == len(values)
            assert rp.mean == pytest.approx(values.mean(), rel=PANDAS_REL_TOL)
            assert rp.std == pytest.approx(values.std(), rel=PANDAS_REL_TOL, abs=1e-12)
            for name, q in {"p50": 0.5, "p90": 0.9, "p95": 0.95, "p99": 0.99}.items():
                assert rp.quantiles[name] == pytest.approx(values.quantile(q), rel=PANDAS_REL_TOL)
            assert rp.max == values.max()
            assert rp.idle_baseline == pytest.approx(values.quantile(0.05), rel=PANDAS_REL_TOL)
            means = values.groupby(group.loc[values.index, "container_id"]).mean()
            if len(means) > 1 and means.mean() > 0:
                expected = means.std() / means.mean()
                assert rp.replica_spread == pytest.approx(expected, rel=1e-9, abs=1e-12)
            assert rp.slow_var + rp.fast_var == pytest.approx(values.var(ddof=0), rel=1e-6)
        # correlation between resources: pandas on the same rows
        expected = group[list(sp.resources)].corr()
        for a in sp.resources:
            for b in sp.resources:
                got = profiles.correlation.resources(service, a, b)
                if np.isnan(expected.loc[a, b]):
                    assert got is None
                else:
                    assert got == pytest.approx(expected.loc[a, b], abs=1e-9)


def test_demo_limits_come_from_the_containers_table(demo) -> None:
    samples, containers = demo
    profiles = ProfileModel().fit(samples, containers=containers).profiles_
    burner = profiles["demo/cpu-burner"]
    assert burner.cpu_limit_cores == pytest.approx(0.3)
    assert burner.resources[CPU].max <= 0.3  # CPU above a limit is impossible: clipped
    assert any("throttled" in w for w in burner.warnings)
    assert profiles["demo/idle"].cpu_limit_cores is None


def test_limits_from_samples_columns_clip_and_are_kept(make_samples) -> None:
    samples = make_samples({"c1": {CPU: [0.1, 0.5, 0.52], MEMORY: [10.0, 20.0, 40.0]}})
    samples["cpu_limit_cores"] = 0.5
    samples["memory_limit_bytes"] = 32.0
    sp = ProfileModel().fit(samples).profiles_["svc"]
    assert (sp.cpu_limit_cores, sp.memory_limit_bytes) == (0.5, 32)
    assert sp.resources[CPU].max == 0.5
    assert sp.resources[MEMORY].max == 32.0
    assert any("clipped" in note for note in sp.notes)


def test_confidence_is_low_for_short_or_thin_data(make_samples) -> None:
    samples = make_samples({"c1": {CPU: np.ones(50)}})
    sp = ProfileModel(min_samples=100, min_span_s=3600).fit(samples).profiles_["svc"]
    assert sp.confidence == "low"
    assert any("min_samples=100" in w for w in sp.warnings)
    assert any("min_span_s=3600" in w for w in sp.warnings)
    ok = ProfileModel(min_samples=10, min_span_s=60).fit(samples).profiles_["svc"]
    assert (ok.confidence, ok.warnings) == ("ok", ())


def test_histogram_weights_recent_samples_more(make_samples) -> None:
    # one day at level 1.0, then one day at 2.0, one sample a minute; half-life 1 h
    values = np.r_[np.full(1440, 1.0), np.full(1440, 2.0)]
    rp = ProfileModel(half_life_s=3600).fit(make_samples({"c1": {CPU: values}}, interval_s=60))
    rp = rp.profiles_["svc"].resources[CPU]
    assert rp.p50 == pytest.approx(1.5)  # unweighted: half and half
    assert rp.quantile(0.1) == pytest.approx(2.0, rel=0.01)  # weighted: the old day ~ 0
    assert sum(rp.histogram_weights) == pytest.approx(1.0)
    assert len(rp.histogram_edges) == len(rp.histogram_weights) + 1


def test_slow_and_fast_variance_of_sine_plus_noise(make_samples) -> None:
    # a 2 h sine (amplitude 1: variance 1/2) plus white noise of variance 0.09, 5 s samples
    rng = np.random.default_rng(7)
    t = np.arange(8640) * 5.0
    values = 2 + np.sin(2 * np.pi * t / 7200) + rng.normal(0, 0.3, t.size)
    rp = ProfileModel().fit(make_samples({"c1": {CPU: values}})).profiles_["svc"]
    rp = rp.resources[CPU]
    assert rp.slow_var == pytest.approx(0.5, abs=STAT_ABS_TOL)
    assert rp.fast_var == pytest.approx(0.09, abs=STAT_ABS_TOL)
    assert len(rp.trace) <= 2000
    assert rp.trace_interval_s * len(rp.trace) == pytest.approx(t[-1], rel=0.01)


def test_replica_and_service_correlation(make_samples) -> None:
    # three replicas of "web" share a common signal (variance 1) plus own noise (variance 1):
    # pairwise correlation 1/2. "batch" follows the same signal, "other" is independent.
    rng = np.random.default_rng(8)
    n = 3996  # 333 minutes of 12 samples
    common = np.repeat(rng.normal(size=n // 12), 12)  # changes every minute
    series = {f"w{i}": {CPU: 8 + common + rng.normal(size=n)} for i in range(3)}
    series["b"] = {CPU: 8 + common + 0.1 * rng.normal(size=n)}
    series["o"] = {CPU: 8 + rng.normal(size=n)}
    service_of = {"w0": "web", "w1": "web", "w2": "web", "b": "batch", "o": "other"}
    profiles = ProfileModel().fit(make_samples(series, service_of=service_of)).profiles_
    web = profiles["web"].resources[CPU]
    assert web.replica_correlation == pytest.approx(0.5, abs=STAT_ABS_TOL)
    assert web.replica_spread < 0.01
    assert profiles["batch"].resources[CPU].replica_correlation is None  # one replica
    corr = profiles.correlation
    assert corr.services(CPU, "web", "batch") > 0.9  # one-minute means: the noise averages out
    assert abs(corr.services(CPU, "web", "other")) < 0.15
    assert corr.services(CPU, "web", "web") == 1.0
    assert corr.services(NET_RX, "web", "batch") is None


def test_fitted_profiles_survive_json_file(tmp_path, demo) -> None:
    from capacity.model import Profiles

    profiles = ProfileModel().fit(demo[0], containers=demo[1]).profiles_
    path = tmp_path / "profiles.json"
    profiles.to_json(path)
    assert Profiles.from_json(path) == profiles


def test_replicas_started_at_different_times(make_samples) -> None:
    # "a" (first in sorted order) starts an hour after "b": bins and trace use the earliest
    late = make_samples({"a": {CPU: np.full(720, 2.0)}}, start=pd.Timestamp("2026-01-01T01:00Z"))
    early = make_samples({"b": {CPU: np.full(1440, 1.0)}})
    rp = ProfileModel().fit(pd.concat([late, early])).profiles_["svc"].resources[CPU]
    assert rp.trace_interval_s * len(rp.trace) == pytest.approx(7200, rel=0.01)
    assert rp.trace[0] == pytest.approx(1.0)  # only "b" in the first hour
    assert rp.trace[-1] == pytest.approx(1.5)  # both in the second
    assert rp.replica_spread == pytest.approx(np.std([1.0, 2.0], ddof=1) / 1.5)


@pytest.mark.parametrize(
    ("family", "params"),
    [
        ("normal", {"loc": 1.0, "scale": 0.3}),
        ("lognormal", {"s": 0.7, "scale": 2.0}),
        ("gamma", {"a": 2.5, "scale": 0.4}),
        ("weibull", {"c": 1.7, "scale": 3.0}),
    ],
)
def test_closed_form_densities_match_scipy(family, params) -> None:
    from capacity.model import FitResult
    from capacity.model._fit import _family_funcs

    x = np.linspace(0.05, 6.0, 50)
    logpdf, cdf = _family_funcs(family, params)
    dist = FitResult(family=family, params=params).distribution()
    np.testing.assert_allclose(logpdf(x), dist.logpdf(x), rtol=1e-10)
    np.testing.assert_allclose(cdf(x), dist.cdf(x), rtol=1e-10, atol=1e-15)


def test_histogram_quantile_edges(make_samples) -> None:
    from capacity import InvalidParameter

    rp = ProfileModel().fit(make_samples({"c1": {CPU: np.linspace(0.0, 1.0, 101)}}))
    rp = rp.profiles_["svc"].resources[CPU]
    assert rp.quantile(0.0) == 0.0
    assert rp.quantile(1.0) == pytest.approx(1.0)
    assert rp.quantile(0.5) == pytest.approx(0.5, rel=0.05)
    with pytest.raises(InvalidParameter, match="'q' parameter"):
        rp.quantile(1.5)
    zeros = ProfileModel().fit(make_samples({"c1": {CPU: np.zeros(10)}}))
    assert zeros.profiles_["svc"].resources[CPU].quantile(0.99) == 0.0
