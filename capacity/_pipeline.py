"""Glue the stages together: collect or load samples, fit, plan per service.

The CLI and the public API both call these functions, so a notebook and ``capacity report``
give the same answer on the same data.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import pandas as pd

from ._collect import Collection, Collector, DockerEngine, choose_reader
from ._columns import DISK_USAGE
from ._errors import InsufficientData, InvalidParameter, InvalidSamples, NoContainers
from ._settings import DEFAULTS, Settings, whole_counts
from .model._fit import ProfileModel
from .model._profile import Profiles
from .solver._machine import Machine, local_spec_keys
from .solver._plan import Plan, occupied_by_others, plan

__all__ = [
    "DEMO_DESCRIPTION",
    "Samples",
    "collect_samples",
    "disk_in_use_bytes",
    "load_demo",
    "load_prometheus",
    "load_samples",
    "plan_all",
    "recording_note",
    "resolve_machine",
    "running_counts",
    "stale_after_s",
    "stale_reason",
]

DEMO_DESCRIPTION = "the bundled recording (capacity/data/, see capacity/data/README.md)"


@dataclass(frozen=True)
class Samples:
    """A samples table with the counters and container tables it was computed from.

    ``counters`` is empty when the source did not need one to compute the samples: a samples
    file, and the store (its :meth:`~capacity.store.Store.samples` computes rates in one pass;
    reading every counter again cost a second full scan, 6 M rows in ~10 s); and Prometheus
    (its counters are dropped once turned into rates: a fleet's week is millions of rows).
    Read them with :meth:`capacity.store.Store.counters` or
    :func:`capacity.sources._prometheus.read_prometheus` when wanted.
    """

    samples: pd.DataFrame
    counters: pd.DataFrame
    containers: pd.DataFrame
    interval_s: float
    source: str
    #: per service, what the source found and handled (resets, gaps, duplicate series);
    #: :func:`fit_profiles` adds them to the profile's warnings
    warnings: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


def _to_samples(
    counters: pd.DataFrame, containers: pd.DataFrame, interval_s: float, source: str
) -> Samples:
    from .store._rates import counters_to_samples

    samples = counters_to_samples(counters, containers, interval_s=interval_s)
    return Samples(samples, counters, containers, interval_s, source)


def collect_samples(
    client: Any,
    *,
    interval_s: float,
    duration_s: float,
    filters: Mapping[str, Any] | None = None,
    reader: Any = None,
    on_round: Callable[[Collector, float], None] | None = None,
) -> Samples:
    """Sample the engine's running containers in memory and return the samples table.

    Without a ``reader``, :func:`capacity._collect.choose_reader` picks the cgroup files when
    they are readable for these containers (local engine, root or read access), else the
    Engine's stats API (remote ``DOCKER_HOST``, private cgroup namespace), as
    ``capacity collect --source auto`` does.
    """
    engine = DockerEngine(client, filters=filters)
    running = engine.containers()
    if reader is None:
        reader = choose_reader(client, running)
    if not running:
        raise NoContainers(
            "no running containers to sample on this engine: start some, or try "
            "'capacity report --demo' to plan from the bundled recording"
        )
    collection = Collection()
    Collector(engine, reader, collection).run(
        interval_s=interval_s, duration_s=duration_s, on_round=on_round
    )
    return _to_samples(
        collection.counters_frame(), collection.containers_frame(), interval_s, "engine"
    )


def load_demo() -> Samples:
    """The bundled real recording (see ``capacity/data/README.md`` for how it was made)."""
    data = resources.files("capacity") / "data"
    with resources.as_file(data / "demo_counters.csv.gz") as p:
        counters = pd.read_csv(p, compression="gzip")
    with resources.as_file(data / "demo_containers.csv") as p:
        containers = pd.read_csv(p)
    for frame, cols in ((counters, ("time", "started_at")), (containers, ("started_at",))):
        for col in cols:
            frame[col] = pd.to_datetime(frame[col], utc=True, format="ISO8601")
    steps = counters.groupby("container_id", observed=True)["monotonic_s"].diff()
    interval_s = float(steps.median())
    return _to_samples(counters, containers, interval_s, "demo")


def since_time(since_s: float | None, now: datetime | None = None) -> datetime | None:
    """The start of "the last ``since_s`` seconds" before ``now`` (default: now, UTC); None
    (everything) for None or a window reaching before 1970 (``--since 1e308`` was an
    OverflowError in ``timedelta``)."""
    if since_s is None:
        return None
    now = now or datetime.now(UTC)
    if since_s >= now.timestamp():
        return None
    return now - timedelta(seconds=since_s)


def load_samples(
    *,
    store: str | Path | None = None,
    since_s: float | None = None,
    samples_file: str | Path | None = None,
    demo: bool = False,
    now: datetime | None = None,
) -> Samples:
    """Load a samples table from exactly one source: the SQLite store (``since_s`` seconds
    back from ``now``, default all), a Parquet/CSV samples file, or the bundled recording.

    Raises :class:`InvalidParameter` unless exactly one source is given, and
    :class:`InvalidSamples` when the source holds no samples.
    """
    chosen = [name for name, v in (("store", store), ("samples", samples_file), ("demo", demo))
              if v]
    if len(chosen) != 1:
        raise InvalidParameter(
            "source", "load_samples", "exactly one of store, samples_file or demo", chosen
        )
    if demo:
        return load_demo()
    if samples_file is not None:
        from .store._files import read_samples

        samples = read_samples(samples_file)
        interval_s = float(samples["interval_s"].median()) if len(samples) else 0.0
        return Samples(samples, pd.DataFrame(), pd.DataFrame(), interval_s, str(samples_file))
    from .store._sqlite import Store

    since = since_time(since_s, now)
    with Store(Path(str(store)), read_only=True) as st:
        samples = st.samples(since=since)
        containers = st.containers()
    if samples.empty:
        window = "" if since_s is None else f" in the last {since_s:g} s"
        raise InvalidSamples(
            f"the store {store} holds no samples{window}: run 'capacity collect' first, "
            "or widen --since"
        )
    interval_s = float(samples["interval_s"].median())
    return Samples(samples, pd.DataFrame(), containers, interval_s, f"store {store}")


def load_prometheus(
    api: Any,
    *,
    since_s: float,
    step_s: float | None = None,
    selector: str | None = None,
    group_by: Any = None,
    now: datetime | None = None,
) -> Samples:
    """Load a samples table from Prometheus' cAdvisor/kubelet series (the last ``since_s`` s).

    ``api`` is a :class:`capacity.sources._prometheus.PrometheusAPI` or a base URL. The
    counters are turned into rates by the same function as the store's
    (:func:`capacity.store._rates.counters_to_samples`); what was found and handled in the
    series (resets, gaps, duplicates) goes into ``Samples.warnings``. Raises
    :class:`PrometheusError` when the server fails, :class:`InvalidSamples` when it holds
    no container series in the window.

    The samples' string columns (``container_id``, ``container_name``, ``service``,
    ``image``) are categorical here, not ``str`` as from the store: a fleet's week is millions
    of rows over a few hundred containers (7 days x 200: 4 M rows, ~500 MiB as strings). Their
    values, and every other column, are those :func:`counters_to_samples` gives.
    """
    from .sources._prometheus import DEFAULT_GROUP_BY, PrometheusAPI, read_prometheus

    own = isinstance(api, str)
    client = PrometheusAPI(api) if own else api
    try:
        data = read_prometheus(client, since_s=since_s, step_s=step_s, selector=selector,
                               group_by=group_by or DEFAULT_GROUP_BY, now=now)
    finally:
        if own:
            client.close()
    containers, warnings = data.containers, dict(data.warnings)
    parts = _rates_in_batches(data.counters, containers)
    del data  # the counters table: its rows are in the parts now
    samples = _concat_parts(parts)
    if samples.empty:
        raise InvalidSamples(
            f"Prometheus at {client.url} holds no container series (cAdvisor names, "
            f"image label set) with two scrapes or more in the last {since_s:g} s"
            f"{' matching ' + selector if selector else ''}: check --selector and --since"
        )
    interval_s = float(samples["interval_s"].median())
    # the counters are not kept (as for the store): a fleet's week is millions of rows, held
    # through the fit for nothing (7 days x 200 containers: ~1 GiB of the peak)
    return Samples(samples, pd.DataFrame(), containers, interval_s,
                   f"prometheus {client.url}", warnings)


#: counters rows turned into rates at once by :func:`load_prometheus`: a fleet's week is
#: millions of rows, and the conversion's temporaries are several times the table
_RATES_BATCH_ROWS = 500_000


#: string columns of the samples table kept as categories by :func:`load_prometheus`
_CATEGORY_COLUMNS = ("container_id", "container_name", "service", "image")


def _rates_in_batches(counters: pd.DataFrame, containers: pd.DataFrame,
                      batch_rows: int = _RATES_BATCH_ROWS) -> list[dict[str, Any]]:
    """``counters_to_samples`` over groups of whole containers of at most about
    ``batch_rows`` rows: each group's samples columns (a bounded peak), the string ones as
    categoricals. :func:`_concat_parts` makes the table of them."""
    import numpy as np

    from .store._rates import counters_to_samples

    def columns(frame: pd.DataFrame) -> dict[str, Any]:
        return {c: (frame[c].astype("category").array if c in _CATEGORY_COLUMNS
                    else frame[c].array) for c in frame.columns}

    if len(counters) <= batch_rows:
        return [columns(counters_to_samples(counters, containers))]
    codes, _ = pd.factorize(counters["container_id"], sort=True)
    sizes = np.bincount(codes)
    batch = (np.cumsum(sizes) - sizes) // batch_rows  # batch of each container
    row_batch = batch[codes]
    return [columns(counters_to_samples(counters[row_batch == b], containers))
            for b in np.unique(batch)]


def _concat_parts(parts: list[dict[str, Any]]) -> pd.DataFrame:
    """The parts of :func:`_rates_in_batches` one after another, as one table (fresh index).

    Column by column, each part's column dropped once copied: the peak is the table plus
    one column, not twice the table (``pd.concat`` of the parts holds both). Categoricals
    get the union of the parts' categories."""
    from pandas.api.types import union_categoricals

    names = list(parts[0])
    data: dict[str, Any] = {}
    for name in names:
        pieces = [part.pop(name) for part in parts]
        if isinstance(pieces[0], pd.Categorical):
            data[name] = union_categoricals(pieces)
        else:
            data[name] = pd.concat([pd.Series(p, copy=False) for p in pieces],
                                   ignore_index=True).array
        del pieces
    return pd.DataFrame(data, copy=False)


