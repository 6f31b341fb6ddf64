"""profiles.json is checked field by field when loaded (issue 11, items 1, 3 and 7).

Each case spoils one field of a real fitted profiles file; the error must be InvalidFile
naming that field's dotted path and the value, never a TypeError/KeyError from deep inside."""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Callable
from typing import Any

import pytest
from _samples_builder import samples_table

from capacity import InvalidFile, ProfileVersionError
from capacity._columns import CPU, MEMORY
from capacity.model import ProfileModel, Profiles

SVC = "services.svc"
RES = f"{SVC}.resources.cpu_cores"


@pytest.fixture(scope="module")
def good() -> dict[str, Any]:
    import numpy as np

    rng = np.random.default_rng(1)
    samples = samples_table({c: {CPU: rng.gamma(2.0, 0.1, 200), MEMORY: rng.normal(1e8, 1e6, 200)}
                             for c in ("c1", "c2")})
    samples["cpu_limit_cores"] = 2.0
    return ProfileModel(min_span_s=0).fit(samples).profiles_.to_dict()


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def edit(d: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node = d
        for p in parents:
            node = node[p]
        node[last] = value
    return edit


def _del(path: str) -> Callable[[dict[str, Any]], None]:
    def edit(d: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node = d
        for p in parents:
            node = node[p]
        del node[last]
    return edit


#: (edit of the good file, the field the error must name, the value it must show)
CASES = [
    (_set(f"{SVC}.cpu_limit_cores", -1.0), f"{SVC}.cpu_limit_cores", "-1.0"),
    (_set(f"{SVC}.cpu_limit_cores", 0), f"{SVC}.cpu_limit_cores", "0"),
    (_set(f"{SVC}.memory_limit_bytes", -5), f"{SVC}.memory_limit_bytes", "-5"),
    (_set(f"{RES}.mean", -0.5), f"{RES}.mean", "-0.5"),
    (_set(f"{RES}.mean", math.nan), f"{RES}.mean", "nan"),
    (_set(f"{RES}.p95", "lots"), f"{RES}.p95", "'lots'"),
    (_set(f"{RES}.p95", True), f"{RES}.p95", "True"),
    (_set(f"{RES}.p50", 1e9), f"{RES}.p50", "1000000000.0"),
    (_set(f"{RES}.quantiles.p99", math.inf), f"{RES}.quantiles.p99", "inf"),
    (_set(f"{RES}.count", 2.5), f"{RES}.count", "2.5"),
    (_set(f"{RES}.trace", [0.1, -3.0]), f"{RES}.trace[1]", "-3.0"),
    (_set(f"{RES}.histogram_weights", [1.0]), f"{RES}.histogram_edges", "edges"),
    (_set(f"{RES}.fit", {"family": "cauchy"}), f"{RES}.fit.family", "'cauchy'"),
    (_set(f"{RES}.replica_correlation", 3.0), f"{RES}.replica_correlation", "3.0"),
    (_set(f"{RES}.quantile_ci", {"p95": 1.0}), f"{RES}.quantile_ci.p95", "1.0"),
    # statistics of one series out of their range: edited or corrupted (refit)
    (_set(f"{RES}.quantiles.p99", 1e6), f"{RES}.quantiles.p99", "1000000.0"),
    (_set(f"{RES}.quantiles.p90", 1e-9), f"{RES}.quantiles.p50", "quantiles.p90"),
    (_set(f"{RES}.quantiles.p1e", 0.1), f"{RES}.quantiles.p1e", "'p1e'"),
    (_set(f"{RES}.demand", 1e6), f"{RES}.demand", "1000000.0"),
    (_set(f"{RES}.idle_baseline", 1e6), f"{RES}.idle_baseline", "1000000.0"),
    (_set(f"{RES}.quantile_ci", {"p95": [5.0, 1.0]}), f"{RES}.quantile_ci.p95", "[5.0, 1.0]"),
    (_del(f"{RES}.count"), f"{RES}.count", "missing"),
    (_del(f"{SVC}.resources"), f"{SVC}.resources", "missing"),
    (_set(f"{SVC}.resources", {"cpu_cores": 3}), RES, "3"),
    (_set(f"{SVC}.confidence", "great"), f"{SVC}.confidence", "'great'"),
    (_set(f"{SVC}.service", "db"), f"{SVC}.service", "'db'"),
    (_set(f"{SVC}.warnings", "none"), f"{SVC}.warnings", "'none'"),
    (_set("services", []), "services", "[]"),
    (_set("correlation", {"between_services": {"cpu_cores": {"a": {"b": 2}}}}),
     "correlation.between_services.cpu_cores.a.b", "2"),
]


@pytest.mark.parametrize("edit, field, shown", CASES, ids=[c[1] + "=" + c[2] for c in CASES])
def test_a_bad_field_is_named_with_its_value(good, edit, field, shown) -> None:
    d = copy.deepcopy(good)
    edit(d)
    with pytest.raises(InvalidFile) as info:
        Profiles.from_dict(d, file="p.json")
    assert info.value.field == field
    assert f"'{field}'" in str(info.value) and shown in str(info.value)
    assert str(info.value).startswith("p.json: ")


def test_daily_levels_above_the_largest_sample_are_refused() -> None:
    """Daily levels x1e30 (an edited or corrupted file) planned 0 replicas silently."""
    import numpy as np

    rng = np.random.default_rng(2)
    cpu = rng.gamma(4.0, 0.1, 3 * 288)
    d = ProfileModel().fit(samples_table({"c1": {CPU: cpu}}, interval_s=300.0)
                           ).profiles_.to_dict()
    levels = d["services"]["svc"]["resources"][CPU]["daily_levels"]
    assert len(levels) == 3
    Profiles.from_dict(d)  # as fitted: every day's mean under the largest sample
    d["services"]["svc"]["resources"][CPU]["daily_levels"] = [x * 1e30 for x in levels]
    with pytest.raises(InvalidFile) as info:
        Profiles.from_dict(d, file="p.json")
    assert info.value.field == f"{RES}.daily_levels[0]"
    assert "<= max" in str(info.value) and "e+29" in str(info.value)
    assert "refit" in str(info.value)


def test_the_good_file_round_trips(good) -> None:
    p = Profiles.from_dict(good)
    assert Profiles.from_dict(p.to_dict()) == p


def test_nan_in_the_json_text_is_named(good, tmp_path) -> None:
    text = json.dumps(good).replace('"mean": ', '"mean": NaN, "_was": ', 1)
    path = tmp_path / "p.json"
    path.write_text(text)
    with pytest.raises(InvalidFile, match=r"\.mean' must be a finite number"):
        Profiles.from_json(path)


def test_a_newer_schema_says_upgrade(good) -> None:
    d = dict(good, schema_version=99)
    with pytest.raises(ProfileVersionError, match="newer capacity: upgrade"):
        Profiles.from_dict(d)


def test_unknown_fields_are_ignored(good) -> None:
    d = copy.deepcopy(good)
    d["services"]["svc"]["added_later"] = 1
    d["services"]["svc"]["resources"]["cpu_cores"]["also_new"] = [1]
    assert Profiles.from_dict(d) == Profiles.from_dict(good)


@pytest.mark.parametrize("command", [
    ["plan", "--machine", "cpus=4,memory=8GiB", "--method", "gaussian"],
    ["size", "--machine", "cpus=4,memory=8GiB", "--replicas", "svc=10", "--method", "gaussian"],
])
def test_a_negative_limit_is_exit_3_not_a_hang(good, tmp_path, capsys, command) -> None:
    from bounded import within

    from capacity.cli import main

    d = copy.deepcopy(good)
    d["services"]["svc"]["cpu_limit_cores"] = -1.0
    path = tmp_path / "p.json"
    path.write_text(json.dumps(d))
    with within(60, " ".join(command)):
        code = main([command[0], "--profiles", str(path), *command[1:]])
    err = capsys.readouterr().err
    assert code == 3
    assert err.startswith("capacity: error:") and "cpu_limit_cores" in err and "-1.0" in err


def test_the_loader_reads_every_field_of_every_profile_class() -> None:
    # a field added to a dataclass but not to its loader would be dropped from every file
    import inspect
    from dataclasses import fields

    from capacity.model import _profile as m

    for cls, loader in ((m.ResourceProfile, m._load_resource), (m.ServiceProfile,
                                                                 m._load_service),
                        (m.Profiles, m._load_profiles), (m.FitResult, m._load_fit),
                        (m.BurstProfile, m._load_burst), (m.Correlation, m._load_correlation)):
        source = inspect.getsource(loader)
        missing = [f.name for f in fields(cls) if f'"{f.name}"' not in source
                   and f"{f.name}=" not in source]
        assert not missing, f"{loader.__name__} does not read {missing}"
