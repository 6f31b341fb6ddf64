"""``--name`` and ``--keep`` never delete what capacity did not write (issue 11, item 2): a
user's file or folder called NAME is refused with exit 3 and left as it was; a report folder
capacity wrote (marked, or from before the marker by its contents) is replaced or rotated."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest

from capacity.cli import main
from capacity.reporting._render import REPORT_MARKER, not_a_report_folder, rotate_reports

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "reports" / "example"
PROFILES = EXAMPLE / "profiles.json"
MACHINE = "cpus=2,memory=24GiB,cpu_saturation=1"


def _tree(path: Path) -> dict[str, str]:
    """Every file under ``path`` (and links) -> its sha256 (or link target)."""
    if path.is_symlink() or path.is_file():
        return {".": os.readlink(path) if path.is_symlink()
                else hashlib.sha256(path.read_bytes()).hexdigest()}
    out = {}
    for p in sorted(path.rglob("*")):
        key = str(p.relative_to(path))
        if p.is_symlink():
            out[key] = "-> " + os.readlink(p)
        elif p.is_file():
            out[key] = hashlib.sha256(p.read_bytes()).hexdigest()
        else:
            out[key] = "dir"
    return out


def _report(out: Path, name: str, *extra: str) -> list[str]:
    return ["report", "--profiles", str(PROFILES), "--machine", MACHINE, "--out", str(out),
            "--name", name, "--quiet", *extra]


def _size(out: Path, name: str) -> list[str]:
    return ["size", "--profiles", str(PROFILES), "--machine", MACHINE, "--replicas",
            "demo/cpu-burner=4", "--out", str(out), "--name", name]


def _user_file(p: Path) -> None:
    p.write_text("my notes, not a report\n")


def _user_folder(p: Path) -> None:
    p.mkdir()
    (p / "thesis.tex").write_text("\\documentclass{article}\n")
    (p / "figures").mkdir()
    (p / "figures" / "a.png").write_bytes(b"\x89PNG user figure")


def _report_plus_a_user_file(p: Path) -> None:
    shutil.copytree(EXAMPLE, p)
    (p / "my-comments.txt").write_text("added by hand\n")


def _link_to_a_user_folder(p: Path) -> None:
    target = p.parent / "elsewhere"
    _user_folder(target)
    p.symlink_to(target)


def _report_json_of_someone_else(p: Path) -> None:
    p.mkdir()
    (p / "plan.json").write_text('{"mine": true}')


@pytest.mark.parametrize("make", [_user_file, _user_folder, _report_plus_a_user_file,
                                  _link_to_a_user_folder, _report_json_of_someone_else])
@pytest.mark.parametrize("command", [_report, _size])
def test_name_of_something_not_ours_is_refused_and_left_alone(
    tmp_path: Path, make, command, capsys: pytest.CaptureFixture[str]  # type: ignore[no-untyped-def]
) -> None:
    out = tmp_path / "reports"
    out.mkdir()
    make(out / "NAME")
    before = _tree(tmp_path)
    code = main(command(out, "NAME"))
    err = capsys.readouterr().err
    assert code == 3, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("capacity: error: "), err
    assert f"{out / 'NAME'} exists and is not a report folder written by capacity" in err
    assert "nothing was changed" in err
    assert _tree(tmp_path) == before, "something was changed"


def test_a_report_folder_of_ours_is_replaced(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "reports"
    assert main(_report(out, "daily")) == 0
    marker = json.loads((out / "daily" / REPORT_MARKER).read_text())
    assert marker["kind"] == "capacity.report-folder" and "report.html" in marker["files"]
    first = (out / "daily").stat().st_ino
    assert main(_report(out, "daily")) == 0
    assert (out / "daily").stat().st_ino != first
    assert sorted(p.name for p in out.iterdir()) == ["daily"], "no temporary left"
    # a fleet report replaces a fleet report too
    assert main(_size(out, "fleet")) == 0
    assert main(_size(out, "fleet")) == 0
    assert (out / "fleet" / "fleet.json").is_file()
    capsys.readouterr()


def test_a_report_folder_from_before_the_marker_is_recognised_by_its_files(
    tmp_path: Path,
) -> None:
    legacy = tmp_path / "example"
    shutil.copytree(EXAMPLE, legacy)
    (legacy / REPORT_MARKER).unlink(missing_ok=True)
    assert not_a_report_folder(legacy) is None
    assert main(_report(tmp_path, "example")) == 0
    assert (legacy / REPORT_MARKER).is_file()


def test_keep_removes_only_report_folders_of_ours(tmp_path: Path) -> None:
    out = tmp_path
    for name in ("h-20260101T000000Z", "h-20260102T000000Z"):
        assert main(_report(out, name)) == 0
    legacy = out / "h-20260103T000000Z"
    shutil.copytree(EXAMPLE, legacy)
    (legacy / REPORT_MARKER).unlink(missing_ok=True)
    _user_folder(out / "h-20260104T000000Z")  # named like a report, but someone's folder
    _report_plus_a_user_file(out / "h-20260105T000000Z")
    _user_file(out / "h-20260106T000000Z")
    before = {n: _tree(out / n) for n in ("h-20260104T000000Z", "h-20260105T000000Z",
                                            "h-20260106T000000Z")}
    removed = rotate_reports(out, 0)
    assert sorted(p.name for p in removed) == [
        "h-20260101T000000Z", "h-20260102T000000Z", "h-20260103T000000Z"]
    assert {n: _tree(out / n) for n in before} == before
