"""Seeded mixes and fleets over the memory horizon whose answers are pinned
(``data/mix_answers.json``, recorded before the size search stopped computing the mix's
quantile for every host count it tries, and recorded again, byte-identical to a run of the
code before that change, when each resource got its own random stream and the demand factor
stopped scaling the host cost, and once more when each simulator's generator was keyed by
its service and resource names): the counts, the hosts curve and the demands shown, to the
last bit (``repr`` of each float). Re-record only for a change meant to move answers::

    PYTHONPATH=.:tests python -c "import json,sys; from mix_answers import answers; \
        json.dump(answers(), sys.stdout, sort_keys=True, indent=1)" \
        > tests/solver/data/mix_answers.json
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from capacity._pipeline import fit_profiles, load_demo
from capacity.solver import Machine, ratio, size_fleet

EXAMPLE_MACHINE = Path(__file__).parents[1] / "docs" / "example-machine.toml"
ANSWERS = Path(__file__).parent / "solver" / "data" / "mix_answers.json"

#: (name, replicas or ratio, horizon_s, seed, spare)
CASES: tuple[tuple[str, dict[str, int], float, int, int], ...] = (
    ("size idle+holder+sawtooth", {"demo/idle": 3000, "demo/mem-holder": 200,
                                  "demo/mem-sawtooth": 300}, 300.0, 0, 0),
    ("size idle+sawtooth 60 s", {"demo/idle": 2000, "demo/mem-sawtooth": 700}, 60.0, 1, 1),
    ("size sawtooth+holder+bursty", {"demo/mem-sawtooth": 500, "demo/mem-holder": 500,
                                    "demo/cpu-bursty": 50}, 300.0, 2, 0),
    ("size idle+bursty+holder", {"demo/idle": 5000, "demo/cpu-bursty": 40,
                                "demo/mem-holder": 90}, 300.0, 3, 2),
    ("ratio idle:sawtooth:holder", {"demo/idle": 10, "demo/mem-sawtooth": 2,
                                   "demo/mem-holder": 1}, 300.0, 4, 0),
)


def _floats(x: Any) -> Any:
    if isinstance(x, float):
        return repr(x)
    if isinstance(x, dict):
        return {k: _floats(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_floats(v) for v in x]
    return x


def answers() -> dict[str, Any]:
    """Each case's answer: what ``capacity size`` or ``plan --ratio`` shows of it."""
    profiles = fit_profiles(load_demo())
    machine = Machine.from_spec(str(EXAMPLE_MACHINE))
    out: dict[str, Any] = {}
    for name, counts, horizon_s, seed, spare in CASES:
        rng = np.random.default_rng(seed)
        if name.startswith("ratio"):
            mix = ratio(profiles, machine, counts, horizon_s=horizon_s, rng=rng)
            out[name] = _floats({"multiple": mix.multiple, "counts": dict(mix.counts),
                                 "binding": mix.binding_resource,
                                 "demand": {r: m.demand for r, m in mix.per_resource.items()}})
        else:
            fleet = size_fleet(profiles, machine, counts, spare=spare, horizon_s=horizon_s,
                               rng=rng)
            out[name] = _floats({
                "hosts": fleet.hosts, "per_host": dict(fleet.per_host),
                "binding": fleet.binding_resource,
                "curve": " ".join(f"{t}:{h}" for t, h in fleet.hosts_curve),
                "demand": {r: m.demand for r, m in fleet.per_resource.items()},
                "p_overload": {r: m.p_overload for r, m in fleet.per_resource.items()}})
    return out
