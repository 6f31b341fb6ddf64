"""Parquet/CSV export and import: exact round trips, and validation that names the fix."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from capacity._columns import PLAUSIBLE_MAX, PLAUSIBLE_TEXT
from capacity._errors import InvalidParameter, InvalidSamples
from capacity.sources._types import ContainerCounters, ContainerInfo
from capacity.store import (
    Store,
    counters_to_samples,
    read_samples,
    read_table,
    validate_samples,
    write_samples,
    write_table,
)

SUFFIXES = ["s.parquet", "s.csv", "s.csv.gz"]


def _samples() -> pd.DataFrame:
    t0 = pd.Timestamp("2024-05-01T12:00:00.123456789Z")
    start = pd.Timestamp("2024-05-01T11:00:00Z")
    rows = []
    for cid, ns in (("a", 7), ("b", 7), ("c", None)):
        for k in range(4):
            rows.append(
                {
                    "time": t0 + pd.Timedelta(seconds=10 * k),
                    "monotonic_s": 10.0 * k + 0.1,
                    "container_id": cid,
                    "started_at": start,
                    "cpu_usage_seconds_total": (1 / 3) * k,  # a float that CSV must keep exact
                    "memory_working_set_bytes": 2**40 + k,
                    "net_rx_bytes_total": 10 * k if k != 2 else None,
                    "net_namespace": ns,
                    "cpu_periods_total": 10 * k if cid == "a" else None,
                    "cpu_throttled_periods_total": k if cid == "a" else None,
                    "disk_usage_bytes": 4096.0 if k == 1 else np.nan,
                }
            )
    meta = pd.DataFrame(
        {
            "container_id": ["a", "b", "c"],
            "started_at": [start] * 3,
            "name": ["web-1", "", "db,1"],  # an empty name and a comma must survive CSV
            "image": ["img:1", "img:1", 'quo"te'],
            "service": ["web", "web", "db"],
        }
    )
    return counters_to_samples(pd.DataFrame(rows), meta)


@pytest.mark.parametrize("name", SUFFIXES)
def test_samples_round_trip_keeps_values_and_dtypes(tmp_path: Path, name: str) -> None:
    s = _samples()
    assert s["net_shared"].any() and s["net_rx_bytes_per_second"].isna().any()
    path = write_samples(s, tmp_path / name)
    back = read_samples(path)
    pd.testing.assert_frame_equal(back, s, check_exact=True)
    assert str(back["time"].dtype) == "datetime64[ns, UTC]"
    assert back["time"].iloc[0].nanosecond == 789


def test_unknown_suffix(tmp_path: Path) -> None:
    with pytest.raises(InvalidParameter, match="'path' parameter of write_samples"):
        write_samples(_samples(), tmp_path / "s.xlsx")


def test_samples_from_others_get_the_extra_columns(tmp_path: Path) -> None:
    s = _samples()
    minimal = s.drop(
        columns=["started_at", "cpu_throttled_fraction", "memory_oom_kills", "net_shared"]
    )
    minimal["time"] = minimal["time"].dt.tz_localize(None)  # naive: read as UTC
    minimal.to_csv(tmp_path / "theirs.csv", index=False)
    back = read_samples(tmp_path / "theirs.csv")
    assert list(back.columns) == list(s.columns)
    assert (back["time"] == s["time"]).all()
    assert not back["net_shared"].any() and back["started_at"].isna().all()


def test_missing_resource_column_is_not_measured(tmp_path: Path) -> None:
    s = _samples().drop(columns="cpu_cores")
    s.to_parquet(tmp_path / "s.parquet")
    back = read_samples(tmp_path / "s.parquet")
    assert back["cpu_cores"].isna().all()  # "not measured", never a number


def test_no_resource_column_names_what_is_needed(tmp_path: Path) -> None:
    from capacity._columns import RESOURCES

    s = _samples().drop(columns=list(RESOURCES))
    s.to_parquet(tmp_path / "s.parquet")
    with pytest.raises(InvalidSamples, match="no resource column") as info:
        read_samples(tmp_path / "s.parquet")
    assert info.value.column == "cpu_cores"
    assert "optional" in str(info.value) and "counters_to_samples" in str(info.value)


def test_missing_time(tmp_path: Path) -> None:
    s = _samples()
    s.loc[2, "time"] = pd.NaT
    s.to_csv(tmp_path / "s.csv", index=False)
    with pytest.raises(InvalidSamples, match="'time' is missing at row 2") as info:
        read_samples(tmp_path / "s.csv")
    assert info.value.column == "time"


def test_negative_rate_names_column_and_value(tmp_path: Path) -> None:
    s = _samples()
    s.loc[3, "net_tx_bytes_per_second"] = -5.0
    s.to_parquet(tmp_path / "s.parquet")
    with pytest.raises(InvalidSamples, match=r"negative at row 3: -5\.0") as info:
        read_samples(tmp_path / "s.parquet")
    assert info.value.column == "net_tx_bytes_per_second" and info.value.value == -5.0
    assert "counters_to_samples" in str(info.value)
    with pytest.raises(InvalidSamples):  # nothing bad is written either
        write_samples(s, tmp_path / "t.parquet")
    assert not (tmp_path / "t.parquet").exists()


def test_non_number_and_zero_interval() -> None:
    s = _samples()
    text = s.astype({"cpu_cores": "object"})
    text.loc[0, "cpu_cores"] = "12%"
    with pytest.raises(InvalidSamples, match="non-number at row 0: '12%'"):
        validate_samples(text)
    s.loc[1, "interval_s"] = 0.0
    with pytest.raises(InvalidSamples, match="'interval_s' must be > 0") as info:
        validate_samples(s)
    assert info.value.value == 0.0
    inf = _samples()
    inf.loc[0, "cpu_cores"] = np.inf
    with pytest.raises(InvalidSamples, match="infinite"):
        validate_samples(inf)


@pytest.mark.parametrize("name", ["t.parquet", "t.csv"])
def test_raw_tables_round_trip(tmp_path: Path, name: str) -> None:
    t0 = datetime(2024, 5, 1, tzinfo=UTC)
    infos = [
        ContainerInfo(
            id=f"{i:064x}",
            name=f"c{i}",
            image="",
            service="s",
            pid=i,
            started_at=t0,
            labels={"k": 'v,"x"'} if i else {},
            published_host_ports=("80/tcp",) if i else (),
            cpu_limit_cores=0.5 if i else None,
        )
        for i in range(2)
    ]
    with Store(tmp_path / "s.sqlite") as store:
        for k in range(3):
            store.write_round(
                t0 + timedelta(seconds=k),
                float(k),
                infos,
                [
                    ContainerCounters(
                        container_id=c.id,
                        cpu_usage_seconds_total=k / 3,
                        memory_usage_bytes=2**50 + k,
                        memory_working_set_bytes=k,
                        net_rx_bytes_total=k if k != 1 else None,
                    )
                    for c in infos
                ],
            )
        counters, containers = store.counters(), store.containers()
    back = read_table(write_table(counters, tmp_path / f"counters-{name}"))
    pd.testing.assert_frame_equal(back, counters, check_exact=True)
    meta = read_table(write_table(containers, tmp_path / f"containers-{name}"))
    assert meta["labels"].tolist() == containers["labels"].tolist()
    assert meta["published_host_ports"].tolist() == containers["published_host_ports"].tolist()
    if name.endswith(".csv"):  # CSV cannot tell a missing text from an empty one
        text = ["compose_project", "compose_service"]
        containers[text] = containers[text].fillna("")
    pd.testing.assert_frame_equal(meta, containers, check_exact=True)


def _export(n: int = 30) -> pd.DataFrame:
    t = pd.date_range("2026-11-27T10:00:00Z", periods=n, freq="5s")
    return pd.DataFrame({"time": [x.isoformat() for x in t] * 2,
                         "container_name": ["a"] * n + ["b"] * n,
                         "cpu_cores": [0.5] * n + [0.25] * n})


def test_an_export_with_time_a_key_and_one_resource_loads(tmp_path: Path) -> None:
    _export().to_csv(tmp_path / "s.csv", index=False)
    back = read_samples(tmp_path / "s.csv")
    assert back["container_id"].tolist() == back["container_name"].tolist()
    assert set(back["service"]) == {"a", "b"}  # no service, no image: the name
    assert (back["interval_s"] == 5.0).all()  # inferred from the time steps
    assert back["memory_working_set_bytes"].isna().all()  # not measured


@pytest.mark.parametrize("drop, what", [(["time"], "no 'time' column"),
                                        (["container_name"], "no key column"),
                                        (["cpu_cores"], "no resource column")])
def test_an_export_without_a_required_column_says_what_is_optional(
    tmp_path: Path, drop: list[str], what: str
) -> None:
    _export().drop(columns=drop).to_csv(tmp_path / "s.csv", index=False)
    with pytest.raises(InvalidSamples, match=what) as info:
        read_samples(tmp_path / "s.csv")
    assert "optional" in str(info.value)


@pytest.mark.parametrize("alias", ["container", "pod", "Instance"])
def test_a_replica_column_under_another_name_is_refused_not_ignored(
    tmp_path: Path, alias: str
) -> None:
    """``time,service,container,cpu_cores``: 'container' was ignored, container_id fell back
    to the service, and the two replicas' rows were averaged into one series."""
    df = _export().rename(columns={"container_name": alias}).assign(service="web")
    df.to_csv(tmp_path / "s.csv", index=False)
    with pytest.raises(InvalidSamples) as info:
        read_samples(tmp_path / "s.csv")
    assert info.value.column == alias
    text = str(info.value)
    assert f"a {alias!r} column but no 'container_id'" in text
    assert f"Rename {alias!r} to 'container_id'" in text and "merged" in text
    # renamed as asked: two replicas of one service
    back = read_samples(_renamed(df, alias, tmp_path))
    assert back["container_id"].nunique() == 2 and set(back["service"]) == {"web"}
    # beside a container_id it is one more column, kept
    both = df.assign(container_id=df[alias])
    assert alias in validate_samples(both).columns


