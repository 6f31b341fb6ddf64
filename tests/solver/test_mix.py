"""Mixes, fleets and Compose stacks; a mix never violates a resource constraint by simulation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from capacity._columns import CPU, MEMORY
from capacity._errors import InvalidParameter
from capacity.solver import (
    PORT_CONFLICT,
    Machine,
    MixModel,
    more_of,
    plan_stack,
    ratio,
    read_compose,
    size_fleet,
    weighted,
)
from capacity.solver._testing import (
    constant_profiles,
    profiles_of,
    resource_profile,
    service_profile,
)

#: a simulated P(overload) may exceed epsilon by this many standard errors (fresh draws)
SIM_SIGMAS = 3.0
CHECK_DRAWS = 100_000


@pytest.fixture(scope="module")
def mix_profiles():
    rng = np.random.default_rng(11)
    t = np.arange(4000)
    daily = 0.5 + 0.5 * np.sin(2 * np.pi * t / 1000)  # a shared slow swing
    web_cpu = 0.6 + 0.4 * daily + rng.gamma(2.0, 0.1, t.size)
    wrk_cpu = 0.2 + rng.exponential(0.3, t.size)  # bursty
    web_mem = 3e8 + 1e8 * daily + rng.normal(0, 1e7, t.size)
    wrk_mem = 6e8 + rng.gamma(2.0, 5e7, t.size)
    return profiles_of(
        service_profile("web", {CPU: resource_profile(CPU, web_cpu, window_s=200),
                                MEMORY: resource_profile(MEMORY, web_mem, window_s=200)}),
        service_profile("worker", {CPU: resource_profile(CPU, wrk_cpu, window_s=200),
                                   MEMORY: resource_profile(MEMORY, wrk_mem, window_s=200)}),
    )


MACHINE = Machine.from_spec("cpus=16,memory=16GiB,reserve.cpus=1,cpu_saturation=1")


def simulated_ok(profiles, counts) -> None:
    check = MixModel(profiles, MACHINE, list(counts), method="empirical",
                     n_draws=CHECK_DRAWS, rng=np.random.default_rng(99))
    for r in check.resources:
        p, _ = check.p_overload(r, counts)
        eps = check.eps[r]
        assert p <= eps + SIM_SIGMAS * np.sqrt(eps * (1 - eps) / CHECK_DRAWS), (r, counts, p)


@pytest.mark.parametrize("method", ["empirical", "quantile"])
def test_weighted_mix_never_violates_a_resource_by_simulation(mix_profiles, method) -> None:
    mix = weighted(mix_profiles, MACHINE, {"web": 2.0, "worker": 1.0}, method=method)
    assert sum(mix.counts.values()) > 0 and mix.binding_resource is not None
    simulated_ok(mix_profiles, mix.counts)
    assert all(c["ok"] for c in mix.check.values())


def test_gaussian_mix_check_flags_a_skewed_tail(mix_profiles) -> None:
    # the worker's exponential bursts have a heavier tail than a normal: the gaussian answer
    # fits more than the stated risk allows, and the simulation check says so
    mix = weighted(mix_profiles, MACHINE, {"web": 2.0, "worker": 1.0}, method="gaussian")
    empirical = weighted(mix_profiles, MACHINE, {"web": 2.0, "worker": 1.0})
    assert not mix.check[CPU]["ok"]
    assert sum(empirical.counts.values()) < sum(mix.counts.values())


def test_weighted_respects_minimum_and_ports(mix_profiles) -> None:
    mix = weighted(mix_profiles, MACHINE, {"web": 1.0, "worker": 1.0}, minimum={"worker": 3},
                   ports={"web": [8080]}, method="gaussian")
    assert mix.counts["worker"] >= 3 and mix.counts["web"] <= 1


@pytest.mark.parametrize("method", ["gaussian", "empirical"])
def test_more_of_and_ratio_fit_and_one_more_does_not(mix_profiles, method) -> None:
    model = MixModel(mix_profiles, MACHINE, ["web", "worker"], method=method)
    more = more_of(mix_profiles, MACHINE, "web", {"worker": 4}, method=method)
    assert more.counts["worker"] == 4 and more.more == more.counts["web"]
    assert model.fits(more.counts)[0]
    assert not model.fits({**more.counts, "web": more.counts["web"] + 1})[0]
    simulated_ok(mix_profiles, more.counts)
    r = ratio(mix_profiles, MACHINE, {"web": 3, "worker": 1}, method=method)
    k = r.multiple
    assert r.counts == {"web": 3 * k, "worker": k}
    assert not model.fits({"web": 3 * (k + 1), "worker": k + 1})[0]
    simulated_ok(mix_profiles, r.counts)


def test_fleet_n_plus_k() -> None:
    profiles = constant_profiles({CPU: 0.5})
    machine = Machine.from_spec("cpus=8,cpu_saturation=1")
    f = size_fleet(profiles, machine, {"svc": 120}, spare=1, method="gaussian")
    # the x1.10 allowance of a 200 s history, as a plan of it: 14 per host (15 as recorded)
    assert (f.hosts_needed, f.hosts, f.per_host) == (9, 10, {"svc": 14})
    recorded = size_fleet(profiles, machine, {"svc": 120}, spare=1, method="gaussian",
                          valid_for_s=None)
    assert (recorded.hosts_needed, recorded.hosts, recorded.per_host) == (8, 9, {"svc": 15})
    ported = size_fleet(profiles, machine, {"svc": 5}, ports={"svc": [80]}, method="gaussian")
    assert (ported.hosts_needed, ported.binding_resource) == (5, PORT_CONFLICT)
    with pytest.raises(InvalidParameter):
        size_fleet(profiles, machine, {"svc": 5}, spare=-1)


COMPOSE = """
name: shop
services:
  web:
    image: web
    deploy:
      replicas: 3
      resources:
        limits: {cpus: "1.5", memory: 512M}
        reservations: {cpus: "0.5", memory: 256M}
    ports: ["80"]
  worker:
    image: worker
    scale: 1
    cpus: 2
    mem_limit: 1g
  proxy:
    image: proxy
    ports: ["8080-8081:80", {target: 443, published: 8443}]
