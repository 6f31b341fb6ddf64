"""`capacity size` of many services over the memory horizon: CPU time and peak memory.

The reviewer's profiles of the "Mix and size over the horizon" section of RESULTS.md:
``p40`` is the five demo services copied 8 times (40 services), sized for
``demo/{idle,mem-holder,mem-sawtooth}-{0..7}=300`` (24 services x 300); ``p48`` the idle,
mem-holder and mem-sawtooth services copied 16 times, sized for ``demo/idle-{0..15}=3000``
(16 services x 3,000). Each case runs as ``capacity size --json`` in a child under
``/usr/bin/time -v`` (user + system CPU seconds, maximum resident set size), the trees in
turn within each run (the order alternating), and the JSON of every run is compared with
the first tree's: byte-identical or the script says which case differs.

Run:  PYTHONPATH=$PWD .venv/bin/python benchmarks/bench_size_horizon.py \\
          --baseline /tmp/base --runs 3
(``git worktree add /tmp/base <commit>``; without ``--baseline`` this tree alone.)
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _baseline import HERE, trees

MACHINE = HERE / "docs" / "example-machine.toml"
#: name -> (demo services copied, copies, --replicas)
CASES: dict[str, tuple[tuple[str, ...], int, str]] = {
    "p40": (("cpu-burner", "cpu-bursty", "idle", "mem-holder", "mem-sawtooth"), 8,
            ",".join(f"demo/{s}-{i}=300" for i in range(8)
                     for s in ("idle", "mem-holder", "mem-sawtooth"))),
    "p48": (("idle", "mem-holder", "mem-sawtooth"), 16,
            ",".join(f"demo/idle-{i}=3000" for i in range(16))),
}


def _copies(demo: dict[str, Any], services: tuple[str, ...], copies: int) -> dict[str, Any]:
    """The demo profiles with each of ``services`` copied ``copies`` times (``-0``...)."""
    out = dict(demo)
    out["services"] = {}
    for i in range(copies):
        for s in services:
            profile = dict(demo["services"][f"demo/{s}"])
            profile["service"] = f"demo/{s}-{i}"
            out["services"][profile["service"]] = profile
    return out


def _run(tree: Path | None, profiles: Path, replicas: str) -> tuple[float, float, bytes]:
    """(user + system CPU s, max RSS GB, stdout) of one ``capacity size --json``."""
    root = (tree or HERE).resolve()  # also the working directory: ``-m`` puts it first
    env = {**os.environ, "PYTHONPATH": str(root), "MPLBACKEND": "Agg"}
    cmd = ["/usr/bin/time", "-v", sys.executable, "-m", "capacity", "size", "--profiles",
           str(profiles), "--machine", str(MACHINE), "--replicas", replicas, "--json"]
    out = subprocess.run(cmd, env=env, cwd=root, capture_output=True, check=True)
    err = out.stderr.decode()

    def field(name: str) -> float:
        m = re.search(rf"{name}: ([0-9.]+)", err)
        if m is None:
            raise RuntimeError(f"no {name!r} in /usr/bin/time's output:\n{err[-2000:]}")
        return float(m.group(1))

    cpu = field(r"User time \(seconds\)") + field(r"System time \(seconds\)")
    return cpu, field(r"Maximum resident set size \(kbytes\)") * 1024 / 1e9, out.stdout


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--baseline", type=Path, default=None, help="another checkout to compare")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--cases", default=",".join(CASES))
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        demo_file = Path(tmp) / "demo.json"
        subprocess.run([sys.executable, "-m", "capacity", "fit", "--demo", "--out",
                        str(demo_file)], check=True, capture_output=True, cwd=HERE,
                       env={**os.environ, "PYTHONPATH": str(HERE)})
        demo = json.loads(demo_file.read_text())
        sides = trees(args.baseline)
        for case in args.cases.split(","):
            services, copies, replicas = CASES[case]
            profiles = Path(tmp) / f"{case}.json"
            profiles.write_text(json.dumps(_copies(demo, services, copies)))
            first: bytes | None = None
            for run in range(args.runs):
                order = sides if run % 2 == 0 else sides[::-1]
                for name, tree in order:
                    cpu, rss, answer = _run(tree, profiles, replicas)
                    same = "" if first is None or answer == first else "  JSON DIFFERS"
                    first = answer if first is None else first
                    print(f"{case} run {run + 1} {name:>9}: CPU {cpu:6.2f} s, "
                          f"max RSS {rss:5.2f} GB{same}", flush=True)


if __name__ == "__main__":
    main()
