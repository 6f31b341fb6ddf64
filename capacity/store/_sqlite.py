"""The durable sample store: one embedded SQLite database in WAL mode.

It keeps what was read, as it was read: raw cumulative counters and gauges, container
metadata per lifecycle, host counters, host facts, lifecycle events and disk usage. Rates
are computed on the way out (:meth:`Store.samples`), by :func:`counters_to_samples`, so a
better rate rule later applies to old recordings too.

Tables (schema version :data:`SCHEMA_VERSION`; every time is UTC epoch nanoseconds, an
INTEGER, exact and sortable; monotonic times are REAL seconds)::

    schema_version  version, created_ns
    containers      lifecycle (INTEGER key), container_id, started_ns, the ContainerInfo
                    fields as columns, labels and published_host_ports as JSON text
    counters        time_ns, monotonic_s, lifecycle, every ContainerCounters field
    host            time_ns, monotonic_s, every HostCounters field
    host_facts      time_ns, facts (JSON text), one row per collection run
    events          time_ns, container_id, action (start, die, oom, restart, ...), attributes
    disk_usage      time_ns, container_id, started_ns, bytes

A counters row is keyed by ``(container_id, started_at)`` through ``lifecycle``, the integer
key of its containers row: a 64-character id repeated on every row would more than double the
file. :meth:`Store.counters` joins it back, so readers only see ``container_id`` and
``started_at``.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import operator
import os
import re
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import fields
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, NamedTuple

import numpy as np
import pandas as pd

from .._columns import DISK_USAGE
from .._errors import InvalidParameter, StoreError, StoreLocked
from .._schema import short
from ..sources._types import ContainerCounters, ContainerInfo, HostCounters
from ._rates import (
    COUNTER_TOTAL_COLUMNS,
    _check_params,
    _lifecycle_samples,
    empty_samples,
)

__all__ = ["SCHEMA_VERSION", "Store", "default_store_path"]

#: version of the table layout; a store of another version is refused, never migrated silently
SCHEMA_VERSION = 1

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

_COUNTER_FIELDS: tuple[str, ...] = tuple(
    f.name for f in fields(ContainerCounters) if f.name != "container_id"
)
_HOST_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(HostCounters))
#: ContainerInfo fields stored as plain columns (id and started_at are the key; JSON apart)
_INFO_FIELDS: tuple[str, ...] = tuple(
    f.name
    for f in fields(ContainerInfo)
    if f.name not in ("id", "started_at", "labels", "published_host_ports")
)
_FLOAT_FIELDS = frozenset(
    {"cpu_usage_seconds_total", "cpu_throttled_seconds_total", "cpu_limit_cores"}
)
_TEXT_FIELDS = frozenset(
    {"name", "image", "service", "image_id", "compose_project", "compose_service"}
    | {"restart_policy", "network_mode"}
)


def _sql_type(name: str) -> str:
    if name in _FLOAT_FIELDS:
        return "REAL"
    if name in _TEXT_FIELDS:
        return "TEXT"
    return "INTEGER"


def _not_null(name: str, required: Iterable[str]) -> str:
    return " NOT NULL" if name in required else ""


_REQUIRED_COUNTERS = ("cpu_usage_seconds_total", "memory_usage_bytes", "memory_working_set_bytes")

_SCHEMA = f"""
CREATE TABLE schema_version (version INTEGER NOT NULL, created_ns INTEGER NOT NULL);
CREATE TABLE containers (
    lifecycle INTEGER PRIMARY KEY,
    container_id TEXT NOT NULL,
    started_ns INTEGER NOT NULL,
    {", ".join(f"{n} {_sql_type(n)}" for n in _INFO_FIELDS)},
    labels TEXT NOT NULL,
    published_host_ports TEXT NOT NULL,
    UNIQUE (container_id, started_ns)
);
CREATE TABLE counters (
    time_ns INTEGER NOT NULL,
    monotonic_s REAL NOT NULL,
    lifecycle INTEGER NOT NULL REFERENCES containers (lifecycle),
    {", ".join(f"{n} {_sql_type(n)}{_not_null(n, _REQUIRED_COUNTERS)}" for n in _COUNTER_FIELDS)}
);
CREATE INDEX counters_time ON counters (time_ns);
CREATE INDEX counters_lifecycle ON counters (lifecycle, time_ns);
CREATE TABLE host (
    time_ns INTEGER NOT NULL,
    monotonic_s REAL NOT NULL,
    {", ".join(f"{n} {_sql_type(n)}" for n in _HOST_FIELDS)}
);
CREATE INDEX host_time ON host (time_ns);
CREATE TABLE host_facts (time_ns INTEGER NOT NULL, facts TEXT NOT NULL);
CREATE TABLE events (
    time_ns INTEGER NOT NULL,
    container_id TEXT NOT NULL,
    action TEXT NOT NULL,
    attributes TEXT NOT NULL
);
CREATE INDEX events_time ON events (time_ns);
CREATE TABLE disk_usage (
    time_ns INTEGER NOT NULL,
    container_id TEXT NOT NULL,
    started_ns INTEGER NOT NULL,
    bytes INTEGER NOT NULL
);
CREATE INDEX disk_usage_time ON disk_usage (time_ns);
"""

#: the counters fields counters_to_samples reads (the others do not change the samples)
_SAMPLE_INPUT_FIELDS: tuple[str, ...] = (
    *COUNTER_TOTAL_COLUMNS, "memory_working_set_bytes", "net_namespace"
)

_get_counters = operator.attrgetter(*_COUNTER_FIELDS)
_get_host = operator.attrgetter(*_HOST_FIELDS)
_get_info = operator.attrgetter(*_INFO_FIELDS)


def default_store_path(environ: Mapping[str, str] | None = None) -> Path:
    """Where the store lives unless told otherwise.

    ``$CAPACITY_STORE`` if set and not empty, else ``$XDG_DATA_HOME/capacity/samples.sqlite``,
    else ``~/.local/share/capacity/samples.sqlite``.

    Parameters
    ----------
    environ : mapping, optional
        The environment to read (default: ``os.environ``, read at call time, never at import).
    """
    env = os.environ if environ is None else environ
    if env.get("CAPACITY_STORE"):
        return Path(env["CAPACITY_STORE"]).expanduser()
    data_home = env.get("XDG_DATA_HOME") or ""
    # The XDG spec says a relative XDG_DATA_HOME is invalid and must be ignored.
    base = Path(data_home) if os.path.isabs(data_home) else Path("~/.local/share").expanduser()
    return base / "capacity" / "samples.sqlite"


def _ns(value: datetime | pd.Timestamp, name: str) -> int:
    """An aware datetime -> UTC epoch nanoseconds. Naive datetimes are refused, not guessed."""
    if isinstance(value, pd.Timestamp):
        if value.tzinfo is None:
            raise InvalidParameter(name, "Store", "a timezone-aware datetime (UTC)", value)
        return int(value.as_unit("ns").value)
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise InvalidParameter(name, "Store", "a timezone-aware datetime (UTC)", value)
    return (value - _EPOCH) // timedelta(microseconds=1) * 1000


def _times(ns: np.ndarray | Sequence[int]) -> pd.Series:
    return pd.Series(pd.to_datetime(np.asarray(ns, dtype="int64"), unit="ns", utc=True)).astype(
        "datetime64[ns, UTC]"
    )


#: rows converted to arrays at a time: bounds the live Python objects (and the GC's work)
_FETCH_ROWS = 65_536
#: rows per Arrow record batch from the ADBC driver
_BATCH_ROWS = 65_536


def _chunks_to_numpy(column: Any, dtype: str, positions: np.ndarray | None = None,
                     out: np.ndarray | None = None) -> np.ndarray:
    """A pyarrow ChunkedArray of numbers -> one numpy array of ``dtype``, written once
    (NULL -> NaN for float64). Each chunk converts on its own, into its slice of the result,
    or to ``positions`` (row i goes to ``positions[i]``: a sort done while copying): no
    concatenated copy, no second copy to change the type, none to reorder. ``out``: a
    buffer of that length and type to write into instead of a new array."""
    if out is None:
        out = np.empty(len(column), dtype=dtype)
    start = 0
    for chunk in column.chunks:
        stop = start + len(chunk)
        where = slice(start, stop) if positions is None else positions[start:stop]
        out[where] = chunk.to_numpy(zero_copy_only=False)
        start = stop
    return out


def _convert(values: Sequence[Any], kind: str) -> Any:
    """One chunk of a column: REAL -> float64 (NULL = NaN), INTEGER -> (int64, mask),
    KEY -> int64 (never NULL: keys, epoch ns), TEXT -> object."""
    if kind == "REAL":
        return np.array(values, dtype="float64")
    if kind == "KEY":
        return np.array(values, dtype="int64")
    if kind == "INTEGER":
        # Faster than pd.array(values, dtype="Int64"), and exact beyond 2**53.
        objects = np.array(values, dtype=object)
        missing = pd.isna(objects)
        objects[missing] = 0
        return objects.astype("int64"), missing
    return np.array(values, dtype=object)


def _cell_ok(value: Any, kind: str) -> bool:
    """Whether one cell converts as :func:`_convert` does for its kind."""
    if kind == "TEXT":
        return True
    if value is None:
        return kind in ("REAL", "INTEGER")
    if kind == "REAL":
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, int) and -(2**63) <= value < 2**63


def _finish(chunks: list[Any], kind: str) -> Any:
    """Concatenated chunks -> the column's pandas type."""
    if kind == "INTEGER":
        if not chunks:
            return pd.array([], dtype="Int64")
        return pd.arrays.IntegerArray(
            np.concatenate([c[0] for c in chunks]), np.concatenate([c[1] for c in chunks])
        )
    if kind == "KEY":
        return np.concatenate(chunks) if chunks else np.array([], dtype="int64")
    if kind == "TEXT":
        return pd.array(np.concatenate(chunks) if chunks else [], dtype="str")
    return np.concatenate(chunks) if chunks else np.array([], dtype="float64")


