"""The host's answer a report leads with, and the order services are listed in."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest

from capacity._columns import CPU, MEMORY
from capacity._pipeline import plan_all
from capacity.reporting._host import host_answer, natural_key, resource_name, urgency_order
from capacity.reporting._render import write_report
from capacity.reporting._status import status
from capacity.solver._machine import Machine
from capacity.solver._testing import constant_profiles, profiles_of

#: cores per replica of each service (constant demand: every quantile equals it)
CORES = {"svc1": 1.0, "svc2": 0.5, "svc10": 0.25}
RUNNING = {"svc1": 2, "svc2": 2, "svc10": 2}  # 2 + 1 + 0.5 = 3.5 cores running
MEM_BYTES = 2.0**28


def _profiles(cores: dict[str, float]):
    return profiles_of(*(constant_profiles({CPU: c, MEMORY: MEM_BYTES}, service=s)[s]
                         for s, c in cores.items()))


def _plans(spec: str, cores: dict[str, float] = CORES, running: dict[str, int] = RUNNING,
           valid_for_s: float | None = None):
    """Plans of the constant profiles; demand as recorded by default (a 200 s history
    would take x1.10: the arithmetic below is in round numbers)."""
    profiles = _profiles(cores)
    machine = Machine.from_spec(spec + ",cpu_saturation=1")
    return plan_all(profiles, machine, running=running, method="gaussian",
                    valid_for_s=valid_for_s), profiles


def test_what_runs_is_counted_for_the_period_ahead() -> None:
    # each service at the factor its plan takes (the x1.10 allowance of a 200 s history):
    # what runs takes 3.5 x 1.1 cores, in the headroom and the copies of the mix alike
    plans, profiles = _plans("cpus=16,memory=16GiB", valid_for_s=7 * 86_400.0)
    ans = host_answer(plans, profiles, status(plans))
    cpu = next(h for h in ans.resources if h.resource == CPU)
    assert cpu.in_use == pytest.approx(3.5 * 1.1)
    assert cpu.headroom == pytest.approx(1 - 3.5 * 1.1 / 16)
    assert ans.more_mixes == math.floor(16 / 3.85) - 1
    for s, p in plans.items():  # each plan's own figure and the others' occupancy
        rp = p.per_resource[CPU]
        assert rp.demand_per_replica == pytest.approx(CORES[s] * 1.1)
        assert rp.occupied == pytest.approx(sum(1.1 * CORES[o] * RUNNING[o]
                                                for o in CORES if o != s))
        assert rp.utilisation_at_safe_count is not None
        assert rp.utilisation_at_safe_count <= 1 + 1e-9


def test_over_capacity_says_by_how_much_and_which_services_to_move() -> None:
    plans, profiles = _plans("cpus=2,memory=16GiB")
    st = status(plans)
    ans = host_answer(plans, profiles, st)
    assert ans.verdict == "over" and ans.binding == CPU
    cpu = next(h for h in ans.resources if h.resource == CPU)
    assert cpu.in_use == pytest.approx(3.5) and cpu.capacity == pytest.approx(2.0)
    assert cpu.over and cpu.headroom == pytest.approx((2.0 - 3.5) / 2.0)
    assert "3.5 cores of CPU" in ans.headline and "1.5 cores more" in ans.headline
    # svc1 alone frees 2 cores >= the 1.5 over: it is the one to move
    assert ans.move == ("svc1",)
    assert any(line.startswith("To fit, move 1 of the 3 services") for line in ans.lines)
    assert any("2 hosts like this one" in line for line in ans.lines)  # ceil(3.5 / 2)


def test_the_services_to_move_free_what_in_use_counts_them_at() -> None:
    # over, with the x1.10 allowance and a host cost of 0.1 core per container: each
    # service's containers take of the CPU in use what the plans count them at (the others
    # at 1.1 x cores + 0.1 each, the plan's own service at its per-replica figure), not the
    # profile's bare figure: svc1 frees 2.4 cores, more than the ~2.2 over, where its bare
    # 2 cores would have sent svc2 too
    profiles = _profiles(CORES)
    machine = Machine.from_spec("cpus=2.3,memory=16GiB,host_cost.cpus=0.1,cpu_saturation=1")
    plans = plan_all(profiles, machine, running=RUNNING, method="gaussian",
                     valid_for_s=7 * 86_400.0)
    ans = host_answer(plans, profiles, status(plans))
    cpu = next(h for h in ans.resources if h.resource == CPU)
    own = plans[cpu.service].per_resource[CPU].demand_per_replica
    takes = {s: RUNNING[s] * (own if s == cpu.service else 1.1 * c + 0.1)
             for s, c in CORES.items()}
    assert ans.verdict == "over" and cpu.in_use == pytest.approx(sum(takes.values()))
    assert 2.0 < cpu.in_use - 2.3 < takes["svc1"]
    assert ans.move == ("svc1",)
    line = next(x for x in ans.lines if x.startswith("To fit, move 1 of the 3 services"))
    assert f"({takes['svc1']:.2f}".rstrip("0") in line


def test_under_capacity_counts_more_copies_of_the_running_mix() -> None:
    plans, profiles = _plans("cpus=16,memory=16GiB")
    ans = host_answer(plans, profiles, status(plans))
    assert ans.verdict == "under" and ans.binding == CPU
    assert ans.more_mixes == math.floor(16 / 3.5) - 1
    assert ans.move == ()
    line = next(x for x in ans.lines if "of the running mix" in x)
    assert f": {ans.more_mixes} more copies of the running mix fit beside it" in line
    m = re.search(r"^What runs could grow (.+?) % before CPU is full", line)
    assert m and float(m.group(1)) == pytest.approx((16 / 3.5 - 1) * 100, rel=1e-3)


def test_less_than_one_more_copy_of_the_mix_is_said_so_not_as_zero_copies() -> None:
    # 2.5 cores free of 16 beside a mix of 3.5: grows 14 %, not one whole copy more
    plans, profiles = _plans("cpus=4,memory=16GiB")
    ans = host_answer(plans, profiles, status(plans))
    assert ans.verdict in ("under", "tight") and ans.more_mixes == 0
    line = next(x for x in ans.lines if "of the running mix" in x)
    assert "less than one more copy of the running mix" in line
    assert "0 more cop" not in line
    m = re.search(r"^What runs could grow (.+?) % before CPU is full", line)
    assert m and float(m.group(1)) == pytest.approx((4 / 3.5 - 1) * 100, rel=1e-3)


def test_services_by_urgency_then_natural_name_order() -> None:
    # same demand: the same headroom, so names decide, digits by value
    same = {"svc10": 0.5, "svc2": 0.5, "svc1": 0.5}
    plans, _ = _plans("cpus=16,memory=16GiB", same, {s: 1 for s in same})
    assert urgency_order(plans, status(plans)) == ["svc1", "svc2", "svc10"]
    # headrooms equal as shown (four significant digits) are a tie too, whatever the noise
    from dataclasses import replace
    st = status(plans)
    noisy = {s: replace(h, share=0.1045344083 + 1e-9 * (3 - i))
             for i, (s, h) in enumerate(sorted(st.headrooms.items()))}
    assert urgency_order(plans, replace(st, headrooms=noisy)) == ["svc1", "svc2", "svc10"]
    # one over its safe count comes first, whatever its name
    plans, _ = _plans("cpus=2,memory=16GiB")
    order = urgency_order(plans, status(plans))
    over = [s for s in order if plans[s].running > (plans[s].safe_count or 0)]
    assert order[:len(over)] == over
    assert sorted(["b10", "b9", "a"], key=natural_key) == ["a", "b9", "b10"]
    assert resource_name(MEMORY) == "memory" and resource_name(CPU) == "CPU"


def test_report_opens_with_the_host_and_the_table_by_urgency(tmp_path: Path) -> None:
    plans, profiles = _plans("cpus=2,memory=16GiB")
    paths = write_report(plans, profiles, out_dir=tmp_path, name="r", host="testhost",
                         png=True)
    html = paths.report_html.read_text()
    main = html.split("<main>")[1]
    # the first thing in the page body is the host's answer
    first = re.search(r'<p class="([^"]*)"[^>]*>(.*?)</p>', main, re.S)
    assert first and "host" in first.group(1) and first.group(2).startswith("Over capacity")
    rows = re.findall(r'<tr data-service="([^"]+)" class="flag-(\w+)">', html)
    assert [s for s, _ in rows] == urgency_order(plans, status(plans))
    assert "memory_working_set_bytes" not in re.sub(r'data-[a-z_]+="[^"]*"', "", main.split(
        '<section id="charts">')[0]), "people read resource names, not column names"
    md = paths.report_md.read_text()
    assert md.index("## The host") < md.index("## Services, most urgent first") < md.index(
        "## Per resource")
    # PNG when asked for, beside the SVG
    for chart in ("safe_counts", "demand_vs_count"):
        assert (paths.folder / f"{chart}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert (paths.folder / f"{chart}.svg").is_file()


def test_every_number_column_shows_one_precision(tmp_path: Path, capsys) -> None:
    """-75.00 % beside -68.03 %, never -75 %: every figure of a table (HTML, Markdown, the
    console) shows four significant digits, trailing zeros included."""
    from shown_numbers import imprecise

    from capacity._cli._common import print_summary

    plans, profiles = _plans("cpus=2,memory=16GiB")  # 3.5 cores on 2: exactly 75 % over
    st = status(plans)
    paths = write_report(plans, profiles, out_dir=tmp_path, name="r", host="testhost")
    cells = re.findall(r'<td class="num"[^>]*>([^<]*)</td>', paths.report_html.read_text())
    assert "-75.00 %" in cells and "2.000 cores" in cells
    assert imprecise(cells) == [] and len(cells) > 20
    md_cells = [c.strip() for line in paths.report_md.read_text().splitlines()
                if line.startswith("| ") for c in line.split("|")[1:-1]]
    assert "-75.00 %" in md_cells and imprecise(md_cells) == []
    print_summary(plans, st)
    out = capsys.readouterr().out
    console = [c.strip() for line in out.splitlines() if line.startswith("│")
               for c in line.split("│")[1:-1]]
    assert "-75.00 %" in console and "1.000 cores" in console and imprecise(console) == []
    # a sentence keeps its figures short: "75 % over", "below 20 %"
    assert "(75 % over)" in host_answer(plans, profiles, st).headline


def test_a_long_services_table_folds_after_its_most_urgent_rows(tmp_path: Path) -> None:
    """30 services: the answer, the 15 most urgent rows, then the charts; the other 15 rows
    fold (<details>, no script) and every one stays in the page, the Markdown and plan.json."""
    from capacity.reporting._render import SERVICES_FOLD_ABOVE, SERVICES_SHOWN

    n = SERVICES_FOLD_ABOVE + 10
    cores = {f"svc{i}": 0.01 * (1 + i % 7) for i in range(1, n + 1)}
    running = dict.fromkeys(cores, 2)
    plans, profiles = _plans("cpus=4,memory=64GiB", cores, running)
    order = urgency_order(plans, status(plans))
    paths = write_report(plans, profiles, out_dir=tmp_path, name="r", host="testhost")
    html = paths.report_html.read_text()
    services = html.split('<section id="services">')[1].split("</section>")[0]
    shown, folded = services.split('<details class="more-services">')
    row = r'<tr data-service="([^"]+)" class="flag-\w+">'
    assert re.findall(row, shown) == order[:SERVICES_SHOWN]
    assert re.findall(row, folded) == order[SERVICES_SHOWN:]
    assert f"The other {n - SERVICES_SHOWN} services" in folded
    # the answer, then the table, then the charts; each row links to its service's fold
    assert (html.index('id="host-answer"') < html.index('<section id="services">')
            < html.index('<section id="charts">') < html.index('<section id="resources">'))
    for i, s in enumerate(order, 1):
        assert f'<a href="#svc-{i}">{s}</a>' in services
        assert re.search(rf'<details id="svc-{i}" [^>]*>\s*<summary><strong>{s}</strong>', html)
    md = paths.report_md.read_text()
    table = md.split("## Services, most urgent first")[1].split("## Charts")[0]
    md_rows = [line.split("|")[1].strip() for line in table.splitlines()
               if line.startswith("| svc")]
    assert md_rows == order
    assert table.index(f"| {order[SERVICES_SHOWN - 1]} |") < table.index("<details>") < \
        table.index(f"| {order[SERVICES_SHOWN]} |")
    assert md.index("## Charts") < md.index("## Per resource")
    assert set(json.loads(paths.plan_json.read_text())["plans"]) == set(cores)


def test_a_short_services_table_is_not_folded(tmp_path: Path) -> None:
    plans, profiles = _plans("cpus=2,memory=16GiB")
    paths = write_report(plans, profiles, out_dir=tmp_path, name="r", host="testhost")
    assert "more-services" not in paths.report_html.read_text()
    assert "<details>" not in paths.report_md.read_text()


def test_the_first_screen_says_at_what_risk(tmp_path: Path) -> None:
    """How many fit, what binds, and at what risk: the epsilon of each planned resource is
    in the host's answer, above the tables (it was only in the per-service folds)."""
    from capacity._units import format_percent

    plans, profiles = _plans("cpus=8,memory=16GiB")
    ans = host_answer(plans, profiles, status(plans))
    rp = plans["svc1"].per_resource
    risk = [line for line in ans.lines if line.startswith("Risk:")]
    assert len(risk) == 1
    assert f"{format_percent(rp[CPU].epsilon, trim=True)} for CPU" in risk[0]
    assert f"{format_percent(rp[MEMORY].epsilon, trim=True)} for memory" in risk[0]
    assert rp[CPU].epsilon > rp[MEMORY].epsilon  # memory is incompressible: a smaller risk
    html = write_report(plans, profiles, out_dir=tmp_path, name="r",
                        host="testhost").report_html.read_text()
    assert html.index("Risk: each safe count") < html.index('<section id="services">')


