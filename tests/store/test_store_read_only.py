"""Reading commands never change their input; a locked store is "locked", not "corrupt"; a
non-root user (the Nagios case) reads a root-owned store. Real files, real second processes,
real uid switches (issue 11, items 4 and 5)."""

from __future__ import annotations

import hashlib
import io
import os
import pwd
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from capacity._errors import StoreError, StoreLocked
from capacity.cli import main
from capacity.sources._types import ContainerCounters, ContainerInfo
from capacity.store import Store

ROOT = Path(__file__).resolve().parents[2]
#: the busy timeout of the Store-level lock tests (the CLI waits its default 5 s)
SHORT_TIMEOUT_S = 0.3
#: how long a helper process may take to start and report ready
HELPER_START_S = 60.0
MACHINE = "cpus=4,memory=8GiB,cpu_saturation=1"


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _siblings(path: Path) -> list[str]:
    return sorted(p.name for p in path.parent.iterdir() if p.name.startswith(path.name))


def _fill(path: Path, rounds: int = 120) -> None:
    """A capacity store with two services, enough rounds for a plan."""
    rng = np.random.default_rng(5)
    start = datetime.now(UTC) - timedelta(seconds=10 * rounds)
    infos = [
        ContainerInfo(id=f"{i:064x}", name=f"c{i}", image="img", service=("web", "db")[i % 2],
                      pid=100 + i, started_at=start)
        for i in range(4)
    ]
    cpu = np.zeros(len(infos))
    with Store(path, batch_rounds=60) as store:
        for k in range(rounds):
            cpu += rng.gamma(4, 0.05, size=len(infos)) * 10
            store.write_round(
                start + timedelta(seconds=10 * k), 10.0 * k, infos,
                [ContainerCounters(container_id=c.id, cpu_usage_seconds_total=float(u),
                                   memory_usage_bytes=60 * 2**20,
                                   memory_working_set_bytes=int(40 * 2**20 + k * 1000))
                 for c, u in zip(infos, cpu, strict=True)],
            )


# -- a reading command changes nothing -------------------------------------------------------


