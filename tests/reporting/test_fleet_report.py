"""``capacity size --report``: the fleet report folder, numbers that match fleet.json, the
charts (Agg, not pixels), and the exit status when the folder cannot be written."""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import pytest
from matplotlib.colors import to_rgba
from test_report_charts import assert_units_in_labels, labelled
from test_report_files import assert_same

from capacity._columns import CPU, MEMORY
from capacity._errors import CapacityError
from capacity._pipeline import fit_profiles, load_demo
from capacity._units import resource_name
from capacity.cli import main
from capacity.model._profile import Profiles
from capacity.reporting._charts import fleet_packing, hosts_vs_replicas
from capacity.reporting._fleet import write_fleet_report
from capacity.reporting._host import RESOURCE_NAMES
from capacity.solver._machine import Machine
from capacity.solver._mix import FleetPlan, size_fleet
from capacity.solver._testing import constant_profiles

matplotlib.use("Agg")

NOW = datetime(2026, 11, 27, 21, 30, tzinfo=UTC)
MIX = {"demo/cpu-burner": 120, "demo/mem-holder": 40}
#: 0.5 cores and 2 GiB per replica on 8 cores / 32 GiB: CPU binds at 16 per host
CONSTANT_MACHINE = "cpus=8,memory=32GiB,cpu_saturation=1"


@pytest.fixture(scope="module")
def demo_fleet(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    profiles = fit_profiles(load_demo().samples)
    fleet = size_fleet(profiles, Machine.from_spec("cpus=8,memory=32GiB"), MIX, spare=1,
                       rng=np.random.default_rng(0))
    out = tmp_path_factory.mktemp("reports")
    paths = write_fleet_report(fleet, profiles, out_dir=out, host="testhost", now=NOW,
                               notices=["a <b>notice</b> with markup & an ampersand"])
    return {"fleet": fleet, "paths": paths, "out": out,
            "doc": json.loads(paths.fleet_json.read_text())}


@pytest.fixture(scope="module")
def constant_fleet() -> FleetPlan:
    profiles = constant_profiles({CPU: 0.5, MEMORY: 2.0 * 2**30}, service="web")
    # demand as recorded (valid_for_s=None; a 200 s history would take x1.10): the charts'
    # arithmetic in round numbers (the period ahead: tests/solver/test_mix_drift.py)
    return size_fleet(profiles, Machine.from_spec(CONSTANT_MACHINE), {"web": 120}, spare=1,
                      method="gaussian", valid_for_s=None)


def test_folder_has_every_file_and_no_temporary_left(demo_fleet: dict[str, Any]) -> None:
    paths = demo_fleet["paths"]
    assert paths.folder.name == "testhost-20261127T213000Z-size"
    names = {p.name for p in paths.folder.iterdir()}
    assert names == {"fleet.json", "profiles.json", "report.md", "report.html",
                     "fleet_packing.png", "hosts_vs_replicas.png",
                     "fleet_packing.svg", "hosts_vs_replicas.svg", ".capacity-report.json"}
    for png in paths.charts:
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in demo_fleet["out"].iterdir()] == [paths.folder.name]
    doc = demo_fleet["doc"]
    assert doc == json.loads(json.dumps(demo_fleet["fleet"].to_dict()))
    assert doc["kind"] == "capacity.fleet" and doc["hosts"] == doc["hosts_needed"] + 1
    assert json.loads(paths.profiles_json.read_text())["kind"] == "capacity.profiles"


def check_answer(text: str, doc: dict[str, Any], where: str) -> None:
    """The sentence: replicas, hosts (N + k), machine, what binds at how many per host, risk."""
    m = re.fullmatch(r"(.+?) needs? (\d+) hosts? of (.+?) \((\d+) \+ (\d+) spare\); (.+?) "
                     r"binds at (.+?) per host; at most (.+? %) of instants over capacity\.",
                     text)
    assert m, f"{where}: the answer sentence is not as documented: {text!r}"
    replicas = m.group(1)
    if len(doc["replicas"]) == 1:
        ((service, n),) = doc["replicas"].items()
        assert replicas == f"{n} replicas of {service}"
        assert m.group(7) == str(doc["per_host"][service])
    else:
        shown = dict(reversed(part.split(" ", 1)) for part in
                     replicas.removesuffix(" replicas").split(" + "))
        assert {s: int(n) for s, n in shown.items()} == doc["replicas"]
        per = dict(reversed(part.split(" ", 1)) for part in m.group(7).split(" + "))
        assert {s: int(n) for s, n in per.items()} == doc["per_host"]
    assert (int(m.group(2)), int(m.group(4)), int(m.group(5))) == (
        doc["hosts"], doc["hosts_needed"], doc["spare"])
    assert m.group(3) == doc["machine"]["name"]
    assert m.group(6) == resource_name(doc["binding_resource"])  # the name people read
    assert_same(m.group(8), doc["per_resource"][doc["binding_resource"]]["epsilon"], where)


