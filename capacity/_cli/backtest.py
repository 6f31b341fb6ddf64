"""``capacity backtest``: how often a plan made on the earlier history is violated later.

Exit status: 0 when the default method's violation rate is within epsilon for every resource,
2 (critical) when it is not, 3 when the run failed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from ..reporting._status import CRITICAL, OK
from ._common import DURATION, settings_options
from ._prometheus import PrometheusSource, prometheus_options


@click.command()
@settings_options("epsilon", "accept_unseen_hours")
@click.option("--samples", "samples_path", type=click.Path(path_type=Path, exists=True),
              default=None, help="A samples table (Parquet or CSV, as 'capacity' writes it).")
@click.option("--containers", "containers_path", type=click.Path(path_type=Path, exists=True),
              default=None, help="With --samples: the containers table (declared limits).")
@click.option("--store", "store_path", type=click.Path(path_type=Path, exists=True),
              default=None, help="The SQLite store the collector wrote.")
@click.option("--gcd-vms", type=click.Path(path_type=Path, exists=True, file_okay=False),
              default=None, help="The google2011-gcd-vms GCD_VMs folder (public trace).")
@click.option("--alibaba", type=click.Path(path_type=Path, exists=True, dir_okay=False),
              default=None, help="An alibaba2018 container_usage.csv (public trace).")
@click.option("--alibaba-machines", type=click.Path(path_type=Path, exists=True, dir_okay=False),
              default=None, help="An alibaba2018 machine_usage.csv (public trace; each machine "
                                 "one one-replica service).")
@click.option("--machine", "machine_spec", default=None,
              help="Machine planned for, in the history's units, e.g. cpus=8,memory=64GiB "
                   "(split protocol; the day-shift protocol plans for 20 x the training mean).")
@click.option("--protocol", type=click.Choice(["split", "day-shift"]), default="split",
              show_default=True,
              help="split: fit on the first part, replay the recorded replicas on the rest. "
                   "day-shift: one-replica histories, replicas as whole-day shifted copies, "
                   "train on whole days, test on the following days, truth = largest N over "
                   "C = 20 x training mean in at most 1 % of instants.")
@click.option("--fleet", is_flag=True,
              help="With --protocol day-shift: every container its own one-replica service; "
                   "print unsafe share and packing per method beside the krr and VPA recipes.")
@click.option("--train-days", type=click.IntRange(1, None), default=None,
              help="day-shift: whole days with data that train (default half of them).")
@click.option("--service", default=None, help="Which service (when the history has several).")
@click.option("--train-fraction", type=click.FloatRange(0, 1, min_open=True, max_open=True),
              default=0.5, show_default=True, help="Share of the history that trains.")
@click.option("--no-hold-back", is_flag=True,
              help="Do not hold back for the drift measured inside the training window.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option("--since", "since_s", type=DURATION, default=None,
              help="With --prometheus: how far back (default 1d).")
@prometheus_options
def backtest(
    samples_path: Path | None, containers_path: Path | None, store_path: Path | None,
    gcd_vms: Path | None, alibaba: Path | None, alibaba_machines: Path | None,
    machine_spec: str | None, protocol: str, fleet: bool, train_days: int | None,
    service: str | None, settings: Any,
    train_fraction: float, no_hold_back: bool, as_json: bool, since_s: float | None,
    prometheus: PrometheusSource | None,
) -> int:
    """Plan on the earlier part of a history, count violations on the later part.

    Every solver method is backtested; the drift between the halves of the training window
    sets a hold-back margin per method (reported).
    """
    from ..backtest import backtest as run_backtest
    from ..backtest import load_alibaba_containers, load_alibaba_machines, load_gcd_vms
    from ..solver._machine import Machine

    given = [p for p in (samples_path, store_path, gcd_vms, alibaba, alibaba_machines,
                         prometheus) if p is not None]
    containers = None
    if len(given) != 1:
        raise click.UsageError("give exactly one of --samples, --store, --gcd-vms, --alibaba, "
                               "--alibaba-machines, --prometheus")
    if protocol == "split" and machine_spec is None:
        raise click.UsageError("--machine is required with --protocol split")
    if fleet and protocol != "day-shift":
        raise click.UsageError("--fleet needs --protocol day-shift")
    if since_s is not None and prometheus is None:
        raise click.UsageError("--since needs --prometheus")
    if prometheus is not None:
        data = prometheus.load(since_s)
        samples, containers = data.samples, data.containers
    elif samples_path is not None:
        from ..store import read_samples

        samples = read_samples(samples_path)
        if containers_path is not None:
            from ..store import read_table

            containers = read_table(containers_path)
    elif store_path is not None:
        from ..store import Store

        with Store(store_path, read_only=True) as store:
            samples = store.samples()
            containers = store.containers()  # declared limits, for the limits method
    elif gcd_vms is not None:
        samples = load_gcd_vms(gcd_vms)
    elif alibaba_machines is not None:
        samples = load_alibaba_machines(alibaba_machines)
    else:
        assert alibaba is not None  # exactly one source was given
        samples = load_alibaba_containers(alibaba)
    if protocol == "day-shift":
        return _day_shift(samples, service=service, fleet=fleet, train_days=train_days,
                          epsilon=settings.epsilon, as_json=as_json,
                          accept_unseen_hours=settings.accept_unseen_hours)
    assert machine_spec is not None  # checked above
    result = run_backtest(samples, Machine.from_spec(machine_spec), containers=containers,
                          service=service,
                          epsilon=settings.epsilon, train_fraction=train_fraction,
                          hold_back=not no_hold_back)
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2, default=str))
    else:
        _print(result)
    return OK if result.default.within_epsilon else CRITICAL


def _print(result: Any) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False, markup=False,
                      width=None if Console().is_terminal else 160)
    w = result.windows
    console.print(f"{result.service}: {result.replicas} replicas; trained {w['train']['start']}"
                  f" .. {w['train']['end']}, tested to {w['test']['end']}; best count on the "
                  f"test window {result.oracle_count}")
    table = Table(title=f"backtest at epsilon {result.epsilon:g}")
    for col in ("method", "planned", "margin", "count", "violations", "without margin",
                "within eps", "used"):
        table.add_column(col, justify="left" if col == "method" else "right")
    for m, b in result.methods.items():
        if b.count is None:
            table.add_row(m, "-", "-", "-", "-", "-", "-", b.reason[:60])
            continue
        used = ", ".join(f"{r.split('_')[0]} {u:.0%}" for r, u in
                         b.utilisation_by_resource.items())
        table.add_row(m + (" (default)" if m == result.default_method else ""),
                      str(b.planned_count), f"{b.margin:.0%}", str(b.count),
                      f"{b.violation_rate:.4f}", f"{b.violation_rate_without_margin:.4f}",
                      "yes" if b.within_epsilon else "NO", used)
    console.print(table)


def _day_shift(samples: Any, *, service: str | None, fleet: bool, train_days: int | None,
               epsilon: float, as_json: bool, accept_unseen_hours: bool = False) -> int:
    """The day-shift protocol; exit 0 when the default method is never above the truth
    (fleet: unsafe share within 5 %), 2 otherwise."""
    from rich.console import Console
    from rich.table import Table

    from ..backtest import fleet_shift_backtest, shift_backtest
    from ..model._fit import UNSEEN_HOURS_WARNING

    console = Console(highlight=False, markup=False,
                      width=None if Console().is_terminal else 160)
    if not fleet:
        r = shift_backtest(samples, service=service, train_days=train_days, epsilon=epsilon,
                           accept_unseen_hours=accept_unseen_hours)
        if as_json:
            click.echo(json.dumps(r.to_dict(), indent=2, default=str))
        else:
            console.print(
                f"{r.service}: one replica; replicas as whole-day shifted copies; trained on "
                f"{r.train_days} day(s), tested on the next {r.test_days}; truth {r.truth} "
                f"(binding {r.binding or '-'})")
            table = Table(title="day-shift backtest")
            for col in ("method", "count", "unsafe", "packing"):
                table.add_column(col, justify="left" if col == "method" else "right")
            for m, n in r.predictions.items():
                pk = r.packing(m)
                table.add_row(m, "-" if n is None else str(n),
                              "-" if n is None else ("YES" if r.unsafe(m) else "no"),
                              "-" if pk is None else f"{pk:.0%}")
            console.print(table)
            if "empirical" in r.reasons:  # the default method: say why there is no count
                reason = r.reasons["empirical"]
                console.print(f"empirical: no count: {reason}"
                              + (" (plan it anyway: --accept-unseen-hours)"
                                 if reason.startswith(UNSEEN_HOURS_WARNING) else ""))
        return OK if not r.unsafe("empirical") else CRITICAL
    f = fleet_shift_backtest(samples, train_days=train_days, epsilon=epsilon,
                             accept_unseen_hours=accept_unseen_hours)
    summary = f.summary()
    if as_json:
        click.echo(json.dumps(f.to_dict(), indent=2, default=str))
    else:
        console.print(f"protocol: {f.protocol}")
        console.print(f"{len(f.results)} services scored, {len(f.skipped)} skipped"
                      + (f" (e.g. {next(iter(f.skipped.values()))})" if f.skipped else ""))
        table = Table(title="day-shift fleet backtest")
        for col in ("method", "scored", "undefined", "unsafe", "packing when safe"):
            table.add_column(col, justify="left" if col == "method" else "right")
        for m, v in summary.items():
            label = m + (" (default)" if m == f.default_method else "") + (
                " recipe" if m in ("krr", "vpa") else "")
            table.add_row(label, str(v["scored"]), str(v["undefined"]),
                          "-" if v["unsafe"] is None else f"{v['unsafe']:.1%}",
                          "-" if v["packing"] is None else f"{v['packing']:.0%}")
        console.print(table)
        why: dict[str, int] = {}
        for r in f.results:
            if r.predictions.get(f.default_method) is None:
                head = r.reasons.get(f.default_method, "undefined").split(":")[0]
                why[head] = why.get(head, 0) + 1
        for head, k in sorted(why.items(), key=lambda kv: -kv[1]):
            console.print(f"{f.default_method} undefined for {k} service(s): {head}"
                          + (" (plan them anyway: --accept-unseen-hours)"
                             if head.startswith(UNSEEN_HOURS_WARNING) else ""))
    unsafe = summary[f.default_method]["unsafe"]
    return OK if unsafe is not None and unsafe <= 0.05 else CRITICAL
