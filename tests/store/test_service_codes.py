"""The service key computed per distinct value (``service_codes``, what the fit uses on
millions of rows) against the per-row rule of the reference implementation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from _reference_rates import service_key as reference_service_key

from capacity.store._rates import service_codes, service_key


@pytest.mark.parametrize("dtype", ["object", "str", "category"])
def test_service_codes_match_the_per_row_rule(dtype: str) -> None:
    service = pd.Series(["web", None, "", "  ", " api ", np.nan, "web", None], dtype="object")
    image = pd.Series(["w:1", "i:2", None, "i:3", "a:1", "", "w:1", np.nan], dtype="object")
    name = pd.Series(["n1", "n2", "n3", "n4", "n5", "n6", "n7", "n8"], dtype="object")
    cast = (lambda s: s) if dtype == "object" else (lambda s: s.astype(dtype))
    expected = reference_service_key(service, image, name)
    got = service_key(cast(service), cast(image), cast(name))
    assert got.tolist() == expected.tolist() == ["web", "i:2", "n3", "i:3", "api", "n6",
                                                 "web", "n8"]
    codes, keys = service_codes(cast(service), None, cast(name))
    assert keys.take(codes).tolist() == reference_service_key(service, None, name).tolist()


def test_service_codes_list_only_the_keys_some_row_uses() -> None:
    # "w:1" and "n1" lose to the service label "web": not keys (the fit's services list)
    service = pd.Series(["web", "web", None], dtype="object")
    image = pd.Series(["w:1", "w:1", "db:2"], dtype="object")
    name = pd.Series(["n1", "n2", "n3"], dtype="object")
    codes, keys = service_codes(service, image, name)
    assert sorted(keys.tolist()) == ["db:2", "web"]
    assert keys.take(codes).tolist() == ["web", "web", "db:2"]
    assert set(codes.tolist()) == set(range(len(keys)))