class Store:
    """Embedded SQLite store of raw counters, metadata, host counters and events.

    Parameters
    ----------
    path : str or Path
        The database file. Its directory is created if missing (when ``create``). See
        :func:`default_store_path`.
    create : bool, default True
        Create the file and the tables when missing. With ``False`` a missing file raises
        :class:`StoreError` (for readers: a typo should not leave an empty store behind).
    read_only : bool, default False
        Open with SQLite's ``mode=ro``: nothing in the file is ever changed (no schema, no
        switch to WAL, no write), so every reading command (fit, report, plan, backtest) can
        be pointed at any file safely; only the collector opens for writing. Implies
        ``create=False``; the writing methods raise :class:`StoreError`. While a collector
        has the store open it reads through the collector's ``-wal`` and ``-shm`` files
        (read permission on them is enough: the ``nagios`` user reads a root-owned store);
        when no process has it open (no ``-wal`` file) it reads the file as SQLite
        ``immutable``, creating no side file, and refuses the read with :class:`StoreError`
        ("changed while it was read") if a writer changed the file meanwhile. See the
        permissions section of docs/ops.md.
    batch_rounds : int, default 1
        Rounds buffered in memory before one transaction commits them. 1 = every round is
        durable as soon as :meth:`write_round` returns; 10 = ten times fewer commits, and up
        to 9 rounds lost if the process dies (call :meth:`flush` or :meth:`close`).
    synchronous : {"NORMAL", "FULL"}, default "NORMAL"
        SQLite's ``PRAGMA synchronous``. In WAL mode NORMAL never corrupts the database and
        loses nothing when the *process* crashes or is killed (a commit is in the WAL file in
        the OS page cache before :meth:`flush` returns). On *power loss or a kernel panic* it
        may lose the transactions committed since the last checkpoint (typically the last few
        seconds to minutes of rounds), never older ones, and the file stays consistent. FULL
        fsyncs the WAL at every commit, so nothing committed is ever lost, at the price of one
        fsync per transaction (use ``batch_rounds`` to amortise it).
    busy_timeout_s : float, default 5.0
        How long to wait for another process's lock before giving up with
        :class:`StoreLocked` (a report reading while the collector writes never waits: WAL
        readers and the writer do not block each other).
    arrow_reader : bool, default True
        Read the counters table through ADBC's SQLite driver (``adbc-driver-sqlite``) into
        Arrow arrays when it is installed: 5-10 times faster on millions of rows. It falls
        back to sqlite3 by itself when the driver is missing or cannot read the table; the
        result is the same either way. False: always sqlite3.

    Raises
    ------
    StoreLocked
        Another process held a lock for longer than ``busy_timeout_s`` (the message names
        it when it can be seen). Locked is not corrupt: nothing was changed.
    StoreError
        The file is missing (``create=False``), empty or not a capacity store (read-only),
        not a SQLite database, corrupt, of another schema version, or the directory is not
        writable. The message names the path and the fix; the sqlite3 error is chained as
        ``__cause__``.

    Notes
    -----
    One ``Store`` per thread (sqlite3 connections are not shared across threads); several
    processes may open the same file. Use it as a context manager, or call :meth:`close`,
    so buffered rounds are written.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     with Store(pathlib.Path(tmp) / "s.sqlite") as store:
    ...         len(store.counters())
    0
    """

    def __init__(
        self,
        path: str | Path,
        *,
        create: bool = True,
        read_only: bool = False,
        batch_rounds: int = 1,
        synchronous: Literal["NORMAL", "FULL"] = "NORMAL",
        busy_timeout_s: float = 5.0,
        arrow_reader: bool = True,
    ) -> None:
        if not (isinstance(batch_rounds, int) and batch_rounds >= 1):
            raise InvalidParameter("batch_rounds", "Store", "an integer >= 1", batch_rounds)
        if synchronous not in ("NORMAL", "FULL"):
            raise InvalidParameter("synchronous", "Store", "'NORMAL' or 'FULL'", synchronous)
        if not (math.isfinite(busy_timeout_s) and busy_timeout_s >= 0):
            raise InvalidParameter(
                "busy_timeout_s", "Store", "a number of seconds >= 0", busy_timeout_s
            )
        self.path = Path(path).expanduser()
        self.batch_rounds = batch_rounds
        self.synchronous = synchronous
        self.read_only = bool(read_only)
        self.busy_timeout_s = float(busy_timeout_s)
        #: (dev, inode, size, mtime) of the file when opened immutable: a change means the
        #: read may be torn, so it is refused (see :meth:`_check_unchanged`)
        self._immutable_state: tuple[int, int, int, int] | None = None
        self.arrow_reader = arrow_reader
        self._busy_timeout_s = busy_timeout_s
        self._counters_rows: list[tuple[Any, ...]] = []
        self._host_rows: list[tuple[Any, ...]] = []
        self._new_infos: dict[tuple[str, int], ContainerInfo] = {}
        self._lifecycles: dict[tuple[str, int], int] = {}
        self._known_infos: dict[tuple[str, int], ContainerInfo] = {}
        self._pending_rounds = 0
        self._conn: sqlite3.Connection | None = None
        self._conn = self._open(create and not self.read_only, busy_timeout_s)

    # -- opening ---------------------------------------------------------------------------

    def _error(self, what: str, fix: str) -> StoreError:
        return StoreError(f"sample store {self.path}: {what}. {fix}", path=str(self.path))

    def _sqlite_error(self, exc: sqlite3.Error, doing: str) -> StoreError:
        """The StoreError for a sqlite3 error while ``doing`` something: locked, not
        permitted, corrupt, or other; each with its own fix (locked is never "corrupt")."""
        name = str(getattr(exc, "sqlite_errorname", "") or "")
        text = str(exc)
        if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or "database is locked" in text:
            holders = _lock_holders(self.path)
            by = f" by {', '.join(holders)}" if holders else " by another process"
            return StoreLocked(
                f"sample store {self.path}: {doing} failed: the file is locked{by}; waited "
                f"{self.busy_timeout_s:g} s ({text}). Locked is not corrupt: the file is "
                "intact and nothing was changed. Run again when that process is done "
                "(a collector holds its write lock only for a moment; a long lock is a "
                "VACUUM, a backup or an sqlite3 shell left open).",
                path=str(self.path),
                holders=tuple(holders),
                waited_s=self.busy_timeout_s,
            )
        if (
            name.startswith(("SQLITE_READONLY", "SQLITE_CANTOPEN", "SQLITE_PERM", "SQLITE_AUTH"))
            or "readonly" in text
            or "unable to open" in text
        ):
            if self.read_only:
                return self._error(
                    f"{doing} failed: cannot read ({text})",
                    "A reader needs read permission on the file, and on its -wal and -shm "
                    "files while a collector has it open; see 'Permissions' in docs/ops.md",
                )
            return self._error(
                f"{doing} failed: cannot write ({text})",
                "The collector needs write access to the file and its directory (for "
                "the -wal and -shm files); fix the permissions or choose another path.",
            )
        if name.startswith(("SQLITE_NOTADB", "SQLITE_CORRUPT")) or "not a database" in text \
                or "malformed" in text:
            return self._error(
                f"not a SQLite database, or corrupt ({text})",
                f"If it is the store, move it aside (mv {self.path} {self.path}.bad) and "
                "'capacity collect' creates a new one; otherwise point --store / "
                "$CAPACITY_STORE at the right file.",
            )
        return self._error(f"{doing} failed ({text})", "Check the file and free space.")

    def _open(self, create: bool, busy_timeout_s: float) -> sqlite3.Connection:
        exists = self.path.exists()
        if not exists and not create:
            raise self._error(
                "no such file",
                "Run 'capacity collect' first to create it, pass the right path "
                "(--store or $CAPACITY_STORE), or open it with create=True.",
            )
        if exists and self.path.is_dir():
            raise self._error("is a directory", "Pass the path of a file inside it.")
        if self.read_only:
            return self._open_read_only(busy_timeout_s)
        if not exists:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise self._error(
                    f"cannot create the directory {self.path.parent} ({exc.strerror})",
                    "Choose a writable location with --store or $CAPACITY_STORE.",
                ) from exc
            if not os.access(self.path.parent, os.W_OK | os.X_OK):
                raise self._error(
                    f"the directory {self.path.parent} is not writable",
                    "Choose a writable location with --store or $CAPACITY_STORE.",
                )
        try:
            conn = sqlite3.connect(
                self.path, timeout=busy_timeout_s, isolation_level=None, check_same_thread=True
            )
        except sqlite3.Error as exc:
            raise self._error(
                f"cannot open ({exc})",
                "Check the path and its permissions, or choose another with --store or "
                "$CAPACITY_STORE.",
            ) from exc
        try:
            self._prepare(conn)
        except StoreError:
            conn.close()
            raise
        except sqlite3.Error as exc:
            conn.close()
            raise self._sqlite_error(exc, "opening") from exc
        return conn

    def _open_read_only(self, busy_timeout_s: float) -> sqlite3.Connection:
        """Open with ``mode=ro`` while a writer has the store open (its ``-wal`` exists),
        else with ``immutable=1`` and a guard: no file is created or changed either way."""
        uri = self.path.absolute().as_uri()
        wal = Path(f"{self.path}-wal")
        if wal.exists():
            # A collector has it open (or died): read through its -wal and -shm files,
            # which a reader needs permission to read, not to write.
            query = "mode=ro"
        else:
            # Nobody has it open: every committed page is in the file itself. Read it
            # without locks and without creating the -wal/-shm side files (a user who may
            # not write the directory could not); a collector that starts meanwhile and
            # checkpoints changes the file, which _check_unchanged notices, so a torn read
            # is refused, never used.
            query = "mode=ro&immutable=1"
            self._immutable_state = self._file_state()
        try:
            conn = sqlite3.connect(
                f"{uri}?{query}", uri=True, timeout=busy_timeout_s, isolation_level=None,
                check_same_thread=True,
            )
        except sqlite3.Error as exc:
            raise self._sqlite_error(exc, "opening") from exc
        try:
            self._check_schema(conn, _tables(conn))
            self._check_unchanged()
        except sqlite3.Error as exc:
            conn.close()
            self._check_unchanged()
            raise self._sqlite_error(exc, "opening") from exc
        except BaseException:
            conn.close()
            raise
        return conn

    def _file_state(self) -> tuple[int, int, int, int]:
        st = self.path.stat()
        return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns

    def _check_unchanged(self) -> None:
        """After a read of an ``immutable`` connection: refuse it if the file changed."""
        if self._immutable_state is None:
            return
        try:
            same = self._file_state() == self._immutable_state
        except OSError:
            same = False
        if not same or Path(f"{self.path}-wal").exists():
            raise self._error(
                "changed while it was read (a collector started writing it); the read "
                "may mix old and new pages, so it was discarded",
                "Run again: with the collector running, readers go through its -wal and "
                "-shm files and need no luck (docs/ops.md, 'Permissions')",
            )

    def _check_writable(self, what: str) -> None:
        if self.read_only:
            raise self._error(
                f"opened read-only, cannot write {what}",
                "Open it with Store(path) (read_only=False), as 'capacity collect' does.",
            )

    def _prepare(self, conn: sqlite3.Connection) -> None:
        # Reading the schema is the first real access: a non-database fails right here,
        # before anything is written (a foreign file is refused as it was found).
        tables = _tables(conn)
        if tables and "schema_version" not in tables:
            self._check_schema(conn, tables)
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise self._error(
                f"cannot switch to WAL mode (journal_mode is {mode})",
                "WAL needs a local filesystem with shared memory; NFS and some container "
                "mounts refuse it. Put the store on a local disk.",
            )
        conn.execute(f"PRAGMA synchronous = {self.synchronous}")
        conn.execute("PRAGMA foreign_keys = ON")
        if not tables:
            with conn:
                conn.execute("BEGIN IMMEDIATE")
                # Another process may have created it between our look and the lock.
                if not conn.execute("SELECT 1 FROM sqlite_master WHERE type='table'").fetchone():
                    for statement in _SCHEMA.split(";"):
                        if statement.strip():
                            conn.execute(statement)
                    conn.execute(
                        "INSERT INTO schema_version VALUES (?, ?)",
                        (SCHEMA_VERSION, _ns(datetime.now(UTC), "now")),
                    )
            tables = {"schema_version"}
        self._check_schema(conn, tables)

    def _check_schema(self, conn: sqlite3.Connection, tables: set[str]) -> None:
        """Refuse what is not a capacity store of this schema version; read the lifecycle
        keys. Reads only."""
        if not tables:
            size = self.path.stat().st_size
            what = "is empty (0 bytes)" if size == 0 else "is a SQLite database with no table"
            raise self._error(
                f"{what}: not a capacity store; nothing was written to it",
                "Point --store / $CAPACITY_STORE at the store 'capacity collect' writes, or "
                "run 'capacity collect --store PATH' to make one there.",
            )
        if "schema_version" not in tables:
            raise self._error(
                f"is a SQLite database but not a capacity store (tables: {sorted(tables)}); "
                "it was left untouched",
                "Point --store / $CAPACITY_STORE at a capacity store, or at a new file.",
            )
        row = conn.execute("SELECT version FROM schema_version").fetchone()
        version = None if row is None else row[0]
        if version != SCHEMA_VERSION:
            newer = isinstance(version, int) and version > SCHEMA_VERSION
            fix = (
                "Upgrade capacity to a release that reads it"
                if newer
                else "Export it with the capacity release that wrote it (samples to Parquet), "
                "then move the file aside so a new store is created"
            )
            raise self._error(
                f"schema version {version}, but this release of capacity reads schema "
                f"version {SCHEMA_VERSION}",
                fix + "; the file was left untouched.",
            )
        self._lifecycles = {
            (cid, started): lifecycle
            for cid, started, lifecycle in conn.execute(
                "SELECT container_id, started_ns, lifecycle FROM containers"
            )
        }

    @property
    def conn(self) -> sqlite3.Connection:
        """The open sqlite3 connection (raises :class:`StoreError` once closed)."""
        if self._conn is None:
            raise self._error("is closed", "Open a new Store.")
        return self._conn

    # -- writing ---------------------------------------------------------------------------

    def write_round(
        self,
        time: datetime,
        monotonic_s: float,
        containers: Sequence[ContainerInfo],
        counters: Sequence[ContainerCounters],
        host: HostCounters | None = None,
    ) -> None:
        """Buffer one round; commit when ``batch_rounds`` rounds are buffered.

        Parameters
        ----------
        time : datetime
            Wall time of the round, timezone-aware (stored as UTC epoch ns).
        monotonic_s : float
            The monotonic clock at the round, seconds (rates are computed from its deltas).
        containers : sequence of ContainerInfo
            Metadata of every container in ``counters`` (extra ones are ignored). A new
            ``(id, started_at)`` adds a containers row; a changed one (``docker update``)
            updates it.
        counters : sequence of ContainerCounters
            One reading per container, stored exactly as read (None stays NULL).
        host : HostCounters, optional
            Host totals of the round.

        Raises
        ------
        InvalidParameter
            A naive ``time``, a non-finite ``monotonic_s``, or a reading of a container not
            in ``containers``.
        StoreError
            The commit failed (disk full, file removed, permissions changed).
        """
        self._check_writable("rounds")
        time_ns = _ns(time, "time")
        if not math.isfinite(monotonic_s):
            raise InvalidParameter("monotonic_s", "Store.write_round", "finite", monotonic_s)
        by_id = {c.id: c for c in containers}
        for reading in counters:
            info = by_id.get(reading.container_id)
            if info is None:
                raise InvalidParameter(
                    "counters",
                    "Store.write_round",
                    "readings of containers listed in 'containers'",
                    reading.container_id,
                )
            key = (info.id, _ns(info.started_at, "started_at"))
            if self._known_infos.get(key) != info:
                self._new_infos[key] = info
                self._known_infos[key] = info
            self._counters_rows.append((time_ns, monotonic_s, key, *_get_counters(reading)))
        if host is not None:
            self._host_rows.append((time_ns, monotonic_s, *_get_host(host)))
        self._pending_rounds += 1
        if self._pending_rounds >= self.batch_rounds:
            self.flush()

    def flush(self) -> None:
        """Commit every buffered round in one transaction (a no-op when none is buffered)."""
        if not (self._pending_rounds or self._new_infos):
            return
        conn = self.conn
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                lifecycles = dict(self._lifecycles)
                for key, info in self._new_infos.items():
                    lifecycles[key] = self._upsert_container(conn, key, info)
                conn.executemany(
                    f"INSERT INTO counters VALUES ({', '.join('?' * (3 + len(_COUNTER_FIELDS)))})",
                    ((row[0], row[1], lifecycles[row[2]], *row[3:]) for row in self._counters_rows),
                )
                if self._host_rows:
                    conn.executemany(
                        f"INSERT INTO host VALUES ({', '.join('?' * (2 + len(_HOST_FIELDS)))})",
                        self._host_rows,
                    )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            error = self._sqlite_error(exc, f"writing {self._pending_rounds} round(s)")
            error.args = (
                f"{error}; the rounds are still buffered, so a later flush() can write them",
            )
            raise error from exc
        self._lifecycles = lifecycles
        self._new_infos.clear()
        self._counters_rows.clear()
        self._host_rows.clear()
        self._pending_rounds = 0

    @staticmethod
    def _upsert_container(
        conn: sqlite3.Connection, key: tuple[str, int], info: ContainerInfo
    ) -> int:
        names = ("container_id", "started_ns", *_INFO_FIELDS, "labels", "published_host_ports")
        values = (
            *key,
            *_get_info(info),
            json.dumps(dict(info.labels), sort_keys=True),
            json.dumps(list(info.published_host_ports)),
        )
        updates = ", ".join(f"{n} = excluded.{n}" for n in names[2:])
        row = conn.execute(
            f"INSERT INTO containers ({', '.join(names)}) VALUES ({', '.join('?' * len(names))}) "
            f"ON CONFLICT (container_id, started_ns) DO UPDATE SET {updates} "
            "RETURNING lifecycle",
            values,
        ).fetchone()
        return int(row[0])

    def _write_now(self, sql: str, rows: Iterable[tuple[Any, ...]], what: str) -> None:
        self._check_writable(what)
        try:
            with self.conn:
                self.conn.execute("BEGIN IMMEDIATE")
                self.conn.executemany(sql, rows)
        except sqlite3.Error as exc:
            raise self._sqlite_error(exc, f"writing {what}") from exc

    def write_events(self, events: Iterable[Mapping[str, Any]] | pd.DataFrame) -> None:
        """Write lifecycle events at once (one transaction), not buffered.

        Parameters
        ----------
        events : iterable of mappings, or DataFrame
            Each with ``time`` (aware datetime), ``container_id``, ``action`` (the Engine's
            word: ``start``, ``die``, ``oom``, ``restart``, ``kill``, ...) and optionally
            ``attributes`` (a JSON-serialisable mapping, e.g. ``exitCode``).
        """
        records = events.to_dict("records") if isinstance(events, pd.DataFrame) else events
        rows = [
            (
                _ns(e["time"], "time"),
                str(e["container_id"]),
                str(e["action"]),
                json.dumps(dict(e.get("attributes") or {}), sort_keys=True, default=str),
            )
            for e in records
        ]
        self._write_now("INSERT INTO events VALUES (?, ?, ?, ?)", rows, "events")

    def write_disk_usage(self, time: datetime, usage: Iterable[tuple[str, datetime, int]]) -> None:
        """Write disk usage readings at once: ``(container_id, started_at, bytes)`` each.

        Disk usage is expensive to read (``docker system df``), so it is sampled more slowly
        than counters; :meth:`samples` attaches each reading to the nearest counters row of
        the same container lifecycle, and leaves NaN elsewhere.
        """
        time_ns = _ns(time, "time")
        rows = [(time_ns, cid, _ns(started, "started_at"), int(b)) for cid, started, b in usage]
        self._write_now("INSERT INTO disk_usage VALUES (?, ?, ?, ?)", rows, "disk usage")

    def write_host_facts(self, time: datetime, facts: Mapping[str, Any]) -> None:
        """Write one JSON blob of host facts (CPU model, kernel, link speeds...) for a run."""
        blob = json.dumps(dict(facts), sort_keys=True, default=str)
        self._write_now(
            "INSERT INTO host_facts VALUES (?, ?)", [(_ns(time, "time"), blob)], "host facts"
        )

    # -- reading ---------------------------------------------------------------------------

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        try:
            rows = self.conn.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            self._check_unchanged()
            raise self._sqlite_error(exc, "reading") from exc
        self._check_unchanged()
        return rows

    def _columns(self, sql: str, params: Sequence[Any], kinds: Sequence[str]) -> list[Any]:
        """Run a query and return one typed array per column, converting in chunks."""
        chunks: list[list[Any]] = [[] for _ in kinds]
        try:
            cursor = self.conn.execute(sql, params)
            while rows := cursor.fetchmany(_FETCH_ROWS):
                for i, (values, kind) in enumerate(
                    zip(zip(*rows, strict=True), kinds, strict=True)
                ):
                    try:
                        chunks[i].append(_convert(values, kind))
                    except (ValueError, TypeError, OverflowError):
                        raise self._bad_cell(sql, i, values, kind) from None
        except sqlite3.Error as exc:
            self._check_unchanged()
            raise self._sqlite_error(exc, "reading") from exc
        self._check_unchanged()
        return [_finish(c, kind) for c, kind in zip(chunks, kinds, strict=True)]

    def _arrow_columns(
        self,
        table: str,
        names: Sequence[str],
        kinds: Sequence[str],
        where: str,
        params: Sequence[Any],
        as_float: bool = False,
    ) -> list[Any] | None:
        """The columns of a bulk read, as :meth:`_columns` returns them, read by ADBC's
        SQLite driver straight into Arrow arrays; None when the driver is not installed or
        cannot read this table, and the caller then reads through sqlite3.

        Why: sqlite3 builds a Python object per cell (26 per counters row), which was most
        of the time of reading millions of rows; the ADBC driver fills Arrow buffers in C.

        Traps handled here: the driver infers each column's type from the values of the
        first rows, so a column that starts with NULLs (a counter this host cannot read)
        would come back as int64 and fail at its first REAL value. A first row of typed
        constants (dropped after reading) fixes every column's type. A value of another
        type than the column's (a REAL in an INTEGER column, which SQLite allows) makes the
        driver fail; the sqlite3 path then reads the table as it always did.
        """
        if not self.arrow_reader:
            return None
        try:
            import adbc_driver_manager
            import adbc_driver_sqlite.dbapi
            import pyarrow as pa
        except ImportError:
            return None
        typed = {"KEY": "0", "INTEGER": "0", "REAL": "0.5", "TEXT": "''"}
        first = ", ".join(f"{typed[k]} AS {n}" for n, k in zip(names, kinds, strict=True))
        sql = f"SELECT {first} UNION ALL SELECT {', '.join(names)} FROM {table} {where}"
        # the way this Store opened the file: mode=ro, or immutable when no -wal existed
        # (so a second connection neither creates the -wal/-shm side files nor needs to)
        query = "mode=ro&immutable=1" if self._immutable_state is not None else "mode=ro"
        uri = f"{self.path.resolve().as_uri()}?{query}"
        try:
            with adbc_driver_sqlite.dbapi.connect(uri) as conn, conn.cursor() as cursor:
                cursor.execute(f"PRAGMA busy_timeout = {round(self._busy_timeout_s * 1000)}")
                cursor.fetchall()
                # fewer, larger record batches (the default is 1,024 rows): fewer chunks
                # to copy out of; the first row above fixes every column's type anyway.
                # A driver without the option reads in its default batches.
                with contextlib.suppress(adbc_driver_manager.Error):
                    cursor.adbc_statement.set_options(
                        **{"adbc.sqlite.query.batch_rows": str(_BATCH_ROWS)}
                    )
                cursor.execute(sql, list(params) if params else None)
                result = cursor.fetch_arrow_table().slice(1)
        except (adbc_driver_manager.Error, OSError, pa.ArrowException):
            return None
        self._check_unchanged()
        # A cell of another type than its column's (SQLite keeps any type anywhere) comes
        # back as a text column, or as a NULL key: the sqlite3 path then names the cell.
        numeric = {"KEY": pa.types.is_integer, "INTEGER": pa.types.is_integer,
                   "REAL": lambda t: pa.types.is_floating(t) or pa.types.is_integer(t),
                   "TEXT": lambda t: True}
        for column, kind in zip(result.columns, kinds, strict=True):
            if not numeric[kind](column.type) or (kind == "KEY" and column.null_count):
                return None
        out: list[Any] = []
        for column, kind in zip(result.columns, kinds, strict=True):
            if kind == "KEY":
                out.append(_chunks_to_numpy(column, "int64"))
                continue
            if kind == "REAL" or (kind == "INTEGER" and as_float):  # NULL -> NaN
                # converted when called, straight into the order the caller passes
                out.append(functools.partial(_chunks_to_numpy, column, "float64")
                           if as_float else _chunks_to_numpy(column, "float64"))
                continue
            column = column.combine_chunks()
            if kind == "INTEGER":
                missing = column.is_null().to_numpy(zero_copy_only=False)
                values = column.fill_null(0).to_numpy(zero_copy_only=False).astype("int64")
                out.append(pd.arrays.IntegerArray(values, missing))
            else:
                out.append(_finish([column.to_numpy(zero_copy_only=False)], "TEXT"))
        return out

    def _bad_cell(self, sql: str, index: int, values: Sequence[Any], kind: str) -> StoreError:
        """The error for a cell of the wrong type (SQLite keeps any type in any column: a
        store edited by hand, or written by another tool)."""
        match = re.match(r"\s*SELECT\s+(.*?)\s+FROM\s+(\w+)", sql, re.S)
        columns = [c.strip() for c in match.group(1).split(",")] if match else []
        column = columns[index] if index < len(columns) else f"#{index}"
        table = match.group(2) if match else "?"
        want = {"REAL": "a number", "KEY": "a whole number (never NULL)",
                "INTEGER": "a whole number or NULL"}.get(kind, "text")
        bad = next((v for v in values if not _cell_ok(v, kind)), None)
        return self._error(
            f"table {table}, column {column} holds {short(bad)} ({type(bad).__name__}) where "
            f"{want} belongs",
            "The store was edited by hand or written by another tool: collect into a new "
            "store (--store NEW.sqlite), or fix that row with the sqlite3 shell",
        )

    def _json_cells(self, values: Sequence[Any], table: str, column: str,
                    kind: type) -> list[Any]:
        """JSON text cells decoded, each a ``kind`` (dict or list), else a StoreError."""
        out = []
        for v in values:
            try:
                decoded = json.loads(v)
            except (TypeError, ValueError, RecursionError):
                decoded = None
            if not isinstance(decoded, kind):
                what = "a JSON object" if kind is dict else "a JSON list"
                raise self._error(
                    f"table {table}, column {column} holds {short(v)} where {what} belongs",
                    "The store was edited by hand or written by another tool: collect into "
                    "a new store (--store NEW.sqlite), or fix that row with the sqlite3 shell",
                )
            out.append(decoded)
        return out

    @staticmethod
    def _where(
        since: datetime | None,
        until: datetime | None,
        prefix: str = "",
    ) -> tuple[list[str], list[Any]]:
        clauses: list[str] = []
        params: list[Any] = []
        if since is not None:
            clauses.append(f"{prefix}time_ns >= ?")
            params.append(_ns(since, "since"))
        if until is not None:
            clauses.append(f"{prefix}time_ns <= ?")
            params.append(_ns(until, "until"))
        return clauses, params

    def counters(
        self,
        since: datetime | None = None,
        until: datetime | None = None,
        container_ids: Iterable[str] | None = None,
        services: Iterable[str] | None = None,
        *,
        fields: Iterable[str] | None = None,
    ) -> pd.DataFrame:
        """The counters table as read, committed rounds only (call :meth:`flush` first).

        Parameters
        ----------
        since, until : datetime, optional
            Inclusive bounds on ``time`` (aware datetimes).
        container_ids, services : iterables of str, optional
            Keep only these containers (full ids) or services.
        fields : iterable of str, optional
            Only these ContainerCounters fields (default: every one). Reading fewer columns
            of millions of rows is proportionally faster; :meth:`samples` reads only those
            :func:`counters_to_samples` uses.

        Returns
        -------
        DataFrame
            ``time`` and ``started_at`` (datetime64[ns, UTC]), ``monotonic_s`` (float64),
            ``container_id`` (str), then every ContainerCounters field: seconds as float64,
            integers as nullable Int64 (<NA> where the source could not read it). Sorted by
            ``(container_id, started_at, time)``.
        """
        chosen = _COUNTER_FIELDS
        if fields is not None:
            wanted = set(fields)
            unknown = sorted(wanted - set(_COUNTER_FIELDS))
            if unknown:
                raise InvalidParameter("fields", "Store.counters",
                                       f"ContainerCounters fields {list(_COUNTER_FIELDS)}",
                                       unknown)
            chosen = tuple(n for n in _COUNTER_FIELDS if n in wanted)
        read = self._read_counters(since, until, container_ids, services, chosen)
        order = np.lexsort((read.time_ns, read.rank))
        rank = read.rank[order]
        data: dict[str, Any] = {
            "time": _times(read.time_ns[order]),
            "monotonic_s": read.monotonic_s[order],
            "container_id": read.container_id.take(rank),
            "started_at": _times(read.started_ns[rank]),
        }
        for name, column in zip(chosen, read.values, strict=True):
            data[name] = column.take(order)  # twice as fast as [order] on Int64 arrays
        return pd.DataFrame(data)

    def _read_counters(
        self,
        since: datetime | None,
        until: datetime | None,
        container_ids: Iterable[str] | None,
        services: Iterable[str] | None,
        chosen: Sequence[str],
        as_float: bool = False,
    ) -> _CountersRead:
        """The counters rows in the order SQLite scans them (no sort), the lifecycles they
        belong to (sorted by ``(container_id, started_ns)``) and each row's rank in them.
        ``as_float``: every field as float64 with NaN (what the rates use) instead of Int64,
        converted later (see :class:`_CountersRead`)."""
        meta_clauses: list[str] = []
        meta_params: list[Any] = []
        if container_ids is not None:
            ids = list(container_ids)
            meta_clauses.append(f"container_id IN ({', '.join('?' * len(ids))})")
            meta_params.extend(ids)
        if services is not None:
            names = list(services)
            meta_clauses.append(f"service IN ({', '.join('?' * len(names))})")
            meta_params.extend(names)
        meta_where = f"WHERE {' AND '.join(meta_clauses)}" if meta_clauses else ""
        # Small: one row per lifecycle, sorted, so its position is the sort rank of a series.
        lifecycle, container_id, started_ns = self._columns(
            "SELECT lifecycle, container_id, started_ns FROM containers "
            f"{meta_where} ORDER BY container_id, started_ns",
            meta_params,
            ("KEY", "TEXT", "KEY"),
        )
        clauses, params = self._where(since, until)
        if meta_clauses:
            clauses.append(f"lifecycle IN (SELECT lifecycle FROM containers {meta_where})")
            params.extend(meta_params)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        # No ORDER BY: a table scan is twice as fast as walking the index, and the sort
        # (by the caller) on int64 keys takes a fraction of a second for millions of rows.
        kinds = ("KEY", "KEY", "REAL", *(_sql_type(n) for n in chosen))
        selected = ("lifecycle", "time_ns", "monotonic_s", *chosen)
        columns = self._arrow_columns("counters", selected, kinds, where, params, as_float)
        if columns is None:
            columns = self._columns(
                f"SELECT {', '.join(selected)} FROM counters {where}", params, kinds
            )
        row_lifecycle, time_ns, monotonic_s, *values = columns
        if callable(monotonic_s):
            monotonic_s = monotonic_s()
        if as_float:
            values = [v if isinstance(v, np.ndarray) or callable(v) else
                      v.to_numpy(dtype="float64", na_value=np.nan) for v in values]
        return _CountersRead(container_id, started_ns, _ranks(lifecycle, row_lifecycle),
                             time_ns, monotonic_s, values)

    def containers(self) -> pd.DataFrame:
        """One row per container lifecycle: ``container_id``, ``started_at`` (UTC) and the
        ContainerInfo fields (``labels`` a dict, ``published_host_ports`` a tuple; limits
        NaN/<NA> where none is declared), sorted by ``(container_id, started_at)``."""
        names = ("container_id", "started_ns", *_INFO_FIELDS, "labels", "published_host_ports")
        kinds = ("TEXT", "KEY", *(_sql_type(n) for n in _INFO_FIELDS), "TEXT", "TEXT")
        cols = self._columns(
            f"SELECT {', '.join(names)} FROM containers ORDER BY container_id, started_ns",
            (),
            kinds,
        )
        data: dict[str, Any] = {"container_id": cols[0], "started_at": _times(cols[1])}
        for name, values in zip(_INFO_FIELDS, cols[2:-2], strict=True):
            data[name] = values
        data["labels"] = pd.Series(self._json_cells(cols[-2], "containers", "labels", dict),
                                   dtype="object")
        data["published_host_ports"] = pd.Series(
            [tuple(v) for v in self._json_cells(cols[-1], "containers",
                                                 "published_host_ports", list)],
            dtype="object",
        )
        return pd.DataFrame(data)

    def host(self, since: datetime | None = None, until: datetime | None = None) -> pd.DataFrame:
        """The host table as read: ``time`` (UTC), ``monotonic_s`` and the HostCounters
        fields (``cpu_usage_seconds_total`` float64, the others Int64), sorted by time."""
        clauses, params = self._where(since, until)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        cols = self._columns(
            f"SELECT time_ns, monotonic_s, {', '.join(_HOST_FIELDS)} FROM host {where} "
            "ORDER BY time_ns",
            params,
            ("KEY", "REAL", *(_sql_type(n) for n in _HOST_FIELDS)),
        )
        data: dict[str, Any] = {"time": _times(cols[0]), "monotonic_s": cols[1]}
        for name, values in zip(_HOST_FIELDS, cols[2:], strict=True):
            data[name] = values
        return pd.DataFrame(data)

    def host_facts(self) -> pd.DataFrame:
        """One row per collection run: ``time`` (UTC) and ``facts`` (a dict)."""
        rows = self._query("SELECT time_ns, facts FROM host_facts ORDER BY time_ns")
        return pd.DataFrame(
            {
                "time": _times([r[0] for r in rows]),
                "facts": pd.Series(self._json_cells([r[1] for r in rows], "host_facts",
                                                    "facts", dict), dtype="object"),
            }
        )

    def events(self, since: datetime | None = None, until: datetime | None = None) -> pd.DataFrame:
        """Lifecycle events: ``time`` (UTC), ``container_id``, ``action``, ``attributes``
        (a dict), sorted by time."""
        clauses, params = self._where(since, until)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        time_ns, container_id, action, attributes = self._columns(
            f"SELECT time_ns, container_id, action, attributes FROM events {where} "
            "ORDER BY time_ns, rowid",
            params,
            ("KEY", "TEXT", "TEXT", "TEXT"),
        )
        return pd.DataFrame(
            {
                "time": _times(time_ns),
                "container_id": container_id,
                "action": action,
                "attributes": pd.Series(
                    self._json_cells(attributes, "events", "attributes", dict), dtype="object"
                ),
            }
        )

    def disk_usage(self) -> pd.DataFrame:
        """Disk usage readings: ``time``, ``container_id``, ``started_at``,
        ``disk_usage_bytes`` (Int64), sorted by time."""
        time_ns, container_id, started_ns, usage = self._columns(
            "SELECT time_ns, container_id, started_ns, bytes FROM disk_usage ORDER BY time_ns",
            (),
            ("KEY", "TEXT", "KEY", "INTEGER"),
        )
        return pd.DataFrame(
            {
                "time": _times(time_ns),
                "container_id": container_id,
                "started_at": _times(started_ns),
                "disk_usage_bytes": usage,
            }
        )

    def samples(
        self,
        since: datetime | None = None,
        until: datetime | None = None,
        container_ids: Iterable[str] | None = None,
        services: Iterable[str] | None = None,
        *,
        interval_s: float | None = None,
        gap_factor: float = 2.0,
    ) -> pd.DataFrame:
        """The samples table of the stored counters: :func:`counters_to_samples` of
        :meth:`counters` and :meth:`containers`, with disk usage attached.

        Each disk usage reading goes to the counters row of its container lifecycle nearest
        in time (one row per reading; NaN elsewhere). Trap: ``since`` bounds the readings, so
        the first reading at or after ``since`` has no rate; the first interval starts there.

        It never builds the counters table: only the fields the rates use are read, each
        straight into float64 in series order, and the rules of :func:`counters_to_samples`
        run on those arrays (the same function body, so the same table to the bit; 6 M rows
        in about 8 s of CPU, see benchmarks/RESULTS.md).
        """
        _check_params("counters_to_samples", interval_s, gap_factor)
        read = self._read_counters(since, until, container_ids, services,
                                   _SAMPLE_INPUT_FIELDS, as_float=True)
        if not len(read.time_ns):
            return empty_samples()
        columns = dict(zip(_SAMPLE_INPUT_FIELDS, read.values, strict=True))
        order, rank, monotonic_s, time_ns = _series_order(read.rank, read.monotonic_s,
                                                          read.time_ns)
        disk = self.disk_usage()
        if len(disk):
            columns[DISK_USAGE] = _disk_usage_per_row(read, disk, order, time_ns)
        lifecycles = pd.DataFrame({"container_id": read.container_id,
                                   "started_at": _times(read.started_ns)})
        position = np.empty_like(order)  # where each scanned row goes in that order
        position[order] = np.arange(len(order))

        def column(name: str, out: np.ndarray | None) -> np.ndarray | None:
            values = columns.pop(name, None)  # each is asked for once: free it after
            if values is None:
                return None
            if callable(values):
                return values(position, out)
            return np.take(values, order, out=out)

        return _lifecycle_samples(
            rank, lifecycles, time_ns, monotonic_s, column, self.containers(),
            interval_s=interval_s, gap_factor=gap_factor,
        )

    def host_rates(
        self, *, interval_s: float | None = None, gap_factor: float = 2.0
    ) -> pd.DataFrame:
        """:func:`host_to_rates` of :meth:`host`."""
        from ._rates import host_to_rates

        return host_to_rates(self.host(), interval_s=interval_s, gap_factor=gap_factor)

    # -- upkeep ----------------------------------------------------------------------------

    def retain(self, keep_s: float, *, now: datetime | None = None) -> int:
        """Delete every row older than ``keep_s`` seconds before ``now``; return how many
        counters rows went.

        Buffered rounds are flushed first. Container lifecycles left without counters are
        deleted too. The file does not shrink (SQLite reuses the freed pages); run
        ``VACUUM`` by hand to give the space back to the filesystem.

        Parameters
        ----------
        keep_s : float
            Seconds of history to keep, > 0.
        now : datetime, optional
            Aware "now" (default: the wall clock at the call).
        """
        if not (math.isfinite(keep_s) and keep_s > 0):
            raise InvalidParameter("keep_s", "Store.retain", "a number of seconds > 0", keep_s)
        self._check_writable("a retention")
        self.flush()
        cutoff = _ns(now if now is not None else datetime.now(UTC), "now") - int(keep_s * 1e9)
        conn = self.conn
        try:
            with conn:
                conn.execute("BEGIN IMMEDIATE")
                deleted = conn.execute("DELETE FROM counters WHERE time_ns < ?", (cutoff,)).rowcount
                for table in ("host", "host_facts", "events", "disk_usage"):
                    conn.execute(f"DELETE FROM {table} WHERE time_ns < ?", (cutoff,))
                conn.execute(
                    "DELETE FROM containers WHERE NOT EXISTS (SELECT 1 FROM counters k "
                    "WHERE k.lifecycle = containers.lifecycle)"
                )
        except sqlite3.Error as exc:
            raise self._sqlite_error(exc, "retention") from exc
        self._lifecycles = {
            (cid, started): lifecycle
            for cid, started, lifecycle in conn.execute(
                "SELECT container_id, started_ns, lifecycle FROM containers"
            )
        }
        self._known_infos = {k: v for k, v in self._known_infos.items() if k in self._lifecycles}
        return int(deleted)

    def close(self) -> None:
        """Flush buffered rounds and close the connection (idempotent)."""
        if self._conn is None:
            return
        try:
            self.flush()
        finally:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._conn is None else f"{self._pending_rounds} round(s) buffered"
        return f"Store({str(self.path)!r}, batch_rounds={self.batch_rounds}, {state})"


