"""SERVICE=VALUE options take repeated flags and comma-separated lists alike."""

from __future__ import annotations

import click
import pytest

from capacity._cli.plan import parse_counts, parse_ports


def test_counts_repeated_or_comma_separated() -> None:
    assert parse_counts(("web=3,worker=1", "db=2"), "--replicas") == {
        "web": 3, "worker": 1, "db": 2}
    assert parse_counts(("web=3, worker=1,",), "--replicas") == {"web": 3, "worker": 1}
    with pytest.raises(click.BadParameter, match="given twice"):
        parse_counts(("web=3,web=4",), "--replicas")
    with pytest.raises(click.BadParameter, match="SERVICE=COUNT"):
        parse_counts(("web=3,worker",), "--replicas")


def test_ports_repeated_or_comma_separated() -> None:
    assert parse_ports(("web=80,web=443", "db=5432")) == {"web": [80, 443], "db": [5432]}
    with pytest.raises(click.BadParameter, match="SERVICE=HOSTPORT"):
        parse_ports(("web=80,443",))
