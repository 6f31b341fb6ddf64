"""What one container costs the host outside its own cgroup: the per-container host cost.

A container's cgroup counts its processes' memory (and, on cgroup v1 with kmem accounting,
some of their kernel memory). It does not count what the host spends to run it:

- its ``containerd-shim`` process (one per container with ``containerd-shim-runc-v2``; a
  shim that serves several containers is divided by the containers it serves), whose
  proportional set size (``Pss`` in ``/proc/<pid>/smaps_rollup``) is a few MiB; the part
  one more container adds is the anonymous and shmem part (``Pss_Anon + Pss_Shmem``): the
  shim binary's file pages are shared by all shims;
- the shim's page tables (``VmPTE``) and kernel stacks (one per thread);
- kernel objects outside any cgroup: the network namespace and veth pair, the cgroup
  directories in every hierarchy, overlay mount, slab and per-CPU data.

Two ways to measure it:

:func:`passive_host_cost`
    From what runs now, every collection: the shims' PSS, page tables and kernel stacks,
    per container served. Cheap (one ``smaps_rollup`` read per shim) and safe on a busy
    host, but blind to the kernel objects of the last bullet.
:func:`calibrate_host_cost`
    Starts K idle containers of a tiny image, reads ``/proc/meminfo`` before and after and
    attributes the growth of ``SUnreclaim``, ``KernelStack``, ``PageTables`` and
    ``VmallocUsed`` (kernel memory that cannot be reclaimed) plus the new shims' PSS to
    them; it also measures the host's ``MemAvailable`` drop per container as a cross-check.
    It always removes every container it started (Ctrl-C, engine gone: ``finally``).

Traps
-----
- ``MemAvailable`` moves with everything else on the host: on a machine where other work
  starts or frees memory during the calibration, the drop per container is noisy (one
  early run here moved it by 190 MB while 50 containers started). The drop is therefore
  measured around several start/remove cycles, drift corrected (the mean of the readings
  before and after), and only kept as a check beside the attributed figure.
- The kernel's reclaimable slab (dentries, inodes of each container's overlay) grows too,
  but it is given back under pressure: it is not counted.
- The in-cgroup working set of the idle containers is *not* host cost: the plan counts it
  already as the service's memory demand.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .._errors import CapacityError, DockerUnavailable, InvalidParameter

__all__ = [
    "CALIBRATION_LABEL",
    "KERNEL_FIELDS",
    "QUIET_BYTES_PER_CONTAINER",
    "Baseline",
    "HostCost",
    "ShimUsage",
    "calibrate_host_cost",
    "measure_baseline",
    "passive_host_cost",
    "read_meminfo",
    "shim_usage",
]

#: label every calibration container carries (with a per-run id), so leftovers can be found
CALIBRATION_LABEL = "capacity.calibrate"
#: /proc/meminfo fields of unreclaimable kernel memory whose growth is attributed to containers
KERNEL_FIELDS: tuple[str, ...] = ("SUnreclaim", "KernelStack", "PageTables", "VmallocUsed")
#: a calibration window whose other processes' anonymous memory moved by more than this per
#: container started is too disturbed to cross-check the MemAvailable drop with, bytes
QUIET_BYTES_PER_CONTAINER = 512 * 1024
#: x86-64 and arm64 kernel stack per thread (THREAD_SIZE), bytes
_KERNEL_STACK_BYTES = 16 * 1024
_SHIM_PREFIX = "containerd-shim"


def read_meminfo(proc_root: str | Path = "/proc") -> dict[str, int]:
    """``/proc/meminfo`` as bytes per field (the ``kB`` of the file is KiB)."""
    out: dict[str, int] = {}
    with open(f"{proc_root}/meminfo") as fh:
        for line in fh:
            key, _, rest = line.partition(":")
            parts = rest.split()
            if not parts:
                continue
            value = int(parts[0])
            out[key.strip()] = value * 1024 if len(parts) > 1 and parts[1] == "kB" else value
    return out


@dataclass(frozen=True)
class ShimUsage:
    """The containerd shims running now, summed.

    Attributes
    ----------
    shims : int
        Shim processes found.
    containers : int
        Containers they serve (a shim's child processes, at least one per shim).
    pss_bytes : int
        Sum of the shims' proportional set size (shared pages split between sharers).
    page_table_bytes : int
        Sum of their ``VmPTE``.
    kernel_stack_bytes : int
        Their threads times the kernel stack size (16 KiB).
    cpu_seconds_total : float
        Their user + system CPU time since they started, seconds.
    anon_bytes : int
        Sum of their anonymous memory (``Anonymous`` in ``smaps_rollup``), bytes.
    pss_private_bytes : int
        The part of their PSS that one more shim adds: anonymous and shmem pages
        (``Pss_Anon + Pss_Shmem``; kernels before 5.x: ``Anonymous``). The rest of the PSS
        is the shim binary's file pages, shared by every shim and reclaimable.
    """

    shims: int
    containers: int
    pss_bytes: int
    page_table_bytes: int
    kernel_stack_bytes: int
    cpu_seconds_total: float
    anon_bytes: int = 0
    pss_private_bytes: int = 0

    @property
    def per_container_bytes(self) -> float | None:
        """Memory per container served (PSS + page tables + kernel stacks), or None."""
        if self.containers <= 0:
            return None
        total = self.pss_private_bytes + self.page_table_bytes + self.kernel_stack_bytes
        return total / self.containers


def _status_fields(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        out[key] = value.strip()
    return out


def shim_usage(
    proc_root: str | Path = "/proc", *, only_ids: set[str] | None = None
) -> ShimUsage:
    """Sum the containerd shims' memory and CPU from ``/proc``.

    Parameters
    ----------
    proc_root : str or Path
        Where ``/proc`` is (a recorded tree in tests).
    only_ids : set of str, optional
        Count only shims whose ``-id`` argument is one of these container ids.

    Notes
    -----
    Needs read access to ``/proc/<pid>/smaps_rollup`` of root's processes (root, or
    ``CAP_SYS_PTRACE``); shims that cannot be read are skipped. A shim that vanishes while
    it is read is skipped too.
    """
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    pids: dict[int, str] = {}
    parents: dict[int, int] = {}
    for entry in os.scandir(proc_root):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"{entry.path}/stat") as fh:
                stat = fh.read()
        except OSError:
            continue
        comm = stat[stat.find("(") + 1:stat.rfind(")")]
        fields = stat[stat.rfind(")") + 2:].split()
        parents[int(entry.name)] = int(fields[1])
        if comm.startswith(_SHIM_PREFIX[:15]):  # comm is cut at 15 characters
            pids[int(entry.name)] = stat
    children: dict[int, int] = {}
    for ppid in parents.values():
        if ppid in pids:
            children[ppid] = children.get(ppid, 0) + 1
    shims = containers = pss = pte = stacks = anon = private = 0
    cpu = 0.0
    for pid, stat in pids.items():
        base = f"{proc_root}/{pid}"
        try:
            if only_ids is not None:
                with open(f"{base}/cmdline", "rb") as fh:
                    args = fh.read().split(b"\0")
                ids = {args[i + 1].decode() for i, a in enumerate(args[:-1]) if a == b"-id"}
                if not ids & only_ids:
                    continue
            rollup: dict[str, int] = {}
            with open(f"{base}/smaps_rollup") as fh:
                for line in fh:
                    key, _, rest = line.partition(":")
                    if key in ("Pss", "Anonymous", "Pss_Anon", "Pss_Shmem"):
                        rollup[key] = int(rest.split()[0]) * 1024
            shim_pss = rollup.get("Pss", 0)
            shim_anon = rollup.get("Anonymous", 0)
            shim_private = (rollup["Pss_Anon"] + rollup.get("Pss_Shmem", 0)
                            if "Pss_Anon" in rollup else shim_anon)
            with open(f"{base}/status") as fh:
                status = _status_fields(fh.read())
        except (OSError, IndexError, ValueError):
            continue
        shims += 1
        containers += max(children.get(pid, 0), 1)
        pss += shim_pss
        anon += shim_anon
        private += shim_private
        pte += int(status.get("VmPTE", "0 kB").split()[0]) * 1024
        stacks += int(status.get("Threads", "1")) * _KERNEL_STACK_BYTES
        fields = stat[stat.rfind(")") + 2:].split()
        cpu += (int(fields[11]) + int(fields[12])) / tick
    return ShimUsage(shims, containers, pss, pte, stacks, cpu, anon, private)


@dataclass(frozen=True)
class HostCost:
    """The host's cost of one container outside its cgroup.

    Attributes
    ----------
    memory_bytes : float
        Per container: shim (PSS, page tables, kernel stacks) plus, when calibrated, the
        kernel's unreclaimable growth per container. What the solver adds to each replica.
    cpu_cores : float
        Per container: the shim's average CPU, cores (0 for idle containers, in practice).
    method : str
        ``"passive"`` (shims only, from what runs) or ``"calibrated"``.
    measured_at : str
        UTC time of the measurement, ISO 8601.
    containers : int
        Containers the figure was measured over.
    shim_bytes : float
        Per container: the shim part.
    kernel_bytes : float or None
        Per container: the unreclaimable kernel memory part (calibration only).
    mem_available_drop_bytes : float or None
        Per container: the host's ``MemAvailable`` drop (calibration only), less the growth
        of other processes' anonymous memory meanwhile: a cross-check that also includes
        the containers' own working set. None when every window was disturbed by other work
        (see :data:`QUIET_BYTES_PER_CONTAINER`).
    in_cgroup_bytes : float or None
        Per container: the idle containers' own working set less the kernel memory charged
        to their cgroups, which is in ``kernel_bytes`` (calibration only).
    note : str
        What the figure leaves out.
    """

    memory_bytes: float
    cpu_cores: float
    method: str
    measured_at: str
    containers: int
    shim_bytes: float
    kernel_bytes: float | None = None
    mem_available_drop_bytes: float | None = None
    in_cgroup_bytes: float | None = None
    note: str = ""

    def __post_init__(self) -> None:
        for name in ("memory_bytes", "cpu_cores", "shim_bytes"):
            v = getattr(self, name)
            if not (isinstance(v, int | float) and math.isfinite(v) and v >= 0):
                raise InvalidParameter(name, "HostCost", "a finite number >= 0", v)
        if self.method not in ("passive", "calibrated", "given"):
            raise InvalidParameter("method", "HostCost", "passive, calibrated or given",
                                   self.method)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> HostCost:
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in d.items() if k in known})


def _now() -> str:
    from datetime import UTC, datetime

    return datetime.now(UTC).replace(microsecond=0).isoformat()


def passive_host_cost(proc_root: str | Path = "/proc") -> HostCost | None:
    """The host cost per container from the shims that run now; None when none runs.

    Only the shim part (PSS, page tables, kernel stacks): the kernel's own per-container
    objects need :func:`calibrate_host_cost`. CPU: the shims' CPU time since they started,
    averaged over their age is not known here, so ``cpu_cores`` is 0.
    """
    usage = shim_usage(proc_root)
    per = usage.per_container_bytes
    if per is None:
        return None
    return HostCost(
        memory_bytes=per, cpu_cores=0.0, method="passive", measured_at=_now(),
        containers=usage.containers, shim_bytes=per,
        note="shims only (PSS, page tables, kernel stacks); the kernel's per-container "
             "memory (netns, veth, cgroups) needs 'capacity machine calibrate'",
    )


# -- calibration ---------------------------------------------------------------------------


def _median(xs: list[float]) -> float:
    s = sorted(xs)
    n = len(s)
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2


def _settled_meminfo(proc_root: str | Path, reads: int = 5, pause_s: float = 0.2,
                     sleep: Callable[[float], None] = time.sleep) -> dict[str, float]:
    """Median of a few ``/proc/meminfo`` reads per field (one read is a noisy instant)."""
    rows = []
    for i in range(reads):
        if i:
            sleep(pause_s)
        rows.append(read_meminfo(proc_root))
    return {k: _median([float(r.get(k, 0)) for r in rows]) for k in rows[0]}


@contextlib.contextmanager
def _started(client: Any, image: str, count: int, run_id: str) -> Iterator[list[Any]]:
    """Start ``count`` idle containers; remove every one of them on the way out, always."""
    started: list[Any] = []
    try:
        for _ in range(count):
            started.append(client.containers.run(
                image, ["sleep", "86400"], detach=True,
                labels={CALIBRATION_LABEL: run_id}, network_mode="bridge",
            ))
        yield started
    finally:
        _remove_run(client, run_id, started)


def _remove_run(client: Any, run_id: str, started: list[Any]) -> None:
    """Remove the run's containers: those we hold, and any the engine lists with our label
    (one created whose handle we never got back, e.g. interrupted mid-call). A second Ctrl-C
    while removing does not stop the removal; it is raised again at the end."""
    interrupted: BaseException | None = None
    for c in started:
        try:
            c.remove(force=True, v=True)
        except KeyboardInterrupt as exc:
            interrupted = exc
        except Exception:  # already gone, or the engine is gone
            pass
    try:
        leftovers = client.containers.list(
            all=True, filters={"label": f"{CALIBRATION_LABEL}={run_id}"})
    except KeyboardInterrupt as exc:
        interrupted, leftovers = exc, []
    except Exception:  # the engine is gone: nothing more can be removed
        leftovers = []
    for c in leftovers:
        with contextlib.suppress(Exception):
            c.remove(force=True, v=True)
    if interrupted is not None:
        raise interrupted


def _usage_and_stat(usage_file: str, stat_file: str) -> tuple[int, dict[str, str]] | None:
    """A memory cgroup's usage (bytes) and its ``memory.stat`` as text values by key; None
    when either file is unreadable (the cgroup is gone, or another layout)."""
    try:
        with open(usage_file) as fh:
            usage = int(fh.read())
        with open(stat_file) as fh:
            stat = dict(line.split()[:2] for line in fh if line.strip())
    except (OSError, ValueError):
        return None
    return usage, stat


def _cgroup_memory(container: Any, cgroup_root: str) -> tuple[float, float] | None:
    """(working set less kernel memory, anonymous memory) of a container from cgroup v1 or
    v2 files, bytes; None when unreadable. The kernel memory charged to the container's
    cgroup is left out: the calibration counts it in the host's unreclaimable kernel growth."""
    cid = container.id
    v1 = f"{cgroup_root}/memory/docker/{cid}"
    for usage_file, stat_file, inactive, anon, kmem_file in (
        (f"{v1}/memory.usage_in_bytes", f"{v1}/memory.stat", "total_inactive_file",
         "total_rss", f"{v1}/memory.kmem.usage_in_bytes"),
        (f"{cgroup_root}/system.slice/docker-{cid}.scope/memory.current",
         f"{cgroup_root}/system.slice/docker-{cid}.scope/memory.stat", "inactive_file", "anon",
         ""),
        (f"{cgroup_root}/docker/{cid}/memory.current",
         f"{cgroup_root}/docker/{cid}/memory.stat", "inactive_file", "anon", ""),
    ):
        read = _usage_and_stat(usage_file, stat_file)
        if read is None:
            continue
        usage, stat = read
        kmem = float(stat.get("kernel", 0))  # cgroup v2 (kernel 5.18+)
        if kmem_file:
            try:
                with open(kmem_file) as fh:
                    kmem = float(fh.read())
            except (OSError, ValueError):
                kmem = 0.0
        ws = max(usage - int(stat.get(inactive, 0)), 0)
        return float(max(ws - kmem, 0.0)), float(stat.get(anon, 0))
    return None


