"""Plan latency and accuracy of the solver's methods (issue 5).

Latency: one service, and 20 services planned one by one (what ``capacity plan`` and
``capacity report`` do), on a machine with CPU and memory, by the gaussian method (target
< 10 ms) and the empirical method at epsilon = 1e-3 (target < 1 s; memory then runs at the
stricter 1e-4, so 200,000 Monte Carlo draws). Every method's count is computed for the
side-by-side table in both cases; the time is the whole ``plan()`` call, best of 3 (median
printed too).

Accuracy: synthetic services whose true law is known (a slow swing shared by all replicas
plus a fast residual of each replica: normal, gamma-skewed, or on/off bursts). One replica's
recorded trace (20,000 samples) is profiled; each method picks N; the true P(overload) at
that N is then measured on fresh draws from the true law (400,000 draws). A method is good
when its N is large while the true risk stays at or below epsilon.

Horizon: memory whose heap grows and is collected every 60 s at each replica's own phase. Plan by
the risk at an instant and by the risk over a 300 s horizon; then count, on fresh 300 s windows
of the true law, how often the total exceeds at the first instant and at any instant.

Run:  .venv/bin/python benchmarks/bench_plan.py
      .venv/bin/python benchmarks/bench_plan.py --horizon-only --baseline /tmp/base
      (the 20-service timing with the memory horizon, here and on the branch point)
"""

from __future__ import annotations

import statistics
import time

import numpy as np

from capacity._columns import CPU, MEMORY
from capacity.solver import METHODS, Machine, plan
from capacity.solver._testing import profiles_of, resource_profile, service_profile

TRUE_DRAWS = 400_000
TRACE_POINTS = 20_000
LATENCY_TRACE_POINTS = 2_000  # profiles keep at most ~2,000 trace points
SLOW_PERIOD = 2_000  # samples per slow cycle
WINDOW_S = 300.0


def service(name: str, rng: np.random.Generator, scale: float = 1.0):
    t = np.arange(LATENCY_TRACE_POINTS)
    slow = 0.1 * np.sin(2 * np.pi * t / SLOW_PERIOD + rng.uniform(0, 6.28))
    cpu = scale * (0.4 + slow + rng.gamma(2.0, 0.1, t.size))
    mem = scale * (2e8 + 3e7 * slow + rng.gamma(3.0, 1e7, t.size))
    return service_profile(name, {
        CPU: resource_profile(CPU, cpu, window_s=WINDOW_S),
        MEMORY: resource_profile(MEMORY, mem, window_s=WINDOW_S),
    })


def timed(fn, repeat: int = 3) -> tuple[float, float]:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times), statistics.median(times)


def latency() -> None:
    rng = np.random.default_rng(0)
    profiles = profiles_of(*(service(f"svc{i:02d}", rng, 1 + 0.1 * i) for i in range(20)))
    machine = Machine.from_spec("cpus=32,memory=64GiB")
    names = sorted(profiles.services)
    print("## latency (seconds, best / median of 3; CPU + memory, 2,000-point traces)")
    print("| case | 1 service | 20 services |")
    print("| --- | ---: | ---: |")
    cases = [
        ("gaussian alone (compare=False)", {"method": "gaussian", "compare": False}),
        ("gaussian + every method side by side, empirical risk", {"method": "gaussian"}),
        ("empirical, epsilon 1e-3 for all resources",
         {"method": "empirical", "epsilon": 1e-3, "incompressible_epsilon": 1e-3}),
        ("empirical, epsilon 1e-3 (memory default 1e-4)",
         {"method": "empirical", "epsilon": 1e-3}),
        ("empirical alone, epsilon 1e-3 for all (compare=False)",
         {"method": "empirical", "epsilon": 1e-3, "incompressible_epsilon": 1e-3,
          "compare": False}),
    ]
    for label, kwargs in cases:
        cells = []
        for n in (1, 20):
            def run(n=n, kwargs=kwargs) -> None:
                for s in names[:n]:
                    plan(profiles, machine, service=s, rng=np.random.default_rng(0), **kwargs)
            best, med = timed(run)
            cells.append(f"{best:.4f} / {med:.4f}")
        print(f"| {label} | " + " | ".join(cells) + " |")


def true_p_overload(n: int, usable: float, kind: str, amp: float,
                    rng: np.random.Generator) -> float:
    phase = rng.uniform(0, 2 * np.pi, TRUE_DRAWS)
    slow = amp * np.sin(phase)
    total = n * (0.4 + slow)
    for _ in range(n):
        total += fast(kind, rng, TRUE_DRAWS)
    return float(np.mean(total > usable))


def fast(kind: str, rng: np.random.Generator, size: int) -> np.ndarray:
    if kind == "normal":
        return rng.normal(0.2, 0.1, size)
    if kind == "gamma":
        return rng.gamma(0.5, 0.4, size)  # mean 0.2, skewed
    # on/off bursts: 10 % of the time 1.2 cores, else 0.09 (mean 0.2)
    return np.where(rng.random(size) < 0.1, 1.2, 0.0888)


