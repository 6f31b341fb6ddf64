"""Disk space one container takes: its writable layer, plus its volumes where readable.

**Expensive.** The engine computes the writable layer size (``SizeRw``) by walking the
container's upper directory, and volumes are walked here file by file: the cost grows with
the number of files. The collector calls this on a slow schedule (default every 5 minutes),
not every round; between readings ``disk_usage_bytes`` is NaN in the samples table.

The collector walks each volume with a budget first (:class:`AmortisedTreeSize`): a volume
past it (a cache of millions of files) is walked whole now and then only every
:data:`COLLECTOR_LARGE_VOLUME_EVERY_S`, its last whole size standing in between, so a pass
does not cost minutes of CPU every 5 minutes and no reading is ever a partial sum.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

from .._errors import ContainerGone

__all__ = [
    "COLLECTOR_LARGE_VOLUME_EVERY_S",
    "COLLECTOR_VOLUME_MAX_ENTRIES",
    "COLLECTOR_VOLUME_MAX_S",
    "DEFAULT_DISK_USAGE_INTERVAL_S",
    "AmortisedTreeSize",
    "DiskUsage",
    "WalkBudgetExceeded",
    "disk_usage",
    "disk_usage_bytes",
    "tree_size_bytes",
]

#: how often the collector measures disk usage by default, seconds
DEFAULT_DISK_USAGE_INTERVAL_S = 300.0
#: the collector's budget for one walk of a volume: directory entries seen
COLLECTOR_VOLUME_MAX_ENTRIES = 200_000
#: the collector's budget for one walk of a volume: seconds
COLLECTOR_VOLUME_MAX_S = 10.0
#: a volume past that budget is walked whole at most this often, seconds
COLLECTOR_LARGE_VOLUME_EVERY_S = 3600.0

log = logging.getLogger("capacity.collect")


class DiskUsage(NamedTuple):
    """Disk space of one container, bytes (apparent sizes, as ``SizeRw`` counts them).

    ``writable_layer_bytes`` is ``None`` when the engine did not report ``SizeRw``;
    ``volumes_bytes`` sums the volumes that could be walked (``None`` when the container has
    volumes but none was readable, 0 when it has none); ``unreadable_volumes`` names the rest.
    """

    writable_layer_bytes: int | None
    volumes_bytes: int | None
    unreadable_volumes: tuple[str, ...]

    @property
    def total_bytes(self) -> int | None:
        """Writable layer plus readable volumes; ``None`` when nothing could be measured."""
        parts = [p for p in (self.writable_layer_bytes, self.volumes_bytes) if p is not None]
        return sum(parts) if parts else None


class WalkBudgetExceeded(Exception):
    """:func:`tree_size_bytes` stopped before the end of the tree: its budget ran out.

    ``reason`` says which (entries seen, or the time), for the report.
    """

    def __init__(self, root: Path, reason: str) -> None:
        super().__init__(f"{root}: {reason}")
        self.root = root
        self.reason = reason


def tree_size_bytes(
    root: Path,
    *,
    max_entries: int | None = None,
    deadline: float | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> int:
    """Apparent size of every regular file under ``root``, bytes (like ``du -s --apparent``).

    Walks with :func:`os.scandir` without following symlinks (a link into the host tree
    would count the host), and counts a hard-linked file once. Entries that vanish or cannot
    be read during the walk are skipped. Raises :class:`OSError` when ``root`` itself cannot
    be opened.

    ``max_entries`` (directory entries seen) and ``deadline`` (a ``clock()`` value, seconds)
    bound the walk: past either it raises :class:`WalkBudgetExceeded` instead of a partial
    size (a volume of millions of files takes minutes). None: unbounded.
    """
    total = 0
    seen: set[tuple[int, int]] = set()
    stack = [root]
    first = True
    entries_seen = 0
    if deadline is not None and clock() > deadline:
        raise WalkBudgetExceeded(root, "not walked: the time budget was spent on other volumes")
    while stack:
        directory = stack.pop()
        try:
            entries = os.scandir(directory)
        except OSError:
            if first:
                raise
            continue
        first = False
        with entries:
            for entry in entries:
                entries_seen += 1
                if max_entries is not None and entries_seen > max_entries:
                    raise WalkBudgetExceeded(
                        root, f"more than {max_entries:,} files and directories"
                    )
                if deadline is not None and entries_seen % 1024 == 0 and clock() > deadline:
                    raise WalkBudgetExceeded(
                        root, f"time budget spent after {entries_seen:,} files and directories"
                    )
                try:
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(Path(entry.path))
                    elif entry.is_file(follow_symlinks=False):
                        st = entry.stat(follow_symlinks=False)
                        key = (st.st_dev, st.st_ino)
                        if st.st_nlink > 1:
                            if key in seen:
                                continue
                            seen.add(key)
                        total += st.st_size
                except OSError:
                    continue
    return total


class AmortisedTreeSize:
    """:func:`tree_size_bytes` for the collector: large volumes walked whole, but seldom.

    Parameters
    ----------
    max_entries, max_s : int, float
        The budget of a walk (:data:`COLLECTOR_VOLUME_MAX_ENTRIES` directory entries,
        :data:`COLLECTOR_VOLUME_MAX_S` seconds).
    large_every_s : float
        How often a volume that ran past the budget is walked again, whole and unbounded
        (:data:`COLLECTOR_LARGE_VOLUME_EVERY_S`).
    clock : callable
        Monotonic seconds (injected in tests).

    Calling it with a volume's root returns its size in bytes (raises :class:`OSError`
    when the root cannot be opened). A volume within the budget is walked every call. One
    past it (by entries, or by time: a slow disk) is logged once, walked whole at once, and
    from then on walked whole only when its last whole walk is ``large_every_s`` old; in
    between the call returns that walk's size. Trap: so a large volume's figure can be up
    to ``large_every_s`` stale (growth shows late, never as a partial sum); ``large`` maps
    each such root to (monotonic time of its last whole walk, bytes).
    """

    def __init__(
        self,
        max_entries: int = COLLECTOR_VOLUME_MAX_ENTRIES,
        max_s: float = COLLECTOR_VOLUME_MAX_S,
        large_every_s: float = COLLECTOR_LARGE_VOLUME_EVERY_S,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_entries = max_entries
        self.max_s = max_s
        self.large_every_s = large_every_s
        self.clock = clock
        self.large: dict[str, tuple[float, int]] = {}
        self._lock = threading.Lock()

    def __call__(self, root: Path) -> int:
        key = str(root)
        with self._lock:
            known = self.large.get(key)
        if known is not None and self.clock() - known[0] < self.large_every_s:
            return known[1]
        if known is None:
            try:
                return tree_size_bytes(
                    root,
                    max_entries=self.max_entries,
                    deadline=self.clock() + self.max_s,
                    clock=self.clock,
                )
            except WalkBudgetExceeded as exc:
                log.warning(
                    "disk usage: volume %s is large (%s): walked whole now and then at "
                    "most every %g s; between walks its last whole size is used",
                    root,
                    exc.reason,
                    self.large_every_s,
                )
        size = tree_size_bytes(root)
        with self._lock:
            self.large[key] = (self.clock(), size)
        return size


def _volume_mounts(attrs: Mapping[str, Any]) -> list[tuple[str, str]]:
    return [
        (str(m.get("Name") or m.get("Source")), str(m.get("Source") or ""))
        for m in attrs.get("Mounts") or []
        if m.get("Type") == "volume"
    ]


def disk_usage(
    client: Any,
    container_id: str,
    *,
    volumes: bool = True,
    tree_size: Callable[[Path], int] = tree_size_bytes,
) -> DiskUsage:
    """Measure one container's disk space (expensive: see the module docstring).

    Parameters
    ----------
    client : docker.DockerClient
        A connected client. ``GET /containers/json?size=1`` (``client.api.containers(size=True,
        filters={"id": ...})``) makes the engine walk the writable layer.
    container_id : str
        The container.
    volumes : bool
        Also walk its volumes (``Type == "volume"``: named and anonymous). Bind mounts are
        left out: they are host directories, possibly shared. A volume mounted by several
        containers is counted for each; dedupe by volume name when summing a host.

    Returns
    -------
    DiskUsage
        ``total_bytes`` is the figure for ``disk_usage_bytes``. A volume is readable only when
        this process sees the engine's filesystem (not over a remote ``DOCKER_HOST``) with
        the rights to walk it (root).
    tree_size : callable
        ``tree_size(root) -> bytes`` for one volume: :func:`tree_size_bytes` (unbounded) by
        default; the collector passes an :class:`AmortisedTreeSize`.

    Raises
    ------
    ContainerGone
        The container is no longer running (or no longer exists).
    """
    # inspect_container() of the SDK cannot ask for sizes; the list call can, for one id
    summaries = client.api.containers(size=True, filters={"id": container_id})
    attrs = next((c for c in summaries if c.get("Id") == container_id), None)
    if attrs is None:
        raise ContainerGone(container_id, "not among the running containers")
    size_rw = attrs.get("SizeRw")
    writable = int(size_rw) if size_rw is not None else None
    if not volumes:
        return DiskUsage(writable, None, ())
    mounts = _volume_mounts(attrs)
    volume_total = 0
    unreadable: list[str] = []
    for name, source in mounts:
        try:
            if not source:
                raise FileNotFoundError(name)
            volume_total += tree_size(Path(source))
        except OSError:
            unreadable.append(name)
    readable = len(mounts) - len(unreadable)
    return DiskUsage(
        writable_layer_bytes=writable,
        volumes_bytes=volume_total if readable or not mounts else None,
        unreadable_volumes=tuple(unreadable),
    )


def disk_usage_bytes(
    client: Any,
    container_id: str,
    *,
    volumes: bool = True,
    tree_size: Callable[[Path], int] = tree_size_bytes,
) -> int | None:
    """``disk_usage(...).total_bytes``: writable layer plus readable volumes, or ``None``."""
    return disk_usage(client, container_id, volumes=volumes, tree_size=tree_size).total_bytes
