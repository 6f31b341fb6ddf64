"""What the charts show (Agg backend, Figure objects): units in axis labels, the capacity line
at the capacity, the safe count marked, epsilon marked, the binding resource highlighted."""

from __future__ import annotations

from typing import Any

import matplotlib
import numpy as np
import pandas as pd
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from capacity._pipeline import fit_profiles, load_demo, plan_all, running_counts
from capacity.reporting._charts import (
    MAX_PANELS,
    RESOURCE_COLOURS,
    demand_cdfs,
    demand_vs_count,
    risk_curves,
    safe_counts,
    usage_timeseries,
    utilisation,
)
from capacity.solver._machine import Machine
from capacity.solver._plan import ResourcePlan, plan
from capacity.solver._testing import constant_profiles

matplotlib.use("Agg")

#: cores and GiB are shown to the float precision of the line data
REL_TOL = 1e-9
UNIT_IN_LABEL = ("(cores)", "(GiB)", "(MiB)", "(MB/s)", "(count)", "(UTC)", "(fraction)",
                 "(% of capacity)", "(probability")


def lines(fig: Figure) -> list[tuple[Any, Line2D]]:
    return [(ax, ln) for ax in fig.axes for ln in ax.get_lines()]


def labelled(fig: Figure, prefix: str) -> list[tuple[Any, Line2D]]:
    return [(ax, ln) for ax, ln in lines(fig) if str(ln.get_label()).startswith(prefix)]


def assert_units_in_labels(fig: Figure) -> None:
    """Every axis label names its unit (a categorical axis may have no label)."""
    for ax in fig.axes:
        if not ax.axison:
            continue
        for label in (ax.get_xlabel(), ax.get_ylabel()):
            if label:
                assert any(u in label for u in UNIT_IN_LABEL), f"no unit in {label!r}"
        assert ax.get_xlabel(), ax.get_title()


@pytest.fixture(scope="module")
def constant_plans() -> dict[str, Any]:
    """0.5 cores and 1 GiB per replica on 4 cores / 16 GiB with 1 GiB reserved:
    CPU binds at 8 replicas."""
    profiles = constant_profiles({"cpu_cores": 0.5, "memory_working_set_bytes": 2.0**30})
    machine = Machine.from_spec("cpus=4,memory=16GiB,reserve.memory=1GiB,cpu_saturation=1")
    # demand as recorded: the synthetic history is short (the allowance would take one)
    p = plan(profiles, machine, method="gaussian", running=3, valid_for_s=None)
    return {"plans": {p.service: p}, "profiles": profiles}


def test_demand_vs_count_capacity_line_safe_count_and_units(constant_plans: dict) -> None:
    plans = constant_plans["plans"]
    (service, p), = plans.items()
    assert p.safe_count == 8 and p.binding_resource == "cpu_cores"
    fig = demand_vs_count(plans, constant_plans["profiles"])
    assert_units_in_labels(fig)
    by_title = {ax.get_title(): ax for ax in fig.axes if ax.axison}
    cpu = by_title[f"{service}: CPU (binds)"]
    mem = by_title[f"{service}: memory"]
    assert cpu.get_ylabel() == "CPU demand (cores)"
    assert mem.get_ylabel() == "memory working set (GiB)"
    cap = [ln for ln in cpu.get_lines() if str(ln.get_label()).startswith("capacity = ")]
    assert len(cap) == 1 and cap[0].get_label() == "capacity = 4 cores"
    assert np.allclose(cap[0].get_ydata(), 4.0, rtol=REL_TOL)
    mem_cap = [ln for ln in mem.get_lines() if str(ln.get_label()).startswith("capacity")]
    assert np.allclose(mem_cap[0].get_ydata(), 16.0, rtol=REL_TOL)  # GiB on the axis
    reserve = [ln for ln in mem.get_lines() if ln.get_label() == "reserve"]
    assert np.allclose(reserve[0].get_ydata(), 1.0, rtol=REL_TOL)
    safe = [ln for ln in cpu.get_lines() if ln.get_label() == "safe count = 8"]
    assert len(safe) == 1 and np.allclose(safe[0].get_xdata(), 8)
    running = [ln for ln in cpu.get_lines() if ln.get_label() == "running now = 3"]
    assert np.allclose(running[0].get_xdata(), 3)
    # the plan's own total at the safe count sits on the capacity line (0.5 x 8 = 4 cores)
    dot = [ln for ln in cpu.get_lines() if ln.get_label() == "plan's total at the safe count"]
    assert np.allclose(dot[0].get_xdata(), 8) and np.allclose(dot[0].get_ydata(), 4.0)
    # constant demand: the median line is N x 0.5 cores
    med = next(ln for ln in cpu.get_lines() if ln.get_label() == "median total demand")
    assert np.allclose(med.get_ydata(), 0.5 * np.asarray(med.get_xdata()))