"""


def test_read_compose(tmp_path: Path) -> None:
    path = tmp_path / "docker-compose.yml"
    path.write_text(COMPOSE)
    stack = read_compose(path)
    web, worker, proxy = (stack.services[n] for n in ("web", "worker", "proxy"))
    assert (web.replicas, web.cpu_limit_cores, web.memory_limit_bytes) == (3, 1.5, 512 * 2**20)
    assert web.cpu_reservation_cores == 0.5 and web.host_ports == ()
    assert (worker.cpu_limit_cores, worker.memory_limit_bytes) == (2.0, 2**30)
    assert proxy.host_ports == (8080, 8081, 8443)


def test_stack_copies_unprofiled_and_port_conflict(mix_profiles) -> None:
    stack = read_compose(COMPOSE)
    undefined = plan_stack(mix_profiles, MACHINE, stack, method="gaussian")
    assert not undefined.safe and undefined.unprofiled == ("proxy",)
    assert "proxy" in undefined.reason
    with_limits = plan_stack(mix_profiles, MACHINE, read_compose(COMPOSE.replace(
        "image: proxy", "image: proxy\n    cpus: 0.1\n    mem_limit: 64m")),
        method="gaussian", limits_for_unprofiled=True)
    assert with_limits.multiple == 1 and with_limits.binding_resource == PORT_CONFLICT
    no_ports = read_compose(COMPOSE.split("  proxy:")[0])
    copies = plan_stack(mix_profiles, MACHINE, no_ports, method="gaussian")
    assert copies.multiple >= 1 and copies.counts == {"web": 3 * copies.multiple,
                                                     "worker": copies.multiple}


def test_stack_publishing_one_port_twice_does_not_fit(mix_profiles) -> None:
    text = "services:\n  web:\n    deploy: {replicas: 2}\n    ports: ['8080:80']\n"
    p = plan_stack(mix_profiles, MACHINE, read_compose(text), method="gaussian")
    assert p.multiple == 0 and p.binding_resource == PORT_CONFLICT