def _renamed(df: pd.DataFrame, alias: str, tmp_path: Path) -> Path:
    path = tmp_path / "renamed.csv"
    df.rename(columns={alias: "container_id"}).to_csv(path, index=False)
    return path


def test_empty_service_falls_back_to_image_then_name(tmp_path: Path) -> None:
    df = _export().assign(service="", image=["nginx"] * 30 + [""] * 30)
    df.to_csv(tmp_path / "s.csv", index=False)
    assert sorted(set(read_samples(tmp_path / "s.csv")["service"])) == ["b", "nginx"]


def test_year_9999_is_a_clear_error(tmp_path: Path) -> None:
    df = _export()
    df.loc[0, "time"] = "9999-12-31T00:00:00+00:00"
    df.to_csv(tmp_path / "s.csv", index=False)
    with pytest.raises(InvalidSamples, match="outside the range capacity handles"):
        read_samples(tmp_path / "s.csv")


def test_outlying_times_rule() -> None:
    from capacity.store import outlying_times

    week = pd.date_range("2026-11-20", periods=2000, freq="5min", tz="UTC")
    ns = week.as_unit("ns").asi8.copy()
    assert not outlying_times(ns).any()
    ns[5] = pd.Timestamp("1970-01-01", tz="UTC").value  # clock never set
    ns[7] = pd.Timestamp("2090-01-01", tz="UTC").value  # far after the bulk
    assert np.flatnonzero(outlying_times(ns)).tolist() == [5, 7]
    gap = np.concatenate([ns[10:1000], ns[10:1000] + 4 * 86400 * 10**9])  # 4-day gap: kept
    assert not outlying_times(gap).any()


