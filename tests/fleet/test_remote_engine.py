"""A remote engine for real: DOCKER_HOST=tcp://127.0.0.1:PORT, a loopback TCP port that
forwards to this host's Docker socket (what a TCP-exposed engine looks like to a client).

Through it, ``collect --source api`` reads containers over the stats API, and ``--machine
engine`` takes the target's size from ``docker info`` (NCPU, MemTotal).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

DOCKER_SOCKET = "/var/run/docker.sock"


def _pump(src: socket.socket, dst: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := src.recv(65536):
            dst.sendall(data)
    with contextlib.suppress(OSError):
        dst.shutdown(socket.SHUT_WR)


@contextlib.contextmanager
def tcp_engine() -> Iterator[str]:
    """``tcp://127.0.0.1:PORT`` forwarding to the local Docker socket, while the block runs."""
    if not os.path.exists(DOCKER_SOCKET):
        pytest.skip(f"no Docker socket at {DOCKER_SOCKET} to forward to")
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    stop = threading.Event()
    conns: list[socket.socket] = []

    def serve() -> None:
        while not stop.is_set():
            try:
                client, _ = listener.accept()
            except OSError:
                return
            engine = socket.socket(socket.AF_UNIX)
            engine.connect(DOCKER_SOCKET)
            conns.extend((client, engine))
            for a, b in ((client, engine), (engine, client)):
                threading.Thread(target=_pump, args=(a, b), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"tcp://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        listener.close()
        for c in conns:
            with contextlib.suppress(OSError):
                c.close()
        thread.join(timeout=5)


def _capacity(*args: str, cwd: Path, docker_host: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DOCKER_HOST": docker_host, "NO_COLOR": "1"}
    return subprocess.run([sys.executable, "-m", "capacity", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.docker
@pytest.mark.slow
def test_collect_and_machine_size_through_a_tcp_engine(
    docker_client, run_container, tmp_path: Path
) -> None:
    tag = uuid.uuid4().hex[:8]
    run_container("sh", "-c", "while :; do :; done", cpus=0.25,
                  labels={"capacity.remote": tag})
    info = docker_client.info()
    with tcp_engine() as url:
        collected = _capacity("collect", "--source", "api", "--interval", "1s", "--duration",
                              "4s", "--store", "s.sqlite", "--disk-usage-every", "0",
                              "--filter", f"label=capacity.remote={tag}", cwd=tmp_path,
                              docker_host=url)
        assert collected.returncode == 0, collected.stderr
        assert "through stats-api: 1 containers" in collected.stderr, collected.stderr
        fitted = _capacity("fit", "--store", "s.sqlite", cwd=tmp_path, docker_host=url)
        assert fitted.returncode == 0, fitted.stderr
        planned = _capacity("plan", "--profiles", "profiles.json", "--machine", "engine",
                            "--json", cwd=tmp_path, docker_host=url)
    assert planned.returncode in (0, 1, 2), planned.stderr
    assert url in planned.stdout  # the machine is named by its engine
    capacity = json.dumps(json.loads(planned.stdout))
    assert f'"cpu_cores": {float(info["NCPU"])}' in capacity
    assert f'"memory_working_set_bytes": {float(info["MemTotal"])}' in capacity


def test_machine_engine_without_an_engine_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    profiles = tmp_path / "profiles.json"
    fitted = _capacity("fit", "--demo", "--out", str(profiles), cwd=tmp_path,
                       docker_host=f"tcp://127.0.0.1:{port}")
    assert fitted.returncode == 0, fitted.stderr
    planned = _capacity("plan", "--profiles", str(profiles), "--machine", "engine",
                        cwd=tmp_path, docker_host=f"tcp://127.0.0.1:{port}")
    err = planned.stderr.strip().splitlines()
    assert planned.returncode == 3 and len(err) == 1, err
    assert err[0].startswith(f"capacity: error: no Docker Engine answers at tcp://127.0.0.1:{port}")
