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
- ``MemAvailable`` moves with everything else on the host: on this shared development
  host other work moved it by up to 5 GB within one 30 s window while 50 containers started,
  and other tests started containers of their own meanwhile (whose kernel memory then
  looks like ours). So each window (a start, a removal) reads ``MemAvailable + AnonPages
  + Shmem`` in the same read (others' allocations cancel out in it), and a window is kept
  only when no other container started or stopped in it and that sum held still while it
  was read; figures are medians over the kept windows of several cycles. The drop is only
  a check beside the attributed figure.
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
#: a calibration window in which memory that others' allocations do not explain
#: (``MemAvailable + AnonPages + Shmem``) moved by more than this per container while it was
#: read is too disturbed to measure in, bytes
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
        of other processes' anonymous and shared memory meanwhile (read together with it):
        a cross-check that also includes the containers' own working set. None when every
        window was disturbed by other work (other containers started or stopped, or more
        than :data:`QUIET_BYTES_PER_CONTAINER` moved while it was read).
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


#: per /proc/meminfo read: memory that other processes' anonymous and shared-memory
#: churn leaves unchanged (an allocation takes from MemAvailable, or from the per-CPU free
#: lists, what it adds to AnonPages), so a drop of it is memory the host lost to something
#: else: kernel memory, pinned pages
_INVARIANT = "MemAvailable+AnonPages+Shmem+PerCpuFree"


def _per_cpu_free_bytes(proc_root: str | Path) -> float:
    """Free pages held in the per-CPU page lists (``count:`` of each zone's pagesets in
    ``/proc/zoneinfo``), bytes. They are free but in neither MemFree nor MemAvailable: a
    process that frees memory fills them, one that allocates empties them first. Measured
    here: up to 240 MB on 2 CPUs, moving by 100 MB within a quarter second on a busy host
    (0 when the file is unreadable)."""
    pages = 0
    try:
        with open(f"{proc_root}/zoneinfo") as fh:
            for line in fh:
                key, _, value = line.strip().partition(":")
                if key == "count":
                    pages += int(value)
    except (OSError, ValueError):
        return 0.0
    return float(pages * os.sysconf("SC_PAGE_SIZE"))


def _settled_meminfo(proc_root: str | Path, reads: int = 5, pause_s: float = 0.2,
                     sleep: Callable[[float], None] = time.sleep) -> dict[str, float]:
    """Median of a few ``/proc/meminfo`` reads per field (one read is a noisy instant).

    Also :data:`_INVARIANT`, summed within each read before the median (the median of
    ``MemAvailable`` and that of ``AnonPages`` may come from different reads, which on a
    busy host differ by gigabytes), and its spread over the reads (``_spread``): how much
    memory moved that the invariant does not absorb while it was read.
    """
    rows = []
    for i in range(reads):
        if i:
            sleep(pause_s)
        row: dict[str, float] = {k: float(v) for k, v in read_meminfo(proc_root).items()}
        row["PerCpuFree"] = _per_cpu_free_bytes(proc_root)
        row[_INVARIANT] = (row.get("MemAvailable", 0.0) + row.get("AnonPages", 0.0)
                           + row.get("Shmem", 0.0) + row["PerCpuFree"])
        rows.append(row)
    out = {k: _median([r.get(k, 0.0) for r in rows]) for k in rows[0]}
    values = [r[_INVARIANT] for r in rows]
    out["_spread"] = max(values) - min(values)
    return out


def _shim_ids(proc_root: str | Path) -> frozenset[str]:
    """The container ids (``-id``) of every containerd shim running now."""
    ids: set[str] = set()
    for entry in os.scandir(proc_root):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"{entry.path}/comm") as fh:
                if not fh.read().startswith(_SHIM_PREFIX[:15]):
                    continue
            with open(f"{entry.path}/cmdline", "rb") as fh:
                args = fh.read().split(b"\0")
        except OSError:
            continue
        ids.update(args[i + 1].decode() for i, a in enumerate(args[:-1]) if a == b"-id")
    return frozenset(ids)


@contextlib.contextmanager
def _run(client: Any, run_id: str) -> Iterator[list[Any]]:
    """A list to start this run's containers into; every one of them (and any the engine
    lists with the run's label) is removed on the way out, always."""
    started: list[Any] = []
    try:
        yield started
    finally:
        _remove_run(client, run_id, started)


def _start(client: Any, image: str, count: int, run_id: str, started: list[Any]) -> None:
    """Start ``count`` idle containers, each appended to ``started`` as soon as it exists."""
    for _ in range(count):
        started.append(client.containers.run(
            image, ["sleep", "86400"], detach=True,
            labels={CALIBRATION_LABEL: run_id}, network_mode="bridge",
        ))


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
        leftovers = client.containers.list(  # sparse: no inspect each, which
            all=True, sparse=True,  # fails when another container vanishes meanwhile
            filters={"label": f"{CALIBRATION_LABEL}={run_id}"})
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


