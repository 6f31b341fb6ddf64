"""The public API: the curated ``__all__``, its doctests, and that it answers as the CLI does."""

from __future__ import annotations

import doctest
import importlib
import json
import types
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from matplotlib.axes import Axes

import capacity
import capacity._api
from capacity.cli import main

EXPECTED_ALL = {
    # the pipeline, one function per stage, and the what-if helpers
    "collect", "load", "fit", "running_counts", "plan", "plan_all", "plan_mix", "size",
    "report", "what_if",
    # results and inputs
    "ProfileModel", "Profiles", "ServiceProfile", "ResourceProfile", "Machine", "Plan",
    "Plans", "ResourcePlan", "MixPlan", "FleetPlan",
    # every plan and report setting, declared once
    "Settings",
    # the exception tree
    "CapacityError", "ContainerGone", "DockerUnavailable", "InsufficientData",
    "InvalidFile", "InvalidParameter", "InvalidSamples", "NoContainers", "NotFittedError",
    "ProfileVersionError", "StoreError", "StoreLocked",
    "__version__",
}

#: the machine both the CLI and the API plan for in the equality test
MACHINE = "cpus=8,memory=32GiB"


@pytest.fixture(scope="module")
def demo() -> tuple[pd.DataFrame, capacity.Profiles]:
    samples = capacity.load(demo=True)
    return samples, capacity.fit(samples)


# -- __all__ ---------------------------------------------------------------------------------


def test_all_is_the_expected_set() -> None:
    assert set(capacity.__all__) == EXPECTED_ALL
    assert len(capacity.__all__) == len(EXPECTED_ALL), "a name is listed twice"


@pytest.mark.parametrize("name", sorted(EXPECTED_ALL))
def test_every_name_is_importable(name: str) -> None:
    module = importlib.import_module("capacity")
    obj = getattr(module, name)
    assert obj is not None
    exec(f"from capacity import {name}", {})  # the import statement works too


def test_nothing_private_is_exported() -> None:
    for name in capacity.__all__:
        assert name == "__version__" or not name.startswith("_"), name
        assert not isinstance(getattr(capacity, name), types.ModuleType), (
            f"{name} is a module: export the names, keep the modules private")


def test_public_names_live_in_the_stage_modules() -> None:
    # every public object is defined in capacity/ (not re-exported from a third party)
    for name in capacity.__all__:
        obj = getattr(capacity, name)
        if name != "__version__":
            assert getattr(obj, "__module__", "").startswith("capacity."), name


def test_report_function_is_not_shadowed_by_a_subpackage() -> None:
    # the report stage lives in capacity.reporting, so no subpackage is named like the function
    # capacity.report (importing a subpackage would set the parent's attribute of that name)
    assert not (Path(capacity.__file__).parent / "report").exists()
    importlib.import_module("capacity.reporting._render")
    importlib.import_module("capacity.reporting._charts")
    assert callable(capacity.report)
    assert capacity.report is capacity._api.report


def test_errors_derive_from_capacity_error() -> None:
    for name in capacity.__all__:
        obj = getattr(capacity, name)
        if isinstance(obj, type) and issubclass(obj, Exception):
            assert issubclass(obj, capacity.CapacityError), name


# -- doctests --------------------------------------------------------------------------------


def test_api_doctests() -> None:
    """The examples in capacity/_api.py run (on the bundled recording: no engine needed)."""
    result = doctest.testmod(capacity._api, optionflags=doctest.ELLIPSIS, verbose=False,
                             report=True)
    assert result.attempted >= 20
    assert result.failed == 0


# -- the answer --------------------------------------------------------------------------------


