"""Every file loader, fed malformed and random structures (issue 11, "Must show").

Two parts:

1. :data:`CASES`, a table of bad files run through the command line in-process: each must end
   with exit 3 and a last stderr line ``capacity: error: ...`` that names the field, never
   "unexpected" (the CLI's text for a bug) and never a traceback. To add a loader (the machine
   TOML file, say), append :class:`BadFile` entries; ``make`` writes the file(s) under the
   test's temporary folder and returns the command line. :func:`plan_args` builds a ``plan``
   command around a valid profiles file, for a case that spoils only the machine::

       CASES.append(BadFile("machine: negative cpus", "machine",
                            lambda tmp: plan_args(tmp, machine=write(tmp, "m.toml",
                                                                     "cpus = -1\\n")),
                            "cpus"))

2. Property tests (hypothesis): random mutations of a valid profiles dict, random YAML
   structures as Compose files, random samples tables. The public loader must either accept
   the input (and the planner then end) or raise the documented error naming a field.

Every run is bounded by :func:`bounded.within` (SIGALRM), so a loader that loops fails the
test instead of hanging the suite; nothing asserts a speed.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from bounded import within
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from capacity import CapacityError, InvalidFile, InvalidSamples, ProfileVersionError
from capacity._columns import CPU, MEMORY, RESOURCES
from capacity.cli import main
from capacity.model import ProfileModel, Profiles
from capacity.solver import Machine, plan, read_compose
from capacity.store import read_samples

#: wall-clock bound of one case (far above its real cost on a loaded 2-core machine)
BOUND_S = 60.0
MACHINE = "cpus=4,memory=8GiB"
#: hypothesis settings shared by the property tests: few examples, no per-example deadline
FEW = settings(max_examples=40, deadline=None,
               suppress_health_check=[HealthCheck.function_scoped_fixture,
                                      HealthCheck.too_slow])


# -- shared inputs --------------------------------------------------------------------------


def _samples(n: int = 120) -> pd.DataFrame:
    rng = np.random.default_rng(5)
    t = pd.date_range("2026-11-27T10:00:00Z", periods=n, freq="5s")
    frames = []
    for cid, svc in (("c1", "web"), ("c2", "web"), ("c3", "db")):
        frames.append(pd.DataFrame({
            "time": t, "container_id": cid, "container_name": cid + "-n", "service": svc,
            "image": svc + ":1", "interval_s": 5.0,
            CPU: rng.gamma(2.0, 0.05, n), MEMORY: rng.normal(2e8, 1e6, n),
        }))
    return pd.concat(frames, ignore_index=True)


_GOOD: dict[str, Any] = {}


def good_profiles_dict() -> dict[str, Any]:
    """A valid profiles dict (fitted once per session), a fresh copy each call."""
    if not _GOOD:
        samples = _samples()
        samples["cpu_limit_cores"] = 1.0
        _GOOD.update(ProfileModel(min_span_s=0).fit(samples).profiles_.to_dict())
    return copy.deepcopy(_GOOD)


def write(tmp: Path, name: str, text: str) -> Path:
    path = tmp / name
    path.write_text(text)
    return path


def plan_args(tmp: Path, *, profiles: Path | None = None, machine: str | Path = MACHINE,
              extra: Sequence[str] = ("--method", "gaussian")) -> list[str]:
    """``capacity plan`` on ``profiles`` (default: a valid file) and ``machine``."""
    if profiles is None:
        profiles = write(tmp, "good.json", json.dumps(good_profiles_dict()))
    return ["plan", "--profiles", str(profiles), "--machine", str(machine), *extra]


def _profiles_with(edit: Callable[[dict[str, Any]], Any]) -> Callable[[Path], list[str]]:
    def make(tmp: Path) -> list[str]:
        d = good_profiles_dict()
        edit(d)
        return plan_args(tmp, profiles=write(tmp, "p.json", json.dumps(d)))
    return make


def _web(d: dict[str, Any]) -> dict[str, Any]:
    return d["services"]["web"]


def _compose(text: str) -> Callable[[Path], list[str]]:
    return lambda tmp: plan_args(tmp, extra=("--method", "gaussian", "--compose",
                                             str(write(tmp, "compose.yml", text))))


def _csv(edit: Callable[[pd.DataFrame], pd.DataFrame | None]) -> Callable[[Path], list[str]]:
    def make(tmp: Path) -> list[str]:
        df = _samples(30)
        df = edit(df) if edit(df.copy()) is not None else df
        path = tmp / "s.csv"
        df.to_csv(path, index=False)
        return ["fit", "--samples", str(path), "--out", str(tmp / "out.json")]
    return make


def _set_cell(column: str, row: int, value: Any) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def edit(df: pd.DataFrame) -> pd.DataFrame:
        df[column] = df[column].astype(object)
        df.loc[row, column] = value
        return df
    return edit


def _machine_toml(tmp: Path, *, schema_version: int = 1, cpu_cores: str = "4.0",
                  memory_bytes: str = "8589934592.0", tail: str = "") -> Path:
    """A versioned machine file (docs/machine.md) with one field spoilt."""
    return write(tmp, "m.toml", f'schema_version = {schema_version}\nkind = "capacity.machine"'
                 f"\n[capacity]\ncpu_cores = {cpu_cores}\nmemory_bytes = {memory_bytes}\n"
                 + tail)


# -- the table ------------------------------------------------------------------------------


@dataclass(frozen=True)
class BadFile:
    """One malformed input: ``make(tmp)`` writes it and returns the command line; the last
    stderr line must contain ``names`` (the field, column or bound at fault)."""

    id: str
    kind: str
    make: Callable[[Path], list[str]]
    names: str


def _laughs() -> str:
    text = "a: &a [" + ", ".join(f"'{i}:{i}'" for i in range(1, 10)) + "]\n"
    for i in range(1, 8):
        text += f"l{i}: &l{i} [" + ", ".join([f"*{'a' if i == 1 else f'l{i - 1}'}"] * 9) + "]\n"
    return text + "services:\n  web:\n    ports: *l7\n"


CASES: list[BadFile] = [
    # profiles.json
    BadFile("negative cpu limit", "profiles",
            _profiles_with(lambda d: _web(d).update(cpu_limit_cores=-1.0)),
            "services.web.cpu_limit_cores"),
    BadFile("negative memory limit", "profiles",
            _profiles_with(lambda d: _web(d).update(memory_limit_bytes=-5)),
            "services.web.memory_limit_bytes"),
    BadFile("negative mean", "profiles",
            _profiles_with(lambda d: _web(d)["resources"][CPU].update(mean=-0.5)),
            "services.web.resources.cpu_cores.mean"),
    # found by random draws of the property below: each crashed a plan (OverflowError)
    BadFile("std past max", "profiles",
            _profiles_with(lambda d: _web(d)["resources"][CPU].update(std=1.34e154)),
            "services.web.resources.cpu_cores.std"),
    BadFile("a reading of 1e200", "profiles",
            _profiles_with(lambda d: _web(d)["resources"][CPU].update(
                std=1e200, p50=1e200, p90=1e200, p95=1e200, p99=1e200, max=1e200,
                demand=1e200, quantiles={})),
            "services.web.resources.cpu_cores."),
    BadFile("trace step of 2e-313 s", "profiles",
            _profiles_with(lambda d: _web(d)["resources"][CPU].update(trace_interval_s=2.2e-313)),
            "services.web.resources.cpu_cores.trace_interval_s"),
    BadFile("cpu limit of 2e-313 cores", "profiles",
            _profiles_with(lambda d: _web(d).update(cpu_limit_cores=2.2e-313)),
            "services.web.cpu_limit_cores"),
    BadFile("text quantile", "profiles",
            _profiles_with(lambda d: _web(d)["resources"][CPU].update(p95="lots")),
            "services.web.resources.cpu_cores.p95"),
    BadFile("missing count", "profiles",
            _profiles_with(lambda d: _web(d)["resources"][CPU].pop("count")),
            "services.web.resources.cpu_cores.count"),
    BadFile("services a list", "profiles", _profiles_with(lambda d: d.update(services=[])),
            "'services'"),
    BadFile("resource an int", "profiles",
            _profiles_with(lambda d: _web(d).update(resources={CPU: 3})),
            "services.web.resources.cpu_cores"),
    BadFile("newer schema", "profiles", _profiles_with(lambda d: d.update(schema_version=99)),
            "upgrade capacity"),
    BadFile("not json", "profiles",
            lambda tmp: plan_args(tmp, profiles=write(tmp, "p.json", "{nope")), "not a profiles"),
    BadFile("nan literal", "profiles",
            lambda tmp: plan_args(tmp, profiles=write(
                tmp, "p.json", json.dumps(good_profiles_dict()).replace(
                    '"std": ', '"std": NaN, "_": ', 1))), ".std"),
    BadFile("a top-level list", "profiles",
            lambda tmp: plan_args(tmp, profiles=write(tmp, "p.json", "[1, 2]")), "kind"),
    # Compose files
    BadFile("port range to 2e9", "compose", _compose("services:\n  web:\n    ports: "
                                                     "['1-2000000000:80']\n"),
            "services.web.ports[0]"),
    BadFile("billion laughs", "compose", _compose(_laughs()), "YAML aliases"),
    BadFile("10,000 services", "compose",
            _compose("services:\n" + "".join(f"  s{i}:\n    cpus: 0.1\n" for i in range(10_000))),
            "split the file"),
    BadFile("service a list", "compose", _compose("services:\n  web: [1, 2]\n"),
            "services.web"),
    BadFile("deploy a string", "compose", _compose("services:\n  web:\n    deploy: fast\n"),
            "services.web.deploy"),
    BadFile("cpus text", "compose", _compose("services:\n  web:\n    cpus: lots\n"),
            "services.web.cpus"),
    BadFile("cpus nan", "compose", _compose("services:\n  web:\n    cpus: .nan\n"),
            "services.web.cpus"),
    BadFile("replicas negative", "compose",
            _compose("services:\n  web:\n    deploy: {replicas: -2}\n"),
            "services.web.deploy.replicas"),
    BadFile("not yaml", "compose", _compose("services: [\n"), "not valid YAML"),
    # a key twice: PyYAML kept the last silently (docker compose refuses the file)
    BadFile("service twice", "compose",
            _compose("services:\n  web: {cpus: 0.5}\n  web: {cpus: 4}\n"), "'web'"),
    BadFile("deploy twice", "compose",
            _compose("services:\n  web:\n    deploy: {replicas: 2}\n"
                     "    deploy: {replicas: 20}\n"), "'deploy'"),
    BadFile("cpus twice in a flow mapping", "compose",
            _compose("services:\n  web: {cpus: 1, cpus: 4}\n"), "lines 2 and 2"),
    # samples CSV
    BadFile("no time", "samples", _csv(lambda df: df.drop(columns=["time"])), "'time'"),
    BadFile("no key", "samples",
            _csv(lambda df: df.drop(columns=["container_id", "container_name", "service"])),
            "no key column"),
    BadFile("no resource", "samples", _csv(lambda df: df.drop(columns=[CPU, MEMORY])),
            "no resource column"),
    BadFile("year 9999", "samples", _csv(_set_cell("time", 0, "9999-12-31T00:00:00Z")),
            "outside the range"),
    BadFile("text time", "samples", _csv(_set_cell("time", 3, "yesterday")), "'time'"),
    BadFile("negative cpu", "samples", _csv(_set_cell(CPU, 2, -1.0)), "'cpu_cores'"),
    BadFile("inf memory", "samples", _csv(_set_cell(MEMORY, 2, "inf")),
            "'memory_working_set_bytes'"),
    BadFile("text cpu", "samples", _csv(_set_cell(CPU, 2, "0.5 cores")), "'cpu_cores'"),
    BadFile("zero interval", "samples", _csv(_set_cell("interval_s", 1, 0.0)), "'interval_s'"),
    BadFile("empty", "samples", _csv(lambda df: df.iloc[:0]), "empty"),
    BadFile("all 1970", "samples",
            _csv(lambda df: df.assign(time=pd.Timestamp("1970-01-01", tz="UTC")
                                      + pd.to_timedelta(np.arange(len(df)), unit="s"))),
            "before 2000"),
    # machine files (docs/machine.md)
    BadFile("newer schema", "machine",
            lambda tmp: plan_args(tmp, machine=_machine_toml(tmp, schema_version=99)),
            "newer capacity"),
    BadFile("memory text", "machine",
            lambda tmp: plan_args(tmp, machine=_machine_toml(tmp, memory_bytes='"lots"')),
            "capacity.memory_bytes"),
    BadFile("negative cpus", "machine",
            lambda tmp: plan_args(tmp, machine=_machine_toml(tmp, cpu_cores="-1.0")),
            "capacity.cpu_cores"),
    BadFile("host cost nan", "machine",
            lambda tmp: plan_args(tmp, machine=_machine_toml(
                tmp, tail="[host_cost]\nmemory_bytes = nan\n")),
            "host_cost.memory_bytes"),
    BadFile("limit without capacity", "machine",
            lambda tmp: plan_args(tmp, machine=_machine_toml(
                tmp, tail='[[limits]]\nresource = "pids_count"\nused = 3.0\n'
                          "per_replica = 1.0\n")),
            "limits[0].capacity"),
    BadFile("unknown table", "machine",
            lambda tmp: plan_args(tmp, machine=_machine_toml(tmp, tail="[gpu]\nn = 1\n")),
            "'gpu'"),
    # hostile review: values that were taken silently
    BadFile("cpus true (was 1 core)", "machine",
            lambda tmp: plan_args(tmp, machine=write(tmp, "m.toml",
                                                     '[machine]\ncpus = true\nmemory = "8GiB"\n')),
            "'cpus'"),
    BadFile("memory true (was 1 byte)", "machine",
            lambda tmp: plan_args(tmp, machine=write(tmp, "m.toml",
                                                     "[machine]\ncpus = 4\nmemory = true\n")),
            "'memory'"),
    BadFile("net 10G (was 10 GB/s)", "machine",
            lambda tmp: plan_args(tmp, machine=write(
                tmp, "m.toml", '[machine]\ncpus = 4\nmemory = "8GiB"\nnet = "10G"\n')),
            "bits or bytes"),
    BadFile("a limit twice (the last won)", "machine",
            lambda tmp: plan_args(tmp, machine=_machine_toml(
                tmp, tail='[[limits]]\nresource = "pids_count"\ncapacity = 1e9\nused = 2.0\n'
                          'per_replica = 1.0\n[[limits]]\nresource = "pids_count"\n'
                          "capacity = 100.0\nused = 2.0\nper_replica = 1.0\n")),
            "limits[1].resource"),
    BadFile("a limit named like a resource (it replaced memory's plan)", "machine",
            lambda tmp: plan_args(tmp, machine=_machine_toml(
                tmp, tail='[[limits]]\nresource = "memory_working_set_bytes"\ncapacity = 100.0\n'
                          "used = 2.0\nper_replica = 1.0\n")),
            "limits[0].resource"),
    BadFile("free above total", "machine",
            lambda tmp: plan_args(tmp, machine=_machine_toml(
                tmp, tail='[[filesystems]]\npath = "/"\ntotal_bytes = 10\nfree_bytes = 20\n')),
            "filesystems[0].free_bytes"),
    BadFile("not toml", "machine",
            lambda tmp: plan_args(tmp, machine=write(tmp, "m.toml",
                                                     'schema_version = 1\n[capacity\n')),
            "valid TOML"),
]


@pytest.mark.parametrize("case", CASES, ids=[f"{c.kind}: {c.id}" for c in CASES])
def test_a_bad_file_is_exit_3_naming_the_field(
    case: BadFile, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = case.make(tmp_path)
    capsys.readouterr()
    with within(BOUND_S, f"capacity {' '.join(argv[:1])} on {case.id}"):
        code = main(argv)
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1] if err.strip() else ""
    assert code == 3, err
    assert last.startswith("capacity: error: "), err
    assert case.names in last
    assert "unexpected" not in err and "Traceback" not in err


# -- properties -----------------------------------------------------------------------------

#: values a careless or hostile edit puts into a field
BAD_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-10**20, 10**20),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=8),
    st.lists(st.integers(-3, 3), max_size=3), st.dictionaries(st.text(max_size=3),
                                                              st.integers(), max_size=2),
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(node, list) and node:
        out += _paths(node[0], (*prefix, 0))
    return out


def _field_of(path: tuple[Any, ...]) -> str:
    text = ""
    for p in path:
        text += f"[{p}]" if isinstance(p, int) else (f".{p}" if text else str(p))
    return text


@FEW
@given(data=st.data())
def test_profiles_mutated_anywhere_load_or_name_the_field(data: st.DataObject) -> None:
    d = good_profiles_dict()
    paths = _paths(d)
    path = data.draw(st.sampled_from(paths), label="path")
    value = data.draw(BAD_VALUES, label="value")
    node = d
    for p in path[:-1]:
        node = node[p]
    node[path[-1]] = value
    with within(BOUND_S, f"load and plan with {_field_of(path)} = {value!r}"):
        try:
            profiles = Profiles.from_dict(d, file="p.json")
        except ProfileVersionError:
            assert path[0] in ("schema_version", "kind")
            return
        except InvalidFile as exc:
            assert exc.field is not None and repr(exc.field) in str(exc)
            # the field named is the one spoilt, a sibling it is checked against, or a parent
            mutated = _field_of(path)
            parent = _field_of(path[:-1])
            assert exc.field.startswith(parent) or mutated.startswith(exc.field), (
                exc.field, mutated)
            return
        machine = Machine.from_spec(MACHINE)
        for service in profiles.services:
            # a documented refusal (e.g. a service with no samples) is fine
            with contextlib.suppress(CapacityError):
                plan(profiles, machine, service=service, method="gaussian", compare=False)


YAML_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-10**12, 10**12),
              st.floats(allow_nan=True), st.text(max_size=12),
              st.sampled_from(["8080:80", "1-65535:80", "0-99999:1", "512m", "-1", "1g"])),
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.sampled_from(
                                ["services", "web", "deploy", "resources", "limits",
                                 "reservations", "cpus", "memory", "mem_limit", "ports",
                                 "replicas", "scale", "published", "target", "network_mode",
                                 "expose", "name"]), inner, max_size=4)),
    max_leaves=25,
)


@FEW
@given(doc=YAML_VALUES, where=st.sampled_from(["", "services", "services.web",
                                               "services.web.deploy"]))
def test_compose_of_random_structure_loads_or_names_the_field(doc: Any, where: str) -> None:
    for key in reversed(where.split(".") if where else []):
        doc = {key: doc}
    text = yaml.safe_dump(doc) + "\n"
    with within(BOUND_S, f"read_compose of {text[:80]!r}"):
        try:
            stack = read_compose(text)
        except InvalidFile as exc:
            assert exc.file == "compose text"
            if exc.field is not None:
                assert repr(exc.field) in str(exc)
            return
    for svc in stack.services.values():
        assert all(1 <= lo <= hi <= 65535 for lo, hi in svc.host_port_ranges)
        assert svc.cpu_limit_cores is None or math.isfinite(svc.cpu_limit_cores)


CELLS = st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True),
                  st.integers(-5, 10**6), st.text(max_size=6),
                  st.sampled_from(["1970-01-01T00:00:00Z", "9999-12-31", "2026-11-27 10:00",
                                   "", "NaN"]))


@FEW
@given(drop=st.sets(st.sampled_from(["container_id", "container_name", "service", "image",
                                     "interval_s", CPU, MEMORY, "time"])),
       spoilt=st.lists(st.tuples(st.sampled_from(["time", "container_id", "service",
                                                  "interval_s", CPU, MEMORY]),
                                 st.integers(0, 59), CELLS), max_size=3),
       shuffle=st.booleans())
def test_samples_of_random_shape_load_or_name_the_column(
    tmp_path: Path, drop: set[str], spoilt: list[tuple[str, int, Any]], shuffle: bool
) -> None:
    df = _samples(20)
    for column, row, value in spoilt:
        df[column] = df[column].astype(object)
        df.loc[row, column] = value
    df = df.drop(columns=sorted(drop))
    if shuffle:
        df = df.sample(frac=1.0, random_state=1)
    path = tmp_path / "s.csv"
    df.to_csv(path, index=False)
    with within(BOUND_S, f"read and fit samples without {sorted(drop)}, {spoilt}"):
        try:
            samples = read_samples(path)
            profiles = ProfileModel(min_span_s=0).fit(samples).profiles_
        except InvalidSamples as exc:
            named = exc.column or ""
            assert named in str(exc) or "empty" in str(exc), str(exc)
            return
    for sp in profiles.services.values():
        assert sp.service != ""
        for rp in sp.resources.values():
            assert rp.resource in RESOURCES and math.isfinite(rp.mean) and rp.mean >= 0