def test_empty_service_in_the_store_falls_back_to_image_then_name() -> None:
    t0 = pd.Timestamp("2024-05-01T12:00:00Z")
    start = pd.Timestamp("2024-05-01T11:00:00Z")
    rows = [{"time": t0 + pd.Timedelta(seconds=10 * k), "monotonic_s": 10.0 * k,
             "container_id": cid, "started_at": start, "cpu_usage_seconds_total": 0.1 * k,
             "memory_working_set_bytes": 1000}
            for cid in ("a", "b") for k in range(3)]
    meta = pd.DataFrame({"container_id": ["a", "b"], "started_at": [start] * 2,
                         "name": ["web-1", "db-1"], "image": ["nginx", ""],
                         "service": ["", ""]})
    s = counters_to_samples(pd.DataFrame(rows), meta)
    assert sorted(set(s["service"])) == ["db-1", "nginx"]


def test_a_row_number_or_host_column_beside_one_series_per_service_loads(
        tmp_path: Path) -> None:
    """A database export's row 'id' (or a 'name' the same on every row) does not tell
    replicas apart: one series per service, nothing merged, nothing to refuse (review: such
    a file loaded before the alias check and was refused after it)."""
    times = pd.date_range("2026-01-01", periods=20, freq="5s", tz="UTC")
    df = pd.DataFrame({"id": range(20), "name": "host-1", "time": times.astype(str),
                       "service": "web", "cpu_cores": 0.5})
    df.to_csv(tmp_path / "s.csv", index=False)
    back = read_samples(tmp_path / "s.csv")
    assert len(back) == 20 and set(back["service"]) == {"web"}


