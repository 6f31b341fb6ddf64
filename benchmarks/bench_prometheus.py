"""Benchmark: read 7 days x 200 containers at 30 s from a local Prometheus, and fit.

Run from the repository root (needs Debian's ``prometheus`` and ``promtool``)::

    .venv/bin/python benchmarks/bench_prometheus.py [--containers 200] [--days 7]
        [--data DIR] [--repeat N] [--baseline TREE]

1. Writes OpenMetrics text for ``--containers`` containers (20 services of 10 replicas
   each at 200) scraped every 30 s for ``--days`` days: ``container_cpu_usage_seconds_total``
   and ``container_memory_working_set_bytes`` with cAdvisor's labels (the other series the
   reader asks for are absent, so their reads come back empty and cost one round trip
   each), one file per 2 h block window.
2. Backfills each file with ``promtool tsdb create-blocks-from openmetrics`` (timed, not
   part of the target) and starts ``prometheus`` on a free loopback port over the blocks.
   ``--data DIR`` keeps the blocks, and reuses them when they are complete.
3. In a fresh child process per ``--repeat``: ``load_prometheus`` (raw samples in windows
   under 11,000 per series and 500,000 per answer, rates by the store's function) then
   ``fit_profiles``; prints wall and CPU time of each and the child's peak resident memory
   (``ru_maxrss``). Target: under 60 s and 2 GiB. ``--baseline TREE`` (another checkout,
   e.g. ``git -C . archive <commit> | tar -x -C /tmp/base``) runs the same child under that
   tree too, alternating with this one against the same server, one row each.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np

STEP_S = 30
END_S = 1_793_491_200  # 2026-11-01T00:00:00Z


#: promtool cuts blocks at multiples of 2 h of absolute time
BLOCK_S = 7200


def _series(containers: int, days: float, seed: int
            ) -> tuple[np.ndarray, list[tuple[str, str, str, np.ndarray]]]:
    """Scrape times and, per series, (family, kind, label text, values)."""
    rng = np.random.default_rng(seed)
    n = int(days * 86400 / STEP_S) + 1
    times = END_S - STEP_S * np.arange(n)[::-1]
    out = []
    for family, kind in (("container_cpu_usage_seconds", "counter"),
                         ("container_memory_working_set_bytes", "gauge")):
        for c in range(containers):
            service = f"svc{c // 10:02d}"
            labels = (f'{{container_label_com_docker_compose_project="bench",'
                      f'container_label_com_docker_compose_service="{service}",'
                      f'id="/docker/{c:064x}",image="bench/{service}:1",'
                      f'instance="host{c % 20:02d}:8080",job="cadvisor",'
                      f'name="bench-{service}-{c % 10}"}} ')
            if kind == "counter":
                cores = rng.gamma(2.0, 0.1 + 0.02 * (c // 10), n)
                values = np.cumsum(cores * STEP_S)
            else:
                values = (50 + 10 * (c // 10)) * 2**20 + rng.normal(0, 2**20, n).cumsum()
                values = np.abs(values)
            out.append((family, kind, labels, values))
    return times, out


def write_openmetrics(folder: Path, containers: int, days: float, seed: int = 0
                      ) -> list[Path]:
    """One OpenMetrics file per 2 h block window (so promtool reads each sample once).

    ``promtool tsdb create-blocks-from openmetrics`` (2.42 has no ``--max-block-duration``)
    makes one 2 h block per pass over its whole input: one 7-day file is 84 passes over
    2.5 GB (about 30 min on this host). Files cut at the block boundaries are read once.
    """
    times, series = _series(containers, days, seed)
    window = (times - 1) // BLOCK_S  # END_S is a block boundary: keep its sample last
    files = []
    for w in np.unique(window):
        mask = window == w
        t_text = [f" {t}\n" for t in times[mask]]
        path = folder / f"block-{int(w)}.om"
        with path.open("w") as f:
            family_done = set()
            for family, kind, labels, values in series:
                if family not in family_done:
                    f.write(f"# TYPE {family} {kind}\n")
                    family_done.add(family)
                sample = family + ("_total" if kind == "counter" else "")
                head = sample + labels
                f.writelines([f"{head}{v:.6g}{t}" for v, t in zip(values[mask], t_text,
                                                                     strict=True)])
            f.write("# EOF\n")
        files.append(path)
    return files


def backfill(promtool: str, files: list[Path], data: Path) -> None:
    """Each window's file into blocks in ``data``, one promtool run each, then removed."""
    for path in files:
        subprocess.run([promtool, "tsdb", "create-blocks-from", "openmetrics", "--quiet",
                        str(path), str(data)], check=True, capture_output=True)
        path.unlink()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def child(url: str, since_s: float) -> None:
    from datetime import UTC, datetime

    import scipy.stats  # noqa: F401  (imported before the clock starts, as in bench_fit)

    from capacity._pipeline import fit_profiles, load_prometheus
    from capacity.sources._prometheus import PrometheusAPI

    t0, c0 = time.perf_counter(), time.process_time()
    with PrometheusAPI(url, timeout_s=600) as api:
        data = load_prometheus(api, since_s=since_s, step_s=STEP_S,
                               now=datetime.fromtimestamp(END_S + 1, tz=UTC))
        requests = api.requests_made
    t1, c1 = time.perf_counter(), time.process_time()
    profiles = fit_profiles(data)
    t2, c2 = time.perf_counter(), time.process_time()
    print(json.dumps({
        "rows": len(data.samples), "containers": int(data.samples["container_id"].nunique()),
        "services": len(profiles), "requests": requests,
        "read_wall_s": t1 - t0, "read_cpu_s": c1 - c0, "fit_wall_s": t2 - t1,
        "fit_cpu_s": c2 - c1, "peak_rss_mib": resource.getrusage(
            resource.RUSAGE_SELF).ru_maxrss / 1024,
    }))


