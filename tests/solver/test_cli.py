"""``capacity plan`` and ``capacity size`` in process: output, JSON schema, exit status."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from capacity._columns import CPU, MEMORY
from capacity.cli import main
from capacity.solver._testing import constant_profiles, normal_profiles


@pytest.fixture
def profiles_path(tmp_path: Path) -> Path:
    path = tmp_path / "profiles.json"
    normal_profiles(0.5, 0.1, memory=(2e8, 2e7)).to_json(path)
    return path


def test_plan_json_schema(profiles_path: Path, capsys) -> None:
    rc = main(
        [
            "plan",
            "--profiles",
            str(profiles_path),
            "--machine",
            "cpus=8,memory=4GiB,cpu_saturation=1",
            "--epsilon",
            "0.01",
            "--method",
            "gaussian",
            "--json",
        ]
    )
    assert rc == 0
    doc = json.loads(capsys.readouterr().out)
    assert (doc["kind"], doc["schema_version"]) == ("capacity.plans", 2)
    plan = doc["plans"]["svc"]
    assert plan["method"] == "gaussian" and plan["epsilon"] == 0.01
    assert plan["binding_resource"] in (CPU, MEMORY) and plan["safe_count"] > 0
    cpu = plan["per_resource"][CPU]
    for key in (
        "safe_count",
        "capacity",
        "reserve",
        "demand_at_safe_count",
        "p_overload_at_safe_count",
    ):
        assert key in cpu


def test_plan_table_and_critical_exit(profiles_path: Path, capsys) -> None:
    rc = main(
        [
            "plan",
            "--profiles",
            str(profiles_path),
            "--machine",
            "cpus=2,memory=4GiB,cpu_saturation=1",
            "--running",
            "svc=50",
        ]
    )
    out = capsys.readouterr().out
    assert rc == 2 and "svc:" in out and "by method" in out


@pytest.mark.parametrize(
    "args",
    [
        ["--machine", "cpus=8,memory=32GB!"],
        ["--machine", "cpus=8", "--epsilon", "0.7"],
        ["--machine", "cpus=8", "--method", "magic"],
        ["--machine", "cpus=8", "--running", "x"],
        ["--machine", "cpus=2,reserve.cpus=3"],
    ],
)
def test_plan_bad_input_exits_3(profiles_path: Path, args: list[str], capsys) -> None:
    assert main(["plan", "--profiles", str(profiles_path), *args]) == 3


def test_plan_profiles_of_another_version_exits_3(tmp_path: Path, capsys) -> None:
    path = tmp_path / "old.json"
    path.write_text(json.dumps({"kind": "capacity.profiles", "schema_version": 1, "services": {}}))
    assert main(["plan", "--profiles", str(path), "--machine", "cpus=8,cpu_saturation=1"]) == 3
    assert "schema version 1" in capsys.readouterr().err


def test_size_n_plus_k(tmp_path: Path, capsys) -> None:
    path = tmp_path / "p.json"
    constant_profiles({CPU: 0.5}).to_json(path)
    rc = main(
        [
            "size",
            "--profiles",
            str(path),
            "--machine",
            "cpus=8,cpu_saturation=1",
            "--replicas",
            "120",
            "--spare",
            "1",
            "--json",
        ]
    )
    doc = json.loads(capsys.readouterr().out)
    # a 200 s history: the x1.10 allowance, as a plan of it takes: floor(8 / 0.55) = 14 per
    # host, ceil(120 / 14) = 9 hosts (8 at demand as recorded)
    assert rc == 0 and (doc["hosts"], doc["hosts_needed"], doc["spare"]) == (10, 9, 1)
    assert doc["demand_factors"]["svc"][CPU]["factor"] == pytest.approx(1.1)
    rc = main(
        [
            "size",
            "--profiles",
            str(path),
            "--machine",
            "cpus=8,cpu_saturation=1",
            "--replicas",
            "svc=17",
        ]
    )
    assert rc == 0 and "2 host(s)" in capsys.readouterr().out


def test_plan_compose(tmp_path: Path, capsys) -> None:
    path = tmp_path / "p.json"
    constant_profiles({CPU: 0.5}, service="shop/web").to_json(path)
    compose = tmp_path / "docker-compose.yml"
    compose.write_text("services:\n  web:\n    deploy: {replicas: 2}\n")
    rc = main(
        [
            "plan",
            "--profiles",
            str(path),
            "--machine",
            "cpus=8,cpu_saturation=1",
            "--compose",
            str(compose),
            "--json",
        ]
    )
    doc = json.loads(capsys.readouterr().out)
    # the x1.10 allowance of a 200 s history: 14 replicas of 0.55 cores, 7 copies (8 before)
    assert rc == 0 and doc["multiple"] == 7 and doc["counts"] == {"shop/web": 14}


def test_plan_more_and_maximise(tmp_path: Path, capsys) -> None:
    from capacity.solver._testing import profiles_of, service_profile

    a, b = constant_profiles({CPU: 0.5}, service="a"), constant_profiles({CPU: 1.0}, service="b")
    path = tmp_path / "p.json"
    profiles_of(
        service_profile("a", a["a"].resources), service_profile("b", b["b"].resources)
    ).to_json(path)
    rc = main(
        [
            "plan",
            "--profiles",
            str(path),
            "--machine",
            "cpus=8,cpu_saturation=1",
            "--running",
            "b=2",
            "--more",
            "a",
            "--json",
        ]
    )
    doc = json.loads(capsys.readouterr().out)
    # x1.10 each (a 200 s history): (8 - 2 x 1.1) / 0.55 = 10.5 (12 at demand as recorded)
    assert rc == 0 and doc["more"] == 10 and doc["counts"] == {"a": 10, "b": 2}
    rc = main(
        [
            "plan",
            "--profiles",
            str(path),
            "--machine",
            "cpus=8,cpu_saturation=1",
            "--running",
            "b=2",
            "--maximise",
            "a=1",
            "--maximise",
            "b=3",
            "--json",
        ]
    )
    doc = json.loads(capsys.readouterr().out)
    assert rc == 0 and doc["counts"] == {"a": 0, "b": 7}  # floor(8 / 1.1)


def test_plan_json_is_the_same_under_any_hash_seed(tmp_path: Path) -> None:
    """Regenerated reports diff cleanly: no dict built from a set's iteration order."""
    import os
    import subprocess
    import sys

    from capacity._pipeline import fit_profiles, load_demo

    path = tmp_path / "profiles.json"
    fit_profiles(load_demo()).to_json(path)
    outs = []
    for seed in ("1", "2"):
        result = subprocess.run(
            [sys.executable, "-m", "capacity", "plan", "--profiles", str(path),
             "--machine", "cpus=2,memory=24GiB", "--json"],
            capture_output=True, text=True, timeout=120,
            env={**os.environ, "PYTHONHASHSEED": seed},
        )
        assert result.returncode in (0, 2), result.stderr
        outs.append(result.stdout)
    assert outs[0] == outs[1]


def test_plan_compose_exit_status(tmp_path: Path, capsys) -> None:
    """A stack that does not fit is an answer (2); one that cannot be planned is unknown (3)."""
    path = tmp_path / "p.json"
    constant_profiles({CPU: 0.5}, service="shop/web").to_json(path)
    compose = tmp_path / "docker-compose.yml"
    compose.write_text("services:\n  web:\n    deploy: {replicas: 2}\n")
    base = ["plan", "--profiles", str(path), "--compose", str(compose), "--machine"]
    assert main([*base, "cpus=0.6,cpu_saturation=1"]) == 2  # one replica fits, the stack not
    compose.write_text("services:\n  web: {}\n  db: {}\n")
    assert main([*base, "cpus=8"]) == 3  # db has no profile
    assert "db" in capsys.readouterr().out
