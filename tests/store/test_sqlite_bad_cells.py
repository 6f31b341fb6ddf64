"""Malformed cells read back from a SQLite store: a StoreError naming table, column and value
(SQLite keeps any type in any column, so a store edited by hand or written by another tool can
hold text where a number belongs). Never "unexpected ... this is a bug" (issue 11, item 7)."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from capacity._errors import StoreError
from capacity.cli import main
from capacity.sources._types import ContainerCounters, ContainerInfo, HostCounters
from capacity.store import Store

T0 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)

#: (SQL that spoils one cell, the table and column the error must name, how it is read)
BAD_CELLS = [
    ("UPDATE counters SET cpu_usage_seconds_total = 'lots' WHERE rowid = 2",
     "counters, column cpu_usage_seconds_total", "samples"),
    # samples() reads only the columns its rates use (issue 14); counters() reads them all
    ("UPDATE counters SET memory_usage_bytes = 'x' WHERE rowid = 1",
     "counters, column memory_usage_bytes", "counters"),
    ("UPDATE counters SET memory_working_set_bytes = 'x' WHERE rowid = 1",
     "counters, column memory_working_set_bytes", "samples"),
    ("UPDATE counters SET time_ns = 'yesterday' WHERE rowid = 3", "counters, column time_ns",
     "samples"),
    ("UPDATE counters SET monotonic_s = X'00ff' WHERE rowid = 3",
     "counters, column monotonic_s", "samples"),
    ("UPDATE containers SET labels = 'not json'", "containers, column labels", "containers"),
    ("UPDATE containers SET labels = '[1, 2]'", "containers, column labels", "containers"),
    ("UPDATE containers SET published_host_ports = '{\"a\": 1}'",
     "containers, column published_host_ports", "containers"),
    ("UPDATE events SET attributes = 'nope'", "events, column attributes", "events"),
    ("UPDATE host_facts SET facts = '3'", "host_facts, column facts", "host_facts"),
]


def _store(path: Path) -> Path:
    info = ContainerInfo(id="a" * 64, name="web-1", image="web:1", service="web", pid=10,
                         started_at=T0 - timedelta(hours=1))
    with Store(path) as store:
        for k in range(5):
            store.write_round(
                T0 + timedelta(seconds=10 * k), 100.0 + 10 * k, [info],
                [ContainerCounters(container_id=info.id, cpu_usage_seconds_total=0.5 * k,
                                   memory_usage_bytes=1000 + k,
                                   memory_working_set_bytes=800 + k)],
                HostCounters(cpu_usage_seconds_total=2.0 * k, memory_used_bytes=10,
                             memory_total_bytes=1000, net_rx_bytes_total=0,
                             net_tx_bytes_total=0, disk_read_bytes_total=0,
                             disk_write_bytes_total=0, logical_cpus=4),
            )
        store.write_events([{"time": T0, "container_id": info.id, "action": "oom",
                             "attributes": {"a": 1}}])
        store.write_host_facts(T0, {"cpus": 4})
    return path


@pytest.mark.parametrize("sql, names, read", BAD_CELLS, ids=[c[1] for c in BAD_CELLS])
def test_a_bad_cell_names_table_column_and_value(tmp_path: Path, sql: str, names: str,
                                                 read: str) -> None:
    path = _store(tmp_path / "s.sqlite")
    with sqlite3.connect(path) as conn:
        conn.execute(sql)
    with Store(path, create=False) as store, pytest.raises(StoreError) as info:
        getattr(store, read)()
    message = str(info.value)
    assert names in message and str(path) in message
    assert "new store" in message  # what to do


def test_a_bad_cell_is_exit_3_on_the_command_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _store(tmp_path / "s.sqlite")
    with sqlite3.connect(path) as conn:
        conn.execute(BAD_CELLS[0][0])
    code = main(["fit", "--store", str(path), "--out", str(tmp_path / "p.json")])
    err = capsys.readouterr().err
    assert code == 3
    assert err.startswith("capacity: error:") and "'lots'" in err
    assert "unexpected" not in err
    assert not (tmp_path / "p.json").exists()
