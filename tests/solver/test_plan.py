"""Closed forms, correlation, risk fields, bad input and the JSON form of single-service plans."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest
from scipy import stats

from capacity._columns import CPU, MEMORY
from capacity._errors import InsufficientData, InvalidParameter, ProfileVersionError
from capacity._settings import DEFAULT_HORIZON_S
from capacity.solver import METHODS, PORT_CONFLICT, Machine, Plan
from capacity.solver import plan as _plan
from capacity.solver._testing import (
    constant_profiles,
    normal_profiles,
    profiles_of,
    resource_profile,
    service_profile,
)

#: the Monte Carlo safe count may miss the analytic one by this many replicas beyond its
#: stated interval (the interval is 95 %, and the trace is a finite sample)
MC_SLACK_REPLICAS = 1
#: relative tolerance of a probability computed two ways (gaussian vs simulation)
P_RTOL = 0.35


def plan(*args: Any, **kwargs: Any) -> Plan:
    """The solver's arithmetic on demand as recorded: these synthetic profiles span minutes,
    so by default the plan would take the stated x1.10 allowance for a daily cycle not seen
    (tests/solver/test_drift.py and tests/model/test_faulty_history_plan.py check it)."""
    kwargs.setdefault("valid_for_s", None)
    return _plan(*args, **kwargs)


@pytest.mark.parametrize("method", METHODS[1:])
@pytest.mark.parametrize(("capacity", "reserve", "u"), [(8, 0, 0.25), (8, 1.5, 0.3), (3, 0, 0.1)])
def test_constant_demand_gives_floor(
    method: str, capacity: float, reserve: float, u: float
) -> None:
    profiles = constant_profiles({CPU: u})
    machine = Machine.from_spec(f"cpus={capacity},reserve.cpus={reserve},cpu_saturation=1")
    p = plan(profiles, machine, method=method)
    assert p.safe_count == math.floor((capacity - reserve) / u + 1e-9)
    assert p.binding_resource == CPU
    rp = p.per_resource[CPU]
    assert rp.p_overload_at_safe_count == 0.0 and rp.p_overload_at_next == 1.0


def test_iid_normal_gives_the_analytic_count() -> None:
    mu, sd, capacity, eps = 1.0, 0.3, 40.0, 0.01
    profiles = normal_profiles(mu, sd)  # one replica, no slow component: replicas pool
    p = plan(
        profiles,
        Machine.from_spec(f"cpus={capacity},cpu_saturation=1"),
        epsilon=eps,
        method="gaussian",
    )
    z = stats.norm.isf(eps)
    analytic = max(n for n in range(1, 100) if n * mu + z * sd * math.sqrt(n) <= capacity)
    assert p.safe_count == analytic
    rp = p.per_resource[CPU]
    assert rp.p_overload_at_safe_count <= eps < rp.p_overload_at_next


def test_monte_carlo_agrees_with_analytic_within_its_interval() -> None:
    rng = np.random.default_rng(12345)
    mu, sd, capacity, eps = 1.0, 0.3, 40.0, 0.01
    profiles = normal_profiles(mu, sd)
    machine = Machine.from_spec(f"cpus={capacity},cpu_saturation=1")
    g = plan(profiles, machine, epsilon=eps, method="gaussian")
    e = plan(profiles, machine, epsilon=eps, method="empirical", rng=rng, n_draws=40_000)
    lo, hi = e.per_resource[CPU].safe_count_interval
    assert lo - MC_SLACK_REPLICAS <= g.safe_count <= hi + MC_SLACK_REPLICAS
    # the simulated risk at the analytic count matches the normal tail
    n = g.safe_count
    p_normal = stats.norm.sf((capacity - n * mu) / (sd * math.sqrt(n)))
    assert e.per_resource[CPU].risk_curve  # the curve exists; check one point directly
    p_sim = dict(e.per_resource[CPU].risk_curve).get(n)
    if p_sim is not None:
        assert p_sim == pytest.approx(p_normal, rel=P_RTOL)


def test_perfectly_correlated_replicas_give_the_quantile_count() -> None:
    eps = 0.01
    profiles = normal_profiles(1.0, 0.3, rho=1.0, replicas=3)
    machine = Machine.from_spec("cpus=37,cpu_saturation=1")
    q = plan(profiles, machine, epsilon=eps, method="quantile", quantile_level=1 - eps)
    g = plan(profiles, machine, epsilon=eps, method="gaussian")
    e = plan(profiles, machine, epsilon=eps, method="empirical", n_draws=40_000)
    assert (
        q.safe_count
        == g.safe_count
        == e.safe_count
        == math.floor(37 / (1.0 + 0.3 * stats.norm.isf(eps)))
    )


def test_independent_replicas_fit_more_than_correlated_ones() -> None:
    machine = Machine.from_spec("cpus=37,cpu_saturation=1")
    together = plan(normal_profiles(1.0, 0.3, rho=1.0, replicas=3), machine, method="gaussian")
    apart = plan(normal_profiles(1.0, 0.3, rho=0.0, replicas=3), machine, method="gaussian")
    offsets = plan(
        normal_profiles(1.0, 0.3, rho=1.0, replicas=3),
        machine,
        method="gaussian",
        independent_offsets=True,
    )
    assert apart.safe_count > together.safe_count
    assert offsets.safe_count == apart.safe_count
    assert any("opt-in" in a for a in offsets.assumptions)


def test_one_replica_shares_the_slow_component() -> None:
    # all variance slow: replicas move as one, like perfect correlation
    machine = Machine.from_spec("cpus=37,cpu_saturation=1")
    slow = plan(
        normal_profiles(1.0, 0.3, slow_var=0.09 * (1 - 1 / 20_000)), machine, method="gaussian"
    )
    fast = plan(normal_profiles(1.0, 0.3, slow_var=0.0), machine, method="gaussian")
    assert slow.safe_count < fast.safe_count
    assert any("slow component" in a for a in slow.assumptions)


def test_memory_is_stricter_and_capped_by_its_limit() -> None:
    profiles = normal_profiles(0.1, 0.01, memory=(1e9, 2e8))
    machine = Machine.from_spec("cpus=64,memory=40GB,cpu_saturation=1")
    p = plan(profiles, machine, epsilon=0.01, method="gaussian")
    mem = p.per_resource[MEMORY]
    assert mem.epsilon == pytest.approx(0.001) and p.per_resource[CPU].epsilon == 0.01
    z = stats.norm.isf(0.001)
    assert mem.safe_count == max(
        n for n in range(1, 60) if n * 1e9 + z * 2e8 * math.sqrt(n) <= 40e9 * (1 + 1e-9)
    )
    capped = profiles_of(
        service_profile("svc", profiles["svc"].resources, memory_limit_bytes=int(1.1e9))
    )
    assert (
        plan(capped, machine, method="gaussian").per_resource[MEMORY].safe_count >= mem.safe_count
    )


def test_occupied_and_running() -> None:
    profiles = constant_profiles({CPU: 0.5})
    p = plan(
        profiles,
        Machine.from_spec("cpus=8,cpu_saturation=1"),
        occupied={CPU: 2.0},
        running=5,
        method="gaussian",
    )
    assert p.safe_count == 12 and p.more == 7
    rp = p.per_resource[CPU]
    assert rp.utilisation_at_safe_count == pytest.approx(1.0)
    assert rp.expected_utilisation_at_safe_count == pytest.approx(1.0)


def test_fixed_port_is_the_binding_constraint() -> None:
    p = plan(
        constant_profiles({CPU: 0.5}),
        Machine.from_spec("cpus=8,cpu_saturation=1"),
        ports=(8080,),
        running=1,
    )
    assert (p.safe_count, p.binding_resource, p.more) == (1, PORT_CONFLICT, 0)
    assert p.methods["gaussian"]["binding_resource"] == PORT_CONFLICT


def test_unknown_capacity_and_thin_profiles_are_undefined_with_reason() -> None:
    m = Machine.local(psutil_module=None) if False else Machine.from_spec("memory=8GiB")
    p = plan(constant_profiles({CPU: 0.5, MEMORY: 1e9}), m, method="gaussian")
    assert p.per_resource[CPU].safe_count is None
    assert "capacity unknown" in p.per_resource[CPU].reason
    # CPU could bind: no count from memory alone (issue 11), the reason names CPU and the fix
    assert p.per_resource[MEMORY].safe_count is not None
    assert p.safe_count is None and p.binding_resource is None and p.more is None
    assert "cpu_cores unknown" in p.reason and "cpus=8" in p.reason
    thin = profiles_of(service_profile("svc", {CPU: resource_profile(CPU, [0.1, 0.2, 0.3])}))
    t = plan(thin, Machine.from_spec("cpus=8,cpu_saturation=1"), method="gaussian")
    assert t.safe_count is None and "too thin" in t.reason and t.more is None
    low = profiles_of(
        service_profile(
            "svc",
            constant_profiles({CPU: 0.5})["svc"].resources,
            confidence="low",
            warnings=("span of 60 s",),
        )
    )
    assert plan(low, Machine.from_spec("cpus=8,cpu_saturation=1")).safe_count == 16
    strict = plan(low, Machine.from_spec("cpus=8,cpu_saturation=1"), require_confidence=True)
    assert strict.safe_count is None and "span of 60 s" in strict.reason


def test_empirical_without_trace_falls_back_to_gaussian() -> None:
    x = np.full(100, 0.5)
    profiles = profiles_of(service_profile("svc", {CPU: resource_profile(CPU, x, trace=False)}))
    p = plan(profiles, Machine.from_spec("cpus=8,cpu_saturation=1"), method="empirical")
    assert p.safe_count == 16 and p.per_resource[CPU].method == "gaussian"
    assert any("gaussian used instead" in a for a in p.assumptions)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"epsilon": 0.0},
        {"epsilon": 0.5},
        {"epsilon": 0.7},
        {"epsilon": -1},
        {"method": "magic"},
        {"service": "nope"},
        {"incompressible_epsilon": 1.0},
        {"ports": (0,)},
        {"running": -1},
        {"horizon_s": -1.0},
    ],
)
def test_bad_parameters(kwargs: dict) -> None:
    with pytest.raises(InvalidParameter) as info:
        plan(constant_profiles({CPU: 0.5}), Machine.from_spec("cpus=8,cpu_saturation=1"), **kwargs)
    assert "got" in str(info.value)


@pytest.mark.parametrize("spec, key", [("cpus=0,memory=32GiB", "cpus"),
                                       ("cpus=8,memory=0", "memory"),
                                       ("cpus=8,net=0Gbit", "net")])
def test_a_capacity_of_zero_in_a_spec_names_itself(spec: str, key: str) -> None:
    """``cpus=0`` said "The 'reserve of cpu_cores' parameter of plan must be below the
    capacity 0 ...; got 0.0 instead.", a reserve the user never gave."""
    with pytest.raises(InvalidParameter) as info:
        Machine.from_spec(spec)
    text = str(info.value)
    assert f"The '{key}' parameter of machine spec must be > 0" in text
    assert "got '0" in text and "reserve" not in text


