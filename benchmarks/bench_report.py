"""Report speed and size (issue 14): ``capacity report --demo`` and ``capacity report --samples``
of a generated 100-service x 2 replicas x 1 h at 10 s table on a 16-core / 64 GiB spec, end
to end (a fresh ``capacity`` process, charts included), with the sizes of report.html,
profiles.json and the chart files, and whether this tree's plans (plan.json) are the
baseline's (same safe counts; the same plan.json to the last digit).

Each case runs for this tree and for a baseline tree (a ``git worktree add`` of another commit;
default: none, pass ``--baseline PATH``) in the same run, each with ``PYTHONPATH`` pointing at
its tree, so the two are compared under the same machine load. Times are wall seconds of the
whole command and CPU seconds (user + system of the child), best of ``--repeat`` (the machine
is shared; the best is the least disturbed, and CPU seconds do not count waiting for a core).

The generated services: a replica's CPU is a shared slow swing plus its own gamma noise;
memory a per-service level plus a slow drift and noise; network rx/tx and disk write small
rates; each service its own scale, so safe counts differ. Seeded: every run writes the same
file.

Run (the baseline of issue 14's second round is main at 184c71d; a ``git archive`` of it
does as well as a work tree):
    mkdir /tmp/base && git archive 184c71d | tar -x -C /tmp/base
    PYTHONPATH=$PWD .venv/bin/python benchmarks/bench_report.py --baseline /tmp/base
(``--services 10`` for a quick run.)
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

SERVICES = 100
REPLICAS = 2
SPAN_S = 3600.0
INTERVAL_S = 10.0
MACHINE = "cpus=16,memory=64GiB"
HERE = Path(__file__).resolve().parents[1]


def fleet_samples(services: int = SERVICES, replicas: int = REPLICAS, span_s: float = SPAN_S,
                  interval_s: float = INTERVAL_S, seed: int = 0) -> pd.DataFrame:
    """A samples table (the documented columns) of ``services`` x ``replicas`` containers."""
    rng = np.random.default_rng(seed)
    n = int(span_s / interval_s)
    t0 = pd.Timestamp("2026-01-05T00:00:00Z")
    times = t0 + pd.to_timedelta(np.arange(1, n + 1) * interval_s, unit="s")
    frames = []
    phase = np.arange(n) / n * 2 * np.pi
    for s in range(services):
        scale = rng.uniform(0.2, 1.5)
        mem_level = rng.uniform(0.1, 1.2) * 2**30
        slow = np.sin(phase * rng.uniform(1, 4) + rng.uniform(0, 6.28))
        for r in range(replicas):
            cpu = scale * (0.05 + 0.03 * (1 + slow) + rng.gamma(2.0, 0.01, n))
            mem = mem_level * (1 + 0.05 * slow) + rng.gamma(3.0, 2e6, n)
            frames.append(pd.DataFrame({
                "time": times,
                "container_id": f"{s:04d}{r:02d}" + "0" * 58,
                "container_name": f"svc{s}-{r + 1}",
                "service": f"svc{s}",
                "image": f"example/svc{s}:1",
                "interval_s": interval_s,
                "cpu_cores": cpu,
                "memory_working_set_bytes": mem,
                "net_rx_bytes_per_second": scale * rng.gamma(2.0, 5e4, n),
                "net_tx_bytes_per_second": scale * rng.gamma(2.0, 2e4, n),
                "disk_read_bytes_per_second": np.zeros(n),
                "disk_write_bytes_per_second": scale * rng.gamma(1.0, 1e4, n),
                "disk_usage_bytes": np.full(n, np.nan),
            }))
    return pd.concat(frames, ignore_index=True)


def run_report(tree: Path, args: list[str], out: Path) -> tuple[float, float]:
    """Wall and CPU (user + system) seconds of one ``capacity report`` in a fresh
    interpreter using ``tree`` (the report folder is ``out/r``). On a shared machine the CPU
    seconds are the steadier figure: wall time also counts waiting for a core."""
    env = dict(os.environ, PYTHONPATH=str(tree), MPLBACKEND="Agg")
    cmd = [sys.executable, "-m", "capacity", "report", *args, "--out", str(out),
           "--name", "r", "--quiet"]
    # cwd outside both trees: ``python -m`` puts the working directory first on sys.path
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=out)
    elapsed = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if done.returncode not in (0, 1, 2):
        raise SystemExit(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr}")
    return elapsed, cpu


def check_tree(tree: Path, cwd: Path) -> None:
    """Fail unless a fresh interpreter with ``PYTHONPATH=tree`` imports capacity from it."""
    env = dict(os.environ, PYTHONPATH=str(tree))
    where = subprocess.run([sys.executable, "-c", "import capacity; print(capacity.__file__)"],
                           env=env, capture_output=True, text=True, cwd=cwd, check=True)
    if not Path(where.stdout.strip()).resolve().is_relative_to(tree):
        raise SystemExit(f"PYTHONPATH={tree} imports capacity from {where.stdout.strip()}")


def sizes(folder: Path) -> dict[str, float]:
    mib = 1024.0**2
    pngs = sorted(folder.glob("*.png"))
    charts = pngs + sorted(folder.glob("*.svg"))
    return {
        "report.html": (folder / "report.html").stat().st_size / mib,
        "profiles.json": (folder / "profiles.json").stat().st_size / mib,
        "profiles.json MB": (folder / "profiles.json").stat().st_size / 1e6,
        "PNG largest": max((p.stat().st_size for p in pngs), default=0) / mib,
        "chart files": sum(p.stat().st_size for p in charts) / mib,
    }


def safe_counts(folder: Path) -> dict[str, object]:
    """Per service and resource, the safe count in the folder's plan.json."""
    plans = json.loads((folder / "plan.json").read_text())["plans"]
    return {f"{s}/{r}": rp.get("safe_count") for s, p in plans.items()
            for r, rp in p["per_resource"].items()}