SCENARIOS = (  # (fast residual, slow amplitude, cores, epsilon)
    ("normal", 0.1, 16.0, 0.01),
    ("gamma", 0.1, 16.0, 0.01),
    ("gamma", 0.02, 16.0, 0.001),
    ("bursts", 0.02, 8.0, 0.01),
    ("bursts", 0.02, 8.0, 0.001),
    ("normal", 0.3, 16.0, 0.01),
)


def accuracy() -> None:
    print("\n## accuracy: N chosen, and the true P(overload) at that N")
    cols = [*METHODS[1:], "gaussian, independent (opt-in)"]
    print("| fast residual | slow amplitude | cores | epsilon | " + " | ".join(cols) + " |")
    print("| --- | ---: | ---: | ---: |" + " ---: |" * len(cols))
    for kind, amp, cpus, eps in SCENARIOS:
        rng = np.random.default_rng(1)
        t = np.arange(TRACE_POINTS)
        trace = 0.4 + amp * np.sin(2 * np.pi * t / SLOW_PERIOD) + fast(kind, rng, t.size)
        profiles = profiles_of(service_profile("svc", {
            CPU: resource_profile(CPU, trace, window_s=WINDOW_S)}))
        cells = []
        for col in cols:
            method = col.split(",")[0]
            p = plan(profiles, Machine.from_spec(f"cpus={cpus}"), method=method, epsilon=eps,
                     quantile_level=1 - eps if method == "quantile" else None,
                     independent_offsets="independent" in col, compare=False)
            n = p.safe_count or 0
            risk = true_p_overload(n, cpus, kind, amp, np.random.default_rng(2))
            flag = "" if risk <= eps * 1.1 else " **over**"
            cells.append(f"{n} ({risk:.4f}){flag}")
        print(f"| {kind} | {amp:g} | {cpus:g} | {eps:g} | " + " | ".join(cells) + " |")


HORIZON_S = 300.0
HORIZON_WINDOWS = 4_000


def sawtooth_memory(rng: np.random.Generator, steps: int, replicas: int) -> np.ndarray:
    """Memory of ``replicas`` replicas, shape (replicas, steps), 1 s apart: 200 MB plus a
    garbage-collected heap growing 0 -> 100 MB over 60 s at its own phase, plus noise."""
    t = np.arange(steps)
    phase = rng.integers(0, 60, size=(replicas, 1))
    heap = 1e8 * (((t + phase) % 60) / 60.0)
    return 2e8 + heap + rng.normal(0, 5e6, size=(replicas, steps))


