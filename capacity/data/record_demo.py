"""Record the bundled demo: real busybox containers with known workloads, sampled live.

Run on a host with a Docker Engine (as root, cgroup files readable)::

    .venv/bin/python -m capacity.data.record_demo --duration 180

It builds the busybox image FROM scratch, starts the workloads below as a Compose-labelled
project ``demo``, samples them every second with the collector, writes
``demo_counters.csv.gz`` (the raw counters table) and ``demo_containers.csv`` (one row per
container) next to this file, and removes every container it started.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import uuid
from pathlib import Path
from typing import Any

#: service -> (replicas, command, extra docker run arguments)
WORKLOADS: dict[str, tuple[int, str, dict[str, Any]]] = {
    # steady CPU: a busy loop capped at 0.3 cores
    "cpu-burner": (2, "while :; do :; done", {"nano_cpus": 300_000_000}),
    # bursty CPU: 2 s busy, 3 s idle, with the phase set by the container's start
    "cpu-bursty": (
        2,
        "while :; do end=$(( $(date +%s) + 2 )); while [ $(date +%s) -lt $end ]; do :; done;"
        " sleep 3; done",
        {"nano_cpus": 500_000_000},
    ),
    # memory: 64 MiB written to a tmpfs (charged to the container's memory cgroup), then idle
    "mem-holder": (
        2,
        "dd if=/dev/zero of=/hold/data bs=1M count=64 2>/dev/null; sleep 100000",
        {"tmpfs": {"/hold": "size=96m"}},
    ),
    # memory that grows and shrinks: 16 MiB steps up to 80 MiB, then back
    "mem-sawtooth": (
        1,
        "while :; do for i in 1 2 3 4 5; do dd if=/dev/zero of=/hold/$i bs=1M count=16"
        " 2>/dev/null; sleep 4; done; rm -f /hold/*; sleep 4; done",
        {"tmpfs": {"/hold": "size=96m"}},
    ),
    # mostly idle
    "idle": (2, "sleep 100000", {}),
}

LABEL = "capacity.demo-recording"


def main(argv: list[str] | None = None) -> int:
    from capacity._busybox import build_busybox_image
    from capacity._collect import Collection, Collector, DockerEngine
    from capacity.sources._cgroup import CgroupReader
    from capacity.sources._docker import connect

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=180.0, help="seconds to sample")
    parser.add_argument("--interval", type=float, default=1.0, help="sampling interval, s")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent)
    args = parser.parse_args(argv)

    client = connect()
    image = build_busybox_image(client)
    run_id = uuid.uuid4().hex[:8]
    started = []
    try:
        for service, (replicas, command, extra) in WORKLOADS.items():
            for i in range(replicas):
                started.append(
                    client.containers.run(
                        image,
                        ["sh", "-c", command],
                        detach=True,
                        name=f"demo-{service}-{i + 1}-{run_id}",
                        labels={
                            LABEL: run_id,
                            "com.docker.compose.project": "demo",
                            "com.docker.compose.service": service,
                        },
                        **extra,
                    )
                )
        collection = Collection()
        engine = DockerEngine(client, filters={"label": [f"{LABEL}={run_id}"]})
        Collector(engine, CgroupReader(), collection).run(
            interval_s=args.interval, duration_s=args.duration
        )
    finally:
        for c in started:
            with contextlib.suppress(Exception):
                c.remove(force=True)
    counters = collection.counters_frame()
    containers = collection.containers_frame()
    # Names carry the run id; keep them stable and short in the shipped file.
    containers["name"] = containers["name"].str.replace(f"-{run_id}", "", regex=False)
    containers["labels"] = containers["labels"].map(
        lambda d: ";".join(f"{k}={v}" for k, v in sorted(d.items()) if k != LABEL)
    )
    counters.to_csv(args.out / "demo_counters.csv.gz", index=False, compression="gzip")
    containers.to_csv(args.out / "demo_containers.csv", index=False)
    print(f"{len(counters)} rows from {len(containers)} containers -> {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
