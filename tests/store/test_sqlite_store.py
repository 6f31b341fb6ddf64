"""The SQLite store: round trip, batching, errors with a fix, retention, and a SIGKILL test."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from capacity._errors import InvalidParameter, StoreError
from capacity.sources._types import ContainerCounters, ContainerInfo, HostCounters
from capacity.store import SCHEMA_VERSION, Store, default_store_path

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
STARTED = datetime(2024, 5, 1, 11, 0, tzinfo=UTC)
#: how long the crash test lets the child write before killing it, and its overall limit
CRASH_MIN_ROUNDS = 40
CRASH_TIMEOUT_S = 60.0


def _info(i: int, *, started: datetime = STARTED, service: str | None = None) -> ContainerInfo:
    return ContainerInfo(
        id=f"{i:064x}",
        name=f"web-{i}",
        image="web:1",
        service=service or ("web" if i % 2 == 0 else "db"),
        pid=1000 + i,
        started_at=started,
        labels={"com.docker.compose.service": "web", "n": str(i)},
        published_host_ports=("8080/tcp",) if i == 0 else (),
        memory_limit_bytes=2**30 if i == 0 else None,
    )


def _reading(info: ContainerInfo, k: int) -> ContainerCounters:
    return ContainerCounters(
        container_id=info.id,
        cpu_usage_seconds_total=0.5 * k,
        memory_usage_bytes=1000 + k,
        memory_working_set_bytes=800 + k,
        net_rx_bytes_total=100 * k,
        disk_write_bytes_total=None,
    )


def _host(k: int) -> HostCounters:
    return HostCounters(
        cpu_usage_seconds_total=2.0 * k,
        memory_used_bytes=10 * k,
        memory_total_bytes=1000,
        net_rx_bytes_total=50 * k,
        net_tx_bytes_total=0,
        disk_read_bytes_total=0,
        disk_write_bytes_total=0,
        logical_cpus=4,
    )


def _write(store: Store, rounds: int, infos: list[ContainerInfo], step_s: float = 10.0) -> None:
    for k in range(rounds):
        store.write_round(
            T0 + timedelta(seconds=step_s * k),
            1000.0 + step_s * k,
            infos,
            [_reading(i, k) for i in infos],
            _host(k),
        )


def test_round_trip_of_every_table(tmp_path: Path) -> None:
    infos = [_info(0), _info(1)]
    with Store(tmp_path / "s.sqlite") as store:
        _write(store, 4, infos)
        store.write_events(
            [{"time": T0, "container_id": infos[0].id, "action": "oom", "attributes": {"a": 1}}]
        )
        store.write_disk_usage(T0 + timedelta(seconds=21), [(infos[0].id, STARTED, 4096)])
        store.write_host_facts(T0, {"kernel": "6.1", "cpus": 4})
    with Store(tmp_path / "s.sqlite", create=False) as store:
        c = store.counters()
        assert len(c) == 8
        assert str(c["time"].dtype) == "datetime64[ns, UTC]"
        assert str(c["started_at"].dtype) == "datetime64[ns, UTC]"
        assert c["time"].iloc[0] == pd.Timestamp(T0)
        assert list(c["container_id"].unique()) == [infos[0].id, infos[1].id]
        assert c["cpu_usage_seconds_total"].tolist()[:4] == [0.0, 0.5, 1.0, 1.5]
        assert c["net_rx_bytes_total"].dtype == "Int64"
        assert c["disk_write_bytes_total"].isna().all()  # None stays missing, never 0
        assert c["monotonic_s"].tolist()[:4] == [1000.0, 1010.0, 1020.0, 1030.0]

        meta = store.containers()
        assert len(meta) == 2
        first = meta.iloc[0]
        assert first["labels"] == {"com.docker.compose.service": "web", "n": "0"}
        assert first["published_host_ports"] == ("8080/tcp",)
        assert first["memory_limit_bytes"] == 2**30
        assert pd.isna(meta.iloc[1]["memory_limit_bytes"])
        assert first["started_at"] == pd.Timestamp(STARTED)

        h = store.host()
        assert len(h) == 4 and h["logical_cpus"].tolist() == [4] * 4
        assert store.host_rates()["host_cpu_cores"].tolist() == [0.2, 0.2, 0.2]

        ev = store.events()
        assert ev["action"].tolist() == ["oom"] and ev["attributes"].iloc[0] == {"a": 1}
        assert store.host_facts()["facts"].iloc[0] == {"cpus": 4, "kernel": "6.1"}

        s = store.samples()
        assert len(s) == 6
        web = s[s["container_id"] == infos[0].id]
        assert web["cpu_cores"].tolist() == [0.05, 0.05, 0.05]
        assert web["net_rx_bytes_per_second"].tolist() == [10.0, 10.0, 10.0]
        # the disk reading at +21 s lands on the reading at +20 s only
        assert web["disk_usage_bytes"].isna().tolist() == [True, False, True]
        assert web["disk_usage_bytes"].iloc[1] == 4096.0
        assert set(s["service"]) == {"web", "db"}


def test_filters(tmp_path: Path) -> None:
    infos = [_info(i) for i in range(4)]
    with Store(tmp_path / "s.sqlite") as store:
        _write(store, 5, infos)
        assert set(store.counters(services=["db"])["container_id"]) == {infos[1].id, infos[3].id}
        assert set(store.counters(container_ids=[infos[2].id])["container_id"]) == {infos[2].id}
        window = store.counters(since=T0 + timedelta(seconds=10), until=T0 + timedelta(seconds=30))
        assert len(window) == 4 * 3
        assert len(store.samples(services=["web"])) == 2 * 4
        empty = store.counters(services=["nope"])
        assert len(empty) == 0 and list(empty.columns) == list(store.counters().columns)


def test_restart_is_a_new_lifecycle_and_metadata_updates(tmp_path: Path) -> None:
    first, restarted = _info(0), _info(0, started=STARTED + timedelta(hours=2))
    with Store(tmp_path / "s.sqlite") as store:
        _write(store, 2, [first])
        changed = ContainerInfo(**{**first.__dict__, "memory_limit_bytes": 5})
        _write(store, 1, [changed])
        _write(store, 3, [restarted])
        meta = store.containers()
        assert len(meta) == 2
        assert meta["memory_limit_bytes"].tolist() == [5, 2**30]
        assert store.counters()["started_at"].nunique() == 2


def test_batching_commits_every_n_rounds(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    store = Store(path, batch_rounds=3)
    reader = sqlite3.connect(path)
    count = "SELECT COUNT(*) FROM counters"
    _write(store, 2, [_info(0)])
    assert reader.execute(count).fetchone()[0] == 0
    _write(store, 1, [_info(0)])
    assert reader.execute(count).fetchone()[0] == 3  # the third round committed all three
    _write(store, 1, [_info(0)])
    assert reader.execute(count).fetchone()[0] == 3
    store.close()  # flushes the buffered round
    assert reader.execute(count).fetchone()[0] == 4
    reader.close()
    assert "closed" in repr(store)
    store.close()  # idempotent


def test_wal_mode_and_synchronous(tmp_path: Path) -> None:
    with Store(tmp_path / "s.sqlite", synchronous="FULL") as store:
        assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert store.conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    with Store(tmp_path / "s.sqlite") as store:
        assert store.conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL


def test_missing_file_without_create(tmp_path: Path) -> None:
    path = tmp_path / "nope.sqlite"
    with pytest.raises(StoreError, match="no such file") as info:
        Store(path, create=False)
    assert info.value.path == str(path) and "capacity collect" in str(info.value)
    assert not path.exists()


def test_corrupt_file_is_a_store_error_with_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    path.write_bytes(b"this is not a database, just some text " * 200)
    with pytest.raises(StoreError, match="not a SQLite database") as info:
        Store(path)
    assert str(path) in str(info.value) and "mv " in str(info.value)
    assert isinstance(info.value.__cause__, sqlite3.DatabaseError)


def test_foreign_sqlite_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.sqlite"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE t (x)")
    with pytest.raises(StoreError, match="not a capacity store"):
        Store(path)


@pytest.mark.parametrize("version", [SCHEMA_VERSION + 1, SCHEMA_VERSION - 1])
def test_schema_version_mismatch(tmp_path: Path, version: int) -> None:
    path = tmp_path / "s.sqlite"
    Store(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE schema_version SET version = ?", (version,))
    conn.close()
    with pytest.raises(StoreError) as info:
        Store(path)
    msg = str(info.value)
    assert f"schema version {version}" in msg
    assert f"reads schema version {SCHEMA_VERSION}" in msg
    assert ("Upgrade" in msg) == (version > SCHEMA_VERSION)


def test_unwritable_directory(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    with pytest.raises(StoreError, match="cannot create the directory") as info:
        Store(blocker / "sub" / "s.sqlite")
    assert "--store" in str(info.value)


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere: permissions not testable")
def test_read_only_directory(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    try:
        with pytest.raises(StoreError, match="not writable"):
            Store(locked / "s.sqlite")
    finally:
        locked.chmod(0o700)


def test_naive_time_and_unknown_container_are_refused(tmp_path: Path) -> None:
    with Store(tmp_path / "s.sqlite") as store:
        with pytest.raises(InvalidParameter, match="timezone-aware"):
            store.write_round(datetime(2024, 1, 1), 1.0, [], [])
        with pytest.raises(InvalidParameter, match="'counters' parameter"):
            store.write_round(T0, 1.0, [], [_reading(_info(0), 0)])
        with pytest.raises(InvalidParameter, match="'batch_rounds' parameter"):
            Store(tmp_path / "t.sqlite", batch_rounds=0)


def test_retention(tmp_path: Path) -> None:
    old, new = _info(0), _info(1)
    with Store(tmp_path / "s.sqlite") as store:
        _write(store, 10, [old, new])  # T0 .. T0 + 90 s
        store.write_round(T0 + timedelta(seconds=200), 1200.0, [new], [_reading(new, 20)])
        store.write_events([{"time": T0, "container_id": old.id, "action": "start"}])
        deleted = store.retain(60.0, now=T0 + timedelta(seconds=200))  # keep >= T0 + 140 s
        assert deleted == 20
        assert len(store.counters()) == 1
        assert store.containers()["container_id"].tolist() == [new.id]
        assert len(store.events()) == 0 and len(store.host()) == 0
        # the store keeps working after retention, for old and new lifecycles
        store.write_round(T0 + timedelta(seconds=210), 1210.0, [old], [_reading(old, 21)])
        assert len(store.counters()) == 2
        with pytest.raises(InvalidParameter):
            store.retain(0)


def test_default_store_path() -> None:
    assert default_store_path({"CAPACITY_STORE": "/x/y.sqlite"}) == Path("/x/y.sqlite")
    assert default_store_path({"XDG_DATA_HOME": "/data"}) == Path("/data/capacity/samples.sqlite")
    home = Path("~/.local/share/capacity/samples.sqlite").expanduser()
    assert default_store_path({}) == home
    assert default_store_path({"XDG_DATA_HOME": "relative"}) == home


def test_store_is_a_collector_sink(tmp_path: Path) -> None:
    from capacity._collect import Collector

    infos = [_info(0), _info(1)]
    ticks = iter(np.arange(0.0, 100.0, 1.0))

    class Engine:
        def containers(self) -> list[ContainerInfo]:
            return infos

    class Reader:
        name = "fake"

        def __init__(self) -> None:
            self.k = 0

        def read(self, container: ContainerInfo) -> ContainerCounters:
            self.k += 1
            return _reading(container, self.k)

    with Store(tmp_path / "s.sqlite") as store:
        Collector(
            Engine(),
            Reader(),
            store,
            monotonic_clock=lambda: float(next(ticks)),
            sleep=lambda s: None,
        ).run(interval_s=1.0, duration_s=3.0)
        assert len(store.counters()) == 2 * 4


_CHILD = textwrap.dedent(
    """
    import sys
    from datetime import UTC, datetime, timedelta
    from capacity.sources._types import ContainerCounters, ContainerInfo
    from capacity.store import Store

    path, batch = sys.argv[1], int(sys.argv[2])
    t0 = datetime(2024, 1, 1, tzinfo=UTC)
    infos = [
        ContainerInfo(id=f"{i:064x}", name=f"c{i}", image="i", service="s", pid=i,
                      started_at=t0)
        for i in range(50)
    ]
    store = Store(path, batch_rounds=batch)
    k = 0
    while True:
        store.write_round(
            t0 + timedelta(seconds=k), float(k), infos,
            [ContainerCounters(container_id=c.id, cpu_usage_seconds_total=float(k),
                               memory_usage_bytes=k, memory_working_set_bytes=k)
             for c in infos],
        )
        if (k + 1) % batch == 0:  # write_round committed this batch
            print(k, flush=True)
        k += 1
    """
)


@pytest.mark.slow
@pytest.mark.parametrize("batch", [1, 7])
def test_sigkill_mid_write_loses_no_committed_round(tmp_path: Path, batch: int) -> None:
    path = tmp_path / "crash.sqlite"
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(path), str(batch)],
        stdout=subprocess.PIPE,
        text=True,
    )
    reported: list[int] = []
    deadline = time.monotonic() + CRASH_TIMEOUT_S
    try:
        assert child.stdout is not None
        while len(reported) < CRASH_MIN_ROUNDS // batch + 2 and time.monotonic() < deadline:
            line = child.stdout.readline()
            if not line:
                break
            reported.append(int(line))
        child.send_signal(signal.SIGKILL)  # mid-run: the child never stops writing by itself
        rest, _ = child.communicate(timeout=CRASH_TIMEOUT_S)
    finally:
        if child.poll() is None:
            child.kill()
    reported += [int(x) for x in rest.split()]
    assert child.returncode == -signal.SIGKILL
    assert reported, "the child committed nothing before it was killed"

    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()
    with Store(path, create=False) as store:
        counters = store.counters()
    per_round = counters.groupby("monotonic_s").size()
    last = reported[-1]
    committed = set(range(last + 1))
    assert committed <= set(per_round.index.astype(int)), "a reported round is missing"
    # rounds commit whole: never a partial round
    assert (per_round == 50).all()


def test_a_collector_restarted_at_a_longer_interval_keeps_its_samples(tmp_path: Path) -> None:
    """A store filled at 1 s for 10 min (a staging run), then at 10 s for 83 min (the cron
    job): every 10 s interval was dropped as a "gap" (longer than 2 x the median 1 s of the
    whole series), so the plan saw only the first 10 minutes, silently. Only a long interval
    among short ones is a gap; one collector gap in each period is still dropped."""
    info = _info(0)
    steps = [1.0] * 600 + [10.0] * 500
    steps[300] = 60.0  # the collector stopped for a minute in the 1 s period
    steps[900] = 600.0  # and for ten in the 10 s period
    mono, cpu = 1000.0, 0.0
    with Store(tmp_path / "s.sqlite") as store:
        for k, step in enumerate([0.0, *steps]):
            mono += step
            cpu += step * (0.1 if k <= 600 else 0.9)  # CPU busier in the second period
            store.write_round(T0 + timedelta(seconds=mono - 1000.0), mono, [info],
                              [ContainerCounters(container_id=info.id,
                                                 cpu_usage_seconds_total=cpu,
                                                 memory_usage_bytes=1000,
                                                 memory_working_set_bytes=800)])
        samples = store.samples()
    assert samples["interval_s"].value_counts().to_dict() == {1.0: 599, 10.0: 499}
    assert samples["cpu_cores"].max() == pytest.approx(0.9)