@dataclass(frozen=True)
class _State:
    """One reading of the host during a calibration: ``/proc/meminfo`` (settled), the
    shims of the other containers, our containers' anonymous memory (shims and cgroups)."""

    meminfo: Mapping[str, float]
    others: frozenset[str]
    ours: int
    ours_anon: float


def _read_state(proc_root: str | Path, cgroup_root: str, ours: list[Any],
                sleep: Callable[[float], None]) -> _State:
    ids = {c.id for c in ours}
    meminfo = _settled_meminfo(proc_root, sleep=sleep)
    others = _shim_ids(proc_root) - ids
    anon = float(shim_usage(proc_root, only_ids=ids).anon_bytes) if ids else 0.0
    anon += sum(m[1] for c in ours if (m := _cgroup_memory(c, cgroup_root)) is not None)
    return _State(meminfo, frozenset(others), len(ids), anon)


def _window(fewer: _State, more: _State) -> tuple[float, float, str, str]:
    """(host loss, kernel growth, why the memory moved or "", why others' containers
    disturbed it or "") per container between two readings that differ by some of our
    containers (see :func:`calibrate_host_cost`)."""
    n = more.ours - fewer.ours
    kernel = sum(more.meminfo.get(f, 0.0) - fewer.meminfo.get(f, 0.0)
                 for f in KERNEL_FIELDS) / n
    loss = (fewer.meminfo[_INVARIANT] - more.meminfo[_INVARIANT]
            + more.ours_anon - fewer.ours_anon) / n
    moved = ""
    if (fewer.meminfo["_spread"] + more.meminfo["_spread"]) / n > QUIET_BYTES_PER_CONTAINER:
        mib = (fewer.meminfo["_spread"] + more.meminfo["_spread"]) / 2**20
        moved = f"other work moved {mib:.0f} MiB while it was read"
    others = ""
    if fewer.others != more.others:
        others = f"{len(fewer.others ^ more.others)} other container(s) started or stopped"
    return loss, kernel, moved, others


