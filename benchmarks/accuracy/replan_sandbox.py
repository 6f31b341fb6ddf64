"""Re-plan the sandbox accuracy run's recorded profiles with the current code (no Docker):
does a planner change move any count of the sandbox table in benchmarks/RESULTS.md?

    .venv/bin/python benchmarks/accuracy/replan_sandbox.py   # exit 1 when a default count
                                                             # rises above the measured one

Reads benchmarks/accuracy/results.json (written by run.py); prints, per case, service and
method, the recorded prediction, the re-planned one and the measured count. It does not
re-measure: a change to the profile model (fit) is not covered, only the planner's.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))

from capacity.model import Profiles  # noqa: E402
from capacity.solver import Machine, plan  # noqa: E402
from capacity.solver._plan import DEFAULT_METHOD  # noqa: E402


def main() -> int:
    rows = json.loads((HERE / "results.json").read_text())["verify"]
    changed = over = 0
    for r in rows:
        if len(r["profiles"]["services"]) != 1:
            continue  # a mix (several services) is planned by the mix solver, not here
        profiles = Profiles.from_dict(r["profiles"])
        # as verify predicts (capacity/verify/_predict.py): demand as recorded, no drift
        # and no allowance for the daily cycle a 15 s recording did not see
        p = plan(profiles, Machine.from_spec(r["size"]), epsilon=0.01,
                 rng=np.random.default_rng(0), valid_for_s=None)
        old = {m: v["safe_count"] for m, v in r["prediction"]["methods"].items()}
        new = {m: v["safe_count"] for m, v in p.methods.items()}
        diff = {m: (old.get(m), n) for m, n in new.items() if old.get(m) != n}
        changed += bool(diff)
        d = new.get(DEFAULT_METHOD)
        over += d is not None and d > r["measured_count"]
        print(f"{r['case']:>24} {r['size']:>22} measured {r['measured_count']:>3} "
              f"recorded {old} now {diff if diff else 'same'}")
    print(f"{changed} case(s) changed; default above measured in {over}")
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
