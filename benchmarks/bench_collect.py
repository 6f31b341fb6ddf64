"""Benchmark of one sampling round, four ways, and of the collector's steady CPU use.

Run from the repository root (needs a local Docker Engine and root for the cgroup files)::

    .venv/bin/python benchmarks/bench_collect.py                       # 10, 50, 100 containers
    .venv/bin/python benchmarks/bench_collect.py --counts 10 --collector-s 0   # quick look
    .venv/bin/python benchmarks/bench_collect.py --counts 50 --round-only --baseline /tmp/base \
        --runs 3                  # whole rounds against docker stats, 3 runs, both trees
    .venv/bin/python benchmarks/bench_collect.py --counts 100 --collector-only \
        --baseline /tmp/base --runs 3  # collector CPU at 1 s, here and on the branch point

It starts ``max(--counts)`` idle busybox containers (``sleep``), labelled
``capacity.bench=<run id>`` and removed at the end, pass or fail. For each count N it reads the
counters of N of them, in the same run:

- **cgroup**: :class:`capacity.sources.CgroupReader` (files under /sys/fs/cgroup and /proc);
- **cgroup, cached location**: the same with each container's cgroup located once, as the
  collector reads (:class:`capacity._collect.CachedCgroupReader`);
- **stats API**: :class:`capacity.sources.StatsApiReader` ``read_many`` (``one-shot=true``,
  as many calls in flight as the collector makes, up to 32);
- **docker-py**: ``container.stats(stream=False)`` one container after the other, as users
  usually call it (no ``one_shot``: the engine waits for a second sample);
- **docker stats**: ``docker stats --no-stream <ids>`` in a subprocess.

Wall time and CPU time per round are reported. CPU is split in the client's (this process,
plus the subprocess for ``docker stats``) and the engine's (``dockerd``, ``containerd`` and the
``containerd-shim`` processes, which do the cgroup reads behind the stats API). Then, unless
``--collector-s 0``, a real ``capacity collect --interval 1s`` runs on all the containers and
its CPU time over a steady window (after start-up and the first disk usage pass) is divided
by the window's wall time: the fraction of one core it uses.

With ``--round-only``, each count compares ``docker stats --no-stream`` with 100 rounds of
``Collector.run`` back to back in a child per tree, set up as ``capacity collect --interval
1s`` runs (events pumped, listing every 10 s, the cached cgroup reader, host totals, the
SQLite store committing every 5 rounds as ``--commit-every 5s`` makes it): wall and CPU
seconds per round, and the ratio of wall times, the issue's measure. On a loaded host the
wall time of a round is mostly waiting for a CPU; its CPU time is what the code costs.

``--runs N`` repeats the round and the collector measurements N times in the same run,
alternating which tree goes first. Numbers are from a shared machine; the tables are printed
to stdout.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psutil

from capacity._busybox import build_busybox_image
from capacity._collect import CachedCgroupReader, Collector, DockerEngine
from capacity.sources._cgroup import CgroupReader
from capacity.sources._docker import connect
from capacity.sources._docker_api import StatsApiReader
from capacity.sources._host import HostReader
from capacity.sources._types import ContainerInfo
from capacity.store import Store

LABEL = "capacity.bench"
IMAGE = "capacity-bench-busybox:latest"
#: stats API calls in flight, as the collector makes them
API_WORKERS = int((Collector.__init__.__kwdefaults__ or {})["api_workers"])
ENGINE_PROCESSES = ("dockerd", "containerd", "containerd-shim", "containerd-shim-runc-v2")


def _engine_pids() -> list[psutil.Process]:
    procs = []
    for p in psutil.process_iter(["name"]):
        if p.info["name"] in ENGINE_PROCESSES:
            procs.append(p)
    return procs


def _cpu_of(procs: Sequence[psutil.Process]) -> float:
    total = 0.0
    for p in procs:
        with contextlib.suppress(psutil.Error):
            t = p.cpu_times()
            total += t.user + t.system
    return total


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def measure(fn: Callable[[], Any], repeat: int) -> dict[str, float]:
    """Median wall, client CPU and engine CPU seconds of ``repeat`` calls of ``fn``."""
    walls, clients, engines = [], [], []
    for _ in range(repeat):
        engine = _engine_pids()
        e0, c0, k0 = _cpu_of(engine), time.process_time(), _children_cpu()
        t0 = time.perf_counter()
        fn()
        walls.append(time.perf_counter() - t0)
        clients.append(time.process_time() - c0 + _children_cpu() - k0)
        engines.append(_cpu_of(engine) - e0)
    return {
        "wall_s": statistics.median(walls),
        "client_cpu_s": statistics.median(clients),
        "engine_cpu_s": statistics.median(engines),
    }


def start_containers(client: Any, n: int, run_id: str) -> list[Any]:
    def one(i: int) -> Any:
        return client.containers.run(
            IMAGE, ["sleep", "3600"], detach=True, labels={LABEL: run_id},
            name=f"capacity-bench-{run_id}-{i}",
        )

    with ThreadPoolExecutor(4) as pool:
        return list(pool.map(one, range(n)))


def remove_containers(client: Any, run_id: str) -> None:
    for c in client.containers.list(all=True, filters={"label": f"{LABEL}={run_id}"}):
        with contextlib.suppress(Exception):
            c.remove(force=True, v=True)


def bench_rounds(
    client: Any, infos: list[ContainerInfo], containers: list[Any], repeat: int, slow_repeat: int
) -> dict[str, dict[str, float]]:
    ids = [i.id for i in infos]
    cgroup = CgroupReader()
    cached = CachedCgroupReader()
    api = StatsApiReader(client)
    api.read_many(infos[:1])  # host memory lookup, connection warm-up
    workers = min(API_WORKERS, len(infos))
    results = {}

    def cgroup_round(reader: Any) -> None:
        for info in infos:
            reader.read(info)

    results["cgroup (CgroupReader)"] = measure(lambda: cgroup_round(cgroup), repeat)
    cgroup_round(cached)  # locate once, as the collector's first round does
    results["cgroup, cached location (collector)"] = measure(
        lambda: cgroup_round(cached), repeat
    )
    results[f"stats API (one-shot, {workers} in flight)"] = measure(
        lambda: api.read_many(infos, max_workers=workers), slow_repeat
    )
    results["docker-py stats(stream=False)"] = measure(
        lambda: [c.stats(stream=False) for c in containers], 1
    )
    results["docker stats --no-stream"] = measure(
        lambda: subprocess.run(
            ["docker", "stats", "--no-stream", "--format", "{{.ID}} {{.CPUPerc}}", *ids],
            check=True, capture_output=True,
        ),
        slow_repeat,
    )

    # for information: a whole collector round (list + cgroup reads + host + SQLite write)
    engine = DockerEngine(client, filters={"id": ids})
    engine.containers()  # inspect once per lifecycle, as in a run
    host = HostReader()
    with tempfile.TemporaryDirectory() as tmp, Store(Path(tmp) / "s.sqlite") as store:

        def collector_round() -> None:
            listed = engine.containers()
            counters = [cached.read(i) for i in listed]
            store.write_round(datetime_now(), time.monotonic(), listed, counters, host.read())

        name = "collector round (list+cached cgroup+host+store)"
        results[name] = measure(collector_round, repeat)
    return results


_RUN_CHILD = """
import inspect, json, tempfile, time
from pathlib import Path
from capacity._cli.collect import DEFAULT_COMMIT_EVERY_S
from capacity._collect import CachedCgroupReader, Collector, DockerEngine
from capacity.sources._docker import connect
from capacity.sources._host import HostReader
from capacity.store import Store
engine = DockerEngine(connect(timeout_s=60), filters={{"id": {ids!r}}})
kwargs = {{"relist_s": 10.0}} if "relist_s" in inspect.signature(Collector).parameters else {{}}
# the store commits as `capacity collect --interval 1s` has it commit: every
# --commit-every (default 5 s) worth of rounds, or every round ({batch!r})
batch = {batch!r} or max(1, round(DEFAULT_COMMIT_EVERY_S / 1.0))
with tempfile.TemporaryDirectory() as tmp, \
        Store(Path(tmp) / "s.sqlite", batch_rounds=batch) as store:
    collector = Collector(engine, CachedCgroupReader(), store, host_reader=HostReader(),
                          events=engine, **kwargs)
    collector.run(interval_s=1.0, duration_s=0.0)  # first round: inspect, locate, open
    collector = Collector(engine, collector.reader, store, host_reader=HostReader(),
                          events=engine, **kwargs)
    t0, c0 = time.perf_counter(), time.process_time()
    # rounds are due every 1 ms and a late round does not shift the schedule, so this runs
    # {rounds} + 1 rounds back to back, however long each takes
    collector.run(interval_s=0.001, duration_s={rounds} * 0.001)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
