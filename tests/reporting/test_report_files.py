"""The report folder from the bundled recording: files, numbers that match plan.json, the HTML
in a real headless Chromium, atomic writes and rotation."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from capacity._pipeline import fit_profiles, load_demo, plan_all, running_counts
from capacity.reporting._host import RESOURCE_NAMES, resource_name
from capacity.reporting._render import (
    REPORT_MARKER,
    REPORT_NAME_PATTERN,
    rotate_reports,
    write_report,
)
from capacity.solver._machine import Machine

CHROMIUM = Path("/usr/bin/chromium")
#: the machine the example report is pinned to (README: regenerate reports/example)
MACHINE = "cpus=2,memory=24GiB,cpu_saturation=1"
NOW = datetime(2026, 11, 27, 21, 30, tzinfo=UTC)
CHROMIUM_TIMEOUT_S = 90

#: unit shown -> multiplier back to the column's unit
_UNITS = {
    "cores": 1.0, "B": 1.0, "KiB": 1024.0, "MiB": 1024.0**2, "GiB": 1024.0**3,
    "TiB": 1024.0**4, "PiB": 1024.0**5, "MB/s": 1e6, "%": 0.01,
}
_NUMBER = re.compile(r"^(-?\d+(?:\.(\d+))?) (cores|B|KiB|MiB|GiB|TiB|PiB|MB/s|%)$")

#: column header (HTML and Markdown) -> plan.json per_resource field
HEADER_FIELDS = {
    "safe count": "safe_count",
    "capacity": "capacity",
    "reserve": "reserve",
    "used by others": "occupied",
    "per replica": "demand_per_replica",
    "at safe count": "demand_at_safe_count",
    "utilisation": "utilisation_at_safe_count",
    "expected utilisation": "expected_utilisation_at_safe_count",
    "P(overload) at N": "p_overload_at_safe_count",
    "P(overload) at N+1": "p_overload_at_next",
    "epsilon": "epsilon",
}


def parse_shown(text: str) -> tuple[float | None, float]:
    """A value as the report shows it -> (value in the column unit, tolerance of rounding)."""
    text = text.strip()
    if text == "-":
        return None, 0.0
    if re.fullmatch(r"\d{1,3}(,\d{3})*", text):  # a count, thousands separated
        return float(text.replace(",", "")), 0.0
    m = _NUMBER.match(text)
    assert m, f"unparseable number in the report: {text!r}"
    decimals = len(m.group(2) or "")
    mult = _UNITS[m.group(3)]
    return float(m.group(1)) * mult, 0.5 * 10.0**-decimals * mult * 1.0001


def assert_same(shown: str, expected: Any, where: str) -> None:
    value, tol = parse_shown(shown)
    if expected is None:
        assert value is None, f"{where}: shows {shown!r}, plan.json has null"
        return
    assert value is not None, f"{where}: shows {shown!r}, plan.json has {expected!r}"
    assert abs(value - float(expected)) <= tol + 1e-12 * abs(float(expected)), (
        f"{where}: shows {shown!r} = {value!r}, plan.json has {expected!r}"
    )


@pytest.fixture(scope="module")
def demo_report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    data = load_demo()
    profiles = fit_profiles(data.samples)
    plans = plan_all(profiles, Machine.from_spec(MACHINE), running=running_counts(data.samples))
    out = tmp_path_factory.mktemp("reports")
    paths = write_report(plans, profiles, out_dir=out, source=data.source, host="testhost",
                         now=NOW, samples=data.samples,
                         notices=["a <b>notice</b> with markup & an ampersand"])
    return {"paths": paths, "plans": plans, "out": out,
            "plan_json": json.loads(paths.plan_json.read_text())}


def test_folder_has_every_file_and_no_temporary_left(demo_report: dict[str, Any]) -> None:
    paths = demo_report["paths"]
    assert paths.folder.name == "testhost-20261127T213000Z"
    assert REPORT_NAME_PATTERN.match(paths.folder.name)
    names = {p.name for p in paths.folder.iterdir()}
    assert {"plan.json", "profiles.json", "report.html", "report.md"} <= names
    charts = ("safe_counts", "demand_vs_count", "risk_curve", "demand_cdf", "usage_timeseries",
              "utilisation")
    for chart in charts:
        svg = (paths.folder / f"{chart}.svg").read_text()
        assert svg.startswith("<svg") and 'xmlns="http://www.w3.org/2000/svg"' in svg
        assert re.search(r'<svg[^>]* width="\d+pt" height="\d+pt"', svg), "a file has a size"
    assert {p.name for p in paths.charts} == {f"{c}.svg" for c in charts}
    assert not [n for n in names if n.endswith(".png")], "PNG only when asked for"
    assert not [p for p in demo_report["out"].iterdir() if p.name.startswith(".")]
    doc = demo_report["plan_json"]
    assert doc["kind"] == "capacity.plans" and doc["plans"]
    assert json.loads(paths.profiles_json.read_text())["kind"] == "capacity.profiles"


class _Tables(HTMLParser):
    """Cells of the per-resource tables and the answer paragraphs of report.html."""

    def __init__(self) -> None:
        super().__init__()
        self.cells: dict[tuple[str, str, str], str] = {}
        self.answers: dict[str, str] = {}
        self._service = self._resource = self._field = self._answer = None
        self._text: list[str] = []
        self.images: list[dict[str, str | None]] = []
        self.svgs = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "img":
            self.images.append(a)
        if tag == "svg":
            self.svgs += 1
        if tag == "table" and "resources" in (a.get("class") or ""):
            self._service = a.get("data-service")
        if tag == "tr" and a.get("data-resource"):
            self._resource = a["data-resource"]
        if tag == "td" and a.get("data-field"):
            self._field, self._text = a["data-field"], []
        if tag == "p" and "answer" in (a.get("class") or ""):
            self._answer, self._text = a.get("data-service"), []

    def handle_data(self, data: str) -> None:
        self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._field:
            self.cells[(str(self._service), str(self._resource), self._field)] = \
                "".join(self._text).strip()
            self._field = None
        if tag == "p" and self._answer:
            self.answers[self._answer] = " ".join("".join(self._text).split())
            self._answer = None


def _check_answer(text: str, plan: dict[str, Any], where: str) -> None:
    m = re.search(r"(\d+) more containers? of (.+?) fit beside the (\d+) running "
                  r"\((\d+) in all\) on (.+?); (.+?) binds; at most (.+? %) of instants", text)
    assert m, f"{where}: the answer sentence is not as documented: {text!r}"
    assert int(m.group(1)) == plan["more"]
    assert m.group(2) == plan["service"]
    assert int(m.group(3)) == plan["running"]
    assert int(m.group(4)) == plan["safe_count"]
    assert m.group(5) == plan["machine"]["name"]
    assert m.group(6) == resource_name(plan["binding_resource"])  # the name people read
    assert_same(m.group(7), plan["per_resource"][plan["binding_resource"]]["epsilon"], where)


def test_every_number_in_report_html_equals_plan_json(demo_report: dict[str, Any]) -> None:
    parser = _Tables()
    parser.feed(demo_report["paths"].report_html.read_text())
    checked = 0
    for service, plan in demo_report["plan_json"]["plans"].items():
        _check_answer(parser.answers[service], plan, f"html answer {service}")
        for r, rp in plan["per_resource"].items():
            if rp["safe_count"] is None:
                assert (service, r, "safe_count") not in parser.cells
                continue
            for field in HEADER_FIELDS.values():
                shown = parser.cells[(service, r, field)]
                assert_same(shown, rp[field], f"html {service} {r} {field}")
                checked += 1
    assert checked >= 20


def _markdown_tables(text: str) -> dict[str, list[dict[str, str]]]:
    """Per-resource tables of report.md: service -> rows (header -> cell)."""
    tables: dict[str, list[dict[str, str]]] = {}
    service = None
    header: list[str] | None = None
    section = ""
    for line in text.splitlines():
        if line.startswith("## "):
            section = line[3:]
        elif line.startswith("### ") and section == "Per resource":
            service, header = line[4:], None
        elif service and section == "Per resource" and line.startswith("| "):
            cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
            if header is None:
                header = cells
            elif not set(cells[0]) <= set("-: "):
                tables.setdefault(service, []).append(dict(zip(header, cells, strict=True)))
        else:
            header = None if not line.startswith("|") else header
    return tables


def test_every_number_in_report_md_equals_plan_json(demo_report: dict[str, Any]) -> None:
    text = demo_report["paths"].report_md.read_text()
    tables = _markdown_tables(text)
    plans = demo_report["plan_json"]["plans"]
    section = text.split("## The answer per service")[1].split("## Per resource")[0]
    answers = {m.group(1): line[2:] for line in section.splitlines()
               if (m := re.search(r" of (.+?) fit beside ", line)) and line.startswith("- ")}
    assert set(answers) == set(plans)
    column = {name: r for r, name in RESOURCE_NAMES.items()}
    for service, plan in plans.items():
        _check_answer(answers[service], plan, f"md answer {service}")
        rows = {column[row["resource"].replace(" **(binds)**", "")]: row
                for row in tables[service]}
        planned = {r for r, rp in plan["per_resource"].items() if rp["safe_count"] is not None}
        assert set(rows) == planned
        for r in planned:
            for header, field in HEADER_FIELDS.items():
                assert_same(rows[r][header], plan["per_resource"][r][field],
                            f"md {service} {r} {field}")
    # charts are linked, and every linked file exists
    for link in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text):
        assert (demo_report["paths"].folder / link).is_file(), link


def test_html_is_self_contained_and_escaped(demo_report: dict[str, Any]) -> None:
    html = demo_report["paths"].report_html.read_text()
    parser = _Tables()
    parser.feed(html)
    assert parser.svgs == 6, "one inline SVG per chart"
    assert parser.images == [], "no <img>: charts are inline"
    assert "<script" not in html.lower()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html), "no external asset"
    assert "@import" not in html
    assert not re.search(r"url\((?!#)", html), "url() only to IDs inside the page"
    assert "&lt;b&gt;notice&lt;/b&gt;" in html and "<b>notice</b>" not in html
    assert "<?xml" not in html and "<!DOCTYPE svg" not in html


def _chromium(args: list[str], tmp: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--no-first-run", "--disable-extensions", "--enable-logging=stderr", "--v=0",
         f"--user-data-dir={tmp / 'profile'}", *args],
        capture_output=True, text=True, timeout=CHROMIUM_TIMEOUT_S,
    )


@pytest.mark.skipif(not CHROMIUM.exists(),
                    reason="needs Debian's chromium package (/usr/bin/chromium missing): "
                           "apt-get install -y chromium")
def test_html_opens_in_headless_chromium(
    demo_report: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> None:
    html = demo_report["paths"].report_html
    tmp = tmp_path_factory.mktemp("chromium")
    url = html.resolve().as_uri()
    dom = _chromium(["--dump-dom", url], tmp)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert "Capacity report" in dom.stdout
    assert dom.stdout.count("<svg") >= 6
    logs = dom.stderr
    assert "Uncaught" not in logs and "CONSOLE" not in logs, logs[-2000:]
    assert "Failed to load resource" not in logs and "ERR_FILE_NOT_FOUND" not in logs
    # screenshots, desktop and phone width, kept as test artifacts in the pytest tmp dir
    for name, size in (("report-desktop.png", "1280,4000"), ("report-phone.png", "390,4000")):
        shot = tmp / name
        result = _chromium([f"--screenshot={shot}", f"--window-size={size}",
                            "--hide-scrollbars", url], tmp)
        assert result.returncode == 0, result.stderr[-2000:]
        from matplotlib.image import imread

        pixels = imread(shot)
        assert pixels.shape[0] > 1000 and pixels.std() > 0.05, f"{shot} looks blank"
    print(f"screenshots: {tmp}")


def test_named_report_is_replaced_whole(demo_report: dict[str, Any], tmp_path: Path) -> None:
    src = demo_report["paths"].folder
    # a second write under a fixed name replaces the first one, never merges with it
    from capacity.model._profile import Profiles

    service, plan = next(iter(demo_report["plans"].items()))  # one service: quicker to draw
    profiles = Profiles({service: Profiles.from_json(src / "profiles.json")[service]})
    first = write_report({service: plan}, profiles, out_dir=tmp_path, name="example",
                         host="h", now=NOW)
    inode = first.folder.stat().st_ino
    paths = write_report({service: plan}, profiles, out_dir=tmp_path, name="example",
                         host="h", now=NOW)
    assert paths.folder == tmp_path / "example"
    assert paths.folder.stat().st_ino != inode, "a new folder, renamed into place"
    listed = json.loads((paths.folder / REPORT_MARKER).read_text())["files"]
    assert sorted(p.name for p in paths.folder.iterdir()) == sorted([*listed, REPORT_MARKER])
    assert "report.html" in listed
    assert sorted(p.name for p in tmp_path.iterdir()) == ["example"]


class _Boom(RuntimeError):
    pass


def test_failure_leaves_nothing_half_written(demo_report: dict[str, Any], tmp_path: Path) -> None:
    from capacity.model._profile import Profiles

    profiles = Profiles.from_json(demo_report["paths"].profiles_json)

    class FailsWhileDrawing:
        """Writes profiles.json, then fails when the charts read the profiles."""

        def to_json(self, path: Path) -> str:
            return profiles.to_json(path)

        @property
        def services(self) -> Any:
            raise _Boom("drawing failed")

    with pytest.raises(_Boom):
        write_report(demo_report["plans"], FailsWhileDrawing(),  # type: ignore[arg-type]
                     out_dir=tmp_path, host="h", now=NOW)
    assert list(tmp_path.iterdir()) == []


def _fake_report(folder: Path) -> None:
    """A report folder as capacity writes it: its files, and the marker listing them."""
    folder.mkdir()
    (folder / "plan.json").write_text('{"kind": "capacity.plans"}')
    (folder / REPORT_MARKER).write_text(
        json.dumps({"kind": "capacity.report-folder", "version": 1, "files": ["plan.json"]}))


def test_rotation_keeps_the_newest_report_folders_only(tmp_path: Path) -> None:
    names = ["h-20260101T000000Z", "h-20260102T000000Z", "other-20260103T000000Z",
             "example", "h-20260104T000000Z"]
    for n in names:
        _fake_report(tmp_path / n)
    (tmp_path / "h-20260105T000000Z").write_text("a file, not a report folder")
    removed: list[Path] = []
    rotate_reports(tmp_path, 2, remove=removed.append)
    assert sorted(p.name for p in removed) == ["h-20260101T000000Z", "h-20260102T000000Z"]
    rotate_reports(tmp_path, 1, remove=shutil.rmtree)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "example", "h-20260104T000000Z", "h-20260105T000000Z"]