def calibrate_host_cost(
    client: Any,
    *,
    containers: int = 50,
    cycles: int = 2,
    image: str | None = None,
    proc_root: str | Path = "/proc",
    cgroup_root: str = "/sys/fs/cgroup",
    settle_s: float = 3.0,
    sleep: Callable[[float], None] = time.sleep,
    on_progress: Callable[[str], None] | None = None,
) -> HostCost:
    """Start ``containers`` idle busybox containers ``cycles`` times and measure what the
    host spends on each one outside its cgroup.

    Parameters
    ----------
    client : docker.DockerClient
        The engine to calibrate.
    containers : int
        K, containers per cycle (>= 10: fewer and the per-container figures drown in noise).
    cycles : int
        Start/remove cycles; the figures are medians over cycles.
    image : str, optional
        An image with ``sleep``; default: the busybox image built FROM scratch
        (:func:`capacity._busybox.build_busybox_image`).
    proc_root, cgroup_root : str
        Where ``/proc`` and the cgroup filesystem are.
    settle_s : float
        Seconds to wait after starting (and after removing) before reading, so the shims and
        the kernel have finished setting up (tearing down).
    sleep : callable
        Injected clock (tests).
    on_progress : callable, optional
        Called with a short line per step.

    Returns
    -------
    HostCost
        ``method="calibrated"``: ``memory_bytes`` = the new shims' part + the unreclaimable
        kernel growth per container; ``mem_available_drop_bytes`` the cross-check.

    Raises
    ------
    DockerUnavailable
        The engine stops answering (every container started is still removed).
    InvalidParameter
        ``containers`` < 10 or ``cycles`` < 1.

    Notes
    -----
    Every container carries the label ``capacity.calibrate=<run id>`` and is removed in a
    ``finally``, also on Ctrl-C; if the engine itself is gone, nothing can be removed and
    nothing is left running either (the engine's containers die with it, or are removed by
    the label on the next run).
    """
    if not isinstance(containers, int) or containers < 10:
        raise InvalidParameter("containers", "calibrate", "an int >= 10", containers)
    if not isinstance(cycles, int) or cycles < 1:
        raise InvalidParameter("cycles", "calibrate", "an int >= 1", cycles)
    say = on_progress or (lambda _msg: None)
    if image is None:
        from .._busybox import BUSYBOX_IMAGE, build_busybox_image

        image = build_busybox_image(client, BUSYBOX_IMAGE)
    shim_parts: list[float] = []
    kernel_parts: list[float] = []
    drops: list[float] = []
    in_cgroup: list[float] = []
    cpu_parts: list[float] = []
    disturbed = 0
    for cycle in range(cycles):
        run_id = uuid.uuid4().hex[:12]
        say(f"cycle {cycle + 1}/{cycles}: starting {containers} idle containers")
        before = _settled_meminfo(proc_root, sleep=sleep)
        try:
            with _started(client, image, containers, run_id) as started:
                sleep(settle_s)
                ids = {c.id for c in started}
                shims0 = shim_usage(proc_root, only_ids=ids)
                t0 = time.monotonic()
                with_them = _settled_meminfo(proc_root, sleep=sleep)
                sleep(1.0)
                shims1 = shim_usage(proc_root, only_ids=ids)
                elapsed_s = max(time.monotonic() - t0, 1e-3)
                cgroups = [m for c in started
                           if (m := _cgroup_memory(c, cgroup_root)) is not None]
                ours_anon = shims1.anon_bytes + sum(a for _, a in cgroups)
                say(f"cycle {cycle + 1}/{cycles}: removing them")
        except CapacityError:
            raise
        except Exception as exc:  # the SDK's errors: connection refused, API errors
            raise DockerUnavailable(
                f"the engine failed during calibration ({type(exc).__name__}: {exc}); every "
                "container it started was removed where the engine still answered"
            ) from exc
        sleep(settle_s)
        after = _settled_meminfo(proc_root, sleep=sleep)
        baseline = {k: (before[k] + after.get(k, before[k])) / 2 for k in before}
        if shims1.shims == 0:
            raise CapacityError(
                "calibration found none of its containers' shims in /proc: run it as root "
                "on the engine's host (a remote DOCKER_HOST cannot be calibrated)"
            )
        # the shims' private PSS only: their page tables and kernel stacks are in the kernel
        # growth below, and their binary's file pages are shared by every shim
        shim_parts.append(shims1.pss_private_bytes / max(shims1.containers, 1))
        cpu_parts.append(max(shims1.cpu_seconds_total - shims0.cpu_seconds_total, 0.0)
                         / elapsed_s / max(shims1.containers, 1))
        kernel_parts.append(sum(with_them.get(f, 0.0) - baseline.get(f, 0.0)
                                for f in KERNEL_FIELDS) / containers)
        # Two estimates per cycle, the drop on start and the rise on removal, each less what
        # the anonymous memory of every other process grew meanwhile. On a shared host other
        # work moves MemAvailable by more than 50 idle containers do (here: by up to 3 GB
        # within one window); an estimate whose window saw others' anonymous memory move by
        # more than QUIET_BYTES_PER_CONTAINER per container is disturbed and not kept.
        for reference in (before, after):
            others_anon = (with_them["AnonPages"] - reference["AnonPages"]) - ours_anon
            if abs(others_anon) / containers > QUIET_BYTES_PER_CONTAINER:
                disturbed += 1
                continue
            drops.append((reference["MemAvailable"] - with_them["MemAvailable"] - others_anon)
                         / containers)
        if cgroups:
            in_cgroup.append(sum(w for w, _ in cgroups) / len(cgroups))
    shim = _median(shim_parts)
    kernel = max(_median(kernel_parts), 0.0)
    return HostCost(
        memory_bytes=shim + kernel,
        cpu_cores=_median(cpu_parts),
        method="calibrated",
        measured_at=_now(),
        containers=containers,
        shim_bytes=shim,
        kernel_bytes=kernel,
        mem_available_drop_bytes=_median(drops) if drops else None,
        in_cgroup_bytes=_median(in_cgroup) if in_cgroup else None,
        note=f"{cycles} cycle(s) of {containers} idle busybox containers; kernel part: "
             f"growth of {', '.join(KERNEL_FIELDS)}; MemAvailable cross-check from "
             f"{len(drops)} of {2 * cycles} windows ({disturbed} disturbed by other work)",
    )