def disk_in_use_bytes(samples: pd.DataFrame) -> float:
    """Disk space the containers running at the last instant use now, in bytes.

    Each one's latest ``disk_usage_bytes`` reading (sampled slowly, NaN between readings),
    summed; 0 when none was read. ``Machine.local(disk_in_use_bytes=...)`` adds it back to the
    free space, since the plan also counts it as occupied by those containers.
    """
    if samples.empty or DISK_USAGE not in samples.columns:
        return 0.0
    running = _latest_rows(samples)["container_id"]
    read = samples[samples["container_id"].isin(set(running))].dropna(subset=[DISK_USAGE])
    if read.empty:
        return 0.0
    latest = read.sort_values("time").groupby("container_id", observed=True)[DISK_USAGE].last()
    return float(latest.sum())


#: a container runs now when its last sample is less than this share of its sampling
#: interval before the latest sample of all. The store stamps a round once; another tool's
#: export (Prometheus: each target at its own scrape time) stamps each container when it
#: read it, so one round spreads over most of the interval: a container read 6 s before
#: another in a 10 s round runs. One stopped a round before the end lags a whole interval
#: or more: it does not. (Half the interval dropped the first of those: 2 of 3 running.)
RUNNING_WINDOW_SHARE = 0.9
#: the intervals before its last sample whose least says what a container's sampling
#: interval is now (a collector restarted at 10 s after a day at 1 s samples at 10 s)
RECENT_INTERVALS = 5
#: the least window, seconds: two reads of one instant (no interval known anywhere)
_SAME_INSTANT_S = 1e-3