def same_plans(a: Path, b: Path) -> str:
    """How the plans of two report folders compare: identical plan.json plans, the same
    safe counts (risk estimates may differ by a Monte Carlo draw), or how many differ."""
    pa = json.loads((a / "plan.json").read_text())["plans"]
    pb = json.loads((b / "plan.json").read_text())["plans"]
    if pa == pb:
        return "identical"
    ca, cb = safe_counts(a), safe_counts(b)
    differ = sum(ca.get(k) != cb.get(k) for k in set(ca) | set(cb))
    return "same safe counts" if not differ else f"{differ} of {len(ca)} safe counts differ"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--baseline", type=Path, default=None,
                    help="a work tree of the baseline commit (git worktree add)")
    ap.add_argument("--repeat", type=int, default=3, help="runs of --demo per tree")
    ap.add_argument("--repeat-samples", type=int, default=1,
                    help="runs of the 100-service case per tree (the baseline takes minutes)")
    ap.add_argument("--services", type=int, default=SERVICES)
    opts = ap.parse_args()
    trees = [("this tree", HERE)]
    if opts.baseline is not None:
        trees.insert(0, ("baseline", opts.baseline.resolve()))
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        table = tmp / "fleet.parquet"
        fleet_samples(services=opts.services).to_parquet(table)
        cases = [
            ("report --demo", ["--demo", "--machine", "cpus=2,memory=24GiB"], opts.repeat),
            (f"report --samples ({opts.services} svc x {REPLICAS} x 1 h at 10 s)",
             ["--samples", str(table), "--machine", MACHINE], opts.repeat_samples),
        ]
        for _, tree in trees:
            check_tree(tree, tmp)
        rows = []
        for case, args, repeat in cases:
            for label, tree in trees:
                out = tmp / f"out-{label.replace(' ', '_')}"
                out.mkdir(exist_ok=True)
                runs = [run_report(tree, args, out) for _ in range(repeat)]
                wall = min(w for w, _ in runs)
                cpu = min(c for _, c in runs)
                keep = tmp / f"keep-{len(rows)}"
                (out / "r").rename(keep)  # kept for the plan comparison below
                rows.append((case, label, wall, cpu, sizes(keep), keep))
        print(f"## capacity report: wall and CPU seconds (best of {opts.repeat} for --demo, "
              f"{opts.repeat_samples} for --samples), output sizes (MiB unless MB)")
        print("| case | tree | wall s | CPU s | report.html | profiles.json | profiles.json MB "
              "| largest PNG | chart files (PNG + SVG) |")
        print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        for case, label, wall, cpu, sz, _ in rows:
            print(f"| {case} | {label} | {wall:.2f} | {cpu:.2f} | {sz['report.html']:.2f} | "
                  f"{sz['profiles.json']:.2f} | {sz['profiles.json MB']:.2f} | "
                  f"{sz['PNG largest']:.2f} | {sz['chart files']:.2f} |")
        if opts.baseline is not None:
            print()
            print("| case | baseline / this tree, wall | CPU | plans of this tree vs baseline |")
            print("| --- | ---: | ---: | --- |")
            for i in range(0, len(rows), 2):
                print(f"| {rows[i][0]} | {rows[i][2] / rows[i + 1][2]:.1f}x "
                      f"| {rows[i][3] / rows[i + 1][3]:.1f}x "
                      f"| {same_plans(rows[i][5], rows[i + 1][5])} |")


if __name__ == "__main__":
    main()