# -- the engine/OS baseline ----------------------------------------------------------------


@dataclass(frozen=True)
class Baseline:
    """Memory and CPU the host uses outside every container (the OS, dockerd, containerd,
    the shims, the kernel): what a plan keeps back as reserve.

    Attributes
    ----------
    memory_bytes : float
        Host memory in use (total - available) minus the containers' working sets.
    cpu_cores : float or None
        Host busy CPU minus the containers' CPU over the measuring window, cores; None when
        the containers' CPU cannot be read.
    containers_memory_bytes : float
        The containers' working sets that were taken out.
    measured_at : str
        UTC, ISO 8601.
    """

    memory_bytes: float
    cpu_cores: float | None
    containers_memory_bytes: float
    measured_at: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _docker_parent_memory(cgroup_root: str) -> float | None:
    """Working set of every container together: the engine's parent cgroup (cgroupfs
    driver, v1 or v2), or the sum of ``docker-*.scope`` (systemd driver)."""
    for usage_file, stat_file, inactive in (
        (f"{cgroup_root}/memory/docker/memory.usage_in_bytes",
         f"{cgroup_root}/memory/docker/memory.stat", "total_inactive_file"),
        (f"{cgroup_root}/docker/memory.current", f"{cgroup_root}/docker/memory.stat",
         "inactive_file"),
    ):
        read = _usage_and_stat(usage_file, stat_file)
        if read is None:
            continue
        usage, stat = read
        return float(max(usage - int(stat.get(inactive, 0)), 0))
    total = 0.0
    found = False
    try:
        scopes = [e.path for e in os.scandir(f"{cgroup_root}/system.slice")
                  if e.name.startswith("docker-") and e.name.endswith(".scope")]
    except OSError:
        return None
    for scope in scopes:
        read = _usage_and_stat(f"{scope}/memory.current", f"{scope}/memory.stat")
        if read is None:
            continue
        usage, stat = read
        total += max(usage - int(stat.get("inactive_file", 0)), 0)
        found = True
    return total if found else None