def test_demand_vs_count_without_distribution_says_so(constant_plans: dict) -> None:
    """No profile and no curve in the plan: only the plan's per-replica line, labelled so."""
    fig = demand_vs_count(constant_plans["plans"], None)
    assert labelled(fig, "N x per-replica figure of the plan (no distribution)")
    assert not labelled(fig, "median total demand")


def test_risk_curve_marks_epsilon_and_the_safe_count(constant_plans: dict) -> None:
    plans = constant_plans["plans"]
    fig = risk_curves(plans)
    assert fig is not None
    assert_units_in_labels(fig)
    (_, p), = plans.items()
    cpu = next(ax for ax in fig.axes if ax.get_title() == f"{p.service}: CPU (binds)")
    assert cpu.get_yscale() == "log"
    eps = [ln for ln in cpu.get_lines() if str(ln.get_label()).startswith("epsilon = ")]
    assert np.allclose(eps[0].get_ydata(), p.per_resource["cpu_cores"].epsilon)
    safe = [ln for ln in cpu.get_lines() if ln.get_label() == "safe count = 8"]
    assert np.allclose(safe[0].get_xdata(), 8)


def test_risk_curve_is_omitted_when_no_plan_has_one(constant_plans: dict) -> None:
    from dataclasses import replace

    plans = {s: replace(p, per_resource={r: replace(rp, risk_curve=())
                                         for r, rp in p.per_resource.items()})
             for s, p in constant_plans["plans"].items()}
    assert risk_curves(plans) is None


def test_utilisation_highlights_the_binding_resource(constant_plans: dict) -> None:
    plans = constant_plans["plans"]
    fig = utilisation(plans)
    assert_units_in_labels(fig)
    ax = fig.axes[0]
    (_, p), = plans.items()
    bars = {str(b.get_label()).split(":")[0]: b for b in ax.patches}
    assert to_rgba(bars["CPU (binds)"].get_facecolor()) == to_rgba("tab:red")
    assert to_rgba(bars["memory"].get_facecolor()) == to_rgba("tab:blue")
    assert [t.get_text() for t in ax.get_yticklabels()] == ["CPU (binds)", "memory"]
    assert bars["CPU (binds)"].get_width() == pytest.approx(
        p.per_resource["cpu_cores"].utilisation_at_safe_count * 100)
    assert labelled(fig, "capacity = 100 %")


@pytest.fixture(scope="module")
def demo() -> dict[str, Any]:
    data = load_demo()
    profiles = fit_profiles(data.samples)
    plans = plan_all(profiles, Machine.from_spec("cpus=2,memory=24GiB,cpu_saturation=1"),
                     running=running_counts(data.samples))
    return {"samples": data.samples, "profiles": profiles, "plans": plans}


def test_cdf_marks_the_quantiles_and_the_sized_figure(demo: dict[str, Any]) -> None:
    service = "demo/mem-holder"
    plans = {service: demo["plans"][service]}
    from capacity.model._profile import Profiles

    profiles = Profiles({service: demo["profiles"][service]})
    fig = demand_cdfs(profiles, plans, demo["samples"])
    assert_units_in_labels(fig)
    ax = next(ax for ax in fig.axes if ax.get_title() == f"{service}: memory")
    rp = profiles[service].resources["memory_working_set_bytes"]
    # 64 MiB a replica: the axis is in MiB (0.0629 GiB tick labels are unreadable)
    assert ax.get_xlabel() == "one replica: memory working set (MiB)"
    p95 = [ln for ln in ax.get_lines() if str(ln.get_label()).startswith("p95 = ")]
    assert np.allclose(p95[0].get_xdata(), rp.p95 / 1024**2)
    sized = [ln for ln in ax.get_lines() if str(ln.get_label()).startswith("sized per replica")]
    per = plans[service].per_resource["memory_working_set_bytes"].demand_per_replica
    assert np.allclose(sized[0].get_xdata(), per / 1024**2)
    cdf = next(ln for ln in ax.get_lines() if str(ln.get_label()).startswith("empirical CDF"))
    assert cdf.get_ydata()[-1] == pytest.approx(1.0)


def test_timeseries_sums_containers_per_service(demo: dict[str, Any]) -> None:
    samples: pd.DataFrame = demo["samples"]
    fig = usage_timeseries(samples)
    assert fig is not None
    assert_units_in_labels(fig)
    cpu = next(ax for ax in fig.axes if ax.get_title() == "CPU")
    total = next(ln for ln in cpu.get_lines() if ln.get_label() == "all containers")
    expected = samples.groupby("time")["cpu_cores"].sum(min_count=1).dropna()
    assert np.nanmax(total.get_ydata()) == pytest.approx(expected.max())
    services = {str(ln.get_label()) for ln in cpu.get_lines()}
    assert set(samples["service"].unique()) <= services
    assert usage_timeseries(None) is None


