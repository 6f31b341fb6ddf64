"""``capacity report`` as a user runs it: files written, exit status, one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

NO_ENGINE = "unix:///nonexistent/capacity-test-docker.sock"
#: a machine large enough that the demo recording is OK (exit 0) on it, whatever this host is
ROOMY = ("--machine", "cpus=64,memory=256GiB")


def run_cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None):
    full_env = {**os.environ, "MPLBACKEND": "Agg", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "capacity", *args],
        capture_output=True, text=True, env=full_env, cwd=cwd, timeout=120,
    )


def report_folder(out: Path) -> Path:
    folders = [p for p in out.iterdir() if p.is_dir() and not p.name.startswith(".")]
    assert len(folders) == 1, folders
    return folders[0]


def test_report_demo_writes_its_files_and_exits_0(tmp_path: Path) -> None:
    result = run_cli("report", "--demo", *ROOMY, "--out", str(tmp_path), "--png")
    assert result.returncode == 0, result.stderr
    folder = report_folder(tmp_path)
    charts = ("safe_counts", "demand_vs_count", "risk_curve", "demand_cdf",
              "usage_timeseries", "utilisation")
    for name in ("plan.json", "profiles.json", "report.md", "report.html",
                 *(f"{c}.svg" for c in charts), *(f"{c}.png" for c in charts)):
        assert (folder / name).stat().st_size > 0
    plans = json.loads((folder / "plan.json").read_text())["plans"]
    assert plans, "the demo recording has services to plan"
    # The summary table on stdout names every planned service.
    for service in plans:
        assert service in result.stdout
    assert "status: OK" in result.stdout
    assert not list(tmp_path.glob(".tmp-report-*")), "no temporary folder left behind"


def test_console_table_is_in_the_reports_order_most_urgent_first(tmp_path: Path) -> None:
    result = run_cli("report", "--demo", "--machine", "cpus=2,memory=24GiB",
                     "--out", str(tmp_path))
    assert result.returncode in (0, 1), result.stderr
    rows = [line.split("│") for line in result.stdout.splitlines() if line.startswith("│")]
    shown = [cells[1].strip() for cells in rows]
    folder = report_folder(tmp_path)
    md = (folder / "report.md").read_text()
    table = md.split("## Services, most urgent first", 1)[1].split("\n\n", 2)[1]
    in_report = [line.split("|")[1].strip() for line in table.splitlines()[2:]]
    assert shown == in_report and len(shown) == 5
    headrooms = [float(cells[7].strip().rstrip(" %")) for cells in rows]
    assert headrooms == sorted(headrooms)  # nobody over its safe count in the demo


def test_report_json_prints_plan_only(tmp_path: Path) -> None:
    result = run_cli("report", "--demo", *ROOMY, "--json", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["kind"] == "capacity.plans"
    on_disk = json.loads((report_folder(tmp_path) / "plan.json").read_text())
    assert doc == on_disk


def test_no_engine_on_a_terminal_falls_back_to_demo_with_a_notice(tmp_path: Path) -> None:
    """Interactive use only: stdout is a real terminal (a pseudo-terminal here)."""
    import pty
    import threading

    leader, follower = pty.openpty()
    screen: list[bytes] = []

    def drain() -> None:  # read the terminal, so a long table never blocks the writer
        try:
            while chunk := os.read(leader, 4096):
                screen.append(chunk)
        except OSError:  # the terminal closed
            pass

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        result = subprocess.run(
            [sys.executable, "-m", "capacity", "report", *ROOMY, "--out", str(tmp_path)],
            stdout=follower, stderr=subprocess.PIPE, text=True, timeout=120,
            env={**os.environ, "MPLBACKEND": "Agg", "DOCKER_HOST": NO_ENGINE},
        )
    finally:
        os.close(follower)
        reader.join(timeout=5)
        os.close(leader)
    assert b"status: OK" in b"".join(screen)
    assert result.returncode == 0, result.stderr
    assert "bundled recording" in result.stderr
    assert "/nonexistent/capacity-test-docker.sock" in result.stderr
    assert "Traceback" not in result.stderr
    assert report_folder(tmp_path).is_dir()


def test_no_engine_off_a_terminal_is_exit_3_not_demo(tmp_path: Path) -> None:
    """cron, a pipe, a script: stdout is not a terminal, so no demo data passes for this host."""
    result = run_cli("report", *ROOMY, "--out", str(tmp_path), env={"DOCKER_HOST": NO_ENGINE})
    assert result.returncode == 3
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "/nonexistent/capacity-test-docker.sock" in lines[0]
    assert "start the engine" in lines[0] and "--store PATH" in lines[0]
    assert not list(tmp_path.iterdir())


def test_no_engine_with_duration_is_one_line_and_exit_3(tmp_path: Path) -> None:
    result = run_cli(
        "report", "--duration", "2s", "--out", str(tmp_path), env={"DOCKER_HOST": NO_ENGINE}
    )
    assert result.returncode == 3
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "/nonexistent/capacity-test-docker.sock" in lines[0]
    assert "start the engine" in lines[0] or "DOCKER_HOST" in lines[0]


@pytest.mark.parametrize(
    "args",
    [("report", "--bogus"), ("report", "--interval", "fast"), ("nosuchcommand",)],
)
def test_bad_flags_exit_3(args: tuple[str, ...]) -> None:
    result = run_cli(*args)
    assert result.returncode == 3, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr


def test_unwritable_report_folder_is_exit_3(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    result = run_cli("report", "--demo", *ROOMY, "--out", str(blocker / "sub"))
    assert result.returncode == 3
    assert "--out" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.docker
def test_no_running_containers_is_exit_3(docker_client, tmp_path: Path) -> None:
    result = run_cli(
        "report", "--duration", "2s", "--filter", "label=capacity.nothing-has-this-label",
        "--out", str(tmp_path),
    )
    assert result.returncode == 3
    assert "no running containers" in result.stderr
    assert "--demo" in result.stderr


@pytest.mark.docker
def test_nothing_running_on_a_terminal_falls_back_to_demo_with_a_notice(
        docker_client, tmp_path: Path) -> None:
    """README's first command on a new host with an engine but no container: on a terminal
    the bundled recording is planned and said (it was exit 3, "no running containers"); off
    a terminal (cron, --check) it stays exit 3, above."""
    import pty
    import threading

    leader, follower = pty.openpty()
    screen: list[bytes] = []

    def drain() -> None:
        try:
            while chunk := os.read(leader, 4096):
                screen.append(chunk)
        except OSError:
            pass

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        result = subprocess.run(
            [sys.executable, "-m", "capacity", "report", "--filter",
             "label=capacity.nothing-has-this-label", *ROOMY, "--out", str(tmp_path)],
            stdout=follower, stderr=subprocess.PIPE, text=True, timeout=180,
            env={**os.environ, "MPLBACKEND": "Agg"},
        )
    finally:
        os.close(follower)
        reader.join(timeout=5)
        os.close(leader)
    assert result.returncode == 0, result.stderr
    assert "no running containers" in result.stderr and "bundled recording" in result.stderr
    assert "Traceback" not in result.stderr
    assert report_folder(tmp_path).is_dir()


def test_readme_test_command_is_what_ci_runs() -> None:
    root = Path(__file__).resolve().parents[2]
    readme = (root / "README.md").read_text()
    ci = (root / ".ci" / "run").read_text()
    command = next(
        line
        for line in readme.splitlines()
        if line.startswith("python3 -m venv") and "pytest" in line
    )
    assert command in ci.splitlines()
