"""Recovery: profiles of samples drawn from known distributions at n = 10,000.

Tolerances are about three standard errors of the estimate at this n (seeded, so the tests are
deterministic; the margins say how far a correct estimator may be from the truth by chance).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import optimize, stats

from capacity.model import ProfileModel

N = 10_000
#: relative error allowed on empirical p50..p95 (~3 SE of a sample quantile at n = 10,000)
EMPIRICAL_REL_TOL = 0.03
#: relative error allowed on the empirical p99 (its SE is ~2 % for these shapes)
EMPIRICAL_P99_REL_TOL = 0.06
#: relative error allowed on a fitted shape parameter (SE ~0.7 % for s, ~1.3 % for a)
SHAPE_REL_TOL = 0.05
#: relative error allowed on the fitted family's p99 against the true p99
FITTED_P99_REL_TOL = 0.03
#: relative error of a quantile read from the decaying-weight histogram (bins ~3.5 % wide)
HISTOGRAM_REL_TOL = 0.05
LEVELS = {"p50": 0.5, "p90": 0.9, "p95": 0.95, "p99": 0.99}


def _profile(make_samples, values, **params):
    samples = make_samples({"c1": {"cpu_cores": values}})
    model = ProfileModel(min_span_s=0, **params).fit(samples)
    return model.profiles_["svc"].resources["cpu_cores"]


def _check_empirical(rp, truth) -> None:
    for name, q in LEVELS.items():
        tol = EMPIRICAL_P99_REL_TOL if name == "p99" else EMPIRICAL_REL_TOL
        assert rp.quantiles[name] == pytest.approx(truth.ppf(q), rel=tol), name
    assert rp.quantile(0.99) == pytest.approx(truth.ppf(0.99), rel=HISTOGRAM_REL_TOL)


def test_lognormal_recovered(make_samples) -> None:
    truth = stats.lognorm(0.5, scale=np.exp(-1.0))
    rp = _profile(make_samples, truth.rvs(N, random_state=np.random.default_rng(1)))
    assert rp.fit.family == "lognormal", rp.fit
    assert rp.fit.params["s"] == pytest.approx(0.5, rel=SHAPE_REL_TOL)
    assert rp.fit.quantile(0.99) == pytest.approx(truth.ppf(0.99), rel=FITTED_P99_REL_TOL)
    assert rp.fit.tail_statistic <= rp.fit.tail_threshold
    _check_empirical(rp, truth)
    # iid samples: no memory from one sample to the next
    assert abs(rp.burst.lag1_autocorrelation) < 4 / np.sqrt(N)


def test_gamma_recovered(make_samples) -> None:
    truth = stats.gamma(3.0, scale=0.1)
    rp = _profile(make_samples, truth.rvs(N, random_state=np.random.default_rng(2)))
    assert rp.fit.family == "gamma", rp.fit
    assert rp.fit.params["a"] == pytest.approx(3.0, rel=SHAPE_REL_TOL)
    assert rp.fit.quantile(0.99) == pytest.approx(truth.ppf(0.99), rel=FITTED_P99_REL_TOL)
    _check_empirical(rp, truth)


class _OnOff:
    """Two levels: off N(0.1, 0.02) 80 % of the time, on N(1.0, 0.05) 20 %."""

    on_share = 0.2
    off = stats.norm(0.1, 0.02)
    on = stats.norm(1.0, 0.05)

    def cdf(self, x: float) -> float:
        return (1 - self.on_share) * self.off.cdf(x) + self.on_share * self.on.cdf(x)

    def ppf(self, q: float) -> float:
        return optimize.brentq(lambda x: self.cdf(x) - q, -1.0, 3.0, xtol=1e-12)


def test_on_off_burst_has_no_parametric_fit(make_samples) -> None:
    rng = np.random.default_rng(3)
    truth = _OnOff()
    # 20 samples on in every 100 (100 s on, 400 s off at 5 s intervals)
    on = (np.arange(N) % 100) < 20
    values = np.where(on, truth.on.rvs(N, random_state=rng), truth.off.rvs(N, random_state=rng))
    rp = _profile(make_samples, values)
    assert rp.fit.family == "none", rp.fit
    assert "no family fits the tail" in rp.fit.reason
    _check_empirical(rp, truth)
    assert rp.idle_baseline == pytest.approx(truth.ppf(0.05), rel=EMPIRICAL_REL_TOL)
    # the level switch makes consecutive samples strongly related
    assert rp.burst.lag1_autocorrelation > 0.9
    # 100 s bursts every 500 s are faster than the 5 min window: mostly fast variance
    assert rp.slow_var + rp.fast_var == pytest.approx(rp.var, rel=1e-3)
    assert rp.slow_var < 0.25 * rp.var


def test_square_wave_runs_are_the_on_periods(make_samples) -> None:
    """On for 60 s in every 300 s, exactly: every run above the p90 is one on period."""
    values = np.where((np.arange(1200) % 60) < 12, 1.0, 0.1)
    rp = _profile(make_samples, values)
    assert rp.p90 == 1.0
    assert rp.burst.n_runs == 20
    assert rp.burst.mean_run_s == pytest.approx(60.0)
    assert rp.burst.p90_run_s == pytest.approx(60.0)
