"""Benchmark of ProfileModel.fit: time and peak memory against the number of rows.

Run from the repository root::

    .venv/bin/python benchmarks/bench_fit.py                       # 1 M and 10 M rows
    .venv/bin/python benchmarks/bench_fit.py --containers 100      # 1 M rows only

Each size runs in a fresh child process, so its peak memory is its own: the table shows the
wall time of ``fit`` alone, the resident memory of the samples table before the fit, and the
process's peak resident memory (``ru_maxrss``) by the end of the fit. scipy is imported
before the clock starts (its first import alone takes ~1 s). Wall time on a shared host
depends on the other load: CPU time (``time.process_time``) is printed too. The samples table has
every resource column of :data:`capacity._columns.RESOURCES` (``disk_usage_bytes`` read every
60th sample, NaN between, as the collector does), ``str`` key columns like the collector's,
10,000 samples per container at 5 s, and 10 replicas per service.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import scipy.optimize
import scipy.special
import scipy.stats  # noqa: F401  (scipy is imported before the clock starts)

from capacity._columns import DISK_USAGE, RESOURCES
from capacity.model import ProfileModel


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()


def make_samples(n_containers: int, n_samples: int, replicas: int, seed: int = 0) -> pd.DataFrame:
    """A samples table of ``n_containers`` x ``n_samples`` rows, container-major (as
    ``counters_to_samples`` returns it)."""
    rng = np.random.default_rng(seed)
    n = n_containers * n_samples
    times = np.datetime64("2026-01-01T00:00:00", "ns") + (
        np.arange(n_samples, dtype=np.int64) * 5_000_000_000
    ).astype("timedelta64[ns]")
    ids = np.array([f"{i:012x}" for i in range(n_containers)], dtype=object)
    services = np.array([f"svc{i // replicas:04d}" for i in range(n_containers)], dtype=object)
    frame = pd.DataFrame(
        {
            "time": pd.DatetimeIndex(np.tile(times, n_containers)).tz_localize("UTC"),
            "container_id": pd.array(np.repeat(ids, n_samples), dtype="str"),
            "container_name": pd.array(np.repeat(ids, n_samples), dtype="str"),
            "service": pd.array(np.repeat(services, n_samples), dtype="str"),
            "image": pd.array(np.repeat(services, n_samples), dtype="str"),
            "interval_s": 5.0,
        }
    )
    for k, column in enumerate(RESOURCES):
        values = rng.lognormal(np.log(10.0**k), 0.5, n)
        if column == DISK_USAGE:
            values[np.arange(n) % 60 != 0] = np.nan
        frame[column] = values
    return frame


def run_one(n_containers: int, n_samples: int, replicas: int) -> dict[str, float]:
    samples = make_samples(n_containers, n_samples, replicas)
    rss_before = _rss_bytes()
    start, cpu_start = time.perf_counter(), time.process_time()
    profiles = ProfileModel().fit(samples).profiles_
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {
        "rows": len(samples),
        "containers": n_containers,
        "services": len(profiles),
        "fit_s": elapsed,
        "fit_cpu_s": cpu,
        "rss_before_fit_bytes": rss_before,
        "peak_rss_bytes": peak,
        "json_bytes": len(profiles.to_json()),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--containers", type=int, nargs="+", default=[100, 1000],
        help="container counts to run (each in its own process)",
    )
    parser.add_argument("--samples", type=int, default=10_000, help="samples per container")
    parser.add_argument("--replicas", type=int, default=10, help="containers per service")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        result = run_one(args.containers[0], args.samples, args.replicas)
        print(json.dumps(result))
        return
    rows = []
    for c in args.containers:
        out = subprocess.run(
            [sys.executable, __file__, "--child", "--containers", str(c),
             "--samples", str(args.samples), "--replicas", str(args.replicas)],
            check=True, capture_output=True, text=True,
        )
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    mib = 2**20
    print("| rows | containers | services | fit wall (s) | fit CPU (s) | RSS before fit (MiB) | "
          "peak RSS (MiB) | profiles.json (MiB) |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(
            f"| {r['rows']:,} | {r['containers']:,} | {r['services']} | {r['fit_s']:.2f} | "
            f"{r['fit_cpu_s']:.2f} | "
            f"{r['rss_before_fit_bytes'] / mib:,.0f} | {r['peak_rss_bytes'] / mib:,.0f} | "
            f"{r['json_bytes'] / mib:.1f} |"
        )


if __name__ == "__main__":
    main()
