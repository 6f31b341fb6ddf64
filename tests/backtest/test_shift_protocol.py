"""The day-shift backtest protocol (issue 13): truth by hand on small histories, recipes,
refusals, fleet mode and the CLI."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from capacity._columns import CPU, MEMORY
from capacity._errors import InsufficientData, InvalidParameter
from capacity.backtest import fleet_shift_backtest, shift_backtest
from capacity.cli import main

DAY = 288


def _history(cpu: np.ndarray, cid: str = "c1", memory: np.ndarray | None = None
             ) -> pd.DataFrame:
    n = cpu.size
    df = pd.DataFrame({
        "time": pd.Timestamp("2026-01-01T00:00:00Z") + pd.to_timedelta(np.arange(n) * 300.0,
                                                                       unit="s"),
        "service": cid, "container_id": cid, "container_name": cid, "image": "x",
        "interval_s": 300.0, CPU: cpu,
    })
    if memory is not None:
        df[MEMORY] = memory
    return df


def test_truth_of_day_shifted_copies_by_hand() -> None:
    # two training days at 1 core; test days at 1, 1, 1 and 2 cores: C = 20.
    # N shifted copies over 4 test days: each instant sums N/4 of each day when N = 4k,
    # so the total is N/4 * 5 = 1.25 N; the largest N with 1.25 N <= 20 is 16.
    # N = 17 adds one more shift: day d gets day d+16 mod 4 = d, so the totals are
    # 20 + (1 or 2) > 20 everywhere: not within 1 %.
    cpu = np.concatenate([np.ones(2 * DAY), np.ones(3 * DAY), 2 * np.ones(DAY)])
    r = shift_backtest(_history(cpu), train_days=2, test_days=4)
    assert r.capacity[CPU] == pytest.approx(20.0)
    assert r.truth == 16
    # a flat training window: every method and recipe sees 1 core per replica -> 20
    assert r.predictions["peak"] == 20 and r.predictions["krr"] == 20
    assert r.unsafe("peak") and r.packing("peak") is None
    assert r.predictions["vpa"] == 17  # 20 / 1.15


def test_recipes_use_the_training_quantiles() -> None:
    rng = np.random.default_rng(0)
    cpu = rng.uniform(0.5, 1.5, 6 * DAY)
    mem = rng.uniform(100.0, 200.0, 6 * DAY)
    r = shift_backtest(_history(cpu, memory=mem))
    train = cpu[: 3 * DAY]
    c = 20 * train.mean()
    cm = 20 * mem[: 3 * DAY].mean()
    assert r.predictions["krr"] == min(int(c / np.quantile(train, 0.95)),
                                       int(cm / (mem[: 3 * DAY].max() * 1.15)))
    assert r.predictions["vpa"] == min(int(c / (np.quantile(train, 0.9) * 1.15)),
                                       int(cm / (np.quantile(mem[: 3 * DAY], 0.9) * 1.15)))
    assert r.truth > 0 and r.train_days == 3 and r.test_days == 3


def test_refusals_name_the_reason() -> None:
    with pytest.raises(InsufficientData, match="whole day"):
        shift_backtest(_history(np.ones(DAY)))
    two = pd.concat([_history(np.ones(3 * DAY), "a"),
                     _history(np.ones(3 * DAY), "b").assign(service="a")])
    with pytest.raises(InvalidParameter, match="one-replica"):
        shift_backtest(two)


def test_fleet_scores_each_container_and_skips_short_ones() -> None:
    rng = np.random.default_rng(1)
    frames = [_history(rng.gamma(2.0, 0.5, 4 * DAY), f"c{i}") for i in range(3)]
    frames.append(_history(np.ones(DAY // 2), "short"))
    f = fleet_shift_backtest(pd.concat(frames, ignore_index=True))
    assert [r.service for r in f.results] == ["c0", "c1", "c2"]
    assert "short" in f.skipped and "whole day" in f.skipped["short"]
    s = f.summary()
    assert set(s) >= {"empirical", "peak", "krr", "vpa"}
    assert s["peak"]["scored"] == 3
    assert "whole-day shifted copies" in f.protocol


def test_cli_day_shift_fleet(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    from capacity.store import write_samples

    rng = np.random.default_rng(2)
    frames = [_history(rng.gamma(2.0, 0.5, 4 * DAY), f"c{i}") for i in range(2)]
    from capacity._columns import SAMPLE_COLUMNS

    table = pd.concat(frames, ignore_index=True)
    for c in SAMPLE_COLUMNS:
        if c not in table:
            table[c] = np.nan
    path = write_samples(table, tmp_path / "s.parquet")
    code = main(["backtest", "--samples", str(path), "--protocol", "day-shift", "--fleet",
                 "--json"])
    out = json.loads(capsys.readouterr().out)
    assert out["kind"] == "capacity.backtest.shift" and len(out["services"]) == 2
    assert code == (0 if out["summary"]["empirical"]["unsafe"] <= 0.05 else 2)
    code = main(["backtest", "--samples", str(path), "--protocol", "day-shift", "--fleet"])
    text = capsys.readouterr().out
    assert "whole-day shifted copies" in text and "krr recipe" in text
    assert main(["backtest", "--samples", str(path)]) == 3  # split needs --machine


def test_days_without_data_are_left_out_not_filled() -> None:
    # days 0-1 train at 1 core; days 2-3 hold no sample (a job that skips days); days 4-5
    # test at 1 and 2 cores. Counted on the days with data: 2 train, 2 test (not 3 / 3 with
    # an empty training day and an empty test day filled as a copy of the others).
    # N shifted copies of the two test days: 6 x 3 + (1 or 2) <= 20 at N = 13; N = 14: 21.
    h = _history(np.concatenate([np.ones(2 * DAY), np.ones(DAY), 2 * np.ones(DAY)]))
    h.loc[2 * DAY:, "time"] += pd.Timedelta(days=2)
    r = shift_backtest(h)
    assert (r.train_days, r.test_days, r.absent_days) == (2, 2, 2)
    assert r.missing_instants == 0
    assert r.truth == 13
    with pytest.raises(InsufficientData, match="with data"):
        shift_backtest(_history(np.ones(DAY)).iloc[: DAY // 2])


def test_azure_excerpt_declares_the_vm_as_its_limit() -> None:
    # Azure V1 readings are % of the VM: 100 % is a known ceiling, declared like GCD's VM size,
    # so the limits method is defined and no reading passes it
    from pathlib import Path

    from capacity.backtest import load_azure_cpu

    path = (Path(__file__).resolve().parents[1] / "data" / "traces" / "azure-v1-cpu"
            / "cpu_avg.csv.gz")
    samples = load_azure_cpu(path, vm_cores=2.0)
    assert (samples["cpu_limit_cores"] == 2.0).all()
    assert float(samples[CPU].max()) <= 2.0
    one = samples[samples["container_id"] == samples["container_id"].iloc[0]]
    r = shift_backtest(one, train_days=13)
    assert r.predictions["limits"] is not None


def test_plan_margin_lowers_the_plans_not_the_truth() -> None:
    # flat 1 core: C = 20; a margin of 2 plans for C / 2 = 10 while the truth stays 20
    cpu = np.ones(6 * DAY)
    r0 = shift_backtest(_history(cpu))
    r2 = shift_backtest(_history(cpu), plan_margin=2.0)
    assert r0.truth == r2.truth == 20
    assert r0.predictions["peak"] == 20 and r2.predictions["peak"] == 10
    assert r2.predictions["krr"] == r0.predictions["krr"]  # recipes keep C
    for bad in (0.5, float("nan"), float("inf"), "2", True):
        with pytest.raises(InvalidParameter, match="plan_margin"):
            shift_backtest(_history(cpu), plan_margin=bad)


def _unseen_hours_history() -> pd.DataFrame:
    # six days, the hour 18:00-19:00 never sampled: the plan refuses it by default
    rng = np.random.default_rng(3)
    df = _history(rng.gamma(2.0, 0.5, 6 * DAY))
    return df[df["time"].dt.hour != 18].reset_index(drop=True)


def test_unseen_hours_refused_unless_accepted() -> None:
    refused = shift_backtest(_unseen_hours_history())
    assert refused.predictions["empirical"] is None
    assert "hours of the day not seen" in refused.reasons["empirical"]
    accepted = shift_backtest(_unseen_hours_history(), accept_unseen_hours=True)
    assert accepted.predictions["empirical"] is not None
    assert accepted.truth == refused.truth


def test_cli_fleet_names_why_the_default_is_undefined(
        tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "s.csv"
    _unseen_hours_history().to_csv(path, index=False)
    main(["backtest", "--samples", str(path), "--protocol", "day-shift", "--fleet"])
    out = capsys.readouterr().out
    assert "empirical undefined for 1 service(s): hours of the day not seen" in out
    assert "--accept-unseen-hours" in out
    main(["backtest", "--samples", str(path), "--protocol", "day-shift", "--fleet",
          "--accept-unseen-hours"])
    assert "undefined for" not in capsys.readouterr().out


def test_cli_single_day_shift_says_why_there_is_no_count(
        tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "s.csv"
    _unseen_hours_history().to_csv(path, index=False)
    main(["backtest", "--samples", str(path), "--protocol", "day-shift"])
    assert "empirical: no count: hours of the day not seen" in capsys.readouterr().out


def test_split_backtest_passes_accept_unseen_hours_to_the_plan() -> None:
    from capacity.backtest import backtest
    from capacity.solver import Machine

    machine = Machine.from_spec("cpus=16,cpu_saturation=1")
    refused = backtest(_unseen_hours_history(), machine)
    accepted = backtest(_unseen_hours_history(), machine, accept_unseen_hours=True)
    assert refused.default.planned_count is None
    assert accepted.default.planned_count is not None and accepted.default.planned_count > 0
