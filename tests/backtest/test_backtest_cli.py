"""``capacity backtest`` and ``capacity verify`` on the command line (no engine needed here)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from capacity.cli import main

TRACES = Path(__file__).parent.parent / "data" / "traces"


def test_backtest_gcd_json(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "backtest",
            "--gcd-vms",
            str(TRACES / "google2011-gcd-vms" / "GCD_VMs"),
            "--machine",
            "cpus=4,memory=32GiB,cpu_saturation=1",
            "--json",
        ]
    )
    out = json.loads(capsys.readouterr().out)
    assert out["kind"] == "capacity.backtest"
    assert code == (0 if out["methods"]["empirical"]["within_epsilon"] else 2)


def test_backtest_samples_file_and_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from capacity.backtest import load_gcd_vms
    from capacity.store import write_samples

    path = write_samples(
        load_gcd_vms(TRACES / "google2011-gcd-vms" / "GCD_VMs"), tmp_path / "s.parquet"
    )
    code = main(
        ["backtest", "--samples", str(path), "--machine", "cpus=4,memory=32GiB,cpu_saturation=1"]
    )
    out = capsys.readouterr().out
    assert code in (0, 2)
    assert "empirical (default)" in out and "peak" in out


@pytest.mark.parametrize(
    "argv",
    [
        ["backtest", "--machine", "cpus=4,cpu_saturation=1"],  # no history
        ["verify", "--machine", "cpus=1,memory=256MiB,cpu_saturation=1"],  # no image
        [
            "verify",
            "--image",
            "x",
            "--probe-url",
            "http://a",
            "--probe-cmd",
            "true",
            "--machine",
            "cpus=1,memory=256MiB,cpu_saturation=1",
        ],
    ],
)
def test_usage_errors_exit_3(argv: list[str]) -> None:
    assert main(argv) == 3


def test_backtest_from_the_sqlite_store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Rounds written by the collector's sink, read back by 'capacity backtest --store'."""
    from datetime import UTC, datetime, timedelta

    import numpy as np

    from capacity.sources._types import ContainerCounters, ContainerInfo
    from capacity.store import Store

    rng = np.random.default_rng(3)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    infos = [
        ContainerInfo(
            id=f"{i:064x}",
            name=f"web-{i}",
            image="web",
            service="web",
            pid=100 + i,
            started_at=start,
        )
        for i in range(4)
    ]
    cpu = np.zeros(len(infos))
    with Store(tmp_path / "s.sqlite", batch_rounds=50) as store:
        for k in range(400):
            cpu += rng.gamma(4, 0.05, size=len(infos)) * 10  # ~0.2 core over 10 s rounds
            counters = [
                ContainerCounters(
                    container_id=c.id,
                    cpu_usage_seconds_total=float(u),
                    memory_usage_bytes=50 * 2**20,
                    memory_working_set_bytes=int(40 * 2**20 + k * 1000),
                )
                for c, u in zip(infos, cpu, strict=True)
            ]
            store.write_round(start + timedelta(seconds=10 * k), 10.0 * k, infos, counters)
    code = main(
        [
            "backtest",
            "--store",
            str(tmp_path / "s.sqlite"),
            "--machine",
            "cpus=2,memory=1GiB,cpu_saturation=1",
            "--json",
        ]
    )
    out = json.loads(capsys.readouterr().out)
    assert out["service"] == "web" and out["replicas"] == 4
    assert out["windows"]["test"]["instants"] >= 150
    peak = out["methods"]["peak"]["count"]
    assert peak is not None and out["methods"]["empirical"]["count"] >= peak
    assert code in (0, 2)


@pytest.mark.parametrize("protocol", ["split", "day-shift"])
def test_several_services_and_no_service_names_them_and_the_flag(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], protocol: str
) -> None:
    """Said "The 'service' parameter of backtest must be one of [...]; got None instead."
    without saying that --service chooses one."""
    import sys

    import numpy as np

    sys.path.insert(0, str(Path(__file__).parent.parent / "model"))
    from _samples_builder import samples_table

    from capacity._columns import CPU, MEMORY

    rng = np.random.default_rng(0)
    n = 3 * 288
    samples = samples_table(
        {c: {CPU: rng.gamma(4, 0.1, n), MEMORY: rng.normal(1e8, 1e6, n)} for c in ("a", "b")},
        service_of={"a": "web", "b": "db"}, interval_s=300.0)
    path = tmp_path / "two.csv"
    samples.to_csv(path, index=False)
    code = main(["backtest", "--samples", str(path), "--machine", "cpus=8,memory=32GiB",
                 "--protocol", protocol])
    err = capsys.readouterr().err
    assert code == 3
    assert "several services (2: 'db', 'web')" in err and "pass --service NAME" in err
    assert "Traceback" not in err
