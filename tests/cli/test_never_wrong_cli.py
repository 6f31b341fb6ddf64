"""Never a silently wrong answer (issue 11, item 3): what is unknown makes the answer
undefined (exit 1 with the reason) or the run UNKNOWN (exit 3), never OK.

Each case runs the real command on the bundled recording (or a samples file made from it)
and checks the exit status and the line an operator or Nagios sees.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

import capacity
from capacity.cli import main

#: roomy enough that the recording is OK on it: any non-zero status comes from the case itself
ROOMY = "cpus=64,memory=256GiB"
NO_ENGINE = "unix:///nonexistent/capacity-test-docker.sock"


@pytest.fixture(scope="module")
def demo() -> tuple[pd.DataFrame, capacity.Profiles]:
    samples = capacity.load(demo=True)
    return samples, capacity.fit(samples)


@pytest.fixture(scope="module")
def files(demo: tuple[pd.DataFrame, capacity.Profiles],
          tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from capacity.store import write_samples

    samples, profiles = demo
    folder = tmp_path_factory.mktemp("never-wrong")
    no_cpu = samples.drop(columns=["cpu_limit_cores", "memory_limit_bytes"]).copy()
    # the collector could not read one service's CPU counters: every reading is missing
    no_cpu.loc[no_cpu["service"] == "demo/cpu-burner", "cpu_cores"] = math.nan
    empty = profiles.to_dict()
    empty["services"], empty["correlation"] = {}, {}
    (folder / "empty.json").write_text(json.dumps(empty))
    profiles.to_json(folder / "profiles.json")
    return {
        "no_cpu": write_samples(no_cpu, folder / "no_cpu.parquet"),
        "empty": folder / "empty.json",
        "profiles": folder / "profiles.json",
    }


def _check(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["report", *args, "--check"])
    out, err = capsys.readouterr()
    return code, out, err


def test_a_service_without_cpu_data_is_undefined_not_ok(
    files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = _check(capsys, "--samples", str(files["no_cpu"]), "--machine", ROOMY,
                          "--out", str(tmp_path))
    assert code == 1, out
    assert out.startswith("CAPACITY WARNING - demo/cpu-burner: safe count undefined")
    assert "cpu_cores unknown" in out and "could bind" in out
    assert "demo_cpu-burner_safe" not in out, "no number for an undefined count"


def test_a_machine_without_cpus_is_undefined_not_ok(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = _check(capsys, "--demo", "--machine", "memory=256GiB",
                          "--out", str(tmp_path))
    assert code == 1, out
    assert "cpu_cores unknown" in out and "cpus=8" in out
    assert "_safe=" not in out


def test_a_machine_without_memory_is_undefined_in_plan_too(
    files: dict[str, Path], capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(["plan", "--profiles", str(files["profiles"]), "--machine", "cpus=64",
                 "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 1
    for plan in doc["plans"].values():
        assert plan["safe_count"] is None
        assert "memory_working_set_bytes unknown" in plan["reason"]
        assert "memory=32GiB" in plan["reason"]


def test_the_api_says_the_same(demo: tuple[pd.DataFrame, capacity.Profiles],
                               files: dict[str, Path]) -> None:
    samples = capacity.load(files["no_cpu"])
    plans = capacity.plan_all(capacity.fit(samples), ROOMY, running=samples)
    assert plans["demo/cpu-burner"].safe_count is None
    assert plans["demo/cpu-bursty"].safe_count is not None
    p = capacity.plan(demo[1], "memory=256GiB", service="demo/idle")
    assert p.safe_count is None and "cpu_cores unknown" in p.reason
    assert all(m["safe_count"] is None for m in p.methods.values())


def test_no_engine_is_unknown_for_a_check_never_demo_data(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DOCKER_HOST", NO_ENGINE)
    code, out, err = _check(capsys, "--machine", ROOMY, "--out", str(tmp_path))
    assert code == 3
    assert out.startswith("CAPACITY UNKNOWN - no Docker Engine answers at")
    assert "/nonexistent/capacity-test-docker.sock" in out
    assert "demo" not in out.replace("--demo", "")
    assert err.count("\n") == 1 and err.startswith("capacity: error: ")
    assert not list(tmp_path.iterdir()), "no report of demo data written"


@pytest.mark.parametrize("flag", ["--json", None])
def test_no_engine_is_unknown_for_json_and_off_a_terminal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
    flag: str | None,
) -> None:
    """--json, or plain output to a pipe (capsys: stdout is not a terminal), as cron runs it."""
    monkeypatch.setenv("DOCKER_HOST", NO_ENGINE)
    code = main(["report", "--machine", ROOMY, "--out", str(tmp_path),
                 *([flag] if flag else [])])
    out, err = capsys.readouterr()
    assert code == 3
    assert out == ""
    assert err.startswith("capacity: error: no Docker Engine answers at")
    assert "--store PATH" in err


def test_running_a_service_without_a_profile_is_an_error(
    files: dict[str, Path], capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(["plan", "--profiles", str(files["profiles"]), "--machine", ROOMY,
                 "--running", "nosuch=3"])
    _, err = capsys.readouterr()
    assert code == 3
    assert err.startswith("capacity: error: The 'running' parameter of plan")
    assert "'nosuch'" in err and "demo/idle" in err


@pytest.mark.parametrize("command", ["plan", "report"])
def test_empty_profiles_are_unknown_never_ok(
    files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str,
) -> None:
    args = (["plan", "--profiles", str(files["empty"]), "--machine", ROOMY] if command == "plan"
            else ["report", "--profiles", str(files["empty"]), "--machine", ROOMY,
                  "--out", str(tmp_path), "--check"])
    code = main(args)
    out, err = capsys.readouterr()
    assert code == 3
    assert "hold no service" in err
    if command == "report":
        assert out.startswith("CAPACITY UNKNOWN - the profiles hold no service")


def test_the_api_refuses_empty_profiles_and_stray_running(
    demo: tuple[pd.DataFrame, capacity.Profiles],
) -> None:
    _, profiles = demo
    empty = capacity.Profiles.from_dict({**profiles.to_dict(), "services": {},
                                         "correlation": {}})
    with pytest.raises(capacity.InsufficientData, match="hold no service"):
        capacity.plan_all(empty, ROOMY)
    with pytest.raises(capacity.InvalidParameter, match="'running' parameter"):
        capacity.plan_all(profiles, ROOMY, running={"nosuch": 3})


@pytest.mark.parametrize("args", [
    ("size", "--replicas", "demo/idle=30", "--json"),
    ("plan", "--ratio", "demo/idle=2", "--ratio", "demo/mem-holder=1", "--json"),
    ("plan", "--more", "demo/idle", "--running", "demo/mem-holder=2", "--json"),
])
def test_mixes_and_fleets_without_cpus_are_undefined_too(
    files: dict[str, Path], capsys: pytest.CaptureFixture[str], args: tuple[str, ...],
) -> None:
    code = main([*args, "--profiles", str(files["profiles"]), "--machine", "memory=256GiB"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 1
    assert doc["unknown"] and "cpu_cores unknown" in doc["reason"]
    assert doc.get("hosts") is None and doc.get("multiple") is None and doc.get("more") is None


# -- never a file of the user's lost (issue 11 follow-up: hostile review) ------------------


def test_fit_out_refuses_a_file_that_is_not_a_profiles_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    """Before: ``fit --out notes.json`` replaced the user's file with profiles, silently."""
    mine = tmp_path / "notes.json"
    mine.write_text('{"my": "notes"}\n')
    (tmp_path / "notes.json.tmp").write_text("mine too\n")
    code = main(["fit", "--demo", "--out", str(mine)])
    err = capsys.readouterr().err
    assert code == 3
    assert "is not a profiles file written by capacity; nothing was changed" in err
    assert mine.read_text() == '{"my": "notes"}\n'
    assert (tmp_path / "notes.json.tmp").read_text() == "mine too\n"