def test_a_capacity_of_zero_in_a_machine_names_the_capacity_not_the_reserve() -> None:
    machine = Machine(name="empty", capacity={CPU: 0.0})
    with pytest.raises(InvalidParameter, match=r"'capacity of cpu_cores' .* > 0 .*got 0.0"):
        plan(constant_profiles({CPU: 0.5}), machine)


def test_capacity_at_or_below_reserve_is_an_error() -> None:
    with pytest.raises(InvalidParameter, match=r"reserve of cpu_cores.*it is configured 2 "
                       r"\+ headroom 0 x capacity"):
        plan(
            constant_profiles({CPU: 0.5}),
            Machine.from_spec("cpus=2,reserve.cpus=2,cpu_saturation=1"),
        )


def test_a_service_without_samples_is_an_error() -> None:
    empty = profiles_of(service_profile("svc", {}))
    with pytest.raises(InsufficientData, match="no resource with samples"):
        plan(empty, Machine.from_spec("cpus=2,cpu_saturation=1"))


def test_horizon_risk_is_stricter_than_instant_risk() -> None:
    # a sawtooth: the maximum over a window is above a random instant
    t = np.arange(3000)
    x = 1e8 + 5e7 * ((t % 60) / 60.0)
    profiles = profiles_of(service_profile("svc", {MEMORY: resource_profile(MEMORY, x)}))
    machine = Machine.from_spec("memory=4GB")
    instant = plan(profiles, machine, method="empirical", n_draws=5000, horizon_s=0)
    horizon = plan(profiles, machine, method="empirical", n_draws=5000, horizon_s=120)
    assert horizon.safe_count <= instant.safe_count
    assert horizon.horizon_s == 120
    # 0 and None both plan at an instant; the default is the 5 min horizon
    none = plan(profiles, machine, method="empirical", n_draws=5000, horizon_s=None)
    assert none.safe_count == instant.safe_count
    default = plan(profiles, machine, method="empirical", n_draws=5000)
    assert default.horizon_s == DEFAULT_HORIZON_S == 300.0
    assert default.safe_count <= instant.safe_count
    assert any("over a 300 s horizon" in a for a in default.assumptions)


