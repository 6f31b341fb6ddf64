"""Plans of clean histories (regular sampling, 1 to 7 days, 60 s and 300 s, 1 and 3
replicas, CPU and memory) as one JSON file, to compare two trees byte for byte: a change that
widens faulty histories (issue 13) must leave these plans as they were (the one-day ones gain
only the statement of the allowance they already took).

    cd TREE_A && PYTHONPATH=$PWD .venv/bin/python benchmarks/accuracy/clean_plans.py /tmp/a.json
    cd TREE_B && PYTHONPATH=$PWD .venv/bin/python benchmarks/accuracy/clean_plans.py /tmp/b.json
    cmp /tmp/a.json /tmp/b.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "model"))

from _samples_builder import samples_table  # noqa: E402

from capacity import ProfileModel  # noqa: E402
from capacity._columns import CPU, MEMORY  # noqa: E402
from capacity.solver import Machine, plan  # noqa: E402


def main() -> int:
    out = {}
    for days in (1, 2, 3, 7):
        for step in (60.0, 300.0):
            for reps in (1, 3):
                n = int(days * 86_400 / step)
                rng = np.random.default_rng(days * 7 + reps)
                t = np.arange(n)
                data = {}
                for c in range(reps):
                    cyc = 1 + 0.4 * np.sin(2 * np.pi * t * step / 86_400)
                    data[f"c{c}"] = {
                        CPU: cyc * (0.5 + np.abs(rng.normal(0, 0.2, n))),
                        MEMORY: 2e8 * cyc + rng.normal(0, 1e7, n) + 1e8 * (1 + t / n),
                    }
                prof = ProfileModel().fit(samples_table(data, interval_s=step)).profiles_
                bad = [w for sp in prof.services.values() for w in sp.warnings]
                if bad:
                    raise SystemExit(f"not a clean history: {bad}")
                p = plan(prof, Machine.from_spec("cpus=32,memory=16GiB"),
                         rng=np.random.default_rng(0))
                out[f"{days}d-{step:g}s-{reps}r"] = p.to_dict()
    Path(sys.argv[1]).write_text(json.dumps(out, indent=1, sort_keys=True))
    print(len(out), "plans:", {k: v["safe_count"] for k, v in out.items()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
