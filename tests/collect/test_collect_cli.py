"""``capacity collect`` as a user runs it: real subprocesses on real containers (SIGKILL,
SIGTERM), and the exit status 3 cases (no engine, socket permission denied, bad flags)."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from collect_helpers import RUN_LABEL, free_port, new_run_id, wait_for_rounds, wait_until

from capacity.cli import main
from capacity.store import Store

#: rows a collector must have committed before it is killed
ROWS_BEFORE_KILL = 5


def _collect_cmd(store: Path, run_id: str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "capacity", "collect", "--store", str(store),
            "--filter", f"label={RUN_LABEL}={run_id}", *extra]


def _committed_rows(path: Path) -> int:
    if not path.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1) as conn:
            return int(conn.execute("SELECT count(*) FROM counters").fetchone()[0])
    except sqlite3.Error:  # not created yet
        return 0


def _has_host_facts(path: Path) -> bool:
    if not path.exists():
        return False
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1) as conn:
            return conn.execute("SELECT count(*) FROM host_facts").fetchone()[0] > 0
    except sqlite3.Error:
        return False


@pytest.fixture
def collector_process() -> Iterator[list[subprocess.Popen[Any]]]:
    """Processes a test starts; killed at the end if still running."""
    procs: list[subprocess.Popen[Any]] = []
    yield procs
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait(10)


@pytest.mark.docker
def test_sigkill_leaves_an_intact_store_with_committed_rows(
    run_container: Any, tmp_path: Path, collector_process: list[subprocess.Popen[Any]]
):
    run_id = new_run_id()
    c = run_container("sleep", "600", labels={RUN_LABEL: run_id})
    path = tmp_path / "s.sqlite"
    proc = subprocess.Popen(
        _collect_cmd(path, run_id, "--interval", "0.2s", "--forever", "--commit-every", "0.4s"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    collector_process.append(proc)
    wait_until(lambda: _committed_rows(path) >= ROWS_BEFORE_KILL or proc.poll() is not None,
               30, "committed rows")
    assert proc.poll() is None, proc.communicate()
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(10) == -signal.SIGKILL

    with Store(path, create=False) as store:
        assert store.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        counters = store.counters()
        assert len(store.host_facts()) == 1
        assert len(store.host()) >= ROWS_BEFORE_KILL
    assert len(counters) >= ROWS_BEFORE_KILL
    assert set(counters["container_id"]) == {c.id}
    assert counters["monotonic_s"].is_monotonic_increasing


@pytest.mark.docker
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_flushes_and_exits_0(
    sig: signal.Signals,
    run_container: Any,
    tmp_path: Path,
    collector_process: list[subprocess.Popen[Any]],
):
    run_id = new_run_id()
    c = run_container("sleep", "600", labels={RUN_LABEL: run_id})
    path = tmp_path / "s.sqlite"
    # commits once an hour: every row in the store after the signal was flushed by it
    port = free_port()
    proc = subprocess.Popen(
        _collect_cmd(path, run_id, "--interval", "0.2s", "--forever", "--commit-every", "1h",
                     "--serve", f"127.0.0.1:{port}"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    collector_process.append(proc)
    wait_until(lambda: _has_host_facts(path) or proc.poll() is not None, 30, "the run to start")
    wait_for_rounds(port, 3, proc)  # the rows asserted below, buffered (not a fixed sleep)
    assert _committed_rows(path) == 0
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert out == ""
    assert "stopped by a signal" in err
    with Store(path, create=False) as store:
        counters = store.counters()
    assert len(counters) >= 3 and set(counters["container_id"]) == {c.id}


def test_no_engine_is_one_line_and_exit_3(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-such.sock")
    rc = main(["collect", "--duration", "1s", "--store", str(tmp_path / "s.sqlite")])
    err = capsys.readouterr().err
    assert rc == 3
    assert err.count("\n") == 1 and "no-such.sock does not exist" in err
    assert not (tmp_path / "s.sqlite").exists()


def test_permission_denied_on_the_socket_is_one_line_and_exit_3(tmp_path: Path):
    """A real socket with mode 000, reached by a collector without CAP_DAC_OVERRIDE (root
    would otherwise ignore the mode)."""
    if os.geteuid() != 0 or not Path("/usr/bin/setpriv").exists():
        pytest.skip("needs root and setpriv to drop capabilities")
    sock_path = tmp_path / "denied.sock"
    listener = socket.socket(socket.AF_UNIX)
    try:
        listener.bind(str(sock_path))
        listener.listen()
        sock_path.chmod(0)
        result = subprocess.run(
            ["/usr/bin/setpriv", "--inh-caps=-all", "--bounding-set=-all", "--",
             sys.executable, "-m", "capacity", "collect", "--duration", "1s",
             "--store", str(tmp_path / "s.sqlite")],
            env={**os.environ, "DOCKER_HOST": f"unix://{sock_path}"},
            capture_output=True, text=True, timeout=60,
        )
    finally:
        listener.close()
    assert result.returncode == 3, result.stderr
    assert result.stderr.count("\n") == 1
    assert "permission denied" in result.stderr


@pytest.mark.parametrize(
    "argv",
    [
        ["collect"],  # neither --duration nor --forever
        ["collect", "--duration", "1s", "--forever"],
        ["collect", "--duration", "1s", "--source", "fast"],
        ["collect", "--duration", "1s", "--interval", "0s"],
        ["collect", "--duration", "soon"],
        ["collect", "--forever", "--filter", "color=blue"],
    ],
)
def test_bad_flags_exit_3(argv: list[str], capsys: pytest.CaptureFixture[str]):
    assert main(argv) == 3
    assert "capacity: error: " in capsys.readouterr().err


@pytest.mark.docker
def test_keep_deletes_old_rows_and_collects_new_ones(
    run_container: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    from datetime import UTC, datetime, timedelta

    from capacity.sources._types import ContainerCounters, ContainerInfo

    run_id = new_run_id()
    c = run_container("sleep", "600", labels={RUN_LABEL: run_id})
    path = tmp_path / "s.sqlite"
    month_ago = datetime.now(UTC) - timedelta(days=30)
    old = ContainerInfo(id="f" * 64, name="old", image="i", service="s", pid=1,
                        started_at=month_ago)
    with Store(path) as store:
        store.write_round(month_ago, 0.0, [old],
                          [ContainerCounters(old.id, 1.0, 1 << 20, 1 << 20)])
    rc = main(["collect", "--duration", "1s", "--interval", "0.5s", "--keep", "14d",
               "--store", str(path), "--filter", f"label={RUN_LABEL}={run_id}"])
    assert rc == 0, capsys.readouterr().err
    with Store(path, create=False) as store:
        counters = store.counters()
    assert set(counters["container_id"]) == {c.id}
    assert len(counters) == 3


@pytest.mark.docker
@pytest.mark.parametrize("source, reader", [("api", "stats-api"), ("auto", "cgroup")])
def test_source_choice(
    source: str, reader: str, run_container: Any, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
):
    run_id = new_run_id()
    c = run_container("sleep", "600", labels={RUN_LABEL: run_id})
    path = tmp_path / "s.sqlite"
    rc = main(["collect", "--duration", "2s", "--interval", "1s", "--source", source,
               "--store", str(path), "--filter", f"label={RUN_LABEL}={run_id}"])
    err = capsys.readouterr().err
    assert rc == 0, err
    assert f"through {reader}" in err
    with Store(path, create=False) as store:
        counters = store.counters()
        facts = store.host_facts()["facts"].iloc[0]
    assert facts["reader"] == reader and facts["logical_cpus"] >= 1
    assert set(counters["container_id"]) == {c.id} and len(counters) == 3
    # the API does not tell the network namespace; the cgroup path does
    assert counters["net_namespace"].isna().all() == (source == "api")


@pytest.mark.docker
def test_progress_bar_on_a_terminal_only(
    run_container: Any, tmp_path: Path, collector_process: list[subprocess.Popen[Any]]
):
    """stderr on a pseudo-terminal gets the rich progress bar; a pipe gets none (the signal
    test above checks a pipe gets the summary line only)."""
    import pty

    run_id = new_run_id()
    run_container("sleep", "600", labels={RUN_LABEL: run_id})
    primary, secondary = pty.openpty()
    chunks = []
    try:
        proc = subprocess.Popen(
            _collect_cmd(tmp_path / "s.sqlite", run_id, "--duration", "2s"),
            stdout=subprocess.PIPE, stderr=secondary, env={**os.environ, "COLUMNS": "160"},
        )
        collector_process.append(proc)
        os.close(secondary)  # the child holds it; reading ends (EIO) when the child exits
        while True:  # read as it comes, so a full terminal buffer never blocks the child
            try:
                chunk = os.read(primary, 65536)
            except OSError:
                break
            if not chunk:
                break
            chunks.append(chunk)
        proc.wait(60)
    finally:
        os.close(primary)
    shown = b"".join(chunks).decode(errors="replace")
    assert proc.returncode == 0, shown
    assert "collecting" in shown and "containers seen" in shown and "rows written" in shown
    assert "1 containers" in shown
