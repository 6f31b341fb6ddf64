"""Benchmark of the sample store: write throughput, and read-back + counters_to_samples.

Run from the repository root::

    .venv/bin/python benchmarks/bench_store.py                # defaults below
    .venv/bin/python benchmarks/bench_store.py --rounds 300 --read-rows 1000000
    .venv/bin/python benchmarks/bench_store.py --store /tmp/6m.sqlite --read-rows 6000000 \
        --baseline /tmp/base --repeat 3   # read 6 M rows back here and on the baseline

The baseline is a plain copy of another commit (git archive 184c71d | tar -x -C /tmp/base).

Writes go to a temporary directory on the same filesystem as ``--dir`` (default: the
system's temp dir). Numbers are wall time on this machine; the table is printed to stdout.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from capacity.sources._types import ContainerCounters, ContainerInfo, HostCounters
from capacity.store import Store, counters_to_samples

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def _infos(n: int) -> list[ContainerInfo]:
    return [
        ContainerInfo(
            id=f"{i:064x}",
            name=f"svc{i % 5}-{i}",
            image=f"img{i % 5}:1",
            service=f"svc{i % 5}",
            pid=1000 + i,
            started_at=T0,
            labels={"com.docker.compose.service": f"svc{i % 5}"},
        )
        for i in range(n)
    ]


def _readings(infos: list[ContainerInfo], k: int) -> list[ContainerCounters]:
    return [
        ContainerCounters(
            container_id=c.id,
            cpu_usage_seconds_total=0.25 * k + i,
            memory_usage_bytes=10_000_000 + k,
            memory_working_set_bytes=8_000_000 + k,
            cpu_periods_total=100 * k,
            cpu_throttled_periods_total=k,
            disk_read_bytes_total=4096 * k,
            disk_write_bytes_total=8192 * k,
            net_rx_bytes_total=1500 * k,
            net_tx_bytes_total=700 * k,
            net_namespace=4026531000 + i,
            pids=3,
        )
        for i, c in enumerate(infos)
    ]


def _host(k: int) -> HostCounters:
    return HostCounters(4.0 * k, 10**9, 8 * 10**9, 10**4 * k, 10**4 * k, 10**5 * k, 10**5 * k, 8)


def bench_write(directory: Path, containers: int, rounds: int, batch: int) -> float:
    """Rows per second for ``rounds`` rounds of ``containers`` readings, committed every batch."""
    infos = _infos(containers)
    prepared = [_readings(infos, k) for k in range(rounds)]
    path = directory / f"write-{batch}.sqlite"
    with Store(path, batch_rounds=batch) as store:
        start = time.perf_counter()
        for k in range(rounds):
            store.write_round(
                T0 + timedelta(seconds=10 * k), 10.0 * k, infos, prepared[k], _host(k)
            )
        store.flush()
        elapsed = time.perf_counter() - start
    return containers * rounds / elapsed


def bench_read(directory: Path, containers: int, rows: int) -> dict[str, float]:
    """Seconds to read ``rows`` counters rows back and turn them into samples."""
    infos = _infos(containers)
    rounds = rows // containers
    path = directory / "read.sqlite"
    with Store(path, batch_rounds=500) as store:
        for k in range(rounds):
            store.write_round(T0 + timedelta(seconds=10 * k), 10.0 * k, infos, _readings(infos, k))
    size_mb = path.stat().st_size / 1e6
    with Store(path, create=False) as store:
        t = time.perf_counter()
        counters = store.counters()
        t_read = time.perf_counter() - t
        meta = store.containers()
        t = time.perf_counter()
        samples = counters_to_samples(counters, meta)
        t_rates = time.perf_counter() - t
        t = time.perf_counter()
        store.samples()
        t_samples = time.perf_counter() - t
    assert len(counters) == rounds * containers and len(samples) == (rounds - 1) * containers
    return {
        "rows": float(len(counters)),
        "file_mb": size_mb,
        "counters()": t_read,
        "counters_to_samples": t_rates,
        "samples() total": t_samples,
    }


_READ_CHILD = """
import hashlib, json, sys, time
import pandas as pd
from capacity.store import Store, counters_to_samples
with Store({path!r}, create=False, read_only=True) as store:
    t, c = time.perf_counter(), time.process_time()
    samples = store.samples()
    t_samples, c_samples = time.perf_counter() - t, time.process_time() - c
    if {steps}:
        t = time.perf_counter(); counters = store.counters(); t_read = time.perf_counter() - t
        meta = store.containers()
        t = time.perf_counter(); counters_to_samples(counters, meta)
        t_rates = time.perf_counter() - t
    else:
        t_read = t_rates = float("nan")
