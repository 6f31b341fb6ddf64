"""The horizon shortcut against every replica summed, on many memory shapes (issue 14).

Over a horizon the solver sums 16 replicas' paths and scales the sum by sqrt(n / 16)
beyond (as they are for a right-skewed replica, with random weights for a left-skewed
one), or sums up to 256 exactly for light tails without a clear skew
(``capacity.solver._demand.horizon_shortcut_for``). For each shape and seed this plans
the count at epsilon 1e-3 over 100 steps with the default and with every replica summed
(K = 256), on a capacity of 30 and 120 mean replicas, and prints both with the CPU time.
The exact sum draws replicas the shortcut does not: the two counts differ by Monte Carlo
error too (about one replica at 10,000 draws; rerun a case with more draws to tell).

Run:  PYTHONPATH=$PWD .venv/bin/python benchmarks/bench_horizon_shortcut.py --seeds 1,2,3
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from capacity._columns import MEMORY
from capacity.solver._demand import (
    MAX_SUMMED_REPLICAS_HORIZON_EXACT,
    _skew_and_kurtosis,
    horizon_shortcut_for,
    replica_demand,
)
from capacity.solver._plan import ResourceModel
from capacity.solver._testing import resource_profile, service_profile

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "solver"))
from test_horizon_paths import _traces  # the test's shapes: one definition


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--draws", type=int, default=30_000)
    parser.add_argument("--sizes", default="30,120")
    parser.add_argument("--shape", default=None, help="only shapes whose name contains this")
    args = parser.parse_args()
    sizes = [int(x) for x in args.sizes.split(",")]
    print("| seed | shape | skewness | excess kurtosis | K, beyond | size | default | exact "
          "| default - exact | CPU s |")
    print("| ---: | --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: |")
    above = below = 0
    for seed in (int(x) for x in args.seeds.split(",")):
        for kind, trace in _traces(np.random.default_rng(seed)).items():
            if args.shape and args.shape not in kind:
                continue
            sp = service_profile("svc", {MEMORY: resource_profile(MEMORY, trace,
                                                                  window_s=300.0)})
            d = replica_demand(sp, MEMORY)
            assert d is not None
            moments = _skew_and_kurtosis(d.own)
            assert moments is not None
            k, beyond = horizon_shortcut_for(d.own)
            for size in sizes:
                c0 = time.process_time()
                counts = {}
                # every count planned here is <= 256: K = 256 sums all of them exactly
                for label, replicas in (("default", None),
                                        ("exact", MAX_SUMMED_REPLICAS_HORIZON_EXACT)):
                    model = ResourceModel(d, epsilon=1e-3, rng=np.random.default_rng(0),
                                          n_draws=args.draws, horizon_steps=100,
                                          horizon_replicas=replicas)
                    counts[label] = model.safe("empirical", size * d.mean)[0]
                diff = counts["default"] - counts["exact"]
                above += diff > 0
                below += diff < 0
                print(f"| {seed} | {kind} | {moments[0]:+.2f} | {moments[1]:+.2f} | {k}, {beyond} "
                      f"| {size} | {counts['default']} | {counts['exact']} | {diff:+d} "
                      f"| {time.process_time() - c0:.2f} |", flush=True)
    print(f"\ndefault above the exact sum: {above}; below: {below}")


if __name__ == "__main__":
    main()