print(json.dumps({{"rounds": collector.rounds, "wall_s": wall / collector.rounds, "batch": batch,
                  "cpu_s": cpu / collector.rounds, "rows": collector.rows_written,
                  "listings": getattr(collector, "listings", collector.rounds)}}))
"""


def collector_rounds(ids: list[str], baseline: Path | None, rounds: int = 100,
                     batch_rounds: int | None = None,
                     reverse: bool = False) -> dict[str, dict[str, float]]:
    """Per round, wall and CPU of ``rounds`` rounds of ``Collector.run`` back to back, as
    ``capacity collect --interval 1s`` sets it up (events pumped, cached cgroup reader, host
    totals, SQLite store committing every 5 rounds, or every ``batch_rounds``), under each
    tree in a child."""
    import _baseline

    trees = _baseline.trees(baseline)
    return {
        name: _baseline.run(_RUN_CHILD.format(ids=ids, rounds=rounds, batch=batch_rounds), tree)
        for name, tree in (trees[::-1] if reverse else trees)
    }


def datetime_now() -> Any:
    from datetime import UTC, datetime

    return datetime.now(UTC)


def bench_collector(
    run_id: str, seconds: float, warmup_s: float, interval_s: float = 1.0,
    tree: Path | None = None,
) -> dict[str, float]:
    """CPU of a real ``capacity collect --interval <interval_s>`` over a steady window
    (``tree``: run that checkout of capacity instead of this one)."""
    env = dict(os.environ)
    if tree is not None:
        env["PYTHONPATH"] = str(tree.resolve())
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [
            sys.executable, "-m", "capacity", "collect", "--interval", f"{interval_s:g}s",
            "--duration", f"{seconds + warmup_s + 5:g}s", "--store", f"{tmp}/s.sqlite",
            "--filter", f"label={LABEL}={run_id}", "--quiet",
        ]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                env=env, cwd=str(tree.resolve()) if tree else None)
        try:
            p = psutil.Process(proc.pid)
            time.sleep(warmup_s)
            engine = _engine_pids()
            t0, e0 = p.cpu_times(), _cpu_of(engine)
            w0 = time.monotonic()
            time.sleep(seconds)
            t1, e1 = p.cpu_times(), _cpu_of(engine)
            wall = time.monotonic() - w0
            _, err = proc.communicate(timeout=seconds + 60)
            if proc.returncode != 0:
                raise RuntimeError(f"capacity collect failed: {err.decode()}")
            with Store(f"{tmp}/s.sqlite", create=False) as store:
                rows = len(store.counters())
        finally:
            if proc.poll() is None:
                proc.kill()
    cpu = (t1.user + t1.system) - (t0.user + t0.system)
    return {
        "window_s": wall,
        "cpu_s": cpu,
        "core_fraction": cpu / wall,
        "engine_core_fraction": (e1 - e0) / wall,
        "rows": rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", default="10,50,100",
                        help="container counts, comma-separated (default 10,50,100)")
    parser.add_argument("--repeat", type=int, default=5,
                        help="rounds per count for the fast paths (median reported)")
    parser.add_argument("--slow-repeat", type=int, default=3,
                        help="rounds per count for docker stats --no-stream")
    parser.add_argument("--collector-s", type=float, default=30.0,
                        help="steady window of the collector CPU measurement; 0 skips it")
    parser.add_argument("--warmup-s", type=float, default=8.0,
                        help="seconds before the window (imports, first disk usage pass)")
    parser.add_argument("--collector-interval-s", type=float, default=1.0,
                        help="--interval of the collector CPU measurement")
    parser.add_argument("--collector-only", action="store_true",
                        help="skip the per-round comparison; only the collector CPU")
    parser.add_argument("--baseline", type=Path, default=None,
                        help="also run the collector of this checkout (git worktree add "
                             "/tmp/base d51daf9), side by side")
    parser.add_argument("--runs", type=int, default=1,
                        help="repeat the --round-only and the collector CPU measurements this "
                             "many times (the trees' order alternates)")
    parser.add_argument("--round-only", action="store_true",
                        help="per count: docker stats --no-stream against whole collector "
                             "rounds (Collector.run back to back) only")
    args = parser.parse_args()
    counts = sorted(int(c) for c in args.counts.split(","))

    client = connect(timeout_s=60)
    build_busybox_image(client, IMAGE, labels={LABEL: "image"})
    run_id = uuid.uuid4().hex[:8]
    print(f"# bench_collect: run {run_id}, {psutil.cpu_count()} CPUs, "
          f"load {os.getloadavg()[0]:.1f}, engine {client.version().get('Version')}")
    try:
        containers = start_containers(client, max(counts), run_id)
        by_id = {c.id: c for c in containers}
        infos = DockerEngine(client, filters={"label": [f"{LABEL}={run_id}"]}).containers()
        infos.sort(key=lambda i: i.name)
        table = []
        if args.round_only:
            print("| run | containers | method | tree | wall s/round | CPU s/round | listings "
                  "| speed-up vs docker stats (wall) |")
            print("| ---: | ---: | --- | --- | ---: | ---: | ---: | ---: |")
            for run in range(1, args.runs + 1):
                for n in counts:
                    ids = [i.id for i in infos[:n]]
                    stats = measure(lambda ids=ids: subprocess.run(
                        ["docker", "stats", "--no-stream", "--format", "{{.ID}} {{.CPUPerc}}",
                         *ids], check=True, capture_output=True), args.slow_repeat)
                    print(f"| {run} | {n} | `docker stats --no-stream` | - "
                          f"| {stats['wall_s']:.3f} | {stats['client_cpu_s']:.3f} | - | 1x |")
                    rounds = collector_rounds(ids, args.baseline, reverse=run % 2 == 0)
                    for name, r in sorted(rounds.items()):
                        print(f"| {run} | {n} | collector round | {name} | {r['wall_s']:.5f} "
                              f"| {r['cpu_s']:.5f} | {r['listings']} of {r['rounds']} "
                              f"| {stats['wall_s'] / r['wall_s']:,.0f}x |", flush=True)
        for n in [] if (args.collector_only or args.round_only) else counts:
            chosen = infos[:n]
            res = bench_rounds(client, chosen, [by_id[i.id] for i in chosen], args.repeat,
                               args.slow_repeat)
            ref = res["docker stats --no-stream"]["wall_s"]
            for method, r in res.items():
                table.append((n, method, r, ref / r["wall_s"]))
            print(f"# {n} containers done", file=sys.stderr)
        if table:
            print()
            print("| containers | method | wall s/round | client CPU s | engine CPU s "
                  "| speed-up vs docker stats (wall) |")
            print("| ---: | --- | ---: | ---: | ---: | ---: |")
        for n, method, r, ratio in table:
            print(f"| {n} | {method} | {r['wall_s']:.4f} | {r['client_cpu_s']:.4f} "
                  f"| {r['engine_cpu_s']:.4f} | {ratio:,.1f}x |")
        if args.collector_s > 0 and not args.round_only:
            import _baseline

            for run in range(1, args.runs + 1):
                trees = _baseline.trees(args.baseline)
                for name, tree in trees[::-1] if run % 2 == 0 else trees:  # alternate order
                    load = os.getloadavg()[0]
                    c = bench_collector(run_id, args.collector_s, args.warmup_s,
                                        args.collector_interval_s, tree)
                    print()
                    print(f"collector ({name}, run {run}), `capacity collect --interval "
                          f"{args.collector_interval_s:g}s` on {max(counts)} containers, "
                          f"steady window {c['window_s']:.1f} s (load {load:.1f}): "
                          f"{c['cpu_s']:.2f} s CPU = {100 * c['core_fraction']:.2f} % of one "
                          f"core = {1e3 * c['core_fraction'] * args.collector_interval_s:.1f} "
                          f"ms per round, threads included (engine processes meanwhile: "
                          f"{100 * c['engine_core_fraction']:.2f} % of one core); "
                          f"{c['rows']} rows", flush=True)
    finally:
        remove_containers(client, run_id)


if __name__ == "__main__":
    main()