def _latest_rows(samples: pd.DataFrame, latest: Any = None) -> pd.DataFrame:
    """The last row of each container that runs now: its last sample is less than
    :data:`RUNNING_WINDOW_SHARE` of its sampling interval before the latest sample of all.
    A container's interval is the least of its last :data:`RECENT_INTERVALS` intervals
    (``interval_s`` where the samples carry it, else the steps between its samples); one
    with a single sample takes the median of the other containers' (it started in the last
    round). A container stopped one round before the end is not running; one read 6 s into
    the last 10 s round, before the others, is. Comparing with the latest instant alone
    counted only the containers read last in a round. ``latest``: a later instant the
    source is known to have sampled (the store's newest round, which may hold no container
    when every one stopped), taken as the latest when it is later."""
    # a fresh index: a table concatenated from two has repeated labels, which the groupby
    # of the intervals below cannot align on
    ordered = samples.sort_values("time", kind="stable").reset_index(drop=True)
    by = ordered.groupby("container_id", observed=True, sort=False)
    last = by.tail(1).set_index("container_id", drop=False)
    step_s = by["time"].diff().dt.total_seconds()
    if "interval_s" in ordered.columns:  # the samples' own intervals where they are known
        step_s = pd.to_numeric(ordered["interval_s"], errors="coerce").fillna(step_s)
    recent = (step_s.dropna().groupby(ordered["container_id"], observed=True)
              .tail(RECENT_INTERVALS))
    # the least of them: a missed round lengthens an interval (up to 2x is no gap), never
    # shortens one, and a median of lengthened ones kept a stopped container "running"
    interval_s = recent.groupby(ordered["container_id"], observed=True).min()
    interval_s = interval_s.reindex(last.index)
    known = interval_s.dropna()
    fallback = float(known.median()) if len(known) else 0.0
    window_s = (RUNNING_WINDOW_SHARE * interval_s.fillna(fallback)).clip(lower=_SAME_INSTANT_S)
    now = ordered["time"].iloc[-1]
    if latest is not None and not pd.isna(latest) and pd.Timestamp(latest) > now:
        now = pd.Timestamp(latest)
    return last[last["time"] > now - pd.to_timedelta(window_s, unit="s")]