def _docker_parent_cpu_seconds(cgroup_root: str) -> float | None:
    for path, scale in ((f"{cgroup_root}/cpu,cpuacct/docker/cpuacct.usage", 1e-9),
                        (f"{cgroup_root}/cpuacct/docker/cpuacct.usage", 1e-9)):
        try:
            with open(path) as fh:
                return int(fh.read()) * scale
        except (OSError, ValueError):
            continue
    try:
        with open(f"{cgroup_root}/docker/cpu.stat") as fh:
            for line in fh:
                if line.startswith("usage_usec"):
                    return int(line.split()[1]) * 1e-6
    except (OSError, ValueError):
        pass
    return None


def measure_baseline(
    psutil_module: Any = None,
    *,
    cgroup_root: str = "/sys/fs/cgroup",
    window_s: float = 1.0,
    sleep: Callable[[float], None] = time.sleep,
) -> Baseline | None:
    """The engine/OS baseline now: host use minus the containers' (see :class:`Baseline`).

    None when the containers' cgroups cannot be read (a remote engine, no access).

    Notes
    -----
    Trap: measured with containers running, the baseline includes their shims and kernel
    memory (the host cost), which the plan also adds per replica: for the service's own
    running replicas that is counted twice, lowering its safe count by at most its running
    count times host cost over per-replica memory. The safe side.
    """
    if psutil_module is None:
        import psutil as psutil_module
    containers_mem = _docker_parent_memory(cgroup_root)
    if containers_mem is None:
        return None
    vm = psutil_module.virtual_memory()
    memory = max(float(vm.total - vm.available) - containers_mem, 0.0)
    cpu: float | None = None
    c0 = _docker_parent_cpu_seconds(cgroup_root)
    if c0 is not None:
        t0 = psutil_module.cpu_times()
        w0 = time.monotonic()
        sleep(window_s)
        t1 = psutil_module.cpu_times()
        c1 = _docker_parent_cpu_seconds(cgroup_root)
        elapsed = max(time.monotonic() - w0, 1e-3)

        def busy(t: Any) -> float:
            d = t._asdict()
            return sum(d.values()) - sum(d.get(k, 0.0) for k in
                                         ("idle", "iowait", "steal", "guest", "guest_nice"))

        if c1 is not None:
            cpu = max((busy(t1) - busy(t0) - (c1 - c0)) / elapsed, 0.0)
    return Baseline(memory_bytes=memory, cpu_cores=cpu, containers_memory_bytes=containers_mem,
                    measured_at=_now())