# what the samples are, to compare the trees' answers: every value, dtype and column name
digest = hashlib.sha256(repr(list(samples.dtypes.items())).encode())
digest.update(pd.util.hash_pandas_object(samples, index=True).to_numpy().tobytes())
print(json.dumps({{"counters()": t_read, "counters_to_samples": t_rates,
                  "samples() total": t_samples, "samples() CPU": c_samples,
                  "samples": len(samples), "digest": digest.hexdigest()}}))
"""


def fill(path: Path, containers: int, rows: int) -> None:
    """A store of ``rows`` counters rows (``containers`` per round, 10 s apart)."""
    infos = _infos(containers)
    with Store(path, batch_rounds=500) as store:
        for k in range(rows // containers):
            store.write_round(T0 + timedelta(seconds=10 * k), 10.0 * k, infos, _readings(infos, k))


def compare_read(path: Path, baseline: Path | None, steps: bool = False,
                 repeat: int = 1) -> None:
    """Read the same store back under the baseline and this tree, each in a fresh child,
    ``repeat`` times taking turns; print each run, the medians and whether the samples
    tables are the same (a digest of every value, dtype and column)."""
    import statistics

    from _baseline import run, trees

    print(f"\nread back {path} ({path.stat().st_size / 1e6:,.0f} MB), each tree in a child:")
    print("| tree | run | samples() wall s | samples() CPU s | counters() s "
          "| counters_to_samples s | samples rows | digest |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    results: dict[str, list[dict[str, float]]] = {}
    for k in range(repeat):
        for name, tree in trees(baseline):
            code = _READ_CHILD.format(path=str(path), steps=steps)
            r = run(code, tree)
            results.setdefault(name, []).append(r)
            print(f"| {name} | {k + 1} | {r['samples() total']:.2f} | {r['samples() CPU']:.2f} "
                  f"| {r['counters()']:.2f} | {r['counters_to_samples']:.2f} | {r['samples']:,} "
                  f"| {r['digest'][:12]} |", flush=True)
    median = {name: {key: statistics.median(r[key] for r in runs)
                     for key in ("samples() total", "samples() CPU")}
              for name, runs in results.items()}
    for name, m in median.items():
        print(f"median, {name}: {m['samples() total']:.2f} s wall, "
              f"{m['samples() CPU']:.2f} s CPU")
    if len(results) == 2:
        b, t = median["baseline"], median["this tree"]
        same = {r["digest"] for runs in results.values() for r in runs}
        print(f"samples(): {b['samples() total'] / t['samples() total']:.1f}x faster (wall), "
              f"{b['samples() CPU'] / t['samples() CPU']:.1f}x less CPU than the baseline; "
              f"samples {'identical' if len(same) == 1 else 'DIFFERENT'} in every run")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--containers", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=300, help="rounds per write benchmark")
    parser.add_argument("--read-rows", type=int, default=1_000_000)
    parser.add_argument("--dir", type=Path, default=None, help="where the temporary stores go")
    parser.add_argument("--store", type=Path, default=None,
                        help="compare reading this store (filled with --read-rows rows first "
                             "when missing) under --baseline and this tree, and stop")
    parser.add_argument("--baseline", type=Path, default=None,
                        help="a copy of the baseline commit "
                             "(git archive 184c71d | tar -x -C /tmp/base)")
    parser.add_argument("--steps", action="store_true",
                        help="with --store: also time counters() and counters_to_samples apart")
    parser.add_argument("--repeat", type=int, default=1,
                        help="with --store: read this many times per tree, taking turns")
    args = parser.parse_args()
    if args.store is not None:
        if not args.store.exists():
            fill(args.store, args.containers, args.read_rows)
        compare_read(args.store, args.baseline, args.steps, args.repeat)
        return
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        directory = Path(tmp)
        print(f"write: {args.containers} containers x {args.rounds} rounds, synchronous=NORMAL")
        print(f"{'batch_rounds':>12}  {'rows/s':>12}  {'rounds/s':>10}")
        for batch in (1, 10):
            rate = bench_write(directory, args.containers, args.rounds, batch)
            print(f"{batch:>12}  {rate:>12,.0f}  {rate / args.containers:>10,.1f}")
        result = bench_read(directory, args.containers, args.read_rows)
        print(f"\nread: {result['rows']:,.0f} counters rows, file {result['file_mb']:.0f} MB")
        for name in ("counters()", "counters_to_samples", "samples() total"):
            print(f"{name:>22}  {result[name]:6.2f} s")


if __name__ == "__main__":
    main()
