"""Benchmark of the disk probe: its sequential write against ``dd oflag=direct`` on the same
filesystem, in the same run (issue 12: within 20 %).

Run from the repository root (as a user who can write to the directory)::

    .venv/bin/python benchmarks/bench_disk_probe.py                  # Docker's data root
    .venv/bin/python benchmarks/bench_disk_probe.py --dir /var/lib/docker --size-mib 512

Each round runs the probe and ``dd if=SRC of=TMP bs=1M count=N oflag=direct conv=fdatasync``
(the probe also ends its sequential write with fdatasync) twice: ``SRC`` = /dev/zero (the
usual form of the command) and a file of random bytes in /dev/shm (so a compressing or
deduplicating virtual disk is not flattered; dd then also copies each block from memory,
serially, which the probe does not). The order alternates each round so neither always runs
on a warmer device. Both write into temporary files in ``--dir``,
removed afterwards. The table prints MB/s per round and the median ratio probe / dd.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import tempfile
from pathlib import Path

from capacity.sources._probe import probe_disk

MIB = 2**20


def dd_write_bytes_per_second(directory: Path, source: Path | str, size_mib: int) -> float:
    fd, target = tempfile.mkstemp(prefix=".capacity-dd-", dir=directory)
    os.close(fd)
    try:
        out = subprocess.run(
            ["dd", f"if={source}", f"of={target}", "bs=1M", f"count={size_mib}",
             "oflag=direct", "conv=fdatasync"],
            check=True, capture_output=True, text=True, timeout=300,
        ).stderr
    finally:
        Path(target).unlink(missing_ok=True)
    # "268435456 bytes (268 MB, 256 MiB) copied, 0.2 s, 1.3 GB/s"
    match = re.search(r"(\d+) bytes .* copied, ([0-9.]+) s", out)
    if match is None:
        raise RuntimeError(f"cannot read dd's output: {out!r}")
    return int(match.group(1)) / float(match.group(2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=Path("/var/lib/docker"))
    parser.add_argument("--size-mib", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    shm = Path("/dev/shm") if Path("/dev/shm").is_dir() else Path(tempfile.gettempdir())
    fd, source_name = tempfile.mkstemp(prefix="capacity-dd-src-", dir=shm)
    source = Path(source_name)
    with os.fdopen(fd, "wb") as fh:
        for _ in range(args.size_mib):
            fh.write(os.urandom(MIB))
    rows = []
    try:
        for i in range(args.rounds):
            order = ("probe", "dd") if i % 2 == 0 else ("dd", "probe")
            got = {}
            for who in order:
                if who == "probe":
                    got[who] = probe_disk(args.dir, size_bytes=args.size_mib * MIB,
                                          random_seconds=0.2).sequential_write_bytes_per_second
                else:
                    got[who] = dd_write_bytes_per_second(args.dir, "/dev/zero", args.size_mib)
                    got["dd_random"] = dd_write_bytes_per_second(args.dir, source,
                                                                 args.size_mib)
            rows.append((i + 1, got["probe"], got["dd"], got["dd_random"]))
    finally:
        source.unlink(missing_ok=True)
    print(f"sequential O_DIRECT write of {args.size_mib} MiB in {args.dir}")
    print(f"{'round':>5}  {'probe MB/s':>11}  {'dd zero MB/s':>12}  {'dd random MB/s':>14}  "
          f"{'probe/dd zero':>13}  {'probe/dd random':>15}")
    for r, p, d, dr in rows:
        print(f"{r:>5}  {p / 1e6:>11,.0f}  {d / 1e6:>12,.0f}  {dr / 1e6:>14,.0f}  "
              f"{p / d:>13.3f}  {p / dr:>15.3f}")
    zero = statistics.median(p / d for _, p, d, _ in rows)
    rand = statistics.median(p / dr for _, p, _, dr in rows)
    print(f"median probe/dd (if=/dev/zero): {zero:.3f}; probe/dd (random source in memory): "
          f"{rand:.3f} (issue 12 asks for 0.8 to 1.2)")

if __name__ == "__main__":
    main()
