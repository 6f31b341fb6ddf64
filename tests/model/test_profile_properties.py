"""Properties (hypothesis): scale equivariance, replica-order invariance, JSON round trip."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from _samples_builder import samples_table
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from capacity._columns import CPU, MEMORY
from capacity.model import ProfileModel, Profiles

#: float rounding allowed when every sample is multiplied by k
SCALE_REL_TOL = 1e-9

#: the smallest nonzero reading drawn: a CPU counter ticks in nanoseconds (1 ns over a 5 s
#: interval is 2e-10 cores), memory in bytes. Below ~1e-154 a value's square (in the std) is
#: subnormal and loses its digits: std of readings near 1e-160 cores did not scale by k
#: (a random draw, seed 107 of a local run), float arithmetic at a size no reading has.
MIN_READING = 1e-12


def _readings(top: float) -> st.SearchStrategy[float]:
    return st.one_of(st.just(0.0), st.floats(MIN_READING, top, allow_nan=False))


#: CPU cores of one reading: up to 100, so that times k (up to 1e3) stays within the 1e5 cores
#: a reading may have (capacity._columns.PLAUSIBLE_MAX; 1e7 cores was refused as no reading)
_values = arrays(np.float64, st.integers(2, 40), elements=_readings(1e2))


@st.composite
def _tables(draw: st.DrawFn) -> pd.DataFrame:
    n_replicas = draw(st.integers(1, 3))
    series = {}
    for i in range(n_replicas):
        cpu = draw(_values)
        # no subnormals or near (as CPU): 2.2e-313 bytes is no reading, and k * x loses its
        # digits
        mem = draw(arrays(np.float64, cpu.size, elements=_readings(1e9)))
        series[f"c{i}"] = {CPU: cpu, MEMORY: mem}
    return samples_table(series, service_of={"c0": "a", "c1": "b", "c2": "a"})


def _model() -> ProfileModel:
    return ProfileModel(families=("normal", "gamma"), min_span_s=0, n_bins=20)


_SETTINGS = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


def _close(a: float | None, b: float | None, scale: float = 0.0) -> bool:
    """Equal up to float rounding, relative to the value or to the data's ``scale``."""
    if a is None or b is None:
        return a is b
    return math.isclose(a, b, rel_tol=SCALE_REL_TOL, abs_tol=SCALE_REL_TOL * scale)


@_SETTINGS
@given(table=_tables(), k=st.floats(1e-3, 1e3))
def test_scaling_samples_scales_quantiles(table: pd.DataFrame, k: float) -> None:
    base = _model().fit(table).profiles_
    scaled_table = table.copy()
    scaled_table[[CPU, MEMORY]] *= k
    scaled = _model().fit(scaled_table).profiles_
    for name, sp in base.services.items():
        for r, rp in sp.resources.items():
            rs = scaled[name].resources[r]
            for q, value in rp.quantiles.items():
                assert _close(rs.quantiles[q], k * value), (r, q)
            for field in ("mean", "std", "idle_baseline", "demand"):
                assert _close(getattr(rs, field), k * getattr(rp, field), rs.max), (r, field)
            for q, (lo, hi) in rp.quantile_ci.items():
                lo_s, hi_s = rs.quantile_ci[q]
                assert _close(lo_s, k * lo)
                assert _close(hi_s, None if hi is None else k * hi)
            assert _close(rs.burst.threshold, k * rp.burst.threshold)
            assert rs.burst.n_runs == rp.burst.n_runs
            # scale-free statistics do not move
            assert rs.fit.family == rp.fit.family


def _comparable(p: Profiles) -> dict:
    d = p.to_dict()
    d.pop("created_at")
    return d


@_SETTINGS
@given(table=_tables(), seed=st.integers(0, 2**32 - 1))
def test_reordering_replicas_does_not_change_profile(table: pd.DataFrame, seed: int) -> None:
    base = _model().fit(table).profiles_
    rng = np.random.default_rng(seed)
    # shuffle the order of the replicas' blocks, and rows within the table
    blocks = [g for _, g in table.groupby("container_id", sort=False)]
    rng.shuffle(blocks)
    shuffled = pd.concat(blocks).sample(frac=1.0, random_state=rng)
    assert _comparable(_model().fit(shuffled).profiles_) == _comparable(base)


@_SETTINGS
@given(table=_tables())
def test_json_round_trip_gives_equal_profiles(table: pd.DataFrame) -> None:
    profiles = _model().fit(table).profiles_
    assert Profiles.from_json(profiles.to_json()) == profiles
    assert Profiles.from_dict(profiles.to_dict()) == profiles
