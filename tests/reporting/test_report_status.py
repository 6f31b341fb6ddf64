"""Ops mode: headroom as documented, OK / WARNING / CRITICAL / UNKNOWN exit status, the Nagios
check line, and ``--keep`` rotation, through ``capacity.cli.main`` in-process."""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from capacity._columns import RESOURCES
from capacity.cli import main
from capacity.reporting._status import CRITICAL, OK, WARNING, check_line, headroom, status
from capacity.solver._machine import Machine
from capacity.solver._plan import plan
from capacity.solver._testing import constant_profiles
from capacity.store._files import write_samples

NO_ENGINE = "unix:///nonexistent/capacity-test-docker.sock"
#: 4 hours at one sample a minute: long enough for the profile's confidence to be "ok"
SPAN_H, STEP_S = 4.0, 60.0
CPU_PER_REPLICA, CPU_NOISE = 0.5, 0.01


def _plan(cpus: float, running: int, occupied: float = 0.0) -> Any:
    profiles = constant_profiles({"cpu_cores": CPU_PER_REPLICA})
    return plan(
        profiles,
        Machine.from_spec(f"cpus={cpus},cpu_saturation=1"),
        method="quantile",
        running=running,
        occupied={"cpu_cores": occupied},
        valid_for_s=None,  # demand as recorded: no allowance for the synthetic short history
    )


def test_headroom_is_the_free_share_of_usable_capacity_on_the_binding_resource() -> None:
    # 4 cores, 1 core used by others, 2 replicas of 0.5 running: (4 - 1 - 1) / 4
    p = _plan(cpus=4, running=2, occupied=1.0)
    h = headroom(p)
    assert h.basis == "cpu_cores"
    assert h.share == pytest.approx((4 - 1 - 2 * CPU_PER_REPLICA) / 4)


def test_status_ok_warning_critical() -> None:
    assert status({"s": _plan(cpus=8, running=2)}).code == OK  # 87.5 % free
    warn = status({"s": _plan(cpus=4, running=7)})  # 12.5 % free
    assert warn.code == WARNING and "least headroom 12.5 %" in warn.reasons[0]
    assert status({"s": _plan(cpus=4, running=7)}, warn_headroom=0.1).code == OK
    crit = status({"s": _plan(cpus=4, running=9)})  # safe count 8
    assert crit.code == CRITICAL and "9 running, more than the safe count 8" in crit.reasons[0]


def test_undefined_safe_count_is_a_warning_with_its_reason() -> None:
    p = replace(_plan(cpus=8, running=1), safe_count=None, reason="profile confidence is low")
    st = status({"s": p})
    assert st.code == WARNING and "profile confidence is low" in st.reasons[-1]


def test_check_line_is_one_nagios_line_with_performance_data() -> None:
    plans = {"demo/web": _plan(cpus=8, running=2)}
    line = check_line(plans, status(plans))
    assert "\n" not in line
    assert line.startswith("CAPACITY OK - 14 more demo/web fit (cpu_cores binds)")
    _text, perf = line.split(" | ")
    assert perf.split() == [
        "'demo_web_safe'=16;;;0",
        "'demo_web_running'=2;;16;0",
        "'demo_web_more'=14;;;0",
        "'demo_web_headroom'=87.50%;20:;;",
    ]
    for item in perf.split():  # 'label'=value[UOM];warn;crit;min;max
        assert re.fullmatch(r"'[A-Za-z0-9_.-]+'=-?[\d.]+%?(;[\d.:]*){0,4}", item), item


# -- through the command line ---------------------------------------------------------------


