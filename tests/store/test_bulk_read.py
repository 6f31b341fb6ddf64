"""Reading the store column-wise through ADBC's SQLite driver (issue 14) gives exactly what
the sqlite3 reader gives: counters and samples, on a store with restarts (counter resets),
gaps, churn, counters missing at first and read later, filters and disk usage."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _reference_rates import _attach_disk_usage
from _reference_rates import counters_to_samples as reference_samples

from capacity.sources._types import ContainerCounters, ContainerInfo
from capacity.store import Store

pytest.importorskip("adbc_driver_sqlite", reason="the Arrow reader needs adbc-driver-sqlite")

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
ROUNDS = 400
#: rounds before the throttling counters are first read: more rows than the driver's
#: first batch (1,024), whose values it infers each column's type from
UNREAD_ROUNDS = 300


def _info(i: int, started: datetime) -> ContainerInfo:
    return ContainerInfo(
        id=f"{i:064x}", name=f"svc{i % 3}-{i}", image=f"img{i % 3}:1", service=f"svc{i % 3}",
        pid=100 + i, started_at=started, labels={}, memory_limit_bytes=2**30 if i == 1 else None,
    )


def _reading(info: ContainerInfo, k: int, i: int) -> ContainerCounters:
    reset = 40 if i == 2 else 10**9  # container 2's counters fall back (a reset) at round 40
    base = k if k < reset else k - reset
    return ContainerCounters(
        container_id=info.id,
        cpu_usage_seconds_total=0.37 * base + i,
        memory_usage_bytes=10_000_000 + 1_000 * k,
        memory_working_set_bytes=8_000_000 + 997 * k * (i + 1),
        # throttling read only from UNREAD_ROUNDS on: NULL first, then values
        cpu_periods_total=None if k < UNREAD_ROUNDS else 100 * base,
        cpu_throttled_periods_total=None if k < UNREAD_ROUNDS else base,
        cpu_throttled_seconds_total=None if k < UNREAD_ROUNDS else 0.01 * base,
        disk_read_bytes_total=4096 * base,
        disk_write_bytes_total=None if i == 0 else 8192 * base,
        net_rx_bytes_total=(2**62 + 1500 * base) if i == 1 else 1500 * base,  # beyond 2**53
        net_tx_bytes_total=700 * base,
        net_namespace=4026531000 + (i if i != 3 else 1),  # 3 shares container 1's namespace
        pids=3 + i,
        memory_oom_kills_total=None if k < 60 else k // 50,
    )


@pytest.fixture(scope="module")
def store_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("bulk") / "s.sqlite"
    with Store(path) as store:
        for k in range(ROUNDS):
            if 70 <= k < 75:
                continue  # the collector stopped: a gap for everyone
            t = T0 + timedelta(seconds=10 * k)
            infos = []
            for i in range(5):
                if i == 4 and not 20 <= k < 330:
                    continue  # churn: container 4 lives from round 20 to 329
                started = T0 if not (i == 0 and k >= 50) else T0 + timedelta(seconds=495)
                infos.append(_info(i, started))  # container 0 restarts at round 50
            store.write_round(t, 1000.0 + 10 * k, infos,
                              [_reading(info, k, int(info.id, 16)) for info in infos])
            if k % 60 == 0:
                store.write_disk_usage(t, [(info.id, info.started_at, 10**6 * (k + 1))
                                           for info in infos])
    return path


FILTERS = [
    {},
    {"since": T0 + timedelta(seconds=300), "until": T0 + timedelta(seconds=900)},
    {"container_ids": [f"{1:064x}", f"{4:064x}"]},
    {"services": ["svc0"], "since": T0 + timedelta(seconds=100)},
]


@pytest.mark.parametrize("filters", FILTERS)
def test_counters_equal_the_sqlite3_reader(store_path: Path, filters: dict) -> None:
    with Store(store_path, create=False) as fast, \
            Store(store_path, create=False, arrow_reader=False) as plain:
        got, want = fast.counters(**filters), plain.counters(**filters)
    assert len(want) > 0
    pd.testing.assert_frame_equal(got, want, check_exact=True)


@pytest.mark.parametrize("filters", FILTERS)
def test_samples_equal_the_sqlite3_reader(store_path: Path, filters: dict) -> None:
    with Store(store_path, create=False) as fast, \
            Store(store_path, create=False, arrow_reader=False) as plain:
        got, want = fast.samples(**filters), plain.samples(**filters)
        # and what samples() gave before issue 14 (main 184c71d): every column read, the
        # counters table joined and turned into rates row by row
        counters = plain.counters(**filters)
        before = reference_samples(_attach_disk_usage(counters, plain.disk_usage()),
                                     plain.containers())
    assert len(want) > 0
    pd.testing.assert_frame_equal(got, want, check_exact=True)
    pd.testing.assert_frame_equal(got, before, check_exact=True)


def test_a_value_of_another_type_falls_back_to_sqlite3(store_path: Path, tmp_path: Path) -> None:
    # SQLite lets a REAL sit in an INTEGER column; the Arrow reader refuses it, so the store
    # reads that table through sqlite3 instead, with the same result as before
    path = tmp_path / "odd.sqlite"
    path.write_bytes(store_path.read_bytes())
    import sqlite3

    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE counters SET pids = 2.5 WHERE rowid = 300")
    with Store(path, create=False) as fast, Store(path, create=False, arrow_reader=False) as plain:
        pd.testing.assert_frame_equal(fast.counters(), plain.counters(), check_exact=True)


def test_the_arrow_reader_is_the_one_used(store_path: Path) -> None:
    # the equality above is only worth something if the Arrow path ran (not its fallback)
    with Store(store_path, create=False) as store:
        columns = store._arrow_columns(
            "counters", ("lifecycle", "cpu_throttled_seconds_total", "pids"),
            ("KEY", "REAL", "INTEGER"), "", [],
        )
    assert columns is not None
    lifecycle, throttled, pids = columns
    assert len(lifecycle) == len(throttled) == len(pids) > 0
    assert throttled.dtype == "float64" and str(pids.dtype) == "Int64"
    assert throttled[-1] > 0  # a REAL after more than a batch of NULLs


@pytest.mark.parametrize("edit", [
    "UPDATE counters SET lifecycle = 'x' WHERE rowid = 5",
    "UPDATE counters SET monotonic_s = 'soon' WHERE rowid = 7",
])
def test_a_bad_cell_is_the_same_store_error_either_way(store_path: Path, tmp_path: Path,
                                                       edit: str) -> None:
    # the Arrow reader gives up on such a table; the sqlite3 reader names the cell
    import sqlite3

    from capacity._errors import StoreError

    path = tmp_path / "bad.sqlite"
    path.write_bytes(store_path.read_bytes())
    with sqlite3.connect(path) as conn:
        conn.execute(edit)
    messages = []
    for arrow in (True, False):
        with Store(path, create=False, arrow_reader=arrow) as store, \
                pytest.raises(StoreError) as info:
            store.counters()
        messages.append(str(info.value))
    assert messages[0] == messages[1]


#: containers x rounds of the large store: more rows than one Arrow batch of the reader
#: (_BATCH_ROWS), so columns arrive in several chunks, each copied to its rows' places
LARGE = (40, 2_000)


@pytest.fixture(scope="module", params=["in order", "shuffled"])
def large_store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store of more than one Arrow batch; "shuffled": rounds written in random order and
    lifecycle keys made sparse, so the reader's fallbacks run (a full sort instead of the
    radix sort on ranks, a search instead of the lookup table of keys)."""
    from capacity.store._sqlite import _BATCH_ROWS

    containers, rounds = LARGE
    assert containers * rounds > _BATCH_ROWS
    path = tmp_path_factory.mktemp("large") / "s.sqlite"
    order = np.arange(rounds)
    if request.param == "shuffled":
        np.random.default_rng(7).shuffle(order)
    with Store(path, batch_rounds=500) as store:
        for k in order.tolist():
            infos = [_info(i, T0 if k < 1_000 or i % 7 else T0 + timedelta(hours=3))
                     for i in range(containers)]
            t = T0 + timedelta(seconds=10 * k)
            store.write_round(t, 1000.0 + 10 * k, infos,
                              [_reading(info, k, int(info.id, 16) % 5) for info in infos])
            if k % 50 == 0:  # disk usage on a round, halfway between two, and of a stranger
                store.write_disk_usage(t + timedelta(seconds=5 * (k % 100 == 0)),
                                       [(info.id, info.started_at, 10**6 * k + i)
                                        for i, info in enumerate(infos[::3])]
                                       + [("f" * 64, T0, 1)])
    if request.param == "shuffled":
        import sqlite3

        with sqlite3.connect(path) as conn:  # foreign keys off: renumber both tables
            for table in ("containers", "counters"):
                conn.execute(f"UPDATE {table} SET lifecycle = lifecycle * 100003")
    return path