class _CountersRead(NamedTuple):
    """What :meth:`Store._read_counters` read, rows in the order SQLite scanned them."""

    container_id: Any  #: str array, one per lifecycle, sorted by (container_id, started_ns)
    started_ns: np.ndarray  #: int64 epoch ns, one per lifecycle
    rank: np.ndarray  #: int64 per row: its lifecycle's position in the two arrays above
    time_ns: np.ndarray  #: int64 epoch ns per row
    monotonic_s: np.ndarray  #: float64 per row
    #: one array per field asked for, or (``as_float``, Arrow reader) a function that
    #: converts it when called, into the row positions it is given
    values: list[Any]


def _ranks(lifecycle: np.ndarray, row_lifecycle: np.ndarray) -> np.ndarray:
    """Each row's position in ``lifecycle`` (the keys of its containers rows). A lookup
    table when the keys are dense (SQLite numbers them 1, 2, ...), else a search."""
    if len(lifecycle) and len(row_lifecycle) and lifecycle.min() >= 0 \
            and lifecycle.max() < 4 * len(lifecycle) + 1024:
        table = np.full(int(lifecycle.max()) + 1, -1, dtype="int64")
        table[lifecycle] = np.arange(len(lifecycle))
        inside = (row_lifecycle >= 0) & (row_lifecycle < len(table))
        rank = table[np.where(inside, row_lifecycle, 0)]
        if inside.all() and rank.min() >= 0:
            return rank
    by_id = np.argsort(lifecycle)
    return by_id[np.searchsorted(lifecycle, row_lifecycle, sorter=by_id)]


