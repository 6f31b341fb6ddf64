"""What profiles.json keeps (schema 4): traces to 16 bits of their peak, histograms as
float32, long lists packed. A profile read back is equal to the one written, so the plans
from the file are the plans from memory; and plans from full-precision traces (any trace that
keeps to the stored one) are the same plans: the reduction is below what a plan can see."""

from __future__ import annotations

import base64
import json
import zlib
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd
import pytest

from capacity._errors import InvalidFile
from capacity._pipeline import fit_profiles, load_demo, plan_all, running_counts
from capacity._settings import DEFAULTS
from capacity.model._packed import (
    PACK_MIN_VALUES,
    TRACE_LEVELS,
    keep_float32,
    keep_trace,
    pack,
    trace_step,
    unpack,
)
from capacity.model._profile import Profiles, ResourceProfile
from capacity.solver._machine import Machine

#: a kept point moves by at most this share of its trace's peak (step / 2 <= peak / 65535)
TRACE_TOLERANCE = 1 / TRACE_LEVELS
#: float32's relative rounding
F32_TOLERANCE = 2.0**-24
#: a fleet big enough for the correlation matrix to be packed, small enough to plan quickly
SERVICES, REPLICAS, POINTS, INTERVAL_S = 8, 2, 360, 10.0


def fleet() -> pd.DataFrame:
    """Services with a shared slow swing and gamma noise (as benchmarks/bench_report.py)."""
    rng = np.random.default_rng(1)
    t0 = pd.Timestamp("2026-01-05T00:00:00Z")
    times = t0 + pd.to_timedelta(np.arange(1, POINTS + 1) * INTERVAL_S, unit="s")
    phase = np.arange(POINTS) / POINTS * 2 * np.pi
    frames = []
    for s in range(SERVICES):
        scale, level = rng.uniform(0.2, 1.5), rng.uniform(0.1, 1.2) * 2**30
        slow = np.sin(phase * rng.uniform(1, 4) + rng.uniform(0, 6.28))
        for r in range(REPLICAS):
            frames.append(
                pd.DataFrame(
                    {
                        "time": times,
                        "container_id": f"{s:04d}{r:02d}" + "0" * 58,
                        "container_name": f"svc{s}-{r + 1}",
                        "service": f"svc{s}",
                        "image": f"example/svc{s}:1",
                        "interval_s": INTERVAL_S,
                        "cpu_cores": scale
                        * (0.05 + 0.03 * (1 + slow) + rng.gamma(2.0, 0.01, POINTS)),
                        "memory_working_set_bytes": level * (1 + 0.05 * slow)
                        + rng.gamma(3.0, 2e6, POINTS),
                    }
                )
            )
    return pd.concat(frames, ignore_index=True)


@pytest.fixture(scope="module")
def fleet_profiles() -> Profiles:
    return fit_profiles(fleet())


def test_keep_trace_bounds_the_change_and_is_idempotent() -> None:
    rng = np.random.default_rng(0)
    for peak in (1e-9, 0.37, 1.0, 2.0**20, 7.3e12):
        x = rng.uniform(0, peak, 500)
        kept = np.asarray(keep_trace(x))
        step = trace_step(float(x.max()))
        assert x.max() <= TRACE_LEVELS * step < 2 * x.max()
        assert np.abs(kept - x).max() <= step / 2 <= x.max() * TRACE_TOLERANCE
        assert keep_trace(tuple(kept)) == tuple(kept)
        assert np.array_equal(np.rint(kept / step) * step, kept)
    assert keep_trace(()) == ()
    assert keep_trace((0.0, 0.0)) == (0.0, 0.0)
    assert keep_trace((5e-324, 0.0)) == (5e-324, 0.0)  # too small for a grid: kept as is


def test_keep_float32_bounds_the_change_and_is_idempotent() -> None:
    x = np.geomspace(1e-3, 1e12, 201)
    kept = np.asarray(keep_float32(x))
    assert np.all(np.abs(kept - x) <= x * F32_TOLERANCE)
    assert keep_float32(tuple(kept)) == tuple(kept)


def test_pack_round_trips_exactly_and_short_lists_stay_lists() -> None:
    kept = keep_trace(np.random.default_rng(2).gamma(2.0, 0.1, 1000))
    packed = pack(kept, "trace")
    assert packed["packed"] == "uint16" and unpack(packed) == list(kept)
    f32 = keep_float32(np.linspace(0, 3, 100))
    assert pack(f32, "float32")["packed"] == "float32" and unpack(pack(f32, "float32")) == list(f32)
    odd = [0.1 * i for i in range(50)]
    assert pack(odd, "float32")["packed"] == "float64" and unpack(pack(odd, "float32")) == odd
    with_null = [None, *odd]
    back = unpack(pack(with_null))
    assert np.isnan(back[0]) and back[1:] == odd
    assert pack([1.0] * (PACK_MIN_VALUES - 1), "trace") == [1.0] * (PACK_MIN_VALUES - 1)


def test_profile_keeps_its_precision_and_the_file_gives_it_back(fleet_profiles) -> None:
    rp = fleet_profiles["svc0"].resources["cpu_cores"]
    assert rp.trace == keep_trace(rp.trace) and rp.replica_trace == keep_trace(rp.replica_trace)
    assert rp.histogram_edges == keep_float32(rp.histogram_edges)
    assert replace(rp, count=rp.count) == rp
    text = fleet_profiles.to_json()
    doc = json.loads(text)
    assert doc["schema_version"] == 4 and "16 bits" in doc["storage"]
    cell = doc["services"]["svc0"]["resources"]["cpu_cores"]
    assert cell["trace"]["packed"] == "uint16" and cell["histogram_weights"]["packed"]
    assert set(doc["correlation"]["between_services"]["cpu_cores"]) == {"services", "matrix"}
    assert Profiles.from_json(text) == fleet_profiles