class _Cells(HTMLParser):
    """``data-field`` cells of report.html by (table class, row key, field), and the answer."""

    def __init__(self) -> None:
        super().__init__()
        self.cells: dict[tuple[str, str, str], str] = {}
        self.answer = ""
        self.svgs = 0
        self._table = self._row = self._field = ""
        self._in_answer = False
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.svgs += tag == "svg"
        if tag == "table":
            self._table, self._row = a.get("class") or "", ""
        if tag == "tr":
            self._row = a.get("data-resource") or a.get("data-service") or ""
        if tag == "td" and a.get("data-field"):
            self._field, self._text = str(a["data-field"]), []
        if tag == "p" and a.get("class") == "answer":
            self._in_answer, self._text = True, []

    def handle_data(self, data: str) -> None:
        self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._field:
            self.cells[(self._table, self._row, self._field)] = "".join(self._text).strip()
            self._field = ""
        if tag == "p" and self._in_answer:
            self.answer, self._in_answer = " ".join("".join(self._text).split()), False


#: per-resource fields the table shows, and the ones of the summary tables
RESOURCE_FIELDS = ("capacity", "reserve", "occupied", "demand", "mean_demand", "utilisation",
                   "p_overload", "epsilon")
MD_HEADERS = dict(zip(("capacity", "reserve", "used by others", "replicas' demand",
                       "mean demand", "utilisation", "P(overload)", "epsilon"),
                      RESOURCE_FIELDS, strict=True))


def test_every_number_in_report_html_equals_fleet_json(demo_fleet: dict[str, Any]) -> None:
    doc = demo_fleet["doc"]
    parser = _Cells()
    parser.feed(demo_fleet["paths"].report_html.read_text())
    check_answer(parser.answer, doc, "html answer")
    for key in ("hosts", "hosts_needed", "spare"):
        assert_same(parser.cells[("fleet", "", key)], doc[key], f"html {key}")
    binding = RESOURCE_NAMES[doc["binding_resource"]]  # people's name; fleet.json: the column
    assert parser.cells[("fleet", "", "binding_resource")] == binding
    for service, n in doc["replicas"].items():
        assert_same(parser.cells[("services", service, "replicas")], n, service)
        assert_same(parser.cells[("services", service, "per_host")], doc["per_host"][service],
                    service)
    assert doc["per_resource"]
    for r, rp in doc["per_resource"].items():
        for field in RESOURCE_FIELDS:
            assert_same(parser.cells[("resources", r, field)], rp[field], f"html {r} {field}")


def _md_rows(text: str, first_header: str) -> list[dict[str, str]]:
    """Rows (header -> cell) of the first Markdown table whose first header is given."""
    rows: list[dict[str, str]] = []
    header: list[str] | None = None
    for line in text.splitlines():
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
        if not line.startswith("| "):
            if rows:
                break
            header = None
            continue
        if header is None:
            header = cells if cells[0] == first_header else None
        elif not set(cells[0]) <= set("-: "):
            rows.append(dict(zip(header, cells, strict=True)))
    return rows


def test_every_number_in_report_md_equals_fleet_json(demo_fleet: dict[str, Any]) -> None:
    doc = demo_fleet["doc"]
    text = demo_fleet["paths"].report_md.read_text()
    answer = text.split("## The answer\n\n", 1)[1].split("\n", 1)[0]
    check_answer(answer, doc, "md answer")
    (summary,) = _md_rows(text, "hosts (N + k)")
    for header, key in (("hosts (N + k)", "hosts"), ("needed (N)", "hosts_needed"),
                        ("spare (k)", "spare")):
        assert_same(summary[header], doc[key], f"md {key}")
    services = {row["service"]: row for row in _md_rows(text, "service")}
    assert set(services) == set(doc["replicas"])
    for s, row in services.items():
        assert_same(row["replicas"], doc["replicas"][s], s)
        assert_same(row["per host"], doc["per_host"][s], s)
    column = {name: r for r, name in RESOURCE_NAMES.items()}
    rows = {column[row["resource"].replace(" **(binds)**", "")]: row
            for row in _md_rows(text, "resource")}
    assert set(rows) == set(doc["per_resource"])
    for r, rp in doc["per_resource"].items():
        for header, field in MD_HEADERS.items():
            assert_same(rows[r][header], rp[field], f"md {r} {field}")
    for link in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text):
        assert (demo_fleet["paths"].folder / link).is_file(), link


def test_html_is_self_contained_and_escaped(demo_fleet: dict[str, Any]) -> None:
    html = demo_fleet["paths"].report_html.read_text()
    parser = _Cells()
    parser.feed(html)
    assert parser.svgs == 2, "one inline SVG per chart"
    assert "<img" not in html and "<script" not in html.lower()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert "&lt;b&gt;notice&lt;/b&gt;" in html and "<b>notice</b>" not in html
    assert "confidence" in html, "the profiles' confidence is shown"


