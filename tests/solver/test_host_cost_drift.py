"""The host cost per container does not drift: a plan for a period ahead scales one
replica's own demand (what its cgroup uses) by the demand factor (drift, the x1.10
allowance for a short history, a sampling widening) and adds the host cost (shim, kernel
memory outside the cgroup) unscaled, as DESIGN.md and ``demand_factor`` say. Plans, mixes,
``size`` and the report's figures agree on it.

Before: ``(c + h) x 1.1``: 1 MiB replicas with a 3 MiB host cost on 1 GiB gave 232
(1024 / 4.4) where ``1 x 1.1 + 3`` gives 249.
"""

from __future__ import annotations

import math

import pytest
from scipy import stats

from capacity._columns import MEMORY
from capacity.reporting._status import resource_in_use
from capacity.solver import Machine, plan, ratio, size_fleet
from capacity.solver._testing import constant_profiles, normal_profiles

MIB = 2**20
#: the stated allowance a history under one day takes (the synthetic profiles span 200 s)
ALLOWANCE = 1.1
METHODS = ("peak", "quantile", "gaussian", "empirical")


@pytest.mark.parametrize("method", METHODS)
def test_the_allowance_scales_the_replica_not_the_host_cost(method: str) -> None:
    profiles = constant_profiles({MEMORY: 1 * MIB})
    machine = Machine.from_spec("memory=1GiB,host_cost=3MiB")
    p = plan(profiles, machine, method=method, compare=False)
    rp = p.per_resource[MEMORY]
    expected = math.floor(1024 / (ALLOWANCE * 1 + 3))  # 249; was floor(1024 / 4.4) = 232
    assert rp.safe_count == expected
    assert rp.demand_per_replica == pytest.approx((ALLOWANCE + 3) * MIB)
    # the margin said is what the allowance took: 0.1 MiB of 4.1, not 1 - 1 / 1.1 = 9.1 %
    assert any("margin 2.4% of the usable capacity (the host cost per container, 75% of a "
               "replica's mean, does not drift)" in a for a in p.assumptions), p.assumptions
    # a mix of one service, and size, count the same way
    assert ratio(profiles, machine, {"svc": 1}, method=method).multiple == expected
    fleet = size_fleet(profiles, machine, {"svc": 2 * expected}, method=method)
    assert fleet.hosts_needed == 2  # 3 when the host cost drifted too
    assert size_fleet(profiles, machine, {"svc": 2 * expected + 1},
                      method=method).hosts_needed == 3
    # the report's "in use" (headroom) of 10 running replicas: 10 x (1.1 + 3) MiB
    running = plan(profiles, machine, method=method, compare=False, running=10)
    assert resource_in_use(running.per_resource[MEMORY], 10) == pytest.approx(41 * MIB)


def test_the_gaussian_count_drifts_the_mean_and_spread_only() -> None:
    mu, sd, host = 10 * MIB, 2 * MIB, 20 * MIB
    profiles = normal_profiles(1.0, 0.1, memory=(mu, sd))
    machine = Machine.from_spec("cpus=1000,memory=10GiB,host_cost=20MiB")
    p = plan(profiles, machine, method="gaussian", compare=False)
    rp = p.per_resource[MEMORY]
    z = float(stats.norm.isf(rp.epsilon))
    usable = 10 * 2**30

    def fits(n: int, f: float) -> bool:  # replicas independent (no slow part shared)
        return n * (f * mu + host) + z * f * sd * math.sqrt(n) <= usable

    expected = max(n for n in range(1, 2000) if fits(n, ALLOWANCE))
    assert rp.safe_count == expected
    before = max(n for n in range(1, 2000)  # (c + h) x 1.1: 20 fewer replicas
                 if ALLOWANCE * (n * (mu + host) + z * sd * math.sqrt(n)) <= usable)
    assert expected - before >= 10
    assert ratio(profiles, machine, {"svc": 1}, method="gaussian").multiple == expected