def test_json_round_trip_and_required_fields() -> None:
    p = plan(
        normal_profiles(1.0, 0.3),
        Machine.from_spec("cpus=20,cpu_saturation=1"),
        method="empirical",
        n_draws=5000,
    )
    d = json.loads(p.to_json())
    for key in (
        "schema_version",
        "safe_count",
        "binding_resource",
        "per_resource",
        "method",
        "epsilon",
        "more",
        "assumptions",
    ):
        assert key in d
    for key in (
        "safe_count",
        "capacity",
        "reserve",
        "demand_at_safe_count",
        "p_overload_at_safe_count",
        "p_overload_at_next",
        "risk_curve",
    ):
        assert key in d["per_resource"][CPU]
    assert Plan.from_dict(d) == p
    with pytest.raises(ProfileVersionError):
        Plan.from_dict({**d, "schema_version": 1})


def test_fixed_seed_is_reproducible() -> None:
    profiles = normal_profiles(1.0, 0.3)
    machine = Machine.from_spec("cpus=20,cpu_saturation=1")
    a = plan(profiles, machine, method="empirical", rng=np.random.default_rng(3), n_draws=5000)
    b = plan(profiles, machine, method="empirical", rng=np.random.default_rng(3), n_draws=5000)
    assert a == b


def test_plan_cli_and_report_count_others_the_same_way(tmp_path, capsys) -> None:
    """`capacity plan --running` and `capacity report` (plan_all) leave the same room for the
    other services and, with the same seed, give the same counts."""
    from capacity._pipeline import fit_profiles, load_demo, plan_all
    from capacity.cli import main

    profiles = fit_profiles(load_demo())
    path = tmp_path / "profiles.json"
    profiles.to_json(path)
    code = main(
        [
            "plan",
            "--profiles",
            str(path),
            "--machine",
            "cpus=4,memory=8GiB,cpu_saturation=1",
            "--running",
            "demo/cpu-burner=2",
            "--running",
            "demo/mem-holder=2",
            "--json",
        ]
    )
    assert code in (0, 2)
    cli = json.loads(capsys.readouterr().out)["plans"]
    running = {"demo/cpu-burner": 2, "demo/mem-holder": 2}
    api = plan_all(
        profiles, Machine.from_spec("cpus=4,memory=8GiB,cpu_saturation=1"), running=running
    )
    assert set(cli) == set(api)
    for service, p in api.items():
        assert cli[service]["safe_count"] == p.safe_count, service
        for r, rp in p.per_resource.items():
            assert cli[service]["per_resource"][r]["occupied"] == pytest.approx(rp.occupied)