def test_fit_out_replaces_an_empty_file(tmp_path: Path) -> None:
    """``out=$(mktemp); capacity fit --out "$out"``: an empty file has nothing to lose."""
    empty = tmp_path / "tmp.XXXX"
    empty.write_bytes(b"")
    assert main(["fit", "--demo", "--out", str(empty)]) == 0
    assert json.loads(empty.read_text())["kind"] == "capacity.profiles"


def test_fit_out_through_a_link_keeps_the_link_and_replaces_ours(
    files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    """Before: the link was replaced by a regular file (a config repository's link lost)."""
    real = tmp_path / "real.json"
    real.write_text(files["profiles"].read_text())
    real.chmod(0o640)
    link = tmp_path / "profiles.json"
    link.symlink_to(real)
    assert main(["fit", "--demo", "--out", str(link)]) == 0
    capsys.readouterr()
    assert link.is_symlink() and link.resolve() == real
    assert json.loads(real.read_text())["kind"] == "capacity.profiles"
    assert real.stat().st_mode & 0o777 == 0o640, "the file keeps its permissions"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["profiles.json", "real.json"]


def test_fit_out_dev_stdout_writes_the_json_there_and_leaves_the_device(
    capfd: pytest.CaptureFixture[str],
) -> None:
    """Before: ``--out /dev/stdout`` renamed a temporary file over /dev/stdout itself (the
    host's /dev/stdout link became a regular file) and printed nothing."""
    before = Path("/dev/stdout").lstat()
    assert main(["fit", "--demo", "--out", "/dev/stdout"]) == 0
    out, err = capfd.readouterr()
    assert json.loads(out)["kind"] == "capacity.profiles"
    assert "demo/idle\t" in err, "the summary goes to stderr when the profiles go to stdout"
    after = Path("/dev/stdout").lstat()
    assert (after.st_mode, after.st_ino) == (before.st_mode, before.st_ino)
    assert main(["fit", "--demo", "--out", "/dev/null"]) == 0
    assert Path("/dev/null").is_char_device()


def test_the_machine_file_writer_keeps_a_link_and_refuses_a_stranger(tmp_path: Path) -> None:
    from capacity.solver._machinefile import read_machine_file, write_machine_file

    doc = {"schema_version": 1, "kind": "capacity.machine",
           "capacity": {"cpu_cores": 4.0, "memory_bytes": 8.0 * 2**30}}
    real = tmp_path / "real.toml"
    write_machine_file(real, doc)
    link = tmp_path / "machine.toml"
    link.symlink_to(real)
    write_machine_file(link, {**doc, "capacity": {"cpu_cores": 8.0, "memory_bytes": 1e9}})
    assert link.is_symlink() and read_machine_file(real)["capacity"]["cpu_cores"] == 8.0
    stranger = tmp_path / "other.toml"
    stranger.write_text('title = "mine"\n')
    with pytest.raises(capacity.CapacityError, match="not a machine file written by capacity"):
        write_machine_file(stranger, doc)
    assert stranger.read_text() == 'title = "mine"\n'


# -- extreme values: an answer or a named error, never a traceback ---------------------------


@pytest.mark.parametrize("machine, epsilon", [
    ("cpus=8,memory=1e308", "0.01"),      # was: unexpected ValueError (NaN to integer)
    ("cpus=1e300,memory=32GiB", "0.01"),  # was: the same, in the gaussian count
    # was: unexpected OverflowError (capacity / per replica overflowed to inf, then floor)
    ("cpus=1e308,memory=32GiB", "0.01"),
    ("cpus=8,memory=1.7e308", "0.01"),
    # was: unexpected OverflowError at 1e-320 (draws = 20/eps); under 1e-12 now refused
    # (tests/test_settings.py::test_a_risk_too_small_to_resolve_says_the_range_and_why)
    ("cpus=8,memory=32GiB", "1e-12"),
])
def test_extreme_capacities_and_risks_plan_or_say_why(
    files: dict[str, Path], capsys: pytest.CaptureFixture[str], machine: str, epsilon: str,
) -> None:
    code = main(["plan", "--profiles", str(files["profiles"]), "--machine", machine,
                 "--epsilon", epsilon, "--json"])
    out, err = capsys.readouterr()
    assert code in (0, 1), err
    doc = json.loads(out)
    assert all(p["safe_count"] is None or p["safe_count"] >= 0 for p in doc["plans"].values())


def test_a_report_on_a_machine_of_1e308_cpus_is_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    """Before: the host's answer ("what runs could grow N %") overflowed to inf and the
    report stopped with "unexpected OverflowError ... a bug" while formatting it."""
    code, out, err = _check(capsys, "--demo", "--machine", "cpus=1e308,memory=1.7e308",
                            "--out", str(tmp_path))
    assert code in (0, 1), err
    assert out.startswith("CAPACITY "), out
    assert any(tmp_path.glob("*/report.html"))


def test_an_epsilon_below_what_the_draws_resolve_is_said(
    files: dict[str, Path], capsys: pytest.CaptureFixture[str],
) -> None:
    """Before: at --epsilon 1e-6 the empirical count (no overload in 200,000 draws, a risk
    shown only below 1.8e-5) was given as if it met 1e-6, with nothing said."""
    code = main(["plan", "--profiles", str(files["profiles"]), "--machine", ROOMY,
                 "--service", "demo/mem-sawtooth", "--epsilon", "1e-6", "--json"])
    plan = json.loads(capsys.readouterr().out)["plans"]["demo/mem-sawtooth"]
    assert code in (0, 1)
    said = [a for a in plan["assumptions"] if "below what 200,000 draws resolve" in a]
    assert [a.split(":", 1)[0] for a in said] == ["cpu_cores", "memory_working_set_bytes"]
    main(["plan", "--profiles", str(files["profiles"]), "--machine", ROOMY,
          "--service", "demo/mem-sawtooth", "--json"])
    plan = json.loads(capsys.readouterr().out)["plans"]["demo/mem-sawtooth"]
    assert not [a for a in plan["assumptions"] if "draws resolve" in a], "not at the default"


@pytest.mark.parametrize("given, share", [
    ("0.2", None), ("0.5", None), ("1", None),     # was: 0.2 %, 0.5 %, 1 %, silently
    ("20", 0.2), ("20%", 0.2), ("0.5%", 0.005), ("0", 0.0), ("100", 1.0),
])
def test_warn_headroom_is_never_read_a_hundred_times_smaller(
    files: dict[str, Path], capsys: pytest.CaptureFixture[str], given: str,
    share: float | None,
) -> None:
    code = main(["plan", "--profiles", str(files["profiles"]), "--machine", ROOMY,
                 "--service", "demo/idle", "--warn-headroom", given, "--json"])
    out, err = capsys.readouterr()
    if share is None:
        assert code == 3
        assert f"'{given}' is ambiguous" in err and "%" in err
    else:
        assert json.loads(out)["settings"]["warn_headroom"] == pytest.approx(share)


@pytest.mark.parametrize("args, says", [
    # a service given twice: the last count silently won
    (("size", "--replicas", "demo/idle=5", "--replicas", "demo/idle=7"), "given twice"),
    (("plan", "--running", "demo/idle=1", "--running", "demo/idle=2"), "given twice"),
    (("plan", "--ratio", "demo/idle=1", "--ratio", "demo/idle=2"), "given twice"),
    (("plan", "--maximise", "demo/idle=1", "--maximise", "demo/idle=2"), "given twice"),
    (("plan", "--maximise", "demo/idle=inf"), "SERVICE=WEIGHT"),
    # a bare count with several services: was "The 'service' parameter ... got None"
    (("size", "--replicas", "120"), "is of which service?"),
    (("size", "--replicas", "-1", "--service", "demo/idle"), "a count such as 120"),
])
def test_counts_given_twice_or_of_no_service_are_refused(
    files: dict[str, Path], capsys: pytest.CaptureFixture[str], args: tuple[str, ...],
    says: str,
) -> None:
    code = main([*args, "--profiles", str(files["profiles"]), "--machine", ROOMY])
    err = capsys.readouterr().err
    assert code == 3
    assert says in err and err.count("\n") == 1


def test_volumes_on_the_root_filesystem_print_as_text_not_markup(
    files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    """Before: a machine whose volumes live on / (the limit disk_usage_bytes[/]) made
    'capacity plan' end with 'unexpected MarkupError: closing tag [/]' (rich markup)."""
    machine = tmp_path / "m.toml"
    machine.write_text('schema_version = 1\nkind = "capacity.machine"\n[capacity]\n'
                       "cpu_cores = 64.0\nmemory_bytes = 2.7e11\n[[limits]]\n"
                       'resource = "disk_usage_bytes[/]"\ncapacity = 100.0\nused = 2.0\n'
                       "per_replica = 1.0\n")
    code = main(["plan", "--profiles", str(files["profiles"]), "--machine", str(machine),
                 "--service", "demo/idle"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "│ disk_usage_bytes[/] │" in out and "98 fit" in out


@pytest.mark.parametrize("mix", [("--ratio", "zero=1"), ("--more", "zero")])
def test_a_mix_that_nothing_limits_is_undefined_not_critical(
    demo: tuple[pd.DataFrame, capacity.Profiles], tmp_path: Path,
    capsys: pytest.CaptureFixture[str], mix: tuple[str, str],
) -> None:
    """A service whose CPU and memory were measured at 0 (an idle sidecar): 'plan --service'
    says undefined (exit 1) and 'size' needs one host (exit 0), but '--ratio' and '--more'
    said "undefined: unbounded" with exit 2, CRITICAL, which means more containers run than
    fit. Nothing runs over anything: it is an undefined count, exit 1, as a plan's."""
    samples, _ = demo
    idle = samples[samples["service"] == "demo/idle"]
    zero = idle.assign(service="zero", container_id=idle["container_id"] + "z",
                       container_name=idle["container_name"] + "z", cpu_cores=0.0,
                       memory_working_set_bytes=0.0)
    profiles = tmp_path / "zero.json"
    capacity.fit(pd.concat([samples, zero], ignore_index=True)).to_json(profiles)
    capsys.readouterr()
    code = main(["plan", "--profiles", str(profiles), "--machine", ROOMY, *mix])
    out, err = capsys.readouterr()
    assert code == 1, out + err
    assert "unbounded" in out
