"""Accuracy benchmark: predicted vs measured capacity on real busybox workloads, and a trace
backtest per solver method.

    .venv/bin/python benchmarks/accuracy/run.py --quick   # one workload, one size (< 3 min)
    .venv/bin/python benchmarks/accuracy/run.py           # everything (< 20 min)

Writes benchmarks/accuracy/results.json and replaces the ``## Accuracy`` section of
benchmarks/RESULTS.md. Needs a local Docker Engine (cgroupfs driver) and root for the
sandbox cgroups; every container carries the label ``capacity.bench=accuracy`` and is removed.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(ROOT))

from capacity._busybox import build_busybox_image  # noqa: E402
from capacity.solver._machine import Machine  # noqa: E402
from capacity.solver._plan import DEFAULT_METHOD, METHODS  # noqa: E402
from capacity.verify import Workload, predict, predict_from_profiles, verify  # noqa: E402

LABELS = {"capacity.bench": "accuracy"}
IMAGE = "capacity-busybox:latest"
TRACES = Path("/work/shared/data/traces")
EXCERPTS = ROOT / "tests" / "data" / "traces"
BUSY = "while :; do :; done"
#: share of the CPUs kept back in the extra "default + CPU reserve" column
CPU_RESERVE = 0.10


@dataclass(frozen=True)
class Case:
    workloads: tuple[Workload, ...]
    sizes: tuple[str, ...]
    pattern: str

    @property
    def name(self) -> str:
        return "+".join(w.name for w in self.workloads)


def cases(image: str) -> list[Case]:
    def w(name: str, script: str, **kw: Any) -> Workload:
        return Workload.from_command(image, ["sh", "-c", script], name=name, **kw)

    cpu_steady = w("cpu-steady", BUSY, cpu_limit_cores=0.25,
                   description="a busy loop capped at --cpus 0.25: flat 0.25 core")
    cpu_bursty = w(
        "cpu-bursty",
        f"while :; do if [ $((RANDOM % 3)) -eq 0 ]; then timeout 1 sh -c '{BUSY}'; "
        "else sleep 1; fi; done", cpu_limit_cores=0.5,
        description="each second, busy (capped at 0.5 core) with probability 1/3, else idle; "
                    "replicas independent")
    mem_steady = w("mem-steady", "dd if=/dev/zero of=/hold/x bs=1M count=24 2>/dev/null; "
                   "exec sleep 100000", tmpfs={"/hold": "size=64m"}, memory_limit_bytes=64 * 2**20,
                   description="holds 24 MiB in tmpfs, flat; -m 64m")
    mem_fluct = w(
        "mem-fluct",
        "while :; do n=$((RANDOM % 5 * 8)); rm -f /hold/x; "
        "dd if=/dev/zero of=/hold/x bs=1M count=$n 2>/dev/null; sleep 1; done",
        tmpfs={"/hold": "size=64m"}, memory_limit_bytes=64 * 2**20,
        description="every second holds 0, 8, 16, 24 or 32 MiB at random; -m 64m")
    mixed = w(
        "mixed",
        "dd if=/dev/zero of=/hold/x bs=1M count=16 2>/dev/null; "
        "while :; do i=0; while [ $i -lt 4000 ]; do i=$((i+1)); done; usleep 400000; done",
        tmpfs={"/hold": "size=32m"},
        description="holds 16 MiB and runs a fixed-work CPU burst then sleeps 0.4 s, forever "
                    "(a request loop); no limits declared")
    return [
        Case((mem_steady,), ("cpus=1,memory=128MiB", "cpus=1,memory=256MiB"),
             mem_steady.description),
        Case((cpu_steady,), ("cpus=0.5,memory=1GiB", "cpus=1,memory=1GiB"),
             cpu_steady.description),
        Case((cpu_bursty,), ("cpus=0.5,memory=1GiB", "cpus=1,memory=1GiB"),
             cpu_bursty.description),
        Case((mem_fluct,), ("cpus=1,memory=128MiB", "cpus=1,memory=256MiB"),
             mem_fluct.description),
        Case((mixed,), ("cpus=0.5,memory=256MiB", "cpus=1,memory=256MiB"), mixed.description),
        Case((cpu_bursty, mem_steady), ("cpus=1,memory=128MiB", "cpus=1,memory=256MiB"),
             "cpu-bursty and mem-steady, one of each per unit"),
    ]


def run_case(client: Any, case: Case, sizes: tuple[str, ...], args: argparse.Namespace
             ) -> list[dict[str, Any]]:
    ratio = {w.name: 1 for w in case.workloads}
    first = Machine.from_spec(sizes[0])
    prediction, profiles = predict(client, list(case.workloads), first, ratio,
                                   epsilon=args.epsilon, replicas=2,
                                   duration_s=args.profile_s, interval_s=0.5, labels=LABELS)
    rows = []
    for size in sizes:
        machine = Machine.from_spec(size)
        p = predict_from_profiles(profiles, machine, ratio, epsilon=args.epsilon,
                                  collection=prediction.collection)
        # the default method again with CPU_RESERVE of the CPUs kept back: what a CPU
        # utilisation cap would give (the solver plans CPU to exactly 100 % otherwise)
        cpus = machine.capacity["cpu_cores"]
        capped = predict_from_profiles(
            profiles, machine.with_reserve({"cpu_cores": CPU_RESERVE * cpus}), ratio,
            epsilon=args.epsilon)
        t = time.monotonic()
        r = verify(client, list(case.workloads), machine, ratio, hold_s=args.hold_s,
                   warmup_s=1.0, max_throttled=args.max_throttled, prediction=p,
                   max_count=32, labels=LABELS,
                   on_step=lambda s, size=size: print(f"  {case.name} {size}: {s.count} -> "
                                           f"{'pass' if s.passed else s.reason[:70]}",
                                           file=sys.stderr))
        row = r.to_dict()
        row.update(case=case.name, size=size, pattern=case.pattern,
                   seconds=round(time.monotonic() - t, 1),
                   default_with_cpu_reserve=capped.safe_count,
                   profiles=profiles.to_dict())
        rows.append(row)
        print(f"{case.name} {size}: measured {r.measured_count}, predicted "
              f"{ {m: mp.safe_count for m, mp in p.methods.items()} }", file=sys.stderr)
    return rows


def trace_backtests(quick: bool) -> list[dict[str, Any]]:
    from capacity.backtest import backtest, load_alibaba_containers, load_gcd_vms

    gcd = TRACES / "google2011-gcd-vms" / "GCD_VMs"
    ali = TRACES / "alibaba2018-hots-10n" / "container_usage.csv"
    if quick or not gcd.exists():
        gcd = EXCERPTS / "google2011-gcd-vms" / "GCD_VMs"
        ali = EXCERPTS / "alibaba2018-hots-10n" / "container_usage.csv"
    runs = []
    jobs = [("gcd, all days, 1 VM = 1 core / 4 GiB", lambda: load_gcd_vms(gcd),
             "cpus=8,memory=64GiB"),
            ("gcd, day 1 only (time of day)", lambda: load_gcd_vms(gcd, days=[1]),
             "cpus=8,memory=64GiB"),
            ("alibaba containers (96-core machine)", lambda: load_alibaba_containers(ali),
             "cpus=96,memory=512GiB")]
    for name, load, spec in jobs:
        samples = load()
        for eps in ((0.01,) if quick else (0.01, 0.05)):
            r = backtest(samples, Machine.from_spec(spec), epsilon=eps)
            d = r.to_dict()
            d.update(trace=name, spec=spec)
            runs.append(d)
    return runs


def markdown(rows: list[dict[str, Any]], traces: list[dict[str, Any]], cmd: str,
             elapsed: float, args: argparse.Namespace) -> str:
    out = ["## Accuracy", "",
           f"Command: `{cmd}` ({elapsed / 60:.1f} min on the shared 2-core host; "
           f"epsilon {args.epsilon}, memory epsilon {args.epsilon * 0.1:g}; throttled-fraction "
           f"limit {args.max_throttled}; hold {args.hold_s:g} s per count; profile from 2 "
           f"replicas x {args.profile_s:g} s at 0.5 s, unconstrained). Default method: "
           f"`{DEFAULT_METHOD}`. Produced by benchmarks/accuracy/run.py; raw numbers in "
           "benchmarks/accuracy/results.json.", "",
           "### Predicted / measured replicas per method (sandbox cgroup sized like the target)",
           "", "| workload | sandbox | measured | " + " | ".join(METHODS) +
           f" | {DEFAULT_METHOD}, {CPU_RESERVE:.0%} CPU reserve | binding (measured) |"
           " claimed P(overload) |",
           "| --- | --- | ---: | " + " | ".join("---:" for _ in METHODS) + " | ---: | --- | --- |"]
    for r in rows:
        p = r["prediction"]
        cells = []
        for m in METHODS:
            n = p["methods"][m]["safe_count"]
            flag = "" if n is None or n <= r["measured_count"] else " **over**"
            cells.append("-" if n is None else f"{n}{flag}")
        measured = f"{r['measured_count']}" + ("" if r["measured_exact"] else "+")
        binding = next((res for res, v in r["measured_by_resource"].items() if v["exact"]),
                       "-")
        risk = ", ".join(f"{k.split('_')[0]} {v:.2g}" for k, v in p["claimed_risk"].items()
                         if v is not None)
        # other processes starving the sandbox only matter where CPU binds
        contended = binding != "memory_working_set_bytes" and any(
            s["contended"] for s in r["steps"] if s["passed"])
        c = r.get("default_with_cpu_reserve")
        capped = "n/a" if "default_with_cpu_reserve" not in r else (
            "-" if c is None else f"{c}{' **over**' if c > r['measured_count'] else ''}")
        out.append(f"| {r['case']} | {r['size']} | {measured}{' (contended)' if contended else ''}"
                   f" | " + " | ".join(cells) + f" | {capped} | {binding.split('_')[0]} | {risk} |")
    out += ["", "Workloads: " + "; ".join(sorted({f"**{r['case']}**: {r['pattern']}"
                                                  for r in rows})) + ".", "",
            f"Target check (default method `{DEFAULT_METHOD}`: within 10 % of measured and "
            "never above it):", "",
            "| workload | sandbox | predicted | measured | error | verdict |",
            "| --- | --- | ---: | ---: | ---: | --- |"]
    for r in rows:
        n = r["prediction"]["safe_count"]  # the plan's answer (default method, or its fallback)
        m = r["measured_count"]
        if n is None:
            verdict, err = "undefined", "-"
        else:
            rel = (n - m) / m if m else math.inf
            err = f"{rel:+.0%}" if m else f"+{n}"
            verdict = ("**over** by " + str(n - m) if n > m else
                       "ok" if rel >= -0.10 else f"under by {m - n}")
        out.append(f"| {r['case']} | {r['size']} | {n if n is not None else '-'} | {m} | {err} |"
                   f" {verdict} |")
    out += ["",
            "### Trace backtest per method (fit on the first half, test on the second)", "",
            "| trace | machine | epsilon | method | planned | drift margin | count | "
            "violation rate | cpu used | memory used | within eps |",
            "| --- | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    for t in traces:
        for m, b in t["methods"].items():
            if b["count"] is None:
                out.append(f"| {t['trace']} | {t['spec']} | {t['epsilon']} | {m} | - | - | - |"
                           f" - | - | - | {b['reason'][:50]} |")
                continue
            u = b["utilisation_by_resource"]
            out.append(
                f"| {t['trace']} | {t['spec']} | {t['epsilon']} | {m} | {b['planned_count']} | "
                f"{b['margin']:.0%} | {b['count']} | {b['violation_rate']:.4f} | "
                f"{u.get('cpu_cores', 0):.0%} | {u.get('memory_working_set_bytes', 0):.0%} | "
                f"{'yes' if b['within_epsilon'] else 'NO'} |")
        out.append(f"| {t['trace']} | | {t['epsilon']} | *best count on the test window* | | |"
                   f" {t['oracle_count']} | | | | |")
    findings = HERE / "FINDINGS.md"
    if findings.exists():
        out += ["", findings.read_text().strip()]
    out += ["", "Quick mode (one workload, one size, trace excerpts; about 1 min): "
            "`python benchmarks/accuracy/run.py --quick [--case NAME --size SPEC]`. The column "
            f"\"{DEFAULT_METHOD}, {CPU_RESERVE:.0%} CPU reserve\" is n/a for runs made before "
            "it existed."]
    return "\n".join(out) + "\n"


def write_section(text: str) -> None:
    path = ROOT / "benchmarks" / "RESULTS.md"
    old = path.read_text() if path.exists() else "# Benchmark results\n\n"
    start = old.find("## Accuracy")
    if start >= 0:
        nxt = old.find("\n## ", start + 3)
        old = old[:start] + (old[nxt + 1:] if nxt >= 0 else "")
    path.write_text(old.rstrip("\n") + "\n\n" + text)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="one workload, one size, excerpts")
    ap.add_argument("--epsilon", type=float, default=0.01)
    ap.add_argument("--max-throttled", type=float, default=0.2)
    ap.add_argument("--hold-s", type=float, default=6.0)
    ap.add_argument("--profile-s", type=float, default=15.0)
    ap.add_argument("--case", default=None, help="with --quick: this workload (by name)")
    ap.add_argument("--size", default=None, help="with --quick: this sandbox spec")
    ap.add_argument("--no-write", action="store_true", help="do not touch RESULTS.md")
    ap.add_argument("--render", type=Path, default=None,
                    help="only re-render RESULTS.md from a results.json")
    args = ap.parse_args()
    if args.render is not None:
        saved = json.loads(args.render.read_text())
        text = markdown(saved["verify"], saved["backtest"], "python benchmarks/accuracy/run.py",
                        saved["elapsed_s"], args)
        print(text)
        if not args.no_write:
            write_section(text)
        return 0
    import docker

    t0 = time.monotonic()
    client = docker.from_env(timeout=120)
    image = build_busybox_image(client, IMAGE)
    rows: list[dict[str, Any]] = []
    todo = cases(image)
    if args.quick:
        todo = [c for c in todo if c.name == args.case] if args.case else todo[:1]
        if not todo:
            ap.error(f"--case: one of {[c.name for c in cases(image)]}")
    try:
        for case in todo:
            sizes = case.sizes if not args.quick else ((args.size,) if args.size
                                                       else case.sizes[:1])
            rows += run_case(client, case, sizes, args)
    finally:
        for c in client.containers.list(all=True, filters={"label": "capacity.bench=accuracy"}):
            c.remove(force=True, v=True)
    traces = trace_backtests(args.quick)
    elapsed = time.monotonic() - t0
    cmd = "python benchmarks/accuracy/run.py" + (" --quick" if args.quick else "")
    (HERE / ("results-quick.json" if args.quick else "results.json")).write_text(
        json.dumps({"verify": rows, "backtest": traces, "elapsed_s": elapsed}, indent=1,
                   default=str))
    text = markdown(rows, traces, cmd, elapsed, args)
    print(text)
    if not args.no_write and not args.quick:
        write_section(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