def test_plan_all_equals_capacity_report_json(
    demo: tuple[pd.DataFrame, capacity.Profiles], tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The API and ``capacity report --demo --json`` give the same plan.json."""
    samples, profiles = demo
    code = main(["report", "--demo", "--json", "--machine", MACHINE, "--out", str(tmp_path)])
    assert code in (0, 1, 2)
    cli = json.loads(capsys.readouterr().out)
    plans = capacity.plan_all(profiles, MACHINE, running=samples)
    assert json.loads(json.dumps(plans.to_dict())) == cli


#: disk space each demo container is said to use (the recording has no disk readings): a
#: few GiB, so the two ways in differ by far more than the host's free space drifts by
DISK_PER_CONTAINER_BYTES = 4 * 2**30


def test_plan_all_on_the_local_machine_equals_capacity_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    """The local machine (the default of both) is built one way: ``capacity report
    --samples F`` and ``plan_all(fit(load(F)), "local", running=load(F))`` count the disk
    space the running containers use as the machine's, and give the same numbers."""
    from capacity.store import write_samples

    samples = capacity.load(demo=True).drop(columns=["cpu_limit_cores", "memory_limit_bytes"])
    samples["disk_usage_bytes"] = float(DISK_PER_CONTAINER_BYTES)
    path = write_samples(samples, tmp_path / "with_disk.parquet")
    code = main(["report", "--samples", str(path), "--json", "--out", str(tmp_path / "r")])
    assert code in (0, 1, 2)
    cli = json.loads(capsys.readouterr().out)["plans"]
    loaded = capacity.load(path)
    api = json.loads(json.dumps(capacity.plan_all(capacity.fit(loaded), "local",
                                                  running=loaded).to_dict()))["plans"]
    assert api.keys() == cli.keys()
    in_use = DISK_PER_CONTAINER_BYTES * loaded["container_id"].nunique()
    for service, ours in api.items():
        theirs = cli[service]
        disk_cli = theirs["machine"]["capacity"]["disk_usage_bytes"]
        disk_api = ours["machine"]["capacity"]["disk_usage_bytes"]
        # the free space moves a little between the two runs (others write files), never
        # by the containers' own use
        assert disk_api == pytest.approx(disk_cli, abs=0.05 * in_use), service
        # 'local' measures the engine/OS baseline as a reserve, live (it moves between two
        # runs on a busy host): the capacities and the settings must agree, not the reserves
        for resource in ("cpu_cores", "memory_working_set_bytes"):
            assert (ours["machine"]["capacity"][resource]
                    == theirs["machine"]["capacity"][resource])
        assert ours["settings"] == theirs["settings"]


def test_load_keeps_declared_limits_as_the_cli_does(
    demo: tuple[pd.DataFrame, capacity.Profiles],
) -> None:
    from capacity._pipeline import fit_profiles, load_demo

    samples, profiles = demo
    assert samples["cpu_limit_cores"].notna().any()
    ours, cli = profiles.to_dict(), fit_profiles(load_demo()).to_dict()
    ours.pop("created_at")
    cli.pop("created_at")
    assert ours == cli


def test_load_needs_exactly_one_source() -> None:
    with pytest.raises(capacity.InvalidParameter, match="exactly one"):
        capacity.load()
    with pytest.raises(capacity.InvalidParameter, match="exactly one"):
        capacity.load("x.parquet", demo=True)


def test_load_reads_a_samples_file(tmp_path: Path,
                                   demo: tuple[pd.DataFrame, capacity.Profiles]) -> None:
    from capacity.store import write_samples

    samples, _ = demo
    path = write_samples(samples.drop(columns=["cpu_limit_cores", "memory_limit_bytes"]),
                         tmp_path / "s.parquet")
    back = capacity.load(path)
    assert len(back) == len(samples)
    assert back.attrs["source"] == str(path)


# -- what if -----------------------------------------------------------------------------------


def test_what_if_without_changes_is_the_same_plan(
    demo: tuple[pd.DataFrame, capacity.Profiles],
) -> None:
    _, profiles = demo
    p = capacity.plan(profiles, MACHINE, service="demo/cpu-bursty", running=2)
    assert capacity.what_if(p, profiles).to_dict() == p.to_dict()


def test_what_if_changes_one_thing(demo: tuple[pd.DataFrame, capacity.Profiles]) -> None:
    _, profiles = demo
    p = capacity.plan(profiles, MACHINE, service="demo/cpu-burner")
    bigger = capacity.what_if(p, profiles, machine="cpus=16,memory=64GiB")
    reserved = capacity.what_if(p, profiles, reserve={"cpu_cores": 2.0})
    by_key = capacity.what_if(p, profiles, reserve={"cpus": 2})
    riskier = capacity.what_if(p, profiles, epsilon=0.1)
    assert p.safe_count is not None and bigger.safe_count is not None
    assert bigger.safe_count > p.safe_count
    assert reserved.safe_count == by_key.safe_count
    assert reserved.safe_count is not None and reserved.safe_count < p.safe_count
    assert riskier.epsilon == 0.1 and riskier.incompressible_epsilon == pytest.approx(0.01)
    assert bigger.machine.name == "cpus=16,memory=64GiB"


def test_what_if_on_plans_keeps_profiles_and_mix(
    demo: tuple[pd.DataFrame, capacity.Profiles],
) -> None:
    samples, profiles = demo
    plans = capacity.plan_all(profiles, MACHINE, running=samples)
    same = plans.what_if()
    assert same.to_dict() == plans.to_dict()
    crowded = plans.what_if(running={**plans.running, "demo/cpu-bursty": 6})
    before, after = plans["demo/cpu-burner"].safe_count, crowded["demo/cpu-burner"].safe_count
    assert before is not None and after is not None and after < before
    assert crowded.source == plans.source == "demo"


def test_what_if_rejects_the_wrong_running(
    demo: tuple[pd.DataFrame, capacity.Profiles],
) -> None:
    _, profiles = demo
    p = capacity.plan(profiles, MACHINE, service="demo/cpu-burner")
    with pytest.raises(capacity.InvalidParameter, match="running"):
        capacity.what_if(p, profiles, running={"demo/cpu-burner": 3})
    with pytest.raises(capacity.InvalidParameter, match="profiles"):
        capacity.what_if(p)


# -- display -----------------------------------------------------------------------------------


def _check_html(text: str, *needles: str) -> None:
    assert text.startswith("<div>") and "<table>" in text
    for n in needles:
        assert n in text, n


def test_profiles_display(demo: tuple[pd.DataFrame, capacity.Profiles]) -> None:
    _, profiles = demo
    frame = profiles.to_frame()
    assert frame.index.names == ["service", "resource"]
    assert frame.loc[("demo/cpu-burner", "cpu_cores"), "p95"] == pytest.approx(0.3, abs=0.01)
    _check_html(profiles._repr_html_(), "5 services profiled", "demo/mem-holder", "MiB")
    ax = profiles.plot(resource="memory_working_set_bytes")
    assert isinstance(ax, Axes)
    assert set(ax.get_legend_handles_labels()[1]) == set(profiles.services)
    assert "MiB" in ax.get_xlabel()
    sp = profiles["demo/cpu-bursty"]
    assert sp.to_frame().index[0] == "cpu_cores"
    _check_html(sp._repr_html_(), "demo/cpu-bursty", "cores")
    ax = sp.plot()
    assert ax.get_title() == "demo/cpu-bursty: cpu_cores"
    assert any(label.startswith("p95 = ") for label in ax.get_legend_handles_labels()[1])


def test_plan_display(demo: tuple[pd.DataFrame, capacity.Profiles]) -> None:
    from capacity.solver._display import answer

    samples, profiles = demo
    plans = capacity.plan_all(profiles, MACHINE, running=samples)
    p = plans["demo/cpu-burner"]
    frame = p.to_frame()
    assert frame.loc["cpu_cores", "binding"]
    assert frame.loc["cpu_cores", "safe_count"] == p.safe_count
    _check_html(p._repr_html_(), answer(p), "cpu_cores (binds)")
    assert answer(p).startswith(f"{p.more} more containers of demo/cpu-burner fit beside "
                                f"the 2 running ({p.safe_count} in all) on {MACHINE}")
    ax = p.plot()
    labels = ax.get_legend_handles_labels()[1]
    assert f"safe count = {p.safe_count}" in labels and "cpu_cores (binds)" in labels
    assert ax.get_yscale() == "log"
    table = plans.to_frame()
    assert table.loc["demo/cpu-burner", "more"] == p.more
    _check_html(plans._repr_html_(), *plans)
    ax = plans.plot()
    assert [t.get_text() for t in ax.get_yticklabels()] == list(plans)
    assert ax.get_xscale() == "log"  # idle fits by the ten thousand, cpu-bursty by the ten


def test_plot_draws_on_a_given_axes(demo: tuple[pd.DataFrame, capacity.Profiles]) -> None:
    from matplotlib.figure import Figure

    _, profiles = demo
    fig = Figure()
    ax = fig.add_subplot()
    assert profiles.plot(ax) is ax
    p = capacity.plan(profiles, MACHINE, service="demo/idle")
    fig2 = Figure()
    ax2 = fig2.add_subplot()
    assert p.plot(ax=ax2) is ax2


def test_plot_names_a_missing_resource(demo: tuple[pd.DataFrame, capacity.Profiles]) -> None:
    _, profiles = demo
    with pytest.raises(capacity.InvalidParameter, match="resource"):
        profiles.plot(resource="gpu_seconds")


# -- the other entry points ----------------------------------------------------------------


def test_size_and_mix(demo: tuple[pd.DataFrame, capacity.Profiles]) -> None:
    _, profiles = demo
    fleet = capacity.size(profiles, MACHINE, {"demo/cpu-burner": 120}, spare=1)
    assert fleet.hosts_needed is not None and fleet.hosts == fleet.hosts_needed + 1
    mix = capacity.plan_mix(profiles, capacity.Machine.from_spec(MACHINE),
                            {"demo/cpu-burner": 2, "demo/cpu-bursty": 1})
    assert mix.multiple is not None and mix.multiple >= 1
    assert mix.counts["demo/cpu-burner"] == 2 * mix.multiple


def test_report_writes_the_folder(demo: tuple[pd.DataFrame, capacity.Profiles],
                                  tmp_path: Path) -> None:
    samples, profiles = demo
    plans = capacity.plan_all(profiles, MACHINE, running=samples)
    paths = capacity.report(plans, out_dir=tmp_path, name="nb", samples=samples)
    assert paths.folder == tmp_path / "nb"
    written = json.loads(paths.plan_json.read_text())
    assert written == json.loads(json.dumps(plans.to_dict()))


class _EmptyEngineApi:
    """The low-level API of an engine that runs no container."""

    base_url = "unix://fake"

    def containers(self, **_: Any) -> list[dict[str, Any]]:
        return []


class _EmptyEngineClient:
    """A client of that engine (injected; nothing is patched)."""

    api = _EmptyEngineApi()


def test_collect_with_an_empty_engine_says_so() -> None:
    with pytest.raises(capacity.NoContainers, match="no running containers"):
        capacity.collect("2s", interval="1s", client=_EmptyEngineClient())


def test_what_if_on_the_local_machine_keeps_the_disk_in_use(tmp_path: Path) -> None:
    """plans.what_if(machine="local") builds the machine as plan_all did: the running
    containers' disk space counts as the machine's."""
    samples = capacity.load(demo=True)
    samples["disk_usage_bytes"] = float(DISK_PER_CONTAINER_BYTES)
    plans = capacity.plan_all(capacity.fit(samples), MACHINE, running=samples)
    local = capacity.plan_all(plans.profiles, "local", running=samples)
    again = plans.what_if(machine="local")
    in_use = DISK_PER_CONTAINER_BYTES * samples["container_id"].nunique()
    assert again.machine.capacity["disk_usage_bytes"] == pytest.approx(
        local.machine.capacity["disk_usage_bytes"], abs=0.05 * in_use)
