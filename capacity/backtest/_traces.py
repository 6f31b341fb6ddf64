"""Public traces as samples tables (see ``/work/shared/data/traces`` and ``tests/data/traces``).

Both loaders return the samples table of :mod:`capacity._columns` (``time``, ``service``,
``container_id``, ``container_name``, ``image``, ``interval_s``, ``cpu_cores``,
``memory_working_set_bytes``), so a trace goes through the same fit, plan and backtest as a
collected history.

Units are the traces' own, mapped with stated assumptions (the parameters): neither trace
gives absolute memory sizes, so memory is a share of an assumed size. Plan for a machine in the
same units (``alibaba_machine`` gives the trace's own machines).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from .._columns import CPU, MEMORY, RESOURCES, SAMPLE_COLUMNS
from .._errors import InvalidSamples

__all__ = [
    "GCD_STEP_S",
    "load_alibaba_containers",
    "load_alibaba_machines",
    "load_azure_cpu",
    "load_gcd_vms",
]

#: step of the GCD VM series, seconds (SOURCE.txt: 288 points per 24 h)
GCD_STEP_S = 300.0
_EPOCH = pd.Timestamp("2011-05-01", tz="UTC")  # the trace's start month; the date is nominal


def load_gcd_vms(
    folder: str | Path,
    *,
    days: Sequence[int] | None = None,
    service: str = "gcd-vm",
    vm_cores: float = 1.0,
    vm_memory_bytes: float = 4 * 2**30,
    limit: int | None = None,
) -> pd.DataFrame:
    """The google2011-gcd-vms series (``vm_<job>_<day>``) as replicas of one service.

    Parameters
    ----------
    folder : path
        The ``GCD_VMs`` folder (or one holding a few of its files).
    days : sequence of int, optional
        Keep only the series of these day indices (default all). Series of one day index are
        taken as simultaneous (aligned by the time of day), and the days of one job as one
        replica's continuous history: ``container_id`` is ``vm_<job>``, and day ``d`` starts
        ``d - 1`` days after the first. A job missing on a day is absent then.
    service : str
        Service name of every series (they are planned as replicas of one service).
    vm_cores, vm_memory_bytes : float
        What 100 % means: CPU % of ``vm_cores`` cores, memory % of ``vm_memory_bytes``.
        The trace gives utilisation only; these are assumptions, stated in the result. They
        are also each series' declared limits (columns ``cpu_limit_cores`` and
        ``memory_limit_bytes``), which the ``limits`` method plans by.
    limit : int, optional
        At most this many series (sorted by name), for quick runs.

    Returns
    -------
    pandas.DataFrame
        The samples table; ``container_id`` is ``vm_<job>``, ``interval_s`` 300.
    """
    folder = Path(folder)
    files = sorted(p for p in folder.iterdir() if p.name.startswith("vm_") and p.is_file())
    if days is not None:
        wanted = {str(int(d)) for d in days}
        files = [p for p in files if p.name.rsplit("_", 1)[-1] in wanted]
    if limit is not None:
        files = files[:limit]
    if not files:
        raise InvalidSamples(f"no vm_<job>_<day> series in {folder} (days {days})",
                             column="container_id", value=str(folder))
    frames = []
    for p in files:
        values = np.loadtxt(p, ndmin=2)
        job, d = p.name.rsplit("_", 1)
        offset = pd.Timedelta(days=int(d) - 1)
        n = values.shape[0]
        frames.append(pd.DataFrame({
            "time": _EPOCH + offset + pd.to_timedelta(np.arange(1, n + 1) * GCD_STEP_S, unit="s"),
            "container_id": job,
            CPU: values[:, 0] / 100.0 * vm_cores,
            MEMORY: values[:, 1] / 100.0 * vm_memory_bytes,
        }))
    df = pd.concat(frames, ignore_index=True)
    out = _finish(df, service, GCD_STEP_S)
    # the VM is each series' declared size: what the limits method plans by
    out["cpu_limit_cores"] = float(vm_cores)
    out["memory_limit_bytes"] = float(vm_memory_bytes)
    return out


def load_alibaba_containers(
    path: str | Path,
    *,
    service: str = "alibaba-online",
    machine_memory_bytes: float = 512 * 2**30,
    interval_s: float = 10.0,
    machines: Sequence[str] | None = None,
) -> pd.DataFrame:
    """alibaba2018 ``container_usage.csv`` (timestamp, container_id, machine_id, cpu, mem).

    Parameters
    ----------
    path : path
        The CSV (header line ``timestamp,container_id,machine_id,cpu,mem``).
    service : str
        Every container is taken as a replica of one (online) service.
    machine_memory_bytes : float
        ``mem`` is normalised to 0..100 of the machine's memory; this is that memory (the
        trace does not give it; an assumption, stated in the result).
    interval_s : float
        Seconds per tick (re-indexed in the excerpt; the real step is not documented).
    machines : sequence of str, optional
        Keep only containers of these machines.

    Notes
    -----
    ``cpu`` is in hundredths of a core (100 = 1 core). Rows where a container reports 0 CPU
    *and* 0 memory are "not running" and dropped (the excerpt pads containers that were not
    there yet with zeros).
    """
    raw = pd.read_csv(path)
    missing = {"timestamp", "container_id", "cpu", "mem"} - set(raw.columns)
    if missing:
        raise InvalidSamples(f"{path}: missing columns {sorted(missing)}",
                             column=sorted(missing)[0], value=str(path))
    if machines is not None:
        raw = raw[raw["machine_id"].isin(list(machines))]
    raw = raw[(raw["cpu"] > 0) | (raw["mem"] > 0)]
    df = pd.DataFrame({
        "time": _EPOCH + pd.to_timedelta(raw["timestamp"].to_numpy() * interval_s, unit="s"),
        "container_id": raw["container_id"].astype(str).to_numpy(),
        CPU: raw["cpu"].to_numpy(dtype=float) / 100.0,
        MEMORY: raw["mem"].to_numpy(dtype=float) / 100.0 * machine_memory_bytes,
    })
    return _finish(df, service, interval_s)


def load_alibaba_machines(
    path: str | Path,
    *,
    machine_cores: float = 96.0,
    machine_memory_bytes: float = 512 * 2**30,
    machines: Sequence[str] | None = None,
) -> pd.DataFrame:
    """alibaba2018 ``machine_usage.csv`` (no header: machine_id, time_stamp, cpu_util_percent,
    mem_util_percent, ...): each machine is one service with one replica (its own history).

    Parameters
    ----------
    path : path
        The CSV in the trace's original format.
    machine_cores, machine_memory_bytes : float
        What 100 % means (the trace gives utilisation only; assumptions, stated in results).
    machines : sequence of str, optional
        Keep only these machines.

    Notes
    -----
    ``time_stamp`` is seconds from the trace's start; sampling is irregular (median about
    60 s, with gaps): the profile says so. Rows with a utilisation outside 0..100 are
    dropped (the trace's invalid markers).
    """
    raw = pd.read_csv(path, header=None, usecols=[0, 1, 2, 3],
                      names=["machine_id", "time_stamp", "cpu", "mem"])
    if raw.empty or not pd.api.types.is_numeric_dtype(raw["time_stamp"]):
        raise InvalidSamples(f"{path}: not an alibaba2018 machine_usage.csv (machine_id, "
                             "time_stamp, cpu_util_percent, mem_util_percent, ...)",
                             column="time_stamp", value=str(path))
    if machines is not None:
        raw = raw[raw["machine_id"].isin(list(machines))]
    raw = raw.dropna(subset=["cpu", "mem"])
    raw = raw[raw["cpu"].between(0, 100) & raw["mem"].between(0, 100)]
    df = pd.DataFrame({
        "time": _EPOCH + pd.to_timedelta(raw["time_stamp"].to_numpy(dtype=float), unit="s"),
        "container_id": raw["machine_id"].astype(str).to_numpy(),
        CPU: raw["cpu"].to_numpy(dtype=float) / 100.0 * machine_cores,
        MEMORY: raw["mem"].to_numpy(dtype=float) / 100.0 * machine_memory_bytes,
    })
    df = df.sort_values(["container_id", "time"])
    interval = df.groupby("container_id")["time"].diff().dt.total_seconds()
    out = _finish(df, "alibaba-machine", float(interval.median()))
    out["service"] = out["container_id"]
    out["interval_s"] = np.nan  # irregular: the profile measures it
    return out


def load_azure_cpu(path: str | Path, *, vm_cores: float = 1.0) -> pd.DataFrame:
    """The Azure Public Dataset V1 excerpt (``tests/data/traces/azure-v1-cpu/cpu_avg.csv.gz``):
    each VM one one-replica service, CPU only.

    Parameters
    ----------
    path : path
        The wide CSV (``time_s`` then one column of CPU % per VM).
    vm_cores : float
        What 100 % means, in cores (the excerpt does not give the VM's size; an assumption).
        It is also each series' declared limit (column ``cpu_limit_cores``): utilisation
        cannot pass 100 % of the VM.
    """
    raw = pd.read_csv(path)
    if "time_s" not in raw.columns or raw.shape[1] < 2:
        raise InvalidSamples(f"{path}: not a wide Azure CPU excerpt (time_s, then one column "
                             "per VM)", column="time_s", value=str(path))
    long = raw.melt(id_vars="time_s", var_name="container_id", value_name="pct")
    df = pd.DataFrame({
        "time": _EPOCH + pd.to_timedelta(long["time_s"].to_numpy(dtype=float), unit="s"),
        "container_id": long["container_id"].astype(str).to_numpy(),
        CPU: long["pct"].to_numpy(dtype=float) / 100.0 * vm_cores,
    })
    step = float(np.median(np.diff(np.sort(raw["time_s"].to_numpy(dtype=float)))))
    out = _finish(df, "azure-vm", step)
    out["service"] = out["container_id"]
    # utilisation is a share of the VM: 100 % is each series' declared size (as for GCD)
    out["cpu_limit_cores"] = float(vm_cores)
    return out


def _finish(df: pd.DataFrame, service: str, interval_s: float) -> pd.DataFrame:
    df["service"] = service
    df["container_name"] = df["container_id"]
    df["image"] = service
    df["interval_s"] = float(interval_s)
    for r in RESOURCES:  # the samples table's every resource column; NaN: not in the trace
        if r not in df:
            df[r] = np.nan
    return df[list(SAMPLE_COLUMNS)].sort_values(["container_id", "time"], ignore_index=True)