#: the newest sample is too old to say what runs now when it is more than this many
#: sampling intervals before now (a collector that missed a few rounds is still current) ...
STALE_AFTER_INTERVALS = 10.0
#: ... and more than this many seconds (a 1 s collector paused for a minute is not "stale";
#: a cron report every few minutes from a store written each minute stays current)
STALE_AFTER_MIN_S = 600.0


def stale_after_s(interval_s: float) -> float:
    """The age in seconds past which the newest sample no longer tells what runs now:
    ``max(STALE_AFTER_INTERVALS * interval_s, STALE_AFTER_MIN_S)`` (10 intervals, at least
    10 min). A non-finite or non-positive ``interval_s`` counts as 0 (the 10 min floor)."""
    step = float(interval_s) if interval_s == interval_s and 0 < interval_s < float("inf") \
        else 0.0
    return max(STALE_AFTER_INTERVALS * step, STALE_AFTER_MIN_S)


def stale_reason(samples: pd.DataFrame, interval_s: float, *,
                 now: datetime | None = None, newest_round: Any = None) -> str | None:
    """Why "what runs now" cannot be told from ``samples``, or None when it can.

    The newest sample is compared with ``now`` (timezone-aware; default the clock, UTC):
    older than :func:`stale_after_s` of ``interval_s`` (the sampling interval, seconds), the
    containers of the last instant are not "running now" (the collector stopped, or the
    store or file is an old one), so their counts, the "more fit beside them" and the
    headroom are unknown. The safe counts, sized from the whole history, stand.

    ``newest_round``: the source's newest round when later than its newest sample (a
    collector still writing rounds after every container stopped is current: nothing runs).

    Trap: a newest sample in the future (clock skew) is not stale. A recording (``--demo``,
    a ``--samples`` file) is not judged: :func:`recording_note` states its age.
    """
    newest = _newest(samples)
    if newest is None:
        return None
    if newest_round is not None and not pd.isna(newest_round) and (
            pd.isna(newest) or pd.Timestamp(newest_round) > newest):
        newest = pd.Timestamp(newest_round)
    if pd.isna(newest):
        return None
    if newest.tzinfo is None:
        newest = newest.tz_localize(UTC)
    now = now or datetime.now(UTC)
    age_s = (pd.Timestamp(now) - newest).total_seconds()
    bound_s = stale_after_s(interval_s)
    if age_s <= bound_s:
        return None
    return (f"the newest sample is {_age_text(age_s)} old ({newest:%Y-%m-%d %H:%M:%S} UTC; "
            f"current means within {_age_text(bound_s)}: 10 sampling intervals, at least "
            "10 min): what runs now is unknown, so no headroom is judged and the containers "
            "counted as running are those of the newest sample; the safe counts from the "
            "history stand. Check that 'capacity collect' still writes this source")