def serve(prometheus: str, work: Path, data: Path) -> tuple[subprocess.Popen[bytes], str]:
    """``prometheus`` over ``data`` on a free loopback port, ready; (process, URL).

    ``--storage.tsdb.max-block-duration=2h`` (a hidden flag) keeps the server from
    compacting the backfilled 2 h blocks into longer ones while the read is timed."""
    (work / "prometheus.yml").write_text("global: {}\n")
    port = free_port()
    server = subprocess.Popen(
        [prometheus, f"--config.file={work / 'prometheus.yml'}",
         f"--storage.tsdb.path={data}", f"--web.listen-address=127.0.0.1:{port}",
         "--storage.tsdb.retention.time=3650d", "--storage.tsdb.max-block-duration=2h",
         "--log.level=warn"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(3000):
        try:
            urllib.request.urlopen(f"{url}/-/ready", timeout=1).read()
            return server, url
        except OSError:
            if server.poll() is not None:
                sys.exit(f"prometheus exited with {server.returncode}")
            time.sleep(0.2)
    server.terminate()
    sys.exit("prometheus did not become ready in 10 minutes")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--containers", type=int, default=200)
    parser.add_argument("--days", type=float, default=7.0)
    parser.add_argument("--data", type=Path, default=None,
                        help="keep the backfilled TSDB here (reused when it exists, so "
                             "repeated reads do not pay the backfill)")
    parser.add_argument("--repeat", type=int, default=1, help="timed reads, each in a "
                        "fresh child process")
    parser.add_argument("--baseline", type=Path, default=None,
                        help="another checkout of capacity: each repeat times it too, "
                             "alternating with this tree, against the same server")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.days * 86400)
        return
    prometheus, promtool = shutil.which("prometheus"), shutil.which("promtool")
    if not prometheus or not promtool:
        sys.exit("needs Debian's prometheus and promtool (apt-get install prometheus)")
    with tempfile.TemporaryDirectory(prefix="capacity-bench-prom-") as tmp:
        work = Path(tmp)
        data = args.data or work / "data"
        if (data / ".complete").exists():
            print(f"reusing the backfilled TSDB in {data}")
        else:
            shutil.rmtree(data, ignore_errors=True)
            data.mkdir(parents=True)
            t0 = time.perf_counter()
            files = write_openmetrics(work, args.containers, args.days)
            t1 = time.perf_counter()
            backfill(promtool, files, data)
            t2 = time.perf_counter()
            (data / ".complete").write_text(f"{args.containers} {args.days}\n")
            samples = 2 * args.containers * (int(args.days * 86400 / STEP_S) + 1)
            print(f"wrote {samples:,} samples in {len(files)} files in {t1 - t0:.1f} s; "
                  f"promtool backfill {t2 - t1:.1f} s")
        server, url = serve(prometheus, work, data)
        results = []
        here = Path(__file__).resolve().parent.parent
        trees = ([("baseline", args.baseline.resolve())] if args.baseline else []) + [
            ("this tree", here)]
        try:
            for _ in range(args.repeat):
                for label, tree in trees:
                    env = {**os.environ, "PYTHONPATH": str(tree)}
                    out = subprocess.run([sys.executable, __file__, "--child", url, "--days",
                                          str(args.days)], capture_output=True, text=True,
                                         env=env, cwd=tree)
                    if out.returncode != 0:
                        sys.exit(f"the read failed under {tree} (exit {out.returncode}):\n"
                                 f"{out.stderr}")
                    results.append({**json.loads(out.stdout.strip().splitlines()[-1]),
                                    "tree": label})
        finally:
            server.terminate()
            server.wait(timeout=30)
    print("| tree | containers | days | step | samples rows | services | requests "
          "| read wall (s) | read CPU (s) | fit wall (s) | fit CPU (s) | total wall (s) "
          "| peak RSS (MiB) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: "
          "| ---: |")
    for r in results:
        print(f"| {r['tree']} | {r['containers']} | {args.days:g} | {STEP_S} s | {r['rows']:,} "
              f"| {r['services']} | {r['requests']} | {r['read_wall_s']:.1f} "
              f"| {r['read_cpu_s']:.1f} | {r['fit_wall_s']:.1f} | {r['fit_cpu_s']:.1f} "
              f"| {r['read_wall_s'] + r['fit_wall_s']:.1f} | {r['peak_rss_mib']:,.0f} |")


if __name__ == "__main__":
    main()
