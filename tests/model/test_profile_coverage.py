"""Coverage: the p99 confidence interval covers the true p99 at about its nominal rate.

Each simulation is one service in one fit (many services in one samples table), so hundreds
of simulations cost one vectorised fit.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from capacity.model import ProfileModel

N_SIMULATIONS = 300
N_SAMPLES = 2_000
NOMINAL = 0.95
#: the order-statistic interval is exact-or-conservative: coverage in [nominal - 3 SE, 0.99],
#: SE = sqrt(0.95 * 0.05 / 300) = 0.013
COVERAGE_LOW = NOMINAL - 3 * np.sqrt(NOMINAL * (1 - NOMINAL) / N_SIMULATIONS)
COVERAGE_HIGH = 0.99


def _simulations(values: np.ndarray) -> pd.DataFrame:
    """One service per row of ``values`` (one container each, 5 s apart)."""
    n_sim, n = values.shape
    return pd.DataFrame(
        {
            "time": np.tile(
                pd.Timestamp("2026-01-01", tz="UTC") + pd.to_timedelta(np.arange(n) * 5, "s"),
                n_sim,
            ),
            "service": np.repeat([f"s{i:04d}" for i in range(n_sim)], n),
            "container_id": np.repeat([f"c{i:04d}" for i in range(n_sim)], n),
            "interval_s": 5.0,
            "cpu_cores": values.ravel(),
        }
    )


def _coverage(values: np.ndarray, true_p99: float) -> float:
    model = ProfileModel(families=(), min_span_s=0).fit(_simulations(values))
    hits = []
    for sp in model.profiles_.services.values():
        lo, hi = sp.resources["cpu_cores"].quantile_ci["p99"]
        hits.append(lo <= true_p99 and (hi is None or true_p99 <= hi))
    return float(np.mean(hits))


def test_p99_interval_covers_at_nominal_rate_iid() -> None:
    truth = stats.lognorm(0.5, scale=0.3)
    rng = np.random.default_rng(11)
    values = truth.rvs((N_SIMULATIONS, N_SAMPLES), random_state=rng)
    coverage = _coverage(values, truth.ppf(0.99))
    assert COVERAGE_LOW <= coverage <= COVERAGE_HIGH, coverage


def test_p99_interval_stays_honest_for_correlated_samples() -> None:
    """AR(1) samples (r = 0.8): the interval widens by the effective sample size.

    A plain order-statistic interval on n correlated samples would be too narrow; shrinking
    n to n (1 - r) / (1 + r) keeps coverage at or above nominal (it is conservative in the
    tail, where exceedances are less correlated than the values)."""
    r, n = 0.8, N_SAMPLES
    rng = np.random.default_rng(12)
    noise = rng.normal(size=(N_SIMULATIONS, n)) * np.sqrt(1 - r**2)
    x = np.empty_like(noise)
    x[:, 0] = rng.normal(size=N_SIMULATIONS)
    for i in range(1, n):  # one step per time, vectorised over simulations
        x[:, i] = r * x[:, i - 1] + noise[:, i]
    values = np.exp(0.5 * x) * 0.3  # lognormal marginals, as in the iid test
    coverage = _coverage(values, stats.lognorm(0.5, scale=0.3).ppf(0.99))
    assert COVERAGE_LOW <= coverage <= COVERAGE_HIGH, coverage