def test_a_plan_with_no_resource_planned_draws_an_empty_note(constant_plans: dict) -> None:
    from dataclasses import replace

    (_, p), = constant_plans["plans"].items()
    undefined = replace(p, safe_count=None, binding_resource=None, per_resource={
        r: ResourcePlan(resource=r, safe_count=None, capacity=None, reserve=0.0, occupied=0.0,
                        demand_per_replica=None, demand_at_safe_count=None,
                        utilisation_at_safe_count=None, reason="no samples")
        for r in p.per_resource})
    fig = demand_vs_count({p.service: undefined})
    assert fig.axes[0].get_title() == "no resource could be planned"


def test_safe_counts_bar_per_service_coloured_by_what_binds(demo: dict[str, Any]) -> None:
    """The answer at a glance: a bar per service at its safe count, coloured by its binding
    resource, a tick at what runs, most urgent (least headroom) at the top."""
    plans = demo["plans"]
    fig = safe_counts(plans)
    assert_units_in_labels(fig)
    (ax,) = [a for a in fig.axes if a.axison]
    bars = {str(b.get_label()).split(":")[0]: b for b in ax.patches}
    assert set(bars) == set(plans)
    for service, p in plans.items():
        bar = bars[service]
        assert bar.get_width() == pytest.approx(p.safe_count)
        assert to_rgba(bar.get_facecolor()) == to_rgba(RESOURCE_COLOURS[p.binding_resource])
        name = {"cpu_cores": "CPU", "memory_working_set_bytes": "memory"}[p.binding_resource]
        assert bar.get_label() == f"{service}: safe count {p.safe_count}, {name} binds"
        ((_, tick),) = labelled(fig, f"{service}: running now = ")
        assert np.allclose(tick.get_xdata(), p.running)
        # the tick sits on the bar's row
        assert np.allclose(np.mean(tick.get_ydata()), bar.get_y() + bar.get_height() / 2)
    from capacity.reporting._status import status

    rooms = status(plans).headrooms
    ticks = sorted(zip(ax.get_yticks(), ax.get_yticklabels(), strict=True), key=lambda t: -t[0])
    top_down = [label.get_text() for _, label in ticks]
    # as shown, four significant digits: equal ones are a tie, in natural name order
    shares = [float(f"{rooms[s].share:.4g}") for s in top_down]
    assert shares == sorted(shares), "least headroom first (at the top)"
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "CPU binds" in legend and "memory binds" in legend and "running now" in legend


def test_many_services_are_small_multiples_of_the_most_urgent() -> None:
    """30 services: one panel per service on its binding resource, at most MAX_PANELS, the
    services with least headroom (svc29, the hungriest, first); names in natural order."""
    from capacity.solver._testing import constant_profiles, profiles_of

    machine = Machine.from_spec("cpus=64,memory=256GiB,cpu_saturation=1")
    services = {}
    for i in range(30):
        prof = constant_profiles({"cpu_cores": 0.1 * (i + 1), "memory_working_set_bytes":
                                  2.0**28}, service=f"svc{i}")
        services.update(prof.services)
    profiles = profiles_of(*services.values())
    plans = {s: plan(profiles, machine, method="gaussian", service=s, running=1)
             for s in profiles.services}
    fig = demand_vs_count(plans, profiles)
    titles = [ax.get_title() for ax in fig.axes if ax.axison]
    assert len(titles) == MAX_PANELS
    assert titles[0] == "svc29: CPU (binds)"
    assert titles[:3] == ["svc29: CPU (binds)", "svc28: CPU (binds)", "svc27: CPU (binds)"]
    assert any("18 more service(s)" in t.get_text() for t in fig.texts)
    # each panel's safe count is its own plan's
    for ax in fig.axes[:MAX_PANELS]:
        service = ax.get_title().split(":")[0]
        safe = [ln for ln in ax.get_lines() if str(ln.get_label()).startswith("safe count = ")]
        assert np.allclose(safe[0].get_xdata(), plans[service].safe_count)
    assert len([a for a in utilisation(plans).axes if a.axison]) == MAX_PANELS


def _overlapping(boxes: list[Any]) -> list[tuple[int, int]]:
    return [(i, j) for i in range(len(boxes)) for j in range(i + 1, len(boxes))
            if boxes[i].overlaps(boxes[j])]