def _series_order(
    rank: np.ndarray, monotonic_s: np.ndarray, time_ns: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The row order by ``(rank, monotonic_s, time_ns)``, ties in scan order: what sorting
    by ``(rank, time_ns)`` (:meth:`Store.counters`) and then stably by ``(container_id,
    started_at, monotonic_s)`` (:func:`counters_to_samples`) gives, in one sort.

    Rows are written round after round, so each lifecycle's rows are nearly always already
    in order in the scan: a stable sort on the rank alone (a radix sort when the ranks fit
    16 bits) is then enough, which is checked; else one lexsort of the three keys.
    Returns the order and the three keys in it.
    """
    n_series = int(rank.max()) + 1 if len(rank) else 0
    key = rank.astype("uint16") if n_series <= 2**16 else rank
    order = np.argsort(key, kind="stable")
    r, m, t = rank[order], monotonic_s[order], time_ns[order]
    same = r[1:] == r[:-1]
    in_order = (m[1:] > m[:-1]) | ((m[1:] == m[:-1]) & (t[1:] >= t[:-1]))
    if not bool(np.all(~same | in_order)):
        order = np.lexsort((time_ns, monotonic_s, rank))
        r, m, t = rank[order], monotonic_s[order], time_ns[order]
    return order, r, m, t


def _disk_usage_per_row(read: _CountersRead, disk: pd.DataFrame, order: np.ndarray,
                        ordered_time_ns: np.ndarray) -> np.ndarray:
    """Each disk reading on the counters row of its lifecycle nearest in time (float64 per
    row in scan order, NaN elsewhere; when two readings meet one row, the later wins; a
    reading halfway between two rows goes to the earlier one).

    The same matching as before issue 14 (``pd.merge_asof``, nearest, on the rows in
    :meth:`Store.counters` order). ``order`` sorts the rows by lifecycle rank, then time
    (``ordered_time_ns`` in that order) as :func:`_series_order` gives it. When no
    lifecycle holds one time twice, among its rows or among its readings, the nearest row
    is unique and found by a binary search per lifecycle; else (or when time goes back
    within a lifecycle in that order) ``merge_asof`` itself decides, as it always did.
    """
    n = len(read.time_ns)
    keys = pd.DataFrame({"container_id": read.container_id, "_started_ns": read.started_ns,
                         "_key": np.arange(len(read.started_ns), dtype="int64")})
    left = disk.assign(_started_ns=disk["started_at"].to_numpy(dtype="datetime64[ns]")
                       .view("int64")).merge(keys, how="left", on=["container_id",
                                                                   "_started_ns"])
    left["_key"] = left["_key"].fillna(-1).astype("int64")  # not in the counters: no match
    rank = read.rank[order]
    same = rank[1:] == rank[:-1]
    step = ordered_time_ns[1:] - ordered_time_ns[:-1]
    reading_ns = left["time"].to_numpy(dtype="datetime64[ns]").view("int64")
    reading_key = left["_key"].to_numpy()
    known = reading_key >= 0
    twice = pd.DataFrame({"k": reading_key[known], "t": reading_ns[known]}).duplicated().any()
    if np.all(~same | (step > 0)) and not twice:
        return _nearest_rows(rank, ordered_time_ns, order, reading_key, reading_ns,
                             left["disk_usage_bytes"].astype("float64").to_numpy(), n)
    by_time = np.lexsort((read.time_ns, read.rank))  # the order Store.counters returns
    right = pd.DataFrame({"time": _times(read.time_ns[by_time]),
                          "_key": read.rank[by_time], "_row": np.arange(n)})
    matched = pd.merge_asof(
        left.sort_values("time"),
        right.sort_values("time"),
        on="time",
        by="_key",
        direction="nearest",
    ).dropna(subset=["_row"])
    matched = matched.drop_duplicates("_row", keep="last")
    values = np.full(n, np.nan)
    rows = by_time[matched["_row"].astype("int64").to_numpy()]
    values[rows] = matched["disk_usage_bytes"].astype("float64")
    return values


def _nearest_rows(rank: np.ndarray, time_ns: np.ndarray, order: np.ndarray,
                  reading_key: np.ndarray, reading_ns: np.ndarray, reading_value: np.ndarray,
                  n: int) -> np.ndarray:
    """:func:`_disk_usage_per_row` when every time is unique within its lifecycle: ``rank``
    and ``time_ns`` sorted by (rank, time), ``order`` their scan positions."""
    values = np.full(n, np.nan)
    bounds = np.searchsorted(rank, np.arange(int(rank[-1]) + 2 if len(rank) else 1))
    by_time = np.argsort(reading_ns, kind="stable")  # later readings written last
    reading_key, reading_ns, reading_value = (reading_key[by_time], reading_ns[by_time],
                                              reading_value[by_time])
    target = np.full(len(reading_ns), -1, dtype="int64")
    for key in np.unique(reading_key[reading_key >= 0]).tolist():
        if key + 1 >= len(bounds):
            continue
        start, stop = int(bounds[key]), int(bounds[key + 1])
        if start == stop:
            continue
        mine = np.flatnonzero(reading_key == key)
        times = time_ns[start:stop]
        t = reading_ns[mine]
        after = np.searchsorted(times, t, side="left")  # first row at or after the reading
        before = np.searchsorted(times, t, side="right") - 1  # last row at or before it
        has_before, has_after = before >= 0, after < len(times)
        gap_before = t - times[np.maximum(before, 0)]
        gap_after = times[np.minimum(after, len(times) - 1)] - t
        # the earlier row on a tie, as merge_asof's "nearest" has it
        take_before = has_before & (~has_after | (gap_before <= gap_after))
        target[mine] = start + np.where(take_before, before, after)
    found = target >= 0
    rows = order[target[found]]
    # several readings on one row: the later one (assigned last; made explicit here)
    last = len(rows) - 1 - np.unique(rows[::-1], return_index=True)[1]
    values[rows[last]] = reading_value[found][last]
    return values


def _tables(conn: sqlite3.Connection) -> set[str]:
    return {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


#: most lock holders named in a "locked" message
_MAX_HOLDERS = 5


def _lock_holders(path: Path, proc: Path = Path("/proc")) -> list[str]:
    """Processes holding a POSIX lock on the store or its ``-wal``/``-shm`` files, from
    ``<proc>/locks``, as ``"pid 1234 (capacity collect ...)"``; empty when none can be seen
    (another PID namespace shows pid 0 or none; an unreadable ``/proc``). Ours excluded."""
    inodes: set[tuple[int, int, int]] = set()
    for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        try:
            st = p.stat()
        except OSError:
            continue
        inodes.add((os.major(st.st_dev), os.minor(st.st_dev), st.st_ino))
    try:
        lines = (proc / "locks").read_text().splitlines()
    except OSError:
        return []
    pids: list[int] = []
    for line in lines:
        fields_ = line.split()
        if len(fields_) < 6 or fields_[1] == "->":
            continue
        dev_ino = fields_[5].split(":")
        if len(dev_ino) != 3:
            continue
        try:
            key = (int(dev_ino[0], 16), int(dev_ino[1], 16), int(dev_ino[2]))
            pid = int(fields_[4])
        except ValueError:
            continue
        if key in inodes and pid > 0 and pid != os.getpid() and pid not in pids:
            pids.append(pid)
    holders = []
    for pid in pids[:_MAX_HOLDERS]:
        try:
            raw = (proc / str(pid) / "cmdline").read_bytes()
            # one line, whatever the arguments hold (a -c script has newlines)
            command = " ".join(raw.replace(b"\0", b" ").decode(errors="replace").split())
        except OSError:
            command = ""
        holders.append(f"pid {pid}" + (f" ({command[:80]})" if command else ""))
    return holders