def true_horizon_risk(n: int, usable: float, rng: np.random.Generator) -> tuple[float, float]:
    """(P(total > usable) at an instant, P(max over HORIZON_S > usable)) for n replicas."""
    steps = int(HORIZON_S)
    over_any = over_instant = 0
    for _ in range(HORIZON_WINDOWS // 100):
        total = np.zeros((100, steps))
        for _ in range(n):
            total += sawtooth_memory(rng, steps, 100)
        over_any += int(np.count_nonzero(total.max(axis=1) > usable))
        over_instant += int(np.count_nonzero(total[:, 0] > usable))
    return over_instant / HORIZON_WINDOWS, over_any / HORIZON_WINDOWS


def horizon() -> None:
    eps = 1e-3
    usable = 8e9
    rng = np.random.default_rng(3)
    trace = sawtooth_memory(rng, 2000, 1)[0]
    profiles = profiles_of(service_profile("svc", {
        MEMORY: resource_profile(MEMORY, trace, window_s=WINDOW_S)}))
    machine = Machine.from_spec(f"memory={usable:.0f}")
    print(f"\n## memory: instant risk vs {HORIZON_S:g} s horizon risk (epsilon {eps:g}; "
          f"true risks from {HORIZON_WINDOWS} fresh {HORIZON_S:g} s windows)")
    print("| planned by | N | seconds | true P(over) at an instant | true P(over) in 5 min |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for label, horizon_s in (("instant risk", None), (f"{HORIZON_S:g} s horizon", HORIZON_S)):
        t0 = time.perf_counter()
        p = plan(profiles, machine, method="empirical", incompressible_epsilon=eps,
                 horizon_s=horizon_s, compare=False)
        dt = time.perf_counter() - t0
        n = p.safe_count or 0
        instant, window = true_horizon_risk(n, usable, np.random.default_rng(4))
        print(f"| {label} | {n} | {dt:.2f} | {instant:.4f} | {window:.4f} |")


_HORIZON_CHILD = """
import json, sys, time
import numpy as np
from capacity._columns import CPU, MEMORY
from capacity.solver import Machine, plan
from capacity.solver._testing import profiles_of, resource_profile, service_profile

def service(name, rng, scale, interval_s):
    t = np.arange(2000)
    slow = 0.1 * np.sin(2 * np.pi * t / 2000 + rng.uniform(0, 6.28))
    cpu = scale * (0.4 + slow + rng.gamma(2.0, 0.1, t.size))
    if {dips}:  # memory that sits high and sometimes dips: left-skewed
        mem = scale * (4e8 + 3e7 * slow - rng.gamma(0.3, 5e7, t.size))
    else:
        mem = scale * (2e8 + 3e7 * slow + rng.gamma(3.0, 1e7, t.size))
    return service_profile(name, {{
        CPU: resource_profile(CPU, cpu, window_s=300.0, interval_s=interval_s),
        MEMORY: resource_profile(MEMORY, mem, window_s=300.0, interval_s=interval_s)}})

rng = np.random.default_rng(0)
profiles = profiles_of(*(service(f"svc{{i:02d}}", rng, 1 + 0.1 * i, {interval_s})
                         for i in range(20)))
machine = Machine.from_spec("cpus=32,memory=64GiB")
kwargs = {kwargs}
counts, risks = [], []
t0, c0 = time.perf_counter(), time.process_time()
for s in sorted(profiles.services):
    p = plan(profiles, machine, service=s, rng=np.random.default_rng(0), **kwargs)
    m = p.per_resource[MEMORY]
    counts.append(m.safe_count)
    risks.append(m.p_overload_at_safe_count)
print(json.dumps({{"wall_s": time.perf_counter() - t0, "cpu_s": time.process_time() - c0,
                  "memory_counts": counts, "memory_risks": risks}}))
"""


def _compare(r: dict, base: dict) -> str:
    """How this tree's memory counts and risks compare with the baseline's."""
    if r["memory_counts"] == base["memory_counts"]:
        return "equal" + ("" if r["memory_risks"] == base["memory_risks"] else
                          " counts (risks differ)")
    diff = [a - b for a, b in zip(r["memory_counts"], base["memory_counts"], strict=True)]
    changed = [d for d in diff if d]
    return (f"{len(changed)} of {len(diff)} differ, by {min(changed):+d} to {max(changed):+d} "
            f"(sum {sum(r['memory_counts'])} vs {sum(base['memory_counts'])})")


def horizon_speed(baseline, only: str | None = None) -> None:
    """20 services planned one by one with the memory horizon on, here and on a baseline."""
    from _baseline import run, trees

    cases = [
        ("default settings, 1 s trace (baseline: instant; here: 300 s horizon)", 1.0, {}),
        ("default settings, 10 s trace", 10.0, {}),
        ("horizon 300 s, 1 s trace (300 steps)", 1.0, {"horizon_s": 300.0}),
        ("horizon 300 s, 10 s trace (30 steps)", 10.0, {"horizon_s": 300.0}),
        ("instant risk (horizon None), 1 s trace", 1.0, {"horizon_s": None}),
        ("empirical, epsilon 1e-3, memory 1e-4, instant", 1.0,
         {"epsilon": 1e-3, "horizon_s": None}),
        # left-skewed memory: summed exactly over the horizon (no 16-replica shortcut)
        ("memory that dips, default settings, 1 s trace", 1.0, {}, True),
        ("memory that dips, default settings, 10 s trace", 10.0, {}, True),
        ("memory that dips, horizon 300 s, 1 s trace", 1.0, {"horizon_s": 300.0}, True),
    ]
    print("\n## 20 services, CPU + memory; each tree in a child process")
    print("| case | tree | wall s | CPU s | memory counts against the baseline's |")
    print("| --- | --- | ---: | ---: | --- |")
    for label, interval_s, kwargs, *shape in cases:
        dips = bool(shape and shape[0])
        if only and only not in label:
            continue
        results = {}
        for name, tree in trees(baseline):
            code = _HORIZON_CHILD.format(interval_s=interval_s, kwargs=repr(kwargs), dips=dips)
            r = results[name] = run(code, tree)
            same = ("-" if name == "baseline" or "baseline" not in results else
                    _compare(r, results["baseline"]))
            print(f"| {label} | {name} | {r['wall_s']:.2f} | {r['cpu_s']:.2f} | {same} |",
                  flush=True)


if __name__ == "__main__":
    import argparse
    from pathlib import Path

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", type=Path, default=None,
                        help="a checkout of the branch point (git worktree add /tmp/base 184c71d, "
                             "or git archive 184c71d | tar -x -C /tmp/base)")
    parser.add_argument("--horizon-only", action="store_true",
                        help="only the 20-service horizon timing (with --baseline: both trees)")
    parser.add_argument("--case", default=None,
                        help="with --horizon-only: only the cases whose label contains this")
    args = parser.parse_args()
    if not args.horizon_only:
        latency()
        accuracy()
        horizon()
    horizon_speed(args.baseline, args.case)
