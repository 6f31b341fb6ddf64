"""How long the command line takes to answer ``--version`` and ``--help``, and what
``import capacity`` costs, here and on a baseline checkout (issue 14).

Run from the repository root::

    git worktree add /tmp/base d51daf9        # the branch point, once
    .venv/bin/python benchmarks/bench_import.py --baseline /tmp/base

Each case is a fresh interpreter (``python -m capacity`` for the CLI, the same thing the
``capacity`` script runs), timed from the parent: median and best of ``--repeat`` runs,
seconds, with the heavy modules the child had imported by the end.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _baseline import HERE, trees

HEAVY = ("pandas", "scipy.stats", "scipy.optimize", "matplotlib")
CASES = {
    "capacity --version": "from capacity.cli import main; main(['--version'])",
    "capacity --help": "from capacity.cli import main; main(['--help'])",
    "capacity plan --help": "from capacity.cli import main; main(['plan', '--help'])",
    "import capacity": "import capacity",
    "import capacity; capacity.fit (first use)": "import capacity; capacity.fit",
}
REPORT = ("; import sys; print('HEAVY=' + ','.join(m for m in {heavy!r} if m in sys.modules),"
          " file=sys.stderr)")


def time_case(code: str, tree: Path | None, repeat: int) -> tuple[float, float, str]:
    root = str((tree or HERE).resolve())
    env = {**os.environ, "PYTHONPATH": root}
    times, heavy = [], ""
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = subprocess.run([sys.executable, "-c", code + REPORT.format(heavy=HEAVY)],
                             cwd=root, env=env, capture_output=True, text=True, check=True)
        times.append(time.perf_counter() - t0)
        heavy = out.stderr.strip().rpartition("HEAVY=")[2]
    return statistics.median(times), min(times), heavy or "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", type=Path, default=None)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    print(f"# bench_import: load {os.getloadavg()[0]:.1f}, {os.cpu_count()} CPUs; "
          f"interpreter start alone included")
    print("| case | tree | median s | best s | heavy modules imported |")
    print("| --- | --- | ---: | ---: | --- |")
    base = time_case("pass", None, args.repeat)
    print(f"| python -c pass (the floor) | - | {base[0]:.3f} | {base[1]:.3f} | - |")
    for label, code in CASES.items():
        for name, tree in trees(args.baseline):
            med, best, heavy = time_case(code, tree, args.repeat)
            print(f"| `{label}` | {name} | {med:.3f} | {best:.3f} | {heavy} |")


if __name__ == "__main__":
    main()