def test_small_multiples_share_one_legend_that_covers_no_panel(demo: dict[str, Any]) -> None:
    """Per-panel charts: no legend on a panel (it covered the data), one legend for the
    figure below the panels, each kind of line once by its generic label; the lines keep
    their own labels with values."""
    plans, profiles = demo["plans"], demo["profiles"]
    for fig in (demand_vs_count(plans, profiles), risk_curves(plans),
                demand_cdfs(profiles, plans, demo["samples"])):
        assert all(ax.get_legend() is None for ax in fig.axes)
        (legend,) = fig.legends
        texts = [t.get_text() for t in legend.get_texts()]
        assert len(texts) == len(set(texts)) and not any(" = " in t for t in texts)
        renderer = FigureCanvasAgg(fig).get_renderer()
        fig.draw(renderer)
        box = legend.get_window_extent(renderer)
        for ax in fig.axes:
            assert not box.overlaps(ax.get_tightbbox(renderer)), ax.get_title()
    texts = [t.get_text() for t in demand_vs_count(plans, profiles).legends[0].get_texts()]
    assert {"capacity", "safe count", "median total demand"} <= set(texts)
    assert labelled(demand_vs_count(plans, profiles), "capacity = ")


@pytest.mark.parametrize("n_services", [5, 30])
def test_tick_labels_do_not_overlap(demo: dict[str, Any], n_services: int) -> None:
    """On every axis of every report chart, no two tick labels overlap (a reader can read
    them), for the demo and for 30 services with counts from 1 to thousands."""
    from capacity.reporting._render import build_charts
    from capacity.solver._testing import constant_profiles, profiles_of

    if n_services == 5:
        plans, profiles, samples = demo["plans"], demo["profiles"], demo["samples"]
    else:
        machine = Machine.from_spec("cpus=64,memory=256GiB")
        services = {}
        for i in range(n_services):
            prof = constant_profiles({"cpu_cores": 0.001 * 3**(i % 9), "memory_working_set_bytes":
                                      2.0**20 * (i + 1)}, service=f"service-{i}")
            services.update(prof.services)
        profiles = profiles_of(*services.values())
        plans = {s: plan(profiles, machine, method="gaussian", service=s, running=2)
                 for s in profiles.services}
        samples = None
    for chart in build_charts(plans, profiles, samples=samples):
        if chart.figure is None:
            continue
        renderer = FigureCanvasAgg(chart.figure).get_renderer()
        chart.figure.draw(renderer)
        for ax in chart.figure.axes:
            for axis in (ax.xaxis, ax.yaxis):
                labels = [t for t in axis.get_ticklabels() if t.get_visible() and t.get_text()]
                boxes = [t.get_window_extent(renderer) for t in labels]
                assert not _overlapping(boxes), (chart.key, ax.get_title(),
                                                 [t.get_text() for t in labels])


def test_over_capacity_the_demand_axis_shows_what_is_kept_back() -> None:
    """Others' running containers already use more than the capacity: the y axis reaches
    that line (cut at 1.3x capacity, the panel showed only the capacity line)."""
    from capacity._pipeline import plan_all
    from capacity.solver._testing import constant_profiles, profiles_of

    a = constant_profiles({"cpu_cores": 0.5}, service="a")
    b = constant_profiles({"cpu_cores": 0.5}, service="b")
    profiles = profiles_of(*a.services.values(), *b.services.values())
    machine = Machine.from_spec("cpus=4,memory=16GiB")
    plans = plan_all(profiles, machine, running={"a": 2, "b": 20}, method="gaussian")
    fig = demand_vs_count({"a": plans["a"]}, profiles)
    ax = next(ax for ax in fig.axes if ax.get_title().startswith("a: CPU"))
    kept = [ln for ln in ax.get_lines() if ln.get_label() == "reserve + others running"]
    assert kept and ax.get_ylim()[1] > kept[0].get_ydata()[0] > 4


def test_the_safe_count_chart_shows_the_most_urgent_of_many() -> None:
    """100 services made a page-long chart of bars (all at 0 when over); it shows the
    MAX_SAFE_COUNT_BARS most urgent and says so."""
    from capacity._columns import CPU
    from capacity.reporting._charts import MAX_SAFE_COUNT_BARS
    from capacity.solver._testing import profiles_of

    machine = Machine.from_spec("cpus=64,memory=256GiB,cpu_saturation=1")
    profiles = profiles_of(*(constant_profiles({CPU: 0.1 * (i + 1)}, service=f"svc{i}")
                             [f"svc{i}"] for i in range(40)))
    plans = plan_all(profiles, machine, running={}, method="gaussian", valid_for_s=None)
    fig = safe_counts(plans)
    (ax,) = [a for a in fig.axes if a.axison]
    assert len(ax.patches) == MAX_SAFE_COUNT_BARS
    assert f"({MAX_SAFE_COUNT_BARS} most urgent of 40)" in ax.get_title(loc="left")
    shown = {str(b.get_label()).split(":")[0] for b in ax.patches}
    from capacity.reporting._host import urgency_order
    from capacity.reporting._status import status

    assert shown == set(urgency_order(plans, status(plans))[:MAX_SAFE_COUNT_BARS])