@pytest.mark.parametrize("corrupt", ["truncated", "flipped"])
def test_a_damaged_gzip_file_is_invalid_samples_naming_the_file(tmp_path: Path,
                                                                 corrupt: str) -> None:
    """A .csv.gz cut short (a copy interrupted, a disk full) was "unexpected EOFError ...
    this is a bug in capacity"; corrupt compressed bytes were a zlib.error the same way."""
    rows = pd.concat([_samples()] * 200, ignore_index=True)  # large enough to compress
    whole = write_samples(rows, tmp_path / "whole.csv.gz").read_bytes()
    damaged = tmp_path / "damaged.csv.gz"
    if corrupt == "truncated":
        damaged.write_bytes(whole[: len(whole) // 2])
    else:
        middle = len(whole) // 2
        damaged.write_bytes(whole[:middle] + bytes(b ^ 0xFF for b in whole[middle:middle + 64])
                            + whole[middle + 64:])
    with pytest.raises(InvalidSamples, match=r"damaged\.csv\.gz cannot be read as csv"):
        read_samples(damaged)
    with pytest.raises(InvalidSamples, match=r"damaged\.csv\.gz cannot be read as csv"):
        read_table(damaged)  # capacity backtest --containers FILE


@pytest.mark.parametrize("column", list(PLAUSIBLE_MAX))
def test_a_reading_no_machine_can_have_is_refused_naming_row_container_value(
        tmp_path: Path, column: str) -> None:
    s = _samples()
    s.loc[3, column] = PLAUSIBLE_MAX[column]  # the bound itself is accepted
    validate_samples(s)
    s.loc[3, column] = 1e30
    s.to_csv(tmp_path / "s.csv", index=False)
    with pytest.raises(InvalidSamples, match=r"more than any machine has, at row 3: 1e\+30 "
                       r"\(container '.+'; 1 rows in all") as info:
        read_samples(tmp_path / "s.csv")
    assert info.value.column == column and info.value.value == 1e30
    assert PLAUSIBLE_TEXT[column] in str(info.value) and "unit" in str(info.value)
