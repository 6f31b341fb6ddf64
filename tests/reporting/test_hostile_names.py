"""Service names chosen by whoever starts a container (Compose labels) cannot forge a Nagios
status line or perfdata, inject Markdown or HTML into a report, or break a chart (issue 11,
items 6 and 9). End to end: a samples file with hostile names through ``capacity report``."""

from __future__ import annotations

import contextlib
import html
import io
import re
from html.parser import HTMLParser
from typing import Any

import numpy as np
import pandas as pd
import pytest

from capacity._columns import RESOURCES
from capacity.cli import main
from capacity.reporting._render import md_escape
from capacity.reporting._status import nagios_text, perfdata_labels
from capacity.store._files import write_samples

HOSTILE = [
    "web|x\nCAPACITY OK - all fine | 'fake'=1;;;0",  # a second status line, its own perfdata
    "a/b",
    "a_b",  # collides with a/b once reduced
    "a_b_2",  # and with the suffix a naive fix would give a/b
    "it's=1",
    "<img src=x onerror=alert(1)><script>alert(2)</script>",
    "*bold* [link](http://example.invalid) `code` ~~gone~~ _em_",
    "# heading\n- item",
    "cost $\\frac{1}{$ x",  # bad mathtext: matplotlib would raise while drawing
]
MACHINE = "cpus=64,memory=256GiB,cpu_saturation=1"
#: one sample a minute for 4 hours: enough for a profile of confidence "ok"
N_SAMPLES, STEP_S = 240, 60.0
#: one perfdata item by the Nagios plugin guidelines: 'label'=value[UOM];warn;crit;min;max
PERF_ITEM = re.compile(r"'(?:[^'=|\n]|'')+'=-?[\d.]+%?(;[\d.:~@-]*){0,4}")


def _samples() -> pd.DataFrame:
    rng = np.random.default_rng(11)
    t0 = pd.Timestamp("2026-01-01T00:00:00Z")
    frames = []
    for i, service in enumerate(HOSTILE):
        frames.append(pd.DataFrame({
            "time": t0 + pd.to_timedelta(np.arange(1, N_SAMPLES + 1) * STEP_S, unit="s"),
            "container_id": f"{i:064x}",
            "container_name": f"c{i}",
            "service": service,
            "image": "img:1",
            "interval_s": STEP_S,
            "cpu_cores": 0.2 + rng.normal(0, 0.01, N_SAMPLES),
            "memory_working_set_bytes": 50 * 2.0**20 + rng.normal(0, 2.0**20, N_SAMPLES),
        }))
    df = pd.concat(frames, ignore_index=True)
    for r in RESOURCES:
        if r not in df:
            df[r] = np.nan
    return df


@pytest.fixture(scope="module")
def hostile_report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("hostile")
    samples = write_samples(_samples(), folder / "samples.csv")
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["report", "--samples", str(samples), "--machine", MACHINE,
                     "--out", str(folder / "reports"), "--name", "hostile", "--check"])
    return {"code": code, "out": out.getvalue(), "err": err.getvalue(),
            "folder": folder / "reports" / "hostile"}


def test_check_output_is_one_line_with_one_perfdata_separator(
    hostile_report: dict[str, Any],
) -> None:
    out = hostile_report["out"]
    assert hostile_report["code"] in (0, 1), hostile_report["err"]
    assert out.endswith("\n") and out.count("\n") == 1, f"more than one line: {out!r}"
    assert out.count("|") == 1, f"a forged perfdata separator: {out!r}"
    text, perf = out.rstrip("\n").split(" | ")
    assert text.startswith(("CAPACITY OK - ", "CAPACITY WARNING - "))
    # the name is shown, flattened: its "|" is "/" and its line break a space
    assert "web/x CAPACITY OK - all fine / 'fake'=1;;;0 fit" in text
    items = perf.split(" ")
    for item in items:
        assert PERF_ITEM.fullmatch(item), item
    labels = [item.split("'=")[0] + "'" for item in items]
    assert len(labels) == len(set(labels)), "perfdata labels collide"
    assert len(labels) == 4 * len(HOSTILE), "one safe/running/more/headroom per service"
    assert "'fake'" not in labels


def test_perfdata_labels_are_unique_and_stable() -> None:
    stems = perfdata_labels(["a/b", "a_b", "a_b_2", "a b", "web"])
    assert stems == {"a/b": "a_b", "a_b": "a_b_3", "a_b_2": "a_b_2", "a b": "a_b_4",
                     "web": "web"}
    assert nagios_text("x|y\nz\r\tw") == "x/y z w"


def _md_html(text: str) -> str:
    from markdown_it import MarkdownIt

    return str(MarkdownIt("commonmark").enable("table").enable("strikethrough").render(text))


def test_report_md_shows_names_as_text(hostile_report: dict[str, Any]) -> None:
    md = (hostile_report["folder"] / "report.md").read_text()
    assert "<img" not in md and "<script" not in md
    rendered = _md_html(md)
    # what a Markdown viewer makes of it: no element a name brought in
    assert "<img src=x" not in rendered and "<script" not in rendered  # raw HTML passes
    assert "<em>" not in rendered and "<s>" not in rendered and "<del>" not in rendered
    assert 'href="http://example.invalid"' not in rendered
    assert "<code>code</code>" not in rendered
    headings = re.findall(r"<h(\d)>(.*?)</h\1>", rendered)
    assert not any(text.startswith("heading") for _, text in headings), headings
    for name in HOSTILE:
        flat = " ".join(name.split())
        assert md_escape(name) in md, name
        assert html.escape(flat, quote=False) in rendered.replace("\n", " "), name


class _Elements(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_report_html_shows_names_as_text_and_charts_draw(
    hostile_report: dict[str, Any],
) -> None:
    page = (hostile_report["folder"] / "report.html").read_text()
    parser = _Elements()
    parser.feed(page)
    assert not [t for t, _ in parser.tags if t in ("img", "script")]
    assert not [a for _, a in parser.tags if any(k.startswith("on") for k in a)]
    text = " ".join("".join(parser.text).split())
    for name in HOSTILE:
        assert " ".join(name.split()) in text, name
    # every chart drawn, the "$" name included, and shown as typed in the SVG
    drawn = [a.get("aria-label") for t, a in parser.tags if t == "svg"]
    assert len(drawn) >= 5 and "demand_vs_count" in drawn and "demand_cdf" in drawn, drawn
    assert "cost $\\frac{1}{$ x" in text