def test_version_3_files_with_plain_lists_still_read(fleet_profiles) -> None:
    doc = json.loads(fleet_profiles.to_json())

    def plain(obj: Any) -> Any:
        if isinstance(obj, dict) and "packed" in obj:
            return unpack(obj)
        if isinstance(obj, dict) and set(obj) == {"services", "matrix"}:
            names, cells = obj["services"], unpack(obj["matrix"])
            k = len(names)
            return {
                a: {
                    b: None if np.isnan(c) else c
                    for b, c in zip(names, cells[i * k : (i + 1) * k], strict=True)
                }
                for i, a in enumerate(names)
            }
        if isinstance(obj, dict):
            return {k: plain(v) for k, v in obj.items()}
        return obj

    old = plain(doc)
    old["schema_version"] = 3
    del old["storage"]
    assert Profiles.from_dict(json.loads(json.dumps(old))) == fleet_profiles


@pytest.mark.parametrize(
    "bad, why",
    [
        ({"packed": "uint8", "n": 1, "data": ""}, "'packed' must be one of"),
        ({"packed": "float64", "n": 2, "data": "%%%"}, "not base64"),
        # a count past any C size (found by hypothesis: OverflowError in zlib, a traceback)
        ({"packed": "float64", "n": 2**61, "data": ""}, "'n' must be a whole number from 0"),
        ({"packed": "float32", "n": -1, "data": ""}, "'n' must be a whole number from 0"),
        # 2**27 float64 (1 GiB) claimed by 12 compressed bytes: refused before inflating
        (
            {
                "packed": "float64",
                "n": 2**27,
                "data": base64.b64encode(zlib.compress(b"\0" * 16)).decode(),
            },
            "cannot hold 134,217,728 values",
        ),
        (
            {
                "packed": "float64",
                "n": 3,
                "data": base64.b64encode(zlib.compress(b"\0" * 16)).decode(),
            },
            "must hold 3",
        ),
        (
            {
                "packed": "uint16",
                "n": 1,
                "scale": -1.0,
                "data": base64.b64encode(zlib.compress(b"\0\0")).decode(),
            },
            "'scale' must be",
        ),
        # a zip bomb: 100 MB that claims to be one number; read no further than one value
        (
            {
                "packed": "float64",
                "n": 1,
                "data": base64.b64encode(zlib.compress(b"\0" * 100_000_000)).decode(),
            },
            "must hold 1",
        ),
        (
            {
                "packed": "float64",
                "n": 1,
                "data": base64.b64encode(zlib.compress(np.array([-1.0]).tobytes())).decode(),
            },
            r"trace\[0\]",
        ),
    ],
)
def test_bad_packed_lists_name_the_field(fleet_profiles, bad: dict, why: str) -> None:
    doc = json.loads(fleet_profiles.to_json())
    doc["services"]["svc1"]["resources"]["cpu_cores"]["trace"] = bad
    with pytest.raises(InvalidFile, match=why) as info:
        Profiles.from_dict(doc, file="p.json")
    assert info.value.field is not None
    assert info.value.field.startswith("services.svc1.resources.cpu_cores.trace")


def _full_precision(profiles: Profiles, seed: int) -> Profiles:
    """The same profiles with traces at full precision: each point moved by up to just under
    half a step, so it keeps to the stored trace (a trace the fit could have made)."""
    rng = np.random.default_rng(seed)
    for sp in profiles.services.values():
        for rp in sp.resources.values():
            for name in ("trace", "replica_trace"):
                kept = np.asarray(getattr(rp, name))
                if kept.size == 0:
                    continue
                step = trace_step(float(np.abs(kept).max()))
                peak = float(kept.max())
                raw = np.clip(kept + rng.uniform(-0.49, 0.49, kept.size) * step, 0.0, peak)
                raw[np.argmax(kept)] = peak  # the same peak, so the same step
                assert keep_trace(raw) == tuple(kept)
                object.__setattr__(rp, name, tuple(raw.tolist()))  # a fake, not the fit's
    return profiles


@pytest.mark.parametrize("which", ["demo", "fleet"])
def test_plans_from_the_file_equal_plans_from_full_precision(
    which, fleet_profiles, tmp_path
) -> None:
    if which == "demo":
        demo = load_demo()
        profiles, running = fit_profiles(demo), running_counts(demo.samples)
        machine = Machine.from_spec("cpus=2,memory=24GiB")
    else:
        profiles, running = fleet_profiles, {s: REPLICAS for s in fleet_profiles.services}
        machine = Machine.from_spec("cpus=16,memory=64GiB")
    (tmp_path / "profiles.json").write_text(profiles.to_json())
    from_file = plan_all(
        Profiles.from_json(tmp_path / "profiles.json"), machine, running=running, settings=DEFAULTS
    )
    full_profiles = _full_precision(Profiles.from_json(tmp_path / "profiles.json"), seed=3)
    assert isinstance(
        next(iter(full_profiles.services.values())).resources["cpu_cores"], ResourceProfile
    )
    full = plan_all(full_profiles, machine, running=running, settings=DEFAULTS)
    in_memory = plan_all(profiles, machine, running=running, settings=DEFAULTS)
    for service, plan in from_file.items():
        assert plan.to_dict() == in_memory[service].to_dict(), service
        other = full[service]
        assert plan.safe_count == other.safe_count, service
        for r, rp in plan.per_resource.items():
            assert rp.safe_count == other.per_resource[r].safe_count, (service, r)
