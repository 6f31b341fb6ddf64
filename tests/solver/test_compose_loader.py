"""Compose files are checked field by field and bounded before use (issue 11, items 7, 8)."""

from __future__ import annotations

from pathlib import Path

import pytest
from bounded import within

from capacity import InvalidFile
from capacity.solver import read_compose
from capacity.solver._compose import MAX_NODES, MAX_SERVICES


def _laughs(levels: int = 8, width: int = 9) -> str:
    text = "a: &a [" + ", ".join(f"'{i}:{i}'" for i in range(1, width + 1)) + "]\n"
    prev = "a"
    for i in range(1, levels):
        name = f"l{i}"
        text += f"{name}: &{name} [" + ", ".join([f"*{prev}"] * width) + "]\n"
        prev = name
    return text + f"services:\n  web:\n    ports: *{prev}\n"


def test_a_port_range_is_kept_as_an_interval() -> None:
    stack = read_compose("services:\n  web:\n    ports: ['1-65535:80', '8080:80', "
                         "'127.0.0.1:9000-9001:90/udp', '[::1]:7000:70']\n")
    assert stack.services["web"].host_port_ranges == ((1, 65535),)
    both = read_compose("services:\n  web:\n    ports: ['9000-9001:80', '9002:81', "
                        "{published: '7000-7004', target: 70}]\n")
    assert both.services["web"].host_port_ranges == ((7000, 7004), (9000, 9002))


@pytest.mark.parametrize("spec", ["1-2000000000:80", "0:80", "70000:80", "9-3:80", "x:80"])
def test_a_port_outside_1_to_65535_is_named(spec: str) -> None:
    with within(30, spec), pytest.raises(InvalidFile) as info:
        read_compose(f"services:\n  web:\n    ports: ['{spec}']\n")
    assert info.value.field == "services.web.ports[0]" and spec in str(info.value)


def test_clashing_ranges_are_found_without_expanding() -> None:
    stack = read_compose("services:\n  a:\n    ports: ['1-60000:80']\n"
                         "  b:\n    ports: ['59990-65535:80']\n  c:\n    ports: ['5:80']\n")
    assert stack.port_clashes() == {"5": ["a", "c"], "59990-60000": ["a", "b"]}


def test_billion_laughs_is_refused_not_expanded() -> None:
    with within(30, "billion laughs"), pytest.raises(InvalidFile) as info:
        read_compose(_laughs())
    assert f"at most {MAX_NODES} values once YAML aliases are expanded" in str(info.value)


def test_many_services_say_how_to_split_or_raise(tmp_path: Path) -> None:
    text = "services:\n" + "".join(f"  s{i}:\n    cpus: 0.1\n" for i in range(MAX_SERVICES + 1))
    with pytest.raises(InvalidFile) as info:
        read_compose(text)
    message = str(info.value)
    assert f"{MAX_SERVICES + 1} services" in message and "split" in message
    assert "max_services" in message
    assert len(read_compose(text, max_services=MAX_SERVICES + 1).services) == MAX_SERVICES + 1


@pytest.mark.parametrize("body, field", [
    ("  web: [1, 2]\n", "services.web"),
    ("  web:\n    deploy: fast\n", "services.web.deploy"),
    ("  web:\n    deploy: {replicas: -1}\n", "services.web.deploy.replicas"),
    ("  web:\n    scale: 2.5\n", "services.web.scale"),
    ("  web:\n    cpus: .nan\n", "services.web.cpus"),
    ("  web:\n    cpus: lots\n", "services.web.cpus"),
    ("  web:\n    deploy: {resources: {limits: {cpus: -1}}}\n",
     "services.web.deploy.resources.limits.cpus"),
    ("  web:\n    deploy: {resources: {limits: {memory: [1]}}}\n",
     "services.web.deploy.resources.limits.memory"),
    ("  web:\n    mem_limit: -5m\n", "services.web.mem_limit"),
    ("  web:\n    ports: '8080:80'\n", "services.web.ports"),
    ("  web:\n    ports: [{published: [1]}]\n", "services.web.ports[0].published"),
    ("  web:\n    network_mode: host\n    expose: ['http']\n", "services.web.expose[0]"),
])
def test_a_bad_field_is_named(body: str, field: str) -> None:
    with pytest.raises(InvalidFile) as info:
        read_compose("services:\n" + body)
    assert info.value.field == field and f"'{field}'" in str(info.value)


@pytest.mark.parametrize("text", ["[1, 2]\n", "services: []\n", "services: {}\n",
                                  "services:\n  web: {}\n  : x\n", "a: [\n"])
def test_a_bad_document_is_invalid_file(text: str) -> None:
    with pytest.raises(InvalidFile):
        read_compose(text)
