"""Bad input: each case rejected with column, service and value named, or handled as documented."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from capacity import (
    InvalidFile,
    InvalidParameter,
    InvalidSamples,
    NotFittedError,
    ProfileVersionError,
)
from capacity._columns import CPU, DISK_USAGE, MEMORY
from capacity.model import PROFILES_SCHEMA_VERSION, ProfileModel, Profiles


def _fit(samples: pd.DataFrame, **params) -> Profiles:
    return ProfileModel(min_span_s=0, **params).fit(samples).profiles_


@pytest.mark.parametrize("bad", [np.inf, -np.inf, -0.5])
def test_inf_or_negative_is_rejected_naming_column_service_value(make_samples, bad) -> None:
    values = np.linspace(0.1, 1.0, 10)
    values[4] = bad
    samples = make_samples({"c1": {CPU: values, MEMORY: np.full(10, 1e6)}})
    with pytest.raises(InvalidSamples) as info:
        _fit(samples)
    err = info.value
    assert (err.column, err.service, err.value) == (CPU, "svc", bad)
    assert CPU in str(err) and "'svc'" in str(err) and repr(bad) in str(err)


def test_nan_means_not_sampled_and_is_left_out_of_that_resource(make_samples) -> None:
    cpu = np.array([np.nan, 1.0, 2.0, 3.0])  # the first sample of a counter has no rate
    disk = np.array([np.nan, 5.0, np.nan, np.nan])  # read slowly
    samples = make_samples({"c1": {CPU: cpu, MEMORY: [1.0, 2, 3, 4], DISK_USAGE: disk}})
    sp = _fit(samples)["svc"]
    assert sp.resources[CPU].count == 3
    assert sp.resources[CPU].mean == 2.0
    assert sp.resources[MEMORY].count == 4
    assert sp.resources[DISK_USAGE].count == 1
    assert sp.resources[DISK_USAGE].max == 5.0


def test_resource_never_sampled_has_no_profile(make_samples) -> None:
    samples = make_samples({"c1": {CPU: [1.0, 2.0], DISK_USAGE: [np.nan, np.nan]}})
    assert set(_fit(samples)["svc"].resources) == {CPU}


def test_service_with_no_value_at_all_is_kept_with_low_confidence(make_samples) -> None:
    samples = make_samples(
        {"c1": {CPU: [1.0, 2.0, 3.0]}, "c2": {CPU: [np.nan, np.nan, np.nan]}},
        service_of={"c1": "a", "c2": "b"},
    )
    b = _fit(samples)["b"]
    assert b.resources == {}
    assert b.confidence == "low"
    assert any("no value in any resource" in w for w in b.warnings)


def test_unsorted_rows_give_the_same_profile_as_sorted(make_samples) -> None:
    rng = np.random.default_rng(5)
    samples = make_samples(
        {"c1": {CPU: rng.random(50)}, "c2": {CPU: rng.random(50)}}
    )
    shuffled = samples.sample(frac=1.0, random_state=rng)
    a, b = _fit(samples).to_dict(), _fit(shuffled).to_dict()
    a.pop("created_at"), b.pop("created_at")
    assert a == b


def test_duplicate_timestamps_are_averaged_and_noted(make_samples) -> None:
    samples = make_samples({"c1": {CPU: [1.0, 2.0, 3.0, 4.0]}})
    dup = samples.iloc[[1]].copy()
    dup[CPU] = 4.0  # a second reading of the same instant: (2 + 4) / 2 = 3
    sp = _fit(pd.concat([samples, dup], ignore_index=True))["svc"]
    rp = sp.resources[CPU]
    assert rp.count == 4
    assert rp.mean == pytest.approx((1 + 3 + 3 + 4) / 4)
    assert sp.n_samples == 4
    assert any("averaged" in note for note in sp.notes)


def test_single_sample_is_a_low_confidence_profile(make_samples) -> None:
    sp = _fit(make_samples({"c1": {CPU: [0.25]}}))["svc"]
    rp = sp.resources[CPU]
    assert (rp.count, rp.mean, rp.std, rp.p99, rp.max) == (1, 0.25, 0.0, 0.25, 0.25)
    assert rp.fit.family == "none"
    assert rp.quantile_ci["p99"][1] is None  # nothing bounds it from above
    assert sp.confidence == "low"
    assert any("single sample" in w for w in sp.warnings)


def test_empty_samples_are_rejected(make_samples) -> None:
    empty = make_samples({"c1": {CPU: [1.0]}}).iloc[:0]
    with pytest.raises(InvalidSamples, match="empty"):
        _fit(empty)


@pytest.mark.parametrize("column", ["time", "service"])
def test_missing_key_column_is_rejected(make_samples, column) -> None:
    samples = make_samples({"c1": {CPU: [1.0]}}).drop(columns=[column])
    with pytest.raises(InvalidSamples) as info:
        _fit(samples)
    assert info.value.column == column


def test_no_resource_column_is_rejected(make_samples) -> None:
    samples = make_samples({"c1": {CPU: [1.0]}}).drop(columns=[CPU])
    with pytest.raises(InvalidSamples, match="resource columns"):
        _fit(samples)


@pytest.mark.parametrize(("column", "bad"), [("time", pd.NaT), ("container_id", None)])
def test_missing_keys_are_rejected_naming_the_column(make_samples, column, bad) -> None:
    samples = make_samples({"c1": {CPU: [1.0, 2.0, 3.0]}})
    samples[column] = samples[column].astype(object)
    samples.loc[1, column] = bad
    with pytest.raises(InvalidSamples) as info:
        _fit(samples)
    assert info.value.column == column


@pytest.mark.parametrize("bad", [0.0, -5.0, np.inf])
def test_bad_interval_is_rejected(make_samples, bad) -> None:
    samples = make_samples({"c1": {CPU: [1.0, 2.0, 3.0]}})
    samples.loc[2, "interval_s"] = bad
    with pytest.raises(InvalidSamples) as info:
        _fit(samples)
    assert (info.value.column, info.value.service, info.value.value) == ("interval_s", "svc", bad)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("half_life_s", 0),
        ("min_samples", 0),
        ("ci_level", 1.5),
        ("families", ("cauchy",)),
        ("quantiles", (0.5, 1.2)),
        ("n_bins", 1),
        ("window_s", float("nan")),
    ],
)
def test_bad_parameter_is_rejected_at_fit(make_samples, name, value) -> None:
    model = ProfileModel(**{name: value})  # no check in __init__, as scikit-learn
    with pytest.raises(InvalidParameter, match=f"The '{name}' parameter of ProfileModel"):
        model.fit(make_samples({"c1": {CPU: [1.0]}}))


def test_not_fitted_error_before_fit() -> None:
    model = ProfileModel()
    with pytest.raises(NotFittedError, match="call fit"):
        _ = model.profiles_
    with pytest.raises(NotFittedError):
        _ = model.profiles
    assert not hasattr(model, "profiles_")  # NotFittedError is an AttributeError


def test_other_schema_version_is_a_clear_error(make_samples) -> None:
    d = _fit(make_samples({"c1": {CPU: [1.0, 2.0]}})).to_dict()
    d["schema_version"] = 1
    pattern = rf"schema version 1 .* not the version {PROFILES_SCHEMA_VERSION}"
    with pytest.raises(ProfileVersionError, match=pattern):
        Profiles.from_dict(d)
    with pytest.raises(InvalidFile, match="not a profiles JSON"):
        Profiles.from_json("{not json")


@pytest.mark.parametrize("blank", [None, "", "  "])
def test_empty_service_falls_back_to_image_then_name(make_samples, blank) -> None:
    # two unrelated containers without a service must not be pooled into one service ""
    samples = make_samples({"c1": {CPU: [1.0] * 20}, "c2": {CPU: [2.0] * 20}})
    samples["service"] = samples["service"].astype(object)
    samples["service"] = blank
    samples["image"] = np.where(samples["container_id"] == "c1", "nginx", "")
    profiles = _fit(samples)
    assert sorted(profiles.services) == ["c2", "nginx"]
    assert profiles["nginx"].replicas_seen == 1 and profiles["c2"].replicas_seen == 1


def test_stray_1970_row_is_dropped_with_a_note(make_samples) -> None:
    samples = make_samples({"c1": {CPU: [1.0] * 50}})
    samples.loc[0, "time"] = pd.Timestamp("1970-01-01T00:00:00Z")
    sp = _fit(samples)["svc"]
    assert sp.span_s < 3600  # not 56 years
    assert sp.n_samples == 49
    assert any("outlying time" in n for n in sp.notes)


def test_only_1970_times_is_a_clear_error(make_samples) -> None:
    samples = make_samples({"c1": {CPU: [1.0] * 5}}, start=pd.Timestamp("1970-01-01", tz="UTC"))
    with pytest.raises(InvalidSamples, match="before 2000") as info:
        _fit(samples)
    assert info.value.column == "time"


def test_year_9999_is_a_clear_error(make_samples) -> None:
    samples = make_samples({"c1": {CPU: [1.0] * 5}})
    samples["time"] = samples["time"].astype(object)
    samples.loc[0, "time"] = "9999-12-31T00:00:00Z"
    with pytest.raises(InvalidSamples, match="outside the range") as info:
        _fit(samples)
    assert info.value.column == "time"


@pytest.mark.parametrize(("column", "bad"), [(MEMORY, 1e30), (CPU, 2e5), (DISK_USAGE, 2.0**61)])
def test_a_reading_no_machine_can_have_is_rejected_by_the_fit(make_samples, column, bad) -> None:
    """Samples reach the fit from the store and Prometheus too, not only from a file."""
    values = {CPU: np.linspace(0.1, 1.0, 10), MEMORY: np.full(10, 1e6),
              DISK_USAGE: np.full(10, 1e6)}
    values[column][4] = bad
    samples = make_samples({"c1": values})
    with pytest.raises(InvalidSamples, match="more than any machine has") as info:
        _fit(samples)
    assert (info.value.column, info.value.service, info.value.value) == (column, "svc", bad)
