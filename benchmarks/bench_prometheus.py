"""Benchmark: read 7 days x 200 containers at 30 s from a local Prometheus, and fit.

Run from the repository root (needs Debian's ``prometheus`` and ``promtool``)::

    .venv/bin/python benchmarks/bench_prometheus.py [--containers 200] [--days 7]

1. Writes OpenMetrics text for ``--containers`` containers (20 services of 10 replicas
   each at 200) scraped every 30 s for ``--days`` days: ``container_cpu_usage_seconds_total``
   and ``container_memory_working_set_bytes`` with cAdvisor's labels (the other series the
   reader asks for are absent, so their queries come back empty and cost one round trip).
2. Backfills it with ``promtool tsdb create-blocks-from openmetrics`` (timed, not part of
   the target) and starts ``prometheus`` on a free loopback port over those blocks.
3. In a fresh child process: ``load_prometheus`` (query_range at a 30 s step, split under
   the 11,000 points limit) then ``fit_profiles``; prints wall and CPU time of each and the
   child's peak resident memory (``ru_maxrss``). Target: under 60 s and 2 GiB.
"""

from __future__ import annotations

import argparse
import json
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


def write_openmetrics(path: Path, containers: int, days: float, seed: int = 0) -> int:
    rng = np.random.default_rng(seed)
    n = int(days * 86400 / STEP_S) + 1
    times = END_S - STEP_S * np.arange(n)[::-1]
    t_text = [f" {t}" for t in times]
    lines = 0
    with path.open("w") as f:
        for family, kind in (("container_cpu_usage_seconds", "counter"),
                             ("container_memory_working_set_bytes", "gauge")):
            f.write(f"# TYPE {family} {kind}\n")
            sample = family + ("_total" if kind == "counter" else "")
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
                text = [f"{sample}{labels}{v:.6g}{t}\n" for v, t in zip(values, t_text,
                                                                        strict=True)]
                f.writelines(text)
                lines += n
        f.write("# EOF\n")
    return lines


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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--containers", type=int, default=200)
    parser.add_argument("--days", type=float, default=7.0)
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
        t0 = time.perf_counter()
        lines = write_openmetrics(work / "series.om", args.containers, args.days)
        t1 = time.perf_counter()
        subprocess.run([promtool, "tsdb", "create-blocks-from", "openmetrics",
                        str(work / "series.om"), str(work / "data")], check=True,
                       capture_output=True)
        t2 = time.perf_counter()
        (work / "series.om").unlink()
        (work / "prometheus.yml").write_text("global: {}\n")
        port = free_port()
        server = subprocess.Popen(
            [prometheus, f"--config.file={work / 'prometheus.yml'}",
             f"--storage.tsdb.path={work / 'data'}", f"--web.listen-address=127.0.0.1:{port}",
             "--storage.tsdb.retention.time=3650d", "--log.level=warn"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{port}"
        try:
            for _ in range(600):
                try:
                    urllib.request.urlopen(f"{url}/-/ready", timeout=1).read()
                    break
                except OSError:
                    time.sleep(0.2)
            out = subprocess.run([sys.executable, __file__, "--child", url, "--days",
                                  str(args.days)], capture_output=True, text=True)
            if out.returncode != 0:
                sys.exit(f"the read failed (exit {out.returncode}):\n{out.stderr}")
        finally:
            server.terminate()
            server.wait(timeout=30)
    r = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"generated {lines:,} samples in {t1 - t0:.1f} s; promtool backfill {t2 - t1:.1f} s")
    print("| containers | days | step | samples rows | services | requests | read wall (s) "
          "| read CPU (s) | fit wall (s) | fit CPU (s) | total wall (s) | peak RSS (MiB) |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    print(f"| {r['containers']} | {args.days:g} | {STEP_S} s | {r['rows']:,} | {r['services']} "
          f"| {r['requests']} | {r['read_wall_s']:.1f} | {r['read_cpu_s']:.1f} "
          f"| {r['fit_wall_s']:.1f} | {r['fit_cpu_s']:.1f} "
          f"| {r['read_wall_s'] + r['fit_wall_s']:.1f} | {r['peak_rss_mib']:,.0f} |")


if __name__ == "__main__":
    main()