def _samples(n_containers: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    t0 = pd.Timestamp("2026-01-01T00:00:00Z")
    n = int(SPAN_H * 3600 / STEP_S)
    frames = []
    for c in range(n_containers):
        frames.append(
            pd.DataFrame(
                {
                    "time": t0 + pd.to_timedelta(np.arange(1, n + 1) * STEP_S, unit="s"),
                    "container_id": f"{c:064x}",
                    "container_name": f"web-{c}",
                    "service": "web",
                    "image": "web:1",
                    "interval_s": STEP_S,
                    "cpu_cores": CPU_PER_REPLICA + rng.normal(0, CPU_NOISE, n),
                    "memory_working_set_bytes": 100 * 2.0**20 + rng.normal(0, 2.0**20, n),
                }
            )
        )
    df = pd.concat(frames, ignore_index=True)
    for r in RESOURCES:
        if r not in df:
            df[r] = np.nan
    return df


@pytest.fixture(scope="module")
def samples_files(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    folder = tmp_path_factory.mktemp("samples")
    return {n: write_samples(_samples(n), folder / f"web-{n}.csv") for n in (2, 3)}


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["report", *args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(
    ("replicas", "machine", "expected", "word"),
    [
        (2, "cpus=8,memory=4GiB,cpu_saturation=1", 0, "OK"),  # headroom ~ 87 %
        (
            2,
            "cpus=1.2,memory=4GiB,cpu_saturation=1",
            1,
            "WARNING",
        ),  # 2 x ~0.52 of 1.2 cores at x1.10 (the 4 h history's allowance): ~5.5 % left
        (3, "cpus=1.2,memory=4GiB,cpu_saturation=1", 2, "CRITICAL"),  # safe count 2, 3 running
    ],
)
def test_exit_status_and_check_line(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    samples_files: dict[int, Path],
    replicas: int,
    machine: str,
    expected: int,
    word: str,
) -> None:
    code, out, err = run(
        capsys,
        "--samples",
        str(samples_files[replicas]),
        "--machine",
        machine,
        "--out",
        str(tmp_path),
        "--check",
    )
    assert code == expected, err
    lines = out.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"CAPACITY {word} - "), out
    assert "'web_safe'=" in lines[0] and "'web_headroom'=" in lines[0]


def test_warn_headroom_flag_moves_the_threshold(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, samples_files: dict[int, Path]
) -> None:
    code, out, _ = run(
        capsys,
        "--samples",
        str(samples_files[2]),
        "--machine",
        "cpus=1.2,memory=4GiB,cpu_saturation=1",
        "--out",
        str(tmp_path),
        "--warn-headroom",
        "5%",  # the headroom is 5.5 % (above), warned below 20 % by default
        "--quiet",
    )
    assert code == 0 and out == ""


def test_json_is_plan_json_only_and_profiles_source_plans_without_running(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, samples_files: dict[int, Path]
) -> None:
    code, out, _ = run(
        capsys,
        "--samples",
        str(samples_files[2]),
        "--machine",
        "cpus=8,memory=4GiB,cpu_saturation=1",
        "--out",
        str(tmp_path / "a"),
        "--json",
        "--name",
        "first",
    )
    assert code == 0
    doc = json.loads(out)
    assert doc == json.loads((tmp_path / "a" / "first" / "plan.json").read_text())
    assert doc["plans"]["web"]["running"] == 2
    code, out, err = run(
        capsys,
        "--profiles",
        str(tmp_path / "a" / "first" / "profiles.json"),
        "--machine",
        "cpus=8,memory=4GiB,cpu_saturation=1",
        "--out",
        str(tmp_path / "b"),
        "--name",
        "second",
    )
    assert code == 0, err
    assert "web" in out
    plan_json = json.loads((tmp_path / "b" / "second" / "plan.json").read_text())
    assert plan_json["plans"]["web"]["running"] == 0
    assert "profiles alone" in (tmp_path / "b" / "second" / "report.md").read_text()


def test_keep_rotates_only_report_folders(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, samples_files: dict[int, Path]
) -> None:
    example = Path(__file__).resolve().parents[2] / "reports" / "example"
    for name in ("vm-20200101T000000Z", "vm-20200102T000000Z", "example"):
        shutil.copytree(example, tmp_path / name)  # report folders, as capacity wrote them
    (tmp_path / "vm-20190101T000000Z").mkdir()  # named like one, but not a report: kept
    code, _, err = run(
        capsys,
        "--samples",
        str(samples_files[2]),
        "--machine",
        "cpus=8,memory=4GiB,cpu_saturation=1",
        "--out",
        str(tmp_path),
        "--keep",
        "2",
        "--quiet",
    )
    assert code == 0, err
    left = sorted(p.name for p in tmp_path.iterdir())
    assert "example" in left and "vm-20200102T000000Z" in left
    assert "vm-20190101T000000Z" in left
    assert "vm-20200101T000000Z" not in left and len(left) == 4


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--duration", "1s"), "nonexistent"),  # the engine is missing
        (("--bogus",), "No such option"),  # a bad flag
        (("--demo", "--samples", "x.csv"), "give one source"),  # two sources
        (("--since", "1h"), "--since needs --store"),
        (("--keep", "0", "--demo"), "--keep"),
        (("--warn-headroom", "lots", "--demo"), "percentage"),
        (("--store", "/nonexistent/store.sqlite"), "/nonexistent/store.sqlite"),
        (("--profiles", "/nonexistent/profiles.json"), "no such file"),
    ],
)
def test_failures_exit_3_with_one_line(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    args: tuple[str, ...],
    message: str,
) -> None:
    monkeypatch.setenv("DOCKER_HOST", NO_ENGINE)
    code, _out, err = run(capsys, *args, "--out", str(tmp_path))
    assert code == 3
    assert message in err
    assert "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