def recording_note(samples: pd.DataFrame, *, now: datetime | None = None) -> str | None:
    """The age of a recording's newest sample, stated, not judged (a samples file: an
    export the user chose, as of its own time; None for an empty table)."""
    newest = _newest(samples)
    if newest is None or pd.isna(newest):
        return None
    if newest.tzinfo is None:
        newest = newest.tz_localize(UTC)
    age_s = (pd.Timestamp(now or datetime.now(UTC)) - newest).total_seconds()
    when = f"{_age_text(age_s)} before this run" if age_s >= 0 else "after this run's clock"
    return (f"a recording: its newest sample is of {newest:%Y-%m-%d %H:%M:%S} UTC ({when}); "
            "'running' is what ran then, not necessarily now")


def _newest(samples: pd.DataFrame) -> Any:
    """The newest sample's time (a Timestamp, NaT when every time is missing); None for an
    empty table or one without times."""
    if samples.empty or "time" not in samples.columns:
        return None
    return pd.Timestamp(samples["time"].max())


def _age_text(seconds: float) -> str:
    """An age for a person: ``45 s``, ``12 min``, ``5.2 h``, ``11.0 d``."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def running_counts(samples: pd.DataFrame, *, latest: Any = None) -> dict[str, int]:
    """Containers per service that run now (:func:`_latest_rows`: each container's last
    sample near the latest one, by its own sampling interval, or near ``latest``, the
    source's newest round, when later), by each one's last service."""
    if samples.empty:
        return {}
    # observed=True: a categorical service column (Prometheus samples) must not list the
    # services absent at the last instant with 0 (pandas 2's default)
    per = (_latest_rows(samples, latest).groupby("service", observed=True)["container_id"]
           .nunique())
    # by name whatever the dtype (a categorical groups in its categories' order): the sum of
    # the others' demand is then added in one order, so plain and categorical samples give
    # the same plans to the bit
    return {str(k): int(v) for k, v in sorted(per.items(), key=lambda kv: str(kv[0]))}


def resolve_machine(
    machine: Machine | str | Mapping[str, Any] | None,
    samples: pd.DataFrame | None = None,
    *,
    client: Any = None,
) -> Machine:
    """The machine to plan for, built once, the same way for the CLI and the API.

    ``None`` or ``"local"`` is this host (:meth:`Machine.local`), measured with the local
    engine (``client``, else one it connects to when it answers): the per-network address
    limits and each service's PIDs and open files need it. ``"local,net=10Gbit"`` is this
    host with the keys given set over what was measured (what a virtual NIC does not
    report). Its free disk space excludes what the containers running now already use,
    while the plan counts them as occupying it: with ``samples`` given, their latest
    ``disk_usage_bytes`` (:func:`disk_in_use_bytes`) is added back, or it would be
    subtracted twice. A spec string (``"cpus=8,memory=32GiB"``, a ``.toml`` path) or a
    mapping of spec keys is parsed; a :class:`Machine` is used as given.
    """
    if isinstance(machine, Machine):
        return machine
    given = local_spec_keys(machine) if machine is None or isinstance(machine, str) else None
    if given is not None:
        in_use = disk_in_use_bytes(samples) if samples is not None else 0.0
        local = Machine.local(disk_in_use_bytes=in_use, client=client)
        return local.with_given(given) if given else local
    if isinstance(machine, str):
        return Machine.from_spec(machine)
    if isinstance(machine, Mapping):
        name = ",".join(f"{k}={v}" for k, v in machine.items() if k != "reserve")
        return Machine.from_mapping(machine, name=name)
    raise InvalidParameter("machine", "capacity", "a Machine, a spec string or a mapping",
                           machine)


def plan_all(
    profiles: Profiles,
    machine: Machine,
    *,
    running: Mapping[str, int],
    settings: Settings = DEFAULTS,
    services: Sequence[str] | None = None,
    ports: Mapping[str, Sequence[int]] | None = None,
    **changes: Any,
) -> dict[str, Plan]:
    """A plan per service: how many of it fit beside what the other services use now.

    The one planning loop: ``capacity plan``, ``capacity report``, :func:`capacity.plan_all`
    and :meth:`capacity.Plans.what_if` all call it. For service S, the other services'
    running replicas occupy their per-replica sizing figure times their running count, at
    the demand factor their own plan takes for ``settings.valid_for_s`` (drift, the
    short-history allowance, the sampling widening: what runs beside is planned for the same
    period ahead; :func:`capacity.solver.occupied_by_others`), plus the machine's host cost per
    container for each of them. Each service gets a fresh generator seeded
    with ``settings.seed``, so its plan does not depend on which services are planned before
    it. ``running`` counted from the same samples the profiles were fitted from names no
    other service; given by a user, a name without a profile is an error, not ignored.

    Parameters
    ----------
    services : Sequence[str], optional
        Plan only these (default every profiled service, sorted).
    ports : Mapping[str, Sequence[int]], optional
        Fixed host ports per service (one replica per host).
    **changes
        Fields of ``settings`` to change (``method="gaussian"``, ``epsilon=0.05``, ...).

    Raises
    ------
    InsufficientData
        The profiles hold no service: there is nothing to vouch for.
    InvalidParameter
        ``running``, ``services`` or ``ports`` names a service that has no profile.
    """
    if changes:
        settings = settings.replace(**changes)
    known = sorted(profiles.services)
    if not known:
        raise InsufficientData(
            "the profiles hold no service, so no count can be vouched for: fit them from "
            "samples of running containers ('capacity fit'), or check the --filter"
        )
    running = whole_counts(running, "running", "plan")
    for what, names in (("running", running), ("services", services or ()),
                        ("ports", ports or {})):
        stray = sorted(str(n) for n in names if n not in profiles.services)
        if stray:
            raise InvalidParameter(what, "plan", f"services that have a profile, one of {known}",
                                   stray[0] if len(stray) == 1 else stray)
    plans: dict[str, Plan] = {}
    for service in (services or known):
        occupied = occupied_by_others(profiles, running, service,
                                      valid_for_s=settings.valid_for_s, method=settings.method)
        # every other running container also costs the host its host cost (shim, kernel)
        others = sum(int(n) for s, n in running.items()
                     if s != service and s in profiles.services)
        for r, cost in machine.host_cost.items():
            if others and cost:
                occupied[r] = occupied.get(r, 0.0) + others * float(cost)
        plans[service] = plan(
            profiles,
            machine,
            service=service,
            settings=settings,
            running=int(running.get(service, 0)),
            running_beside={s: int(n) for s, n in running.items() if s != service},
            occupied=occupied,
            ports=tuple((ports or {}).get(service, ())),
        )
    return plans


def fit_profiles(samples: pd.DataFrame | Samples) -> Profiles:
    """Fit profiles with the default model.

    Given a :class:`Samples`, its containers table goes along, so declared limits
    (``--cpus``, ``-m``) are kept beside each profile; a bare samples table has none.
    """
    if isinstance(samples, Samples):
        containers = samples.containers if not samples.containers.empty else None
        profiles = ProfileModel().fit(samples.samples, containers=containers).profiles_
        if samples.warnings:
            profiles = replace(profiles, services={
                name: replace(sp, warnings=(*sp.warnings, *samples.warnings.get(name, ())))
                for name, sp in profiles.services.items()
            })
        return profiles
    return ProfileModel().fit(samples).profiles_