def calibrate_host_cost(
    client: Any,
    *,
    containers: int = 50,
    cycles: int = 2,
    image: str | None = None,
    proc_root: str | Path = "/proc",
    cgroup_root: str = "/sys/fs/cgroup",
    settle_s: float = 2.0,
    batch: int = 10,
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
        Seconds to wait after starting (and after removing) a batch before reading, so the
        shims and the kernel have finished setting up (tearing down).
    batch : int
        Containers started (removed) between two readings: one measuring window. Short
        windows are more often quiet on a shared host (see Notes).
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
    Each cycle starts its ``containers`` in batches of ``batch`` and removes them the same
    way, reading the host between batches: every batch is a window, measured on its own.
    In a window, the kernel's unreclaimable growth and the host's loss (the drop of
    ``MemAvailable + AnonPages + Shmem`` and the free pages of the per-CPU lists, summed
    within each read so that other processes' allocations cancel out, plus our containers'
    own anonymous memory) are divided by the
    containers the window started or removed. A window in which that sum moved by more than
    :data:`QUIET_BYTES_PER_CONTAINER` per container while it was read is left out. The
    kernel part is the median over the windows in which no other container started or
    stopped (its kernel memory would look like ours: a kernel part twice the usual was
    measured so); the cross-check is that plus the median over all kept windows of each
    one's loss less its own kernel growth (paired: other containers' kernel memory moves
    both, their processes' memory is anonymous and cancels out).

    Every container carries the label ``capacity.calibrate=<run id>`` and is removed in a
    ``finally``, also on Ctrl-C; if the engine itself is gone, nothing can be removed and
    nothing is left running either (the engine's containers die with it, or are removed by
    the label on the next run).
    """
    if not isinstance(containers, int) or containers < 10:
        raise InvalidParameter("containers", "calibrate", "an int >= 10", containers)
    if not isinstance(cycles, int) or cycles < 1:
        raise InvalidParameter("cycles", "calibrate", "an int >= 1", cycles)
    if not isinstance(batch, int) or not 5 <= batch <= containers:
        raise InvalidParameter("batch", "calibrate", f"an int in [5, {containers}]", batch)
    say = on_progress or (lambda _msg: None)
    if image is None:
        from .._busybox import BUSYBOX_IMAGE, build_busybox_image

        image = build_busybox_image(client, BUSYBOX_IMAGE)
    shim_parts: list[float] = []
    kernel_parts: list[float] = []
    all_kernel_parts: list[float] = []
    drops: list[float] = []
    in_cgroup: list[float] = []
    cpu_parts: list[float] = []
    windows = 0

    def measure(fewer: _State, more: _State, what: str) -> None:
        nonlocal windows
        windows += 1
        loss, kernel, moved, others = _window(fewer, more)
        say(f"{what}: host loss {loss / 2**20:.3f} MiB per container, kernel "
            f"{kernel / 2**20:.3f}; " + ("; ".join(w for w in (moved, others) if w) or "quiet"))
        all_kernel_parts.append(kernel)
        if moved:
            return
        # paired: what the window lost beyond its own kernel growth. Other containers that
        # start or stop meanwhile move both (their kernel memory is in the kernel fields,
        # their processes' memory is anonymous and cancels out), so it is kept
        drops.append(loss - kernel)
        if not others:
            kernel_parts.append(kernel)

    for cycle in range(cycles):
        run_id = uuid.uuid4().hex[:12]
        say(f"cycle {cycle + 1}/{cycles}: starting {containers} idle containers, "
            f"{batch} at a time")
        try:
            with _run(client, run_id) as started:
                state = _read_state(proc_root, cgroup_root, started, sleep)
                while len(started) < containers:
                    _start(client, image, min(batch, containers - len(started)), run_id,
                           started)
                    sleep(settle_s)
                    new = _read_state(proc_root, cgroup_root, started, sleep)
                    measure(state, new, f"cycle {cycle + 1}/{cycles} start "
                                        f"{state.ours}->{new.ours}")
                    state = new
                ids = {c.id for c in started}
                shims0 = shim_usage(proc_root, only_ids=ids)
                t0 = time.monotonic()
                sleep(1.0)
                shims1 = shim_usage(proc_root, only_ids=ids)
                elapsed_s = max(time.monotonic() - t0, 1e-3)
                cgroups = [m for c in started
                           if (m := _cgroup_memory(c, cgroup_root)) is not None]
                if shims1.shims == 0:
                    raise CapacityError(
                        "calibration found none of its containers' shims in /proc: run it "
                        "as root on the engine's host (a remote DOCKER_HOST cannot be "
                        "calibrated)")
                say(f"cycle {cycle + 1}/{cycles}: removing them, {batch} at a time")
                state = _read_state(proc_root, cgroup_root, started, sleep)
                while started:
                    for c in started[-batch:]:
                        c.remove(force=True, v=True)
                    del started[-batch:]
                    sleep(settle_s)
                    new = _read_state(proc_root, cgroup_root, started, sleep)
                    measure(new, state, f"cycle {cycle + 1}/{cycles} removal "
                                        f"{state.ours}->{new.ours}")
                    state = new
        except CapacityError:
            raise
        except Exception as exc:  # the SDK's errors: connection refused, API errors
            raise DockerUnavailable(
                f"the engine failed during calibration ({type(exc).__name__}: {exc}); every "
                "container it started was removed where the engine still answered"
            ) from exc
        # the shims' private PSS only: their page tables and kernel stacks are in the kernel
        # growth, and their binary's file pages are shared by every shim
        shim_parts.append(shims1.pss_private_bytes / max(shims1.containers, 1))
        cpu_parts.append(max(shims1.cpu_seconds_total - shims0.cpu_seconds_total, 0.0)
                         / elapsed_s / max(shims1.containers, 1))
        if cgroups:
            in_cgroup.append(sum(w for w, _ in cgroups) / len(cgroups))
    shim = _median(shim_parts)
    kernel = max(_median(kernel_parts or all_kernel_parts), 0.0)
    moved_windows = windows - len(drops)
    return HostCost(
        memory_bytes=shim + kernel,
        cpu_cores=_median(cpu_parts),
        method="calibrated",
        measured_at=_now(),
        containers=containers,
        shim_bytes=shim,
        kernel_bytes=kernel,
        # the loss per container: the kernel part plus the median of what each quiet window
        # lost beyond its own kernel growth (a paired difference: kernel memory that other
        # work moves in a window moves both, and cancels; the two medians taken apart
        # would each carry it)
        mem_available_drop_bytes=kernel + _median(drops) if drops else None,
        in_cgroup_bytes=_median(in_cgroup) if in_cgroup else None,
        note=f"{cycles} cycle(s) of {containers} idle busybox containers, {batch} per "
             "window; kernel part: "
             f"growth of {', '.join(KERNEL_FIELDS)}, median of "
             + (f"{len(kernel_parts)} windows without other containers starting or stopping"
                if kernel_parts else f"all {windows} windows (other containers started or "
                "stopped in every one)")
             + f"; MemAvailable cross-check from {len(drops)} of {windows} quiet windows"
             + (f" (left out: {moved_windows} in which other work moved memory while "
                "it was read)" if moved_windows else ""),
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