def test_hosts_curve_and_step_chart_mark_the_request_and_n_plus_k(
    constant_fleet: FleetPlan,
) -> None:
    f = constant_fleet
    assert (f.hosts, f.hosts_needed, f.per_host, f.binding_resource) == (
        9, 8, {"web": 15}, CPU)
    assert [t for t, _ in f.hosts_curve] == list(range(241))
    assert all(h == math.ceil(t / 16) for t, h in f.hosts_curve)
    fig = hosts_vs_replicas(f)
    assert fig is not None
    assert_units_in_labels(fig)
    (ax,) = fig.axes
    assert ax.get_xlabel() == "replicas in all (count)" and ax.get_ylabel() == "hosts (count)"
    ((_, nk),) = labelled(fig, "N+k = ")
    assert nk.get_label() == "N+k = 8 + 1 = 9 hosts" and np.allclose(nk.get_ydata(), 9)
    ((_, needed),) = labelled(fig, "hosts needed = ")
    assert np.allclose(needed.get_ydata(), 8)
    ((_, requested),) = labelled(fig, "requested = ")
    assert requested.get_label() == "requested = 120" and np.allclose(requested.get_xdata(), 120)
    ((_, step),) = labelled(fig, "hosts needed (without spare)")
    x, y = np.asarray(step.get_xdata()), np.asarray(step.get_ydata())
    assert y[x == 120][0] == 8 and x.max() == 240


def test_packing_chart_shows_per_host_counts_and_highlights_the_binding_resource(
    constant_fleet: FleetPlan,
) -> None:
    fig = fleet_packing(constant_fleet)
    assert_units_in_labels(fig)
    left, right = fig.axes
    assert left.get_xlabel() == "replicas on one host (count)"
    assert [p.get_width() for p in left.patches] == [15]
    bars = {str(b.get_label()).split(":")[0]: b for b in right.patches}
    assert to_rgba(bars["CPU (binds)"].get_facecolor()) == to_rgba("tab:red")
    assert to_rgba(bars["memory"].get_facecolor()) == to_rgba("tab:blue")
    # 15 x 0.5 cores of 8: 93.75 %; 15 x 2 GiB of 32 GiB: 93.75 % too, but CPU binds
    assert bars["CPU (binds)"].get_width() == pytest.approx(
        constant_fleet.per_resource[CPU].utilisation * 100)
    assert bars["CPU (binds)"].get_width() == pytest.approx(93.75)
    assert labelled(fig, "capacity = 100 %")


def _profiles_file(tmp_path: Path, cpu: float) -> Path:
    path = tmp_path / "profiles.json"
    constant_profiles({CPU: cpu, MEMORY: 2.0 * 2**30}, service="web").to_json(path)
    return path


def _size(profiles: Path, *extra: str) -> int:
    return main(["size", "--profiles", str(profiles), "--machine", CONSTANT_MACHINE,
                 "--replicas", "120", "--spare", "1", "--method", "gaussian", *extra])


def test_cli_writes_the_folder_and_keeps_its_output(tmp_path: Path, capsys) -> None:
    out = tmp_path / "reports"
    assert _size(_profiles_file(tmp_path, 0.5), "--out", str(out), "--name", "fleet") == 0
    captured = capsys.readouterr()
    # 14 per host at x1.10 (a 200 s history's allowance, as its plan takes): 9 + 1 spare
    assert "10 host(s)" in captured.out
    assert captured.err.strip() == f"capacity: report written to {out / 'fleet'}"
    doc = json.loads((out / "fleet" / "fleet.json").read_text())
    assert (doc["hosts"], doc["hosts_needed"]) == (10, 9)
    assert doc["demand_factors"]["web"][CPU]["widening"]["allowance"] == pytest.approx(1.1)
    assert sorted(p.name for p in out.iterdir()) == ["fleet"]


def test_cli_unwritable_out_is_exit_3_with_one_line(tmp_path: Path, capsys) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    assert _size(_profiles_file(tmp_path, 0.5), "--report", "--out", str(blocker / "r")) == 3
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "cannot write a report" in err
    assert _size(_profiles_file(tmp_path, 0.5), "--name", "../x") == 3


def test_failure_while_writing_leaves_nothing(constant_fleet: FleetPlan,
                                              tmp_path: Path) -> None:
    class FullDisk(Profiles):
        """Profiles whose file cannot be written (a disk that is full)."""

        def to_json(self, path: Any = None) -> str:
            raise OSError(28, "No space left on device")

    with pytest.raises(CapacityError, match="No space left on device"):
        write_fleet_report(constant_fleet, FullDisk({}), out_dir=tmp_path, host="h", now=NOW)
    assert list(tmp_path.iterdir()) == []


def test_replicas_that_cannot_be_placed_still_report(tmp_path: Path, capsys) -> None:
    assert _size(_profiles_file(tmp_path, 10.0), "--out", str(tmp_path), "--name", "r") == 2
    text = (tmp_path / "r" / "report.md").read_text()
    assert "120 replicas of web cannot be placed on hosts of" in text
    assert "Not drawn: no replica count can be placed" in text
    doc = json.loads((tmp_path / "r" / "fleet.json").read_text())
    assert doc["hosts"] is None and doc["hosts_curve"] == []