def _undefined(plans, *names: str):
    import dataclasses

    return {s: dataclasses.replace(p, safe_count=None, binding_resource=None,
                                   reason="hours of the day not seen: 20:00-00:00 UTC")
            if s in names else p for s, p in plans.items()}


def test_no_headroom_is_claimed_when_no_service_has_a_safe_count() -> None:
    # review: every plan undefined, and the host said "Under capacity: 93.75 % free ...
    # 15 more copies of the running mix fit"
    plans, profiles = _plans("cpus=16,memory=16GiB")
    plans = _undefined(plans, *plans)
    ans = host_answer(plans, profiles, status(plans))
    assert ans.verdict == "unknown" and ans.more_mixes is None and ans.resources == ()
    assert ans.headline.startswith("Unknown: none of the 3 services")
    assert "hours of the day not seen" in ans.headline and "free" not in ans.headline


def test_services_without_a_safe_count_are_said_and_no_copies_are_counted() -> None:
    plans, profiles = _plans("cpus=16,memory=16GiB")
    plans = _undefined(plans, "svc1")
    ans = host_answer(plans, profiles, status(plans))
    assert ans.verdict in ("under", "tight") and ans.more_mixes is None
    assert not any("of the running mix" in line for line in ans.lines)
    assert any(line.startswith("1 of the 3 services have no safe count (svc1")
               for line in ans.lines)


def test_the_resource_further_over_capacity_binds_the_host() -> None:
    # 3.5 cores on 2 (75 % over) and 1.5 GiB on 0.75 GiB (100 % over): every service's
    # count is 0 on both, a tie its plan names CPU; the host named CPU beside memory
    # further over (the 100-service report: CPU 85 % over, memory 138 %)
    plans, profiles = _plans("cpus=2,memory=0.75GiB")
    ans = host_answer(plans, profiles, status(plans))
    assert ans.verdict == "over"
    worst = min(ans.resources, key=lambda h: h.headroom)
    assert worst.resource == MEMORY and ans.binding == MEMORY
    assert "memory binds" in ans.headline
