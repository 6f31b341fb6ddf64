"""Every setting declared once (capacity/_settings.py): checked the same way whichever way in,
the CLI options built from it, the defaults of the API and the solver taken from it, and a
plan that keeps the settings it was made with."""

from __future__ import annotations

import inspect
import json
from dataclasses import fields
from pathlib import Path

import pandas as pd
import pytest

import capacity
import capacity.backtest
import capacity.solver
from capacity._settings import DEFAULTS, INCOMPRESSIBLE_EPSILON_FACTOR, Settings, settings_table
from capacity.cli import cli, main

MACHINE = "cpus=8,memory=32GiB"
EPSILON_TEXT = "The 'epsilon' parameter of plan must be in [1e-12, 0.5); got 0.7 instead."


@pytest.fixture(scope="module")
def demo() -> tuple[pd.DataFrame, capacity.Profiles]:
    samples = capacity.load(demo=True)
    return samples, capacity.fit(samples)


@pytest.fixture(scope="module")
def profiles_file(demo: tuple[pd.DataFrame, capacity.Profiles],
                  tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("settings") / "profiles.json"
    demo[1].to_json(path)
    return path


# -- declared once, checked once --------------------------------------------------------------


@pytest.mark.parametrize("field, bad", [
    ("epsilon", 0.7), ("epsilon", 0), ("epsilon", float("nan")), ("epsilon", "0.01"),
    ("incompressible_epsilon", 0.5), ("method", "magic"), ("seed", -1), ("seed", 1.5),
    ("horizon_s", -1), ("horizon_s", float("inf")), ("horizon_s", 1e308),
    ("horizon_s", float("nan")), ("valid_for_s", 4e9), ("valid_for_s", float("inf")),
    ("quantile_level", 1.5),
    ("independent_offsets", "yes"), ("warn_headroom", 1.5), ("warn_headroom", -0.1),
])
def test_a_bad_setting_names_itself_and_the_value(field: str, bad: object) -> None:
    with pytest.raises(capacity.InvalidParameter, match=f"'{field}' parameter of plan"):
        Settings(**{field: bad})


@pytest.mark.parametrize("flag, value", [
    ("--horizon", "1e308"), ("--horizon", "36600d"), ("--horizon", "inf"), ("--horizon", "nan"),
    ("--valid-for", "1e308"), ("--valid-for", "5300w"), ("--valid-for", "nan"),
])
def test_an_absurd_duration_is_refused_on_the_cli(
    profiles_file: Path, capsys: pytest.CaptureFixture[str], flag: str, value: str,
) -> None:
    """``--horizon 1e308`` was planned silently (the path capped at the trace's length)."""
    assert main(["plan", "--profiles", str(profiles_file), "--machine", MACHINE,
                 flag, value]) == 3
    err = capsys.readouterr().err
    assert value in err and "Traceback" not in err
    if "e308" in value or value.endswith(("d", "w")):
        assert "at most 100 years" in err


def test_every_duration_setting_shares_the_one_bound() -> None:
    from capacity._settings import _CHECKS
    from capacity._units import MAX_DURATION_S, parse_duration

    assert parse_duration("100w") == 100 * 7 * 86_400.0
    with pytest.raises(capacity.InvalidParameter, match="at most 100 years"):
        parse_duration(MAX_DURATION_S * 1.01, name="interval")
    for f in fields(Settings):
        if f.metadata["kind"] == "duration":
            _, ok = _CHECKS[f.metadata["check"]]
            assert ok(MAX_DURATION_S) and not ok(MAX_DURATION_S * 1.01), f.name


def test_the_api_and_the_cli_say_the_same_about_a_bad_epsilon(
    demo: tuple[pd.DataFrame, capacity.Profiles], profiles_file: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(capacity.InvalidParameter) as exc:
        capacity.plan_all(demo[1], MACHINE, epsilon=0.7)
    assert str(exc.value) == EPSILON_TEXT
    for argv in (["plan", "--profiles", str(profiles_file), "--machine", MACHINE],
                 ["size", "--profiles", str(profiles_file), "--machine", MACHINE,
                  "--replicas", "demo/idle=3"],
                 ["report", "--profiles", str(profiles_file), "--machine", MACHINE]):
        assert main([*argv, "--epsilon", "0.7"]) == 3
        assert capsys.readouterr().err.strip() == f"capacity: error: {EPSILON_TEXT}"


@pytest.mark.parametrize("flag", ["--epsilon", "--memory-epsilon"])
@pytest.mark.parametrize("value", ["5e-324", "1e-13"])
def test_a_risk_too_small_to_resolve_says_the_range_and_why(
    profiles_file: Path, capsys: pytest.CaptureFixture[str], flag: str, value: str,
) -> None:
    """``--epsilon 5e-324`` made memory's risk (x 0.1) underflow to 0 and the error blamed
    "epsilon of memory_working_set_bytes ... got 0.0", a parameter the user never gave."""
    assert main(["plan", "--profiles", str(profiles_file), "--machine", MACHINE,
                 flag, value]) == 3
    err = capsys.readouterr().err
    field = "epsilon" if flag == "--epsilon" else "incompressible_epsilon"
    assert f"The '{field}' parameter of plan must be in [1e-12, 0.5)" in err
    assert "resolved by no method" in err and "200,000" in err
    assert f"got {float(value)!r} instead" in err and "memory_working_set" not in err


def test_the_smallest_risk_plans_with_memory_below_it(
    demo: tuple[pd.DataFrame, capacity.Profiles],
) -> None:
    from capacity._settings import MIN_EPSILON

    p = capacity.plan_all(demo[1], MACHINE, epsilon=MIN_EPSILON, method="gaussian")
    assert all(q.settings.memory_epsilon == MIN_EPSILON * 0.1 for q in p.values())
    with pytest.raises(capacity.InvalidParameter, match=r"epsilon_per_resource\['cpu_cores'\]"):
        capacity.solver.plan(demo[1], capacity.solver.Machine.from_spec(MACHINE),
                             service=sorted(demo[1].services)[0],
                             epsilon_per_resource={"cpu_cores": 0.0})


def test_memory_epsilon_follows_epsilon_unless_given() -> None:
    assert Settings(epsilon=0.05).memory_epsilon == pytest.approx(
        0.05 * INCOMPRESSIBLE_EPSILON_FACTOR)
    given = Settings(epsilon=0.05, incompressible_epsilon=0.002)
    assert given.memory_epsilon == 0.002
    assert given.replace(epsilon=0.2).memory_epsilon == 0.002


def test_settings_round_trip_through_json() -> None:
    s = Settings(epsilon=0.02, method="gaussian", horizon_s=300, quantile_level=0.9,
                 independent_offsets=True, warn_headroom=0.1, seed=7)
    assert Settings.from_dict(json.loads(json.dumps(s.to_dict()))) == s


# -- the CLI options are built from the fields --------------------------------------------------


@pytest.mark.parametrize("command, names", [
    ("plan", [f.name for f in fields(Settings)]),
    ("report", [f.name for f in fields(Settings)]),
    ("size", ["epsilon", "incompressible_epsilon", "method", "seed"]),
    ("backtest", ["epsilon"]),
    ("verify", ["epsilon"]),
])
def test_cli_options_are_the_settings_fields(command: str, names: list[str]) -> None:
    by_name = {f.name: f for f in fields(Settings)}
    params = {p.name: p for p in cli.commands[command].params}
    for name in names:
        f = by_name[name]
        option = params[name]
        assert f.metadata["flag"] in option.opts
        assert option.help == f.metadata["help"]
        if f.metadata["kind"] != "flag":
            assert option.default == f.default


def test_the_docs_table_is_the_fields() -> None:
    table = settings_table()
    for f in fields(Settings):
        assert f"`{f.name}`" in table and f"`{f.metadata['flag']}`" in table
    doc = (Path(__file__).parents[1] / "docs" / "plan-json.md").read_text()
    assert table in doc, "docs/plan-json.md: paste settings_table() again"


@pytest.mark.parametrize("function", [
    capacity.plan, capacity.plan_all, capacity.plan_mix, capacity.size,
    capacity.solver.plan, capacity.backtest.backtest,
])
def test_api_and_solver_defaults_are_the_settings(function: object) -> None:
    parameters = inspect.signature(function).parameters  # type: ignore[arg-type]
    assert parameters["epsilon"].default == DEFAULTS.epsilon
    if "method" in parameters:
        assert parameters["method"].default == DEFAULTS.method


def test_report_defaults_are_the_settings() -> None:
    parameters = inspect.signature(capacity.report).parameters
    assert parameters["warn_headroom"].default == DEFAULTS.warn_headroom


# -- carried as given into the plan -------------------------------------------------------------


def test_a_plan_keeps_its_settings_and_what_if_needs_no_guessing(
    demo: tuple[pd.DataFrame, capacity.Profiles],
) -> None:
    """A plan made with settings a plan used to forget (quantile level, confidence) is the
    same plan after a what-if that changes nothing about them."""
    _, profiles = demo
    p = capacity.plan(profiles, MACHINE, service="demo/mem-sawtooth", method="quantile",
                      quantile_level=0.5, require_confidence=True, seed=3)
    assert p.settings == Settings(method="quantile", quantile_level=0.5,
                                  require_confidence=True, seed=3)
    again = capacity.what_if(p, profiles, machine=MACHINE)
    assert again.to_dict() == p.to_dict()
    bigger = capacity.what_if(p, profiles, machine="cpus=16,memory=64GiB")
    assert bigger.settings == p.settings


def test_plans_carry_their_settings_into_plan_json(
    demo: tuple[pd.DataFrame, capacity.Profiles],
) -> None:
    samples, profiles = demo
    plans = capacity.plan_all(profiles, MACHINE, running=samples, epsilon=0.02,
                              method="gaussian", horizon_s=60.0)
    doc = plans.to_dict()
    assert doc["settings"]["epsilon"] == 0.02
    assert doc["settings"]["method"] == "gaussian"
    assert doc["settings"]["horizon_s"] == 60.0
    assert doc["settings"]["memory_epsilon"] == pytest.approx(0.002)
    for plan in doc["plans"].values():
        assert plan["settings"] == doc["settings"]
    changed = plans.what_if(epsilon=0.05)
    assert changed.settings == plans.settings.replace(epsilon=0.05)
    assert changed.to_dict()["settings"]["memory_epsilon"] == pytest.approx(0.005)
    assert capacity.Plan.from_dict(doc["plans"]["demo/idle"]).settings == plans.settings


def test_cli_plan_json_has_the_resolved_settings(
    profiles_file: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(["plan", "--profiles", str(profiles_file), "--machine", MACHINE, "--json",
                 "--epsilon", "0.02", "--horizon", "1m", "--service", "demo/idle"])
    assert code in (0, 1)
    doc = json.loads(capsys.readouterr().out)
    assert doc["settings"] == DEFAULTS.replace(epsilon=0.02, horizon_s=60.0).to_dict()


def test_plan_all_with_settings_and_one_change_keeps_the_rest(
    demo: tuple[pd.DataFrame, capacity.Profiles],
) -> None:
    _, profiles = demo
    base = Settings(epsilon=0.05, method="gaussian")
    plans = capacity.plan_all(profiles, MACHINE, settings=base, method="peak")
    assert plans.settings == base.replace(method="peak")


def test_numpy_numbers_are_settings_too() -> None:
    import numpy as np

    s = Settings(epsilon=np.float64(0.02), seed=np.int64(4), quantile_level=np.float32(0.5))
    assert s == Settings(epsilon=0.02, seed=4, quantile_level=0.5)
    assert type(s.epsilon) is float and type(s.seed) is int
    json.dumps(s.to_dict())


@pytest.mark.parametrize("bad", [1.5, -1, True, float("nan"), "3"])
def test_a_container_count_is_a_whole_number_whichever_way_in(
    demo: tuple[pd.DataFrame, capacity.Profiles], bad: object,
) -> None:
    """Before: running=1.5 made '53750.5 more fit', running=True one replica, size's
    replicas 1.5 silently 1."""
    profiles = demo[1]
    with pytest.raises(capacity.InvalidParameter, match="whole number of containers"):
        capacity.plan(profiles, MACHINE, service="demo/idle", running=bad)  # type: ignore[arg-type]
    with pytest.raises(capacity.InvalidParameter, match="whole number of containers"):
        capacity.plan_all(profiles, MACHINE, running={"demo/idle": bad})  # type: ignore[dict-item]
    with pytest.raises(capacity.InvalidParameter, match="whole number of containers"):
        capacity.size(profiles, MACHINE, {"demo/idle": bad})  # type: ignore[dict-item]


def test_whole_counts_from_numpy_and_pandas_are_taken(
    demo: tuple[pd.DataFrame, capacity.Profiles],
) -> None:
    import numpy as np

    plans = capacity.plan_all(demo[1], MACHINE, running={"demo/idle": np.int64(3)})
    assert plans["demo/idle"].running == 3
    assert capacity.plan(demo[1], MACHINE, service="demo/idle", running=3.0).running == 3