def test_large_store_samples_equal_the_reference(large_store: Path) -> None:
    with Store(large_store, create=False, read_only=True) as store:
        got = store.samples()
        counters = _attach_disk_usage(store.counters(), store.disk_usage())
        want = reference_samples(counters, store.containers())
    assert len(got) > 2 * LARGE[0] * 100 and got["disk_usage_bytes"].notna().sum() > 100
    pd.testing.assert_frame_equal(got, want, check_exact=True)


def test_diff_in_place_across_blocks() -> None:
    from capacity.store._rates import _DIFF_BLOCK, _diff_in_place

    values = np.random.default_rng(3).random(2 * _DIFF_BLOCK + 5) * 1e6
    values[[7, _DIFF_BLOCK, _DIFF_BLOCK + 1]] = np.nan
    want = values[1:] - values[:-1]
    _diff_in_place(values)
    np.testing.assert_array_equal(values[1:], want)


def test_one_time_twice_in_a_lifecycle_takes_the_merge_asof_way(store_path: Path,
                                                                  tmp_path: Path) -> None:
    # two disk readings of one lifecycle at one time: which wins is merge_asof's choice, as
    # before issue 14, so the reader hands that case to merge_asof itself
    import sqlite3

    path = tmp_path / "twice.sqlite"
    path.write_bytes(store_path.read_bytes())
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO disk_usage SELECT time_ns, container_id, started_ns, "
                     "bytes + 7 FROM disk_usage WHERE rowid = 3")
    with Store(path, create=False) as store:
        got = store.samples()
        counters = _attach_disk_usage(store.counters(), store.disk_usage())
        want = reference_samples(counters, store.containers())
    pd.testing.assert_frame_equal(got, want, check_exact=True)
