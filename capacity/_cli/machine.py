"""``capacity machine``: measure this host once and keep it in the machine file.

``calibrate`` (host cost per container: starts and removes idle containers), ``probe``
(disk bandwidth, NIC speed, filesystems, limits), ``show`` (print the file). The file is
docs/machine.md's versioned TOML; ``--machine local`` reuses it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from .._errors import DockerUnavailable
from ._common import stderr

_FILE_HELP = ("Machine file to update (default $CAPACITY_MACHINE_FILE, else "
              "~/.local/state/capacity/machine.toml).")


def _existing(path: Path) -> dict[str, Any]:
    """The current file's content when it is valid; a broken one is not silently replaced."""
    from ..solver._machinefile import read_machine_file

    return read_machine_file(path) if path.is_file() else {}


def _data_root(client: Any) -> str:
    from docker.errors import DockerException

    try:
        return str(client.info().get("DockerRootDir") or "/var/lib/docker")
    except (DockerException, OSError):  # the engine stopped answering: the default root
        return "/var/lib/docker"


def _volume_paths(client: Any) -> dict[str, str]:
    from docker.errors import DockerException

    try:
        return {v.name: v.attrs.get("Mountpoint", "") for v in client.volumes.list()
                if v.attrs.get("Mountpoint")}
    except (DockerException, OSError):  # volumes are optional
        return {}


@click.group()
def machine() -> None:
    """Measure this host once (host cost, disk bandwidth, NICs, limits) into the machine file."""


@machine.command()
@click.option("--containers", type=click.IntRange(min=10, max=500), default=50,
              show_default=True, help="Idle containers started per cycle.")
@click.option("--cycles", type=click.IntRange(min=1, max=10), default=2, show_default=True,
              help="Start/remove cycles (medians over them).")
@click.option("--batch", type=click.IntRange(min=5, max=500), default=10, show_default=True,
              help="Containers started (removed) per measuring window; at most --containers.")
@click.option("--file", "file_path", type=click.Path(path_type=Path), default=None,
              help=_FILE_HELP)
def calibrate(containers: int, cycles: int, batch: int, file_path: Path | None) -> int:
    """Measure the host cost of one container by starting idle busybox containers.

    Starts --containers idle containers (a busybox image built FROM scratch), --batch at a
    time, --cycles times, measures the shims' memory and the kernel's growth per container
    in each window between batches, removes every one of them (also on Ctrl-C), and writes
    the result to the machine file. The file is left as it was when anything fails.
    """
    from ..solver._machinefile import (
        default_machine_file,
        host_cost_note,
        local_document,
        write_machine_file,
    )
    from ..sources._docker import connect
    from ..sources._hostcost import calibrate_host_cost

    path = file_path or default_machine_file()
    existing = _existing(path)
    client = connect()
    cost = calibrate_host_cost(client, containers=containers, cycles=cycles,
                               batch=min(batch, containers),
                               on_progress=lambda m: stderr(f"capacity: {m}"))
    doc = local_document(existing, host_cost=cost, data_root=_data_root(client), client=client,
                         volume_paths=_volume_paths(client))
    write_machine_file(path, doc)
    click.echo(host_cost_note(cost))
    if "in every one" in cost.note:  # no window without other containers starting/stopping
        stderr("capacity: warning: other containers started or stopped during every "
               "window, so the kernel part is a median over disturbed windows: calibrate "
               "again when the host is quieter")
    if cost.mem_available_drop_bytes is not None:
        click.echo(f"cross-check: MemAvailable dropped {cost.mem_available_drop_bytes / 2**20:.2f}"
                   f" MiB per container (its own working set "
                   f"{(cost.in_cgroup_bytes or 0) / 2**20:.2f} MiB included)")
    stderr(f"capacity: machine file written to {path}")
    return 0


@machine.command()
@click.option("--path", "probe_path", type=click.Path(path_type=Path), default=None,
              help="Directory on the filesystem to probe (default: Docker's data root).")
@click.option("--size", "size_mib", type=click.IntRange(min=16, max=4096), default=256,
              show_default=True, help="Probe file size, MiB.")
@click.option("--no-disk", is_flag=True, help="Skip the disk probe (NICs, filesystems, "
              "limits only).")
@click.option("--file", "file_path", type=click.Path(path_type=Path), default=None,
              help=_FILE_HELP)
def probe(probe_path: Path | None, size_mib: int, no_disk: bool, file_path: Path | None) -> int:
    """Measure disk bandwidth (a few seconds of O_DIRECT I/O in a temporary file it removes),
    NIC speeds, the filesystems behind the data root and volumes, and structural limits."""
    from ..solver._machinefile import default_machine_file, local_document, write_machine_file
    from ..sources._docker import connect
    from ..sources._probe import probe_disk

    path = file_path or default_machine_file()
    existing = _existing(path)
    client: Any = None
    try:
        client = connect()
    except DockerUnavailable as exc:  # the probe works without an engine
        stderr(f"capacity: notice: {exc}; probing without the engine (no networks, volumes)")
    root = str(probe_path) if probe_path else (_data_root(client) if client else
                                                "/var/lib/docker")
    result = None if no_disk else probe_disk(root, size_bytes=size_mib * 2**20)
    doc = local_document(existing, probe=result, data_root=root, client=client,
                         volume_paths=_volume_paths(client) if client else {})
    write_machine_file(path, doc)
    if result is not None:
        write_mb_s = result.sequential_write_bytes_per_second / 1e6
        read_mb_s = result.sequential_read_bytes_per_second / 1e6
        click.echo(f"disk {root}: sequential write {write_mb_s:,.0f} MB/s, read "
                   f"{read_mb_s:,.0f} MB/s; "
                   f"random 4 KiB write {result.random_write_bytes_per_second / 1e6:,.1f} MB/s, "
                   f"read {result.random_read_bytes_per_second / 1e6:,.1f} MB/s "
                   f"({result.duration_s:.1f} s)")
    net = doc.get("network") or {}
    click.echo(f"network: {net.get('nic', '-')} "
               + (f"{net['speed_bits_per_second'] / 1e9:g} Gbit/s"
                  if net.get("speed_bits_per_second") else f"({net.get('note', 'no NIC up')})"))
    stderr(f"capacity: machine file written to {path}")
    return 0


@machine.command()
@click.option("--file", "file_path", type=click.Path(path_type=Path), default=None,
              help="Machine file to show (default: this host's).")
@click.option("--json", "as_json", is_flag=True, help="Print the file as JSON.")
def show(file_path: Path | None, as_json: bool) -> int:
    """Print the machine file (validated), or say that none was written yet."""
    from ..solver._machinefile import default_machine_file, dumps_toml, read_machine_file

    path = file_path or default_machine_file()
    if not path.is_file() and file_path is None:
        click.echo(f"no machine file at {path}: run 'capacity machine calibrate' or "
                   "'capacity machine probe'")
        return 0
    data = read_machine_file(path)
    click.echo(json.dumps(data, indent=2) if as_json else dumps_toml(data), nl=not as_json)
    return 0
