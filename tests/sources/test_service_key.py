"""The grouping key of a container: Compose service label, else image, else name; an empty
or blank label or image counts as absent (issue 11, item 3: no service "" pooling strangers)."""

from __future__ import annotations

import pytest

from capacity.sources import service_of

SERVICE, PROJECT = "com.docker.compose.service", "com.docker.compose.project"


@pytest.mark.parametrize("labels, image, name, expected", [
    ({SERVICE: "web", PROJECT: "shop"}, "nginx", "c1", "shop/web"),
    ({SERVICE: "web"}, "nginx", "c1", "web"),
    ({SERVICE: "web", PROJECT: " "}, "nginx", "c1", "web"),
    ({SERVICE: ""}, "nginx", "c1", "nginx"),
    ({SERVICE: "  "}, "nginx", "c1", "nginx"),
    ({SERVICE: " ", PROJECT: "shop"}, "", "c1", "c1"),
    ({}, "  ", "c1", "c1"),
])
def test_service_of(labels: dict[str, str], image: str, name: str, expected: str) -> None:
    assert service_of(labels, image, name) == expected