def test_profiles_of_another_version_exit_3_and_check_says_unknown(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    old = tmp_path / "profiles.json"
    old.write_text(json.dumps({"schema_version": 1, "kind": "capacity.profiles", "services": {}}))
    code, out, _err = run(capsys, "--profiles", str(old), "--out", str(tmp_path / "r"), "--check")
    assert code == 3
    assert out.startswith("CAPACITY UNKNOWN - profiles schema version 1")
    assert len(out.splitlines()) == 1
    assert not (tmp_path / "r").exists()


def test_the_console_status_line_sums_up_many_services_over(capsys) -> None:
    """100 services over their safe count made a 15,000-character status line on the
    console; past SHORT_REASONS_NAMED it names the most urgent and counts the rest. The
    other reasons stay, and the status (the report, --check) still has one per service."""
    from capacity._cli._common import print_summary
    from capacity.reporting._host import urgency_order
    from capacity.reporting._status import SHORT_REASONS_NAMED, short_reasons

    n = SHORT_REASONS_NAMED + 3
    plans = {f"svc{i}": _plan(cpus=1, running=2 + i) for i in range(1, n + 1)}  # all over
    st = status(plans)
    assert st.code == CRITICAL and len(st.reasons) == n + 1  # + the least headroom
    order = urgency_order(plans, st)
    short = short_reasons(plans, st, order)
    named = ", ".join(order[:SHORT_REASONS_NAMED])
    assert short[0] == (f"{n} services run more containers than their safe count: {named} "
                        f"and 3 more (each in the report)")
    assert short[1:] == (st.reasons[-1],) and st.reasons[-1].startswith("least headroom")
    print_summary(plans, st)
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line == f"status: CRITICAL ({'; '.join(short)})"
    few = {s: plans[s] for s in order[:SHORT_REASONS_NAMED]}
    assert short_reasons(few, status(few)) == status(few).reasons


def test_the_check_line_sums_up_many_services_over_or_undefined() -> None:
    """--check printed every service's reason on the one plugin line (100 of them); it now
    names SHORT_REASONS_NAMED and counts the rest, for services over their safe count and
    for services without one alike (the perfdata keeps one entry per service)."""
    import dataclasses

    from capacity.reporting._status import SHORT_REASONS_NAMED, check_line

    n = SHORT_REASONS_NAMED + 4
    plans = {f"svc{i}": _plan(cpus=1, running=2 + i) for i in range(1, n + 1)}
    line = check_line(plans, status(plans))
    assert f"{n} services run more containers than their safe count" in line
    assert "and 4 more (each in the report)" in line
    assert line.count("more than the safe count") == 0
    assert line.count("_safe'=") == n
    undefined = {s: dataclasses.replace(p, safe_count=None, reason="hours of the day not seen")
                 for s, p in plans.items()}
    line = check_line(undefined, status(undefined))
    assert line.startswith("CAPACITY WARNING - ")
    assert f"{n} services have no safe count: " in line and "and 4 more" in line
    assert line.count("safe count undefined") == 0