@pytest.mark.parametrize("command", [
    ["report", "--check", "--machine", MACHINE],
    ["fit"],
    ["backtest", "--machine", MACHINE],
])
def test_foreign_sqlite_file_is_refused_untouched(
    tmp_path: Path, command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "someone-elses.sqlite"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE t (x)")
        conn.execute("INSERT INTO t VALUES (1)")
    conn.close()
    before = _digest(path)
    extra = ["--out", str(tmp_path / ("r" if command[0] == "report" else "p.json"))] \
        if command[0] != "backtest" else []
    code = main([*command, "--store", str(path), *extra])
    err = capsys.readouterr().err
    assert code == 3
    assert "not a capacity store" in err and "left untouched" in err
    assert _digest(path) == before, "the file was changed"
    assert _siblings(path) == [path.name], "a -wal/-shm/-journal file was left"
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    conn.close()


@pytest.mark.parametrize("command", [["report", "--check", "--machine", MACHINE], ["fit"]])
def test_empty_file_is_refused_and_stays_empty(
    tmp_path: Path, command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "empty.sqlite"
    path.touch()
    code = main([*command, "--store", str(path), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 3 and "is empty (0 bytes): not a capacity store" in err
    assert path.stat().st_size == 0 and _siblings(path) == [path.name]
    assert not (tmp_path / "o").exists()


def test_read_only_store_reads_and_refuses_writes(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    _fill(path, rounds=20)
    before = _digest(path)
    with Store(path, read_only=True) as store:
        assert len(store.counters()) == 80
        with pytest.raises(StoreError, match="opened read-only"):
            store.write_events([{"time": datetime.now(UTC), "container_id": "x",
                                 "action": "start"}])
        with pytest.raises(StoreError, match="opened read-only"):
            store.retain(60.0)
    assert _digest(path) == before
    assert _siblings(path) == [path.name], "a reader created a -wal/-shm side file"


# -- locked is not corrupt ------------------------------------------------------------------

_HOLDER = textwrap.dedent("""
    import sqlite3, sys
    conn = sqlite3.connect(sys.argv[1], isolation_level=None)
    for statement in sys.argv[2].split(";"):
        conn.execute(statement)
    print("holding", flush=True)
    sys.stdin.read()  # hold the lock until the test closes our stdin
""")
#: a VACUUM-like holder: exclusive locking mode blocks readers too, even in WAL mode
EXCLUSIVE = ("PRAGMA locking_mode = EXCLUSIVE;BEGIN EXCLUSIVE;"
             "INSERT INTO events VALUES (1, 'x', 'start', '{}')")
#: a second writer in the middle of a transaction: readers go on, writers wait
WRITE_LOCK = "BEGIN IMMEDIATE;INSERT INTO events VALUES (1, 'x', 'start', '{}')"


@pytest.fixture
def hold_lock() -> Iterator[Callable[[Path, str], subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []

    def start(path: Path, statements: str) -> subprocess.Popen[str]:
        proc = subprocess.Popen([sys.executable, "-c", _HOLDER, str(path), statements],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        started.append(proc)
        assert proc.stdout is not None and proc.stdout.readline().strip() == "holding"
        return proc

    yield start
    for proc in started:
        if proc.stdin:
            proc.stdin.close()
        proc.wait(timeout=HELPER_START_S)


def test_locked_store_is_reported_as_locked_by_whom(
    tmp_path: Path, hold_lock: Callable[[Path, str], subprocess.Popen[str]]
) -> None:
    path = tmp_path / "s.sqlite"
    _fill(path, rounds=20)
    holder = hold_lock(path, EXCLUSIVE)
    with pytest.raises(StoreLocked) as info:
        Store(path, read_only=True, busy_timeout_s=SHORT_TIMEOUT_S)
    msg = str(info.value)
    assert "locked" in msg and "not corrupt" in msg and f"waited {SHORT_TIMEOUT_S:g} s" in msg
    assert "Move it aside" not in msg and "mv " not in msg and "corrupt (" not in msg
    assert any(h.startswith(f"pid {holder.pid} ") for h in info.value.holders), \
        info.value.holders
    assert f"pid {holder.pid}" in msg


def test_collector_waits_for_a_writer_then_says_locked(
    tmp_path: Path, hold_lock: Callable[[Path, str], subprocess.Popen[str]]
) -> None:
    path = tmp_path / "s.sqlite"
    _fill(path, rounds=20)
    hold_lock(path, WRITE_LOCK)
    with Store(path, read_only=True, busy_timeout_s=SHORT_TIMEOUT_S) as reader:
        assert len(reader.counters()) == 80, "a writer's lock does not block a WAL reader"
    with Store(path, busy_timeout_s=SHORT_TIMEOUT_S) as store, \
            pytest.raises(StoreLocked, match="writing events failed: the file is locked"):
        store.write_events([{"time": datetime.now(UTC), "container_id": "y",
                             "action": "start"}])


def test_report_on_a_locked_store_exits_3_with_locked(
    tmp_path: Path, hold_lock: Callable[[Path, str], subprocess.Popen[str]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = tmp_path / "s.sqlite"
    _fill(path, rounds=20)
    before = _digest(path)
    holder = hold_lock(path, EXCLUSIVE)
    code = main(["report", "--store", str(path), "--check", "--machine", MACHINE,
                 "--out", str(tmp_path / "r")])
    captured = capsys.readouterr()
    assert code == 3
    assert captured.out.startswith("CAPACITY UNKNOWN - ") and captured.out.count("\n") == 1
    assert "is locked by pid" in captured.err and str(holder.pid) in captured.err
    assert "corrupt (" not in captured.err and "Move it aside" not in captured.err
    holder.stdin.close()  # type: ignore[union-attr]
    holder.wait(timeout=HELPER_START_S)
    assert _digest(path) == before


# -- a non-root user reads a root-owned store ------------------------------------------------

def _nobody() -> pwd.struct_passwd:
    if os.geteuid() != 0:
        pytest.skip("switching to another user needs root (tests usually run as root here)")
    try:
        return pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("no 'nobody' user on this system")


def _run_as(user: pwd.struct_passwd, fn: Callable[[], int]) -> tuple[int, str, str]:
    """``fn()`` in a forked child running as ``user`` (uid, gid, no supplementary groups):
    its exit status, stdout and stderr. A fork, not an exec: this Python and the venv may
    not be readable by that user, while the modules ``fn`` needs are already imported."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            code = 99
            try:
                os.setgroups([])
                os.setgid(user.pw_gid)
                os.setuid(user.pw_uid)
                sys.stdout = io.TextIOWrapper(os.fdopen(os.dup(out.fileno()), "wb", 0),
                                              write_through=True)
                sys.stderr = io.TextIOWrapper(os.fdopen(os.dup(err.fileno()), "wb", 0),
                                              write_through=True)
                code = fn()
            except BaseException as exc:  # report anything, never return into pytest
                os.write(err.fileno(), f"child failed: {type(exc).__name__}: {exc}\n".encode())
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        out.seek(0)
        err.seek(0)
        return os.waitstatus_to_exitcode(status), out.read().decode(), err.read().decode()


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A root-owned folder others may enter and read, not write (like /var/lib/capacity)."""
    folder = Path(tempfile.mkdtemp(prefix="capacity-ro-", dir="/tmp"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


_COLLECTOR = textwrap.dedent("""
    import sys
    from capacity.store import Store
    with Store(sys.argv[1]) as store:  # open, as 'capacity collect --forever' keeps it
        store.counters()
        print("open", flush=True)
        sys.stdin.read()
""")


@pytest.mark.parametrize("collector_running", [True, False])
def test_nobody_reads_a_root_owned_store(shared_dir: Path, collector_running: bool) -> None:
    user = _nobody()
    path = shared_dir / "samples.sqlite"
    _fill(path)
    os.chmod(path, 0o644)
    argv = ["report", "--store", str(path), "--check", "--machine", MACHINE,
            "--out", str(shared_dir / "reports")]
    (shared_dir / "reports").mkdir(mode=0o777)
    (shared_dir / "reports").chmod(0o777)
    # once as root, in this process: imports every module the command needs before the fork
    # (into a folder of its own: report folders are named to the second, and nobody's run in
    # the same second would meet root's folder of the same name)
    expected = main([*argv[:-1], str(shared_dir / "reports-root")])
    assert expected in (0, 1, 2)
    collector = None
    if collector_running:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        collector = subprocess.Popen([sys.executable, "-c", _COLLECTOR, str(path)], env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert collector.stdout is not None and collector.stdout.readline().strip() == "open"
        assert Path(f"{path}-shm").exists()
    try:
        before = {p.name: (_digest(p), p.stat().st_uid) for p in shared_dir.iterdir()
                  if p.is_file()}
        code, out, err = _run_as(user, lambda: main(argv))
        after = {p.name: (_digest(p), p.stat().st_uid) for p in shared_dir.iterdir()
                 if p.is_file()}
    finally:
        if collector is not None:
            assert collector.stdin is not None
            collector.stdin.close()
            collector.wait(timeout=HELPER_START_S)
    assert code == expected, err
    assert out.startswith("CAPACITY ") and "UNKNOWN" not in out, (out, err)
    assert after == before, "reading as nobody changed or created a file beside the store"
    owners = {p.stat().st_uid for p in (shared_dir / "reports").iterdir()}
    assert user.pw_uid in owners, "the report nobody wrote is there"


def test_immutable_read_is_refused_if_the_file_changes_meanwhile(shared_dir: Path) -> None:
    """No -wal: the reader opens the file immutable; a collector that starts and checkpoints
    during the read changes the file, and the read is refused, not used."""
    user = _nobody()
    path = shared_dir / "samples.sqlite"
    _fill(path, rounds=20)
    os.chmod(path, 0o644)
    opened_r, opened_w = os.pipe()
    written_r, written_w = os.pipe()

    def read_across_a_write() -> int:
        with Store(path, read_only=True) as store:
            assert store._immutable_state is not None, "expected an immutable read"
            assert len(store.counters()) == 80
            os.write(opened_w, b"1")
            os.read(written_r, 1)  # the parent wrote as root meanwhile
            try:
                store.counters()
            except StoreError as exc:
                print(exc)
                return 7
        return 0

    def write_as_root() -> None:
        if os.read(opened_r, 1):  # b"": the reader died first; write nothing
            with Store(path) as store:  # a collector: -wal, a commit, a checkpoint on close
                store.write_events([{"time": datetime.now(UTC), "container_id": "z",
                                     "action": "start"}])
        os.write(written_w, b"1")

    writer = os.fork()
    if writer == 0:  # pragma: no cover - the writer side, as root
        try:
            os.close(opened_w)
            write_as_root()
        finally:
            os._exit(0)
    # the writer alone holds these ends: the reader sees EOF, not a hang, if it dies
    os.close(written_w)
    os.close(opened_r)
    try:
        result = [_run_as(user, read_across_a_write)]
    finally:
        os.close(opened_w)  # the writer sees EOF if the reader died before it wrote
        os.close(written_r)
        os.waitpid(writer, 0)
    code, out, err = result[0]
    assert code == 7, (out, err)
    assert "changed while it was read" in out and "Run again" in out
