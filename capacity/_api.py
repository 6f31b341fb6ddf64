"""The public functions of ``capacity``: one per pipeline stage, and what-if helpers.

Each is a thin wrapper over the stage that does the work (:mod:`capacity._pipeline`, the model,
the solver, the report writer), so ``capacity report`` and a notebook give the same answer on
the same data. Tables are pandas DataFrames with units in the column names; results are frozen
dataclasses with ``to_dict()``, ``to_frame()``, ``_repr_html_`` and ``plot(ax=None)``.

The examples run on the bundled recording (``load(demo=True)``), so they need no engine::

    samples = load(demo=True)                       # one row per container per second
    profiles = fit(samples)                         # one replica's demand per service
    plans = plan_all(profiles, "cpus=8,memory=32GiB", running=samples)
    plans.what_if(machine="cpus=16,memory=64GiB")   # the same plan on a bigger host
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, overload

import numpy as np
import pandas as pd

from ._errors import InvalidParameter
from ._settings import DEFAULTS, Settings, whole_count, whole_counts
from ._units import parse_duration
from .model._fit import LIMIT_COLUMNS, ProfileModel
from .model._profile import Profiles
from .solver._machine import Machine
from .solver._mix import FleetPlan, MixPlan
from .solver._plan import Plan

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from ._pipeline import Samples
    from .reporting._render import ReportPaths

__all__ = [
    "Plans",
    "collect",
    "fit",
    "load",
    "plan",
    "plan_all",
    "plan_mix",
    "report",
    "running_counts",
    "size",
    "what_if",
]

MachineLike = Machine | str | Mapping[str, Any]


# -- inputs ---------------------------------------------------------------------------------


def _machine(machine: MachineLike, samples: pd.DataFrame | None = None) -> Machine:
    """A :class:`Machine` from itself, a spec string (``"cpus=8,memory=32GiB"``, ``"local"``,
    a ``.toml`` path) or a mapping of spec keys, built as the CLI builds it
    (:func:`capacity._pipeline.resolve_machine`: ``"local"`` counts the disk space the
    running containers in ``samples`` use as theirs)."""
    from ._pipeline import resolve_machine

    return resolve_machine(machine, samples)


def _settings(**given: Any) -> Settings:
    """The settings from keyword arguments, those left at None taking their defaults."""
    return Settings(**{k: v for k, v in given.items() if v is not None})


def _reserve(reserve: Mapping[str, float | str]) -> dict[str, float]:
    """Reserve per resource column, from columns (values in the column's unit) or spec keys
    (``cpus=0.5``, ``memory="1GiB"``, parsed as in a machine spec)."""
    from ._columns import RESOURCES

    out: dict[str, float] = {}
    for key, value in reserve.items():
        if key in RESOURCES:
            out[key] = float(value)
        else:
            parsed = Machine.from_mapping({"cpus": 1, "reserve": {key: value}}, name="reserve")
            out.update(parsed.reserve)
    return out


def _seconds(value: float | str | None, name: str) -> float | None:
    return None if value is None else parse_duration(value, name=name)


def _frame(data: Samples) -> pd.DataFrame:
    """The samples table with the containers' declared limits joined in as columns, so that
    ``fit(samples)`` keeps them as ``capacity report`` does (it passes the containers table)."""
    df = data.samples.copy()
    containers = data.containers
    have = [c for c in LIMIT_COLUMNS if c in containers.columns]
    if have and "container_id" in containers.columns and "container_id" in df.columns:
        per = containers.drop_duplicates("container_id", keep="last").set_index("container_id")
        for column in have:
            df[column] = per[column].reindex(df["container_id"].to_numpy()).to_numpy()
    df.attrs["source"] = data.source
    return df


# -- the stages -----------------------------------------------------------------------------


def collect(
    duration: float | str = 10.0,
    *,
    interval: float | str = 1.0,
    filters: Mapping[str, Sequence[str]] | None = None,
    client: Any = None,
    reader: Any = None,
) -> pd.DataFrame:
    """Sample the running containers of the local Docker Engine and return the samples table.

    Nothing is written to disk (``capacity collect`` keeps a store; this is for a notebook).

    Parameters
    ----------
    duration : float or str
        How long to sample, seconds or a duration such as ``"30s"``, ``"5m"``.
    interval : float or str
        Sampling interval, seconds. The first sample of every container has no rate yet, so a
        container seen for one interval gives no row.
    filters : Mapping[str, Sequence[str]], optional
        Docker list filters, e.g. ``{"label": ["com.docker.compose.project=shop"]}``.
    client : docker.DockerClient, optional
        An engine client; default :func:`capacity.sources.connect` (``$DOCKER_HOST`` or the
        local socket).
    reader : CounterReader, optional
        How counters are read; default the cgroup files (the stats API where they cannot be
        read).

    Returns
    -------
    pandas.DataFrame
        The samples table (see :func:`load`).

    Raises
    ------
    DockerUnavailable
        No engine answers (the message says how to start one).
    NoContainers
        Nothing is running to sample.
    """
    from ._pipeline import collect_samples

    duration_s = parse_duration(duration, name="duration")
    interval_s = parse_duration(interval, name="interval")
    if client is None:
        from .sources._docker import connect

        client = connect()
    data = collect_samples(client, interval_s=interval_s, duration_s=duration_s,
                           filters=filters, reader=reader)
    return _frame(data)


def load(
    path: str | Path | None = None,
    *,
    store: str | Path | None = None,
    demo: bool = False,
    since: float | str | None = None,
    now: datetime | None = None,
) -> pd.DataFrame:
    """The samples table from one source: a Parquet/CSV file, the SQLite store, or the demo.

    Parameters
    ----------
    path : str or Path, optional
        A samples file (``.parquet`` or ``.csv``) as written by ``capacity collect --export``
        or :func:`capacity.store.write_samples`.
    store : str or Path, optional
        The SQLite store written by ``capacity collect``.
    demo : bool
        The bundled real recording (9 containers of 5 services, 180 s at 1 s; see
        ``capacity/data/README.md``).
    since : float or str, optional
        With ``store``: only the last ``since`` seconds (or ``"24h"``) before ``now``.
    now : datetime, optional
        The clock for ``since`` (default the current UTC time).

    Returns
    -------
    pandas.DataFrame
        One row per container per interval: ``time`` (UTC, the interval's end),
        ``container_id``, ``container_name``, ``service``, ``image``, ``interval_s``, the
        resource columns (``cpu_cores``, ``memory_working_set_bytes``, network and disk
        rates in bytes per second, ``disk_usage_bytes``) and, where known, the declared
        limits ``cpu_limit_cores`` and ``memory_limit_bytes``. ``attrs["source"]`` names
        where it came from.

    Raises
    ------
    InvalidParameter
        Not exactly one source given.
    InvalidSamples
        The source holds no samples, or a file that is not a samples table.

    Examples
    --------
    >>> samples = load(demo=True)
    >>> sorted(samples["service"].unique())[:2]
    ['demo/cpu-burner', 'demo/cpu-bursty']
    >>> samples[["cpu_cores", "memory_working_set_bytes"]].notna().all().all()
    np.True_
    """
    from ._pipeline import load_samples

    data = load_samples(store=store, since_s=_seconds(since, "since"), samples_file=path,
                        demo=demo, now=now)
    return _frame(data)


def fit(
    samples: pd.DataFrame, *, containers: pd.DataFrame | None = None, **params: Any
) -> Profiles:
    """Fit one replica's demand profile per service: ``ProfileModel(**params).fit(...)``.

    Parameters
    ----------
    samples : pandas.DataFrame
        The samples table (from :func:`load` or :func:`collect`).
    containers : pandas.DataFrame, optional
        The collector's containers table, for declared limits (:func:`load` already joins
        them into ``samples``).
    **params
        :class:`ProfileModel` parameters, e.g. ``half_life_s``, ``min_span_s``, ``window_s``.

    Returns
    -------
    Profiles
        Per service: quantiles, distribution fit, burstiness, correlations, a confidence.
        ``profiles.to_frame()`` gives one row per (service, resource).

    Examples
    --------
    >>> profiles = fit(load(demo=True))
    >>> cpu = profiles["demo/cpu-burner"].resources["cpu_cores"]
    >>> round(cpu.p95, 2)   # a busy loop under --cpus 0.3
    0.3
    >>> profiles["demo/mem-holder"].to_frame().loc["memory_working_set_bytes", "max"] > 64e6
    np.True_
    """
    model = ProfileModel(**params).fit(samples, containers=containers)
    profiles: Profiles = model.profiles_
    return profiles


def running_counts(samples: pd.DataFrame) -> dict[str, int]:
    """Containers per service that run now: each one whose last sample is under 0.9 of its
    sampling interval before the latest sample (containers read at different moments of the
    last round all count). "Now" is the table's own last instant: of an old table, those
    that ran then (``capacity report`` judges the newest sample's age against the clock and
    ends UNKNOWN when it is old; ``capacity._pipeline.stale_reason``).

    Examples
    --------
    >>> running_counts(load(demo=True))["demo/cpu-burner"]
    2
    """
    from ._pipeline import running_counts as counts

    return counts(samples)


def plan(
    profiles: Profiles,
    machine: MachineLike = "local",
    *,
    service: str | None = None,
    epsilon: float = DEFAULTS.epsilon,
    method: str = DEFAULTS.method,
    running: int = 0,
    seed: int = DEFAULTS.seed or 0,
    **options: Any,
) -> Plan:
    """How many replicas of one service fit on ``machine`` at risk ``epsilon``.

    Parameters
    ----------
    profiles : Profiles
        From :func:`fit` (or ``Profiles.from_json``).
    machine : Machine, str or Mapping
        A :class:`Machine`, a spec such as ``"cpus=8,memory=32GiB,headroom=0.1"``, ``"local"``
        (this host) or a ``.toml`` path, or a mapping of spec keys.
    service : str, optional
        Which service; may be omitted when ``profiles`` has one.
    epsilon : float
        Allowed P(overload) at a random instant for CPU, network and disk I/O, in [1e-12, 0.5).
        Memory and disk space (an overload kills) get a tenth of it.
    method : str
        ``"empirical"`` (the default, as the CLI), ``"gaussian"``, ``"quantile"``, ``"peak"``
        or ``"limits"``; every method's count is in ``plan.methods`` either way.
    running : int
        Replicas of the service running now; ``plan.more`` is counted beside them.
    seed : int
        Seed of the empirical method's Monte Carlo draws (the CLI's default).
    **options
        Any other field of :class:`capacity.Settings` (``incompressible_epsilon``,
        ``quantile_level``, ``horizon_s``, ``independent_offsets``, ``require_confidence``,
        ``accept_unseen_hours`` (plan a history that missed some hours of the day),
        ``valid_for_s``: planning horizon for drift, default 7 days; None: demand as
        recorded),
        and :func:`capacity.solver.plan`'s ``occupied``, ``ports``, ``n_draws``. Defaults
        are the CLI's (declared once, in ``capacity/_settings.py``).

    Returns
    -------
    Plan
        ``safe_count``, ``more``, ``binding_resource``, per resource the details and the risk
        curve. Undefined counts are None with the ``reason``.

    Examples
    --------
    >>> profiles = fit(load(demo=True))
    >>> p = plan(profiles, "cpus=8,memory=32GiB", service="demo/cpu-burner")
    >>> p.safe_count, p.binding_resource   # 0.3 cores each, 90 % of 8 CPUs usable: floor(7.2 / 0.3)
    (24, 'cpu_cores')
    """
    return _plan_one(profiles, _machine(machine), service=service, running=running,
                     epsilon=epsilon, method=method, seed=seed, **options)


def _plan_one(profiles: Profiles, machine: Machine, **kwargs: Any) -> Plan:
    """One plan through :class:`Settings`: its fields are taken from ``kwargs``, the rest
    go to the solver as they are."""
    from dataclasses import fields

    from .solver._plan import plan as solve

    names = {f.name for f in fields(Settings)}
    settings = kwargs.pop("settings", None) or DEFAULTS
    given = {k: kwargs.pop(k) for k in list(kwargs) if k in names}
    return solve(profiles, machine, settings=settings.replace(**given), **kwargs)


@dataclass(frozen=True)
class Plans(Mapping[str, Plan]):
    """A plan per service, as ``capacity report`` makes them: how many of each service fit
    beside what the other services use now. A read-only mapping ``service -> Plan``.

    Attributes
    ----------
    plans : Mapping[str, Plan]
        Per service.
    profiles : Profiles
        The profiles planned from (kept for :meth:`what_if` and :func:`report`).
    running : Mapping[str, int]
        Containers per service counted as running.
    settings : Settings
        What the plans were made with (epsilon, method, seed, ...; ``capacity/_settings.py``).
    source : str
        Where the samples came from (``"demo"``, ``"store <path>"``, a file name).
    samples : pandas.DataFrame or None
        The samples table ``running`` was counted from, if any: a what-if on ``"local"``
        counts the disk space those containers use as the machine's, as the plan did.
    """

    plans: Mapping[str, Plan]
    profiles: Profiles = field(repr=False, compare=False)
    running: Mapping[str, int] = field(default_factory=dict)
    settings: Settings = DEFAULTS
    source: str = ""
    samples: pd.DataFrame | None = field(default=None, repr=False, compare=False)

    @property
    def epsilon(self) -> float:
        """The risk planned at (``settings.epsilon``)."""
        return self.settings.epsilon

    @property
    def method(self) -> str:
        """The solver method (``settings.method``)."""
        return self.settings.method

    def __getitem__(self, service: str) -> Plan:
        return self.plans[service]

    def __iter__(self) -> Iterator[str]:
        return iter(self.plans)

    def __len__(self) -> int:
        return len(self.plans)

    @property
    def machine(self) -> Machine:
        """The machine every plan is for."""
        return next(iter(self.plans.values())).machine

    def to_frame(self) -> pd.DataFrame:
        """One row per service: running, safe count, more, binding resource, reason."""
        from .solver._display import plans_frame

        return plans_frame(self.plans)

    def to_dict(self) -> dict[str, Any]:
        """``plan.json`` as ``capacity report --json`` prints it (``kind: "capacity.plans"``)."""
        from .reporting._render import plans_to_dict

        return plans_to_dict(self.plans, source=self.source, settings=self.settings)

    def _repr_html_(self) -> str:
        from .solver._display import plans_html

        return plans_html(self.plans)

    def plot(self, ax: Axes | None = None) -> Axes:
        """The safe count per service as bars, what runs now marked; returns the Axes."""
        from .solver._display import plot_plans

        return plot_plans(self.plans, ax)

    def what_if(self, **changes: Any) -> Plans:
        """The same plans with ``machine``, ``reserve``, ``headroom``, ``running`` or any
        setting (``epsilon``, ``method``, ...) changed, without refitting; see
        :func:`what_if`."""
        return what_if(self, **changes)


def plan_all(
    profiles: Profiles,
    machine: MachineLike = "local",
    *,
    running: Mapping[str, int] | pd.DataFrame | None = None,
    epsilon: float = DEFAULTS.epsilon,
    method: str = DEFAULTS.method,
    source: str = "",
    settings: Settings | None = None,
    **options: Any,
) -> Plans:
    """A plan per service, as ``capacity report`` computes them (same defaults, same answer).

    Parameters
    ----------
    profiles : Profiles
        From :func:`fit`.
    machine : Machine, str or Mapping
        As in :func:`plan`.
    running : Mapping[str, int] or pandas.DataFrame, optional
        Containers per service running now, or a samples table to count them from (its last
        instant, as the CLI does). For service S, the others' running replicas occupy their
        per-replica demand times their count. Default: nothing runs. A service named here
        without a profile raises :class:`InvalidParameter`.
    epsilon, method
        As in :func:`plan`.
    source : str
        Where the data came from (shown in reports); default ``samples.attrs["source"]`` when
        ``running`` is a samples table.
    settings : Settings, optional
        All settings at once (``epsilon``, ``method``, ``options`` then change it).
    **options
        Other fields of :class:`capacity.Settings` (``seed``, ``horizon_s``, ...).

    With ``machine="local"`` and a samples table as ``running``, the disk space those
    containers use is counted as the machine's, as ``capacity report`` does: the same data
    gives the same numbers whichever way in.

    Returns
    -------
    Plans

    Examples
    --------
    >>> samples = load(demo=True)
    >>> plans = plan_all(fit(samples), "cpus=8,memory=32GiB", running=samples)
    >>> plans.to_frame().loc["demo/cpu-burner", ["running", "safe_count", "more"]].tolist()
    [2, 20, 18]
    """
    from ._pipeline import plan_all as solve_all

    samples = None
    if isinstance(running, pd.DataFrame):
        source = source or str(running.attrs.get("source", ""))
        samples = running
        counts = running_counts(running)
    else:
        counts = {str(k): v for k, v in
                  whole_counts(running or {}, "running", "plan_all").items()}
    # with ``settings``, epsilon and method change it only when given other than the default
    changes = dict(options)
    if settings is None or epsilon != DEFAULTS.epsilon:
        changes["epsilon"] = epsilon
    if settings is None or method != DEFAULTS.method:
        changes["method"] = method
    resolved = (settings or DEFAULTS).replace(**changes)
    m = _machine(machine, samples)
    plans = solve_all(profiles, m, running=counts, settings=resolved)
    return Plans(plans, profiles, counts, resolved, source, samples)


# -- what if --------------------------------------------------------------------------------


@overload
def what_if(result: Plans, profiles: Profiles | None = None, **changes: Any) -> Plans: ...
@overload
def what_if(result: Plan, profiles: Profiles | None = None, **changes: Any) -> Plan: ...
def what_if(
    result: Plan | Plans,
    profiles: Profiles | None = None,
    *,
    machine: MachineLike | None = None,
    epsilon: float | None = None,
    reserve: Mapping[str, float | str] | None = None,
    headroom: float | None = None,
    running: Mapping[str, int] | int | None = None,
    method: str | None = None,
    **options: Any,
) -> Plan | Plans:
    """The same plan with one thing changed, from the same profiles (no refitting).

    Parameters
    ----------
    result : Plan or Plans
        A plan from :func:`plan`, or plans from :func:`plan_all`.
    profiles : Profiles, optional
        The profiles ``result`` was planned from: needed for a :class:`Plan`; a
        :class:`Plans` keeps its own.
    machine : Machine, str or Mapping, optional
        Another machine (its own reserves and headroom, unless given here too).
    epsilon : float, optional
        Another risk. Memory's stays a tenth of it unless the plan set it otherwise.
    reserve : Mapping, optional
        Reserves merged over the machine's, by resource column (values in the column's
        unit) or spec key (``{"memory": "2GiB", "cpus": 0.5}``).
    headroom : float, optional
        Another share of each capacity kept free, in [0, 1).
    running : Mapping[str, int] or int, optional
        Another service mix running now: counts per service for :class:`Plans` (the others
        occupy their demand), or the service's own count for a :class:`Plan`.
    method : str, optional
        Another solver method.
    **options
        Any other field of :class:`capacity.Settings` (``seed``, ``horizon_s``,
        ``quantile_level``, ...); for a :class:`Plan` also :func:`capacity.solver.plan`
        options (``n_draws``, ``occupied``, ``ports``). Every setting not changed is the one
        the plan was made with (``plan.settings``), so nothing is guessed.

    Returns
    -------
    Plan or Plans
        Of the same type as ``result``.

    Examples
    --------
    >>> samples = load(demo=True)
    >>> profiles = fit(samples)
    >>> p = plan(profiles, "cpus=8,memory=32GiB", service="demo/cpu-burner")
    >>> what_if(p, profiles, machine="cpus=16,memory=64GiB").safe_count
    48
    >>> what_if(p, profiles, reserve={"cpus": 2}).safe_count
    17
    >>> plans = plan_all(profiles, "cpus=8,memory=32GiB", running=samples)
    >>> plans.what_if(running={"demo/cpu-bursty": 6})["demo/cpu-burner"].safe_count
    14
    """
    from dataclasses import fields

    names = {f.name for f in fields(Settings)}
    changed = {k: options.pop(k) for k in list(options) if k in names}
    if epsilon is not None:
        changed["epsilon"] = epsilon
    if method is not None:
        changed["method"] = method
    if isinstance(result, Plans):
        if options:
            raise InvalidParameter("options", "what_if", "fields of Settings for Plans",
                                   sorted(options))
        if running is not None and not isinstance(running, Mapping):
            raise InvalidParameter("running", "what_if", "counts per service for Plans",
                                   running)
        from ._pipeline import plan_all as solve_all

        profiles = profiles or result.profiles
        m = _changed_machine(result.machine, machine, reserve, headroom, result.samples)
        counts = dict(running if running is not None else result.running)
        settings = result.settings.replace(**changed)
        return Plans(solve_all(profiles, m, running=counts, settings=settings), profiles,
                     counts, settings, result.source, result.samples)
    if profiles is None:
        raise InvalidParameter("profiles", "what_if", "the Profiles the plan was made from",
                               None)
    if isinstance(running, Mapping):
        raise InvalidParameter("running", "what_if", "an int for one Plan", dict(running))
    m = _changed_machine(result.machine, machine, reserve, headroom)
    kwargs: dict[str, Any] = {
        "service": result.service,
        "running": running if running is not None else result.running,
        "occupied": {r: rp.occupied for r, rp in result.per_resource.items() if rp.occupied},
        "ports": result.ports,
        "settings": result.settings,
        **changed,
    }
    kwargs.update(options)
    return _plan_one(profiles, m, **kwargs)


def _changed_machine(
    current: Machine, machine: MachineLike | None, reserve: Mapping[str, float | str] | None,
    headroom: float | None, samples: pd.DataFrame | None = None,
) -> Machine:
    m = _machine(machine, samples) if machine is not None else current
    if reserve is not None or headroom is not None:
        m = m.with_reserve(_reserve(reserve or {}), headroom=headroom)
    return m


def plan_mix(
    profiles: Profiles,
    machine: MachineLike,
    mix: Mapping[str, int],
    *,
    epsilon: float = DEFAULTS.epsilon,
    method: str = DEFAULTS.method,
    seed: int = DEFAULTS.seed or 0,
    **options: Any,
) -> MixPlan:
    """The largest multiple of a service mix (``{"web": 3, "worker": 1}``) that fits.

    The services add up with their measured correlation (they peak together or not), so the
    answer differs from planning each alone. ``options`` go to
    :func:`capacity.solver.ratio` (``ports``, ``incompressible_epsilon``, ...).

    Returns
    -------
    MixPlan
        ``multiple`` (copies of the mix), ``counts`` per service, ``binding_resource``.

    Examples
    --------
    >>> profiles = fit(load(demo=True))
    >>> mix = plan_mix(profiles, "cpus=8,memory=32GiB",
    ...                {"demo/cpu-burner": 2, "demo/cpu-bursty": 1})
    >>> mix.multiple, mix.binding_resource
    (6, 'cpu_cores')
    """
    from .solver._mix import ratio

    return ratio(profiles, _machine(machine), mix, epsilon=epsilon, method=method,
                 rng=np.random.default_rng(seed), **options)


def size(
    profiles: Profiles,
    machine: MachineLike,
    replicas: int | Mapping[str, int],
    *,
    service: str | None = None,
    spare: int = 0,
    epsilon: float = DEFAULTS.epsilon,
    method: str = DEFAULTS.method,
    seed: int = DEFAULTS.seed or 0,
    **options: Any,
) -> FleetPlan:
    """How many hosts of ``machine`` hold ``replicas``, plus ``spare`` hosts (N + k).

    Parameters
    ----------
    replicas : int or Mapping[str, int]
        A count of ``service`` (which may be omitted with one profiled service), or counts
        per service (a mix shares each host).
    spare : int
        Hosts on top of those needed.
    epsilon, method, seed
        As in :func:`plan`. ``options`` go to :func:`capacity.solver.size_fleet`.

    Returns
    -------
    FleetPlan
        ``hosts`` (needed + spare), ``hosts_needed``, ``per_host`` per service.

    Examples
    --------
    >>> profiles = fit(load(demo=True))
    >>> fleet = size(profiles, "cpus=8,memory=32GiB", 120, service="demo/cpu-burner", spare=1)
    >>> fleet.hosts_needed, fleet.hosts
    (5, 6)
    """
    from .solver._mix import size_fleet
    from .solver._plan import pick_service

    if isinstance(replicas, Mapping):
        counts = {str(k): v for k, v in whole_counts(replicas, "replicas", "size").items()}
    else:
        counts = {pick_service(profiles, service).service:
                  whole_count(replicas, "replicas", "size")}
    return size_fleet(profiles, _machine(machine), counts, spare=spare, epsilon=epsilon,
                      method=method, rng=np.random.default_rng(seed), **options)


def report(
    plans: Plans | Mapping[str, Plan] | Plan,
    profiles: Profiles | None = None,
    *,
    out_dir: str | Path = "reports",
    name: str | None = None,
    samples: pd.DataFrame | None = None,
    source: str | None = None,
    warn_headroom: float = DEFAULTS.warn_headroom,
    png: bool = False,
) -> ReportPaths:
    """Write a report folder (plan.json, profiles.json, report.html, report.md, the charts as
    SVG files).

    Parameters
    ----------
    plans : Plans, Mapping[str, Plan] or Plan
        What to report; :class:`Plans` carry their profiles and source.
    profiles : Profiles, optional
        Needed unless ``plans`` is a :class:`Plans`.
    out_dir : str or Path
        Parent folder, created if missing.
    name : str, optional
        Folder name (default ``<host>-<UTC time>``); an existing one is replaced.
    samples : pandas.DataFrame, optional
        The samples table, for the usage time series and the empirical CDFs.
    source : str, optional
        Where the data came from, shown in the report.
    warn_headroom : float
        Headroom share below which the report's status is WARNING (the CLI's 20 %).
    png : bool
        Also write each chart as a PNG file (drawn a second time).

    Returns
    -------
    ReportPaths
        ``folder``, ``plan_json``, ``report_html``, ... and the ops ``status``.
    """
    from .reporting._render import write_report

    if isinstance(plans, Plan):
        mapping: Mapping[str, Plan] = {plans.service: plans}
    elif isinstance(plans, Plans):
        mapping = plans.plans
        profiles = profiles or plans.profiles
        source = source if source is not None else plans.source
    else:
        mapping = plans
    if profiles is None:
        raise InvalidParameter("profiles", "report", "the Profiles the plans were made from",
                               None)
    if source is None:
        source = str(samples.attrs.get("source", "")) if samples is not None else ""
    return write_report(mapping, profiles, out_dir=out_dir, name=name, source=source,
                        samples=samples, warn_headroom=warn_headroom, png=png)
