"""A machine's structural count in use (PIDs, open files, addresses) below what the replicas
said to run take: a machine file measured when fewer ran. The replicas take their slots all
the same, so a single-service plan takes the larger reading, as a mix does, and says so.

Before: with 10 PIDs counted in use and 30 + 40 replicas of two services running (one PID
each) on a 100-PID host, the plan of ``a`` gave 100 (70 more) where the mix gave 30 more.
"""

from __future__ import annotations

import numpy as np

from capacity._columns import CPU, MEMORY
from capacity._pipeline import plan_all
from capacity.model import Profiles
from capacity.model._profile import ServiceProfile
from capacity.solver import Machine, more_of
from capacity.solver._testing import profiles_of, resource_profile, service_profile
from capacity.sources._limits import StructuralLimit

PIDS = "pids_count"


def _profiles() -> Profiles:
    def svc(name: str) -> ServiceProfile:
        return service_profile(name, {r: resource_profile(r, np.full(200, v))
                                      for r, v in ((CPU, 0.001), (MEMORY, 2.0**20))})
    return profiles_of(svc("a"), svc("b"))


def _machine(used: float) -> Machine:
    pids = StructuralLimit(PIDS, capacity=100.0, used=used, per_replica=1.0)
    return Machine("m", {CPU: 64.0, MEMORY: 64 * 2.0**30}, limits=(pids,))


def test_a_plan_takes_the_larger_reading_of_the_count_in_use_as_the_mix_does() -> None:
    profiles = _profiles()
    running = {"a": 30, "b": 40}
    stale = _machine(used=10.0)  # the 70 running replicas alone take 70 PIDs
    plans = plan_all(profiles, stale, running=running, method="peak")
    a = plans["a"]
    rp = a.per_resource[PIDS]
    assert (a.safe_count, a.more, a.binding_resource) == (60, 30, PIDS)  # was 100, 70
    assert rp.occupied == 40.0  # b's replicas, not max(10 - 30, 0) = 0
    mix = more_of(profiles, stale, "a", running, method="peak")
    assert (mix.more, mix.binding_resource) == (a.more, PIDS)
    note = ("pids_count: the machine counts 10 in use, fewer than the 70 the running "
            "replicas take (a 30 x 1, b 40 x 1): planned with 70 in use, the larger")
    assert any(x.startswith(note) for x in a.assumptions), a.assumptions
    assert any(x.startswith(note) for x in mix.assumptions), mix.assumptions
    assert any("measure it again" in x for x in a.assumptions)
    # a count in use that holds the running replicas is read as it is, and not remarked
    fresh = plan_all(profiles, _machine(used=75.0), running=running, method="peak")["a"]
    assert (fresh.safe_count, fresh.more) == (55, 25)
    assert not any("the machine counts" in x for x in fresh.assumptions)
    assert more_of(profiles, _machine(used=75.0), "a", running, method="peak").more == 25
