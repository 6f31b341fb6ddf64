"""A remote engine for real, two ways this host's engine is reached as if it were host B:

- ``DOCKER_HOST=tcp://127.0.0.1:PORT``, a loopback TCP port that forwards to this host's
  Docker socket (what a TCP-exposed engine looks like to a client);
- ``DOCKER_HOST=ssh://capacity-test:PORT``, through Debian's OpenSSH: a real ``sshd`` on a free
  loopback port with its own host key and a temporary authorized key, reached by the system
  ``ssh`` client (as the docker CLI does), which runs ``docker system dial-stdio`` there.

Through each, ``collect --source api`` reads containers over the stats API, and ``--machine
engine`` takes the target's size from ``docker info`` (NCPU, MemTotal).
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from docker_labels import REQUIRE_DOCKER
from prometheus_helpers import free_port

DOCKER_SOCKET = "/var/run/docker.sock"
#: how long a fresh sshd may take to accept connections, seconds
SSHD_READY_S = 20.0


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


def _unavailable(reason: str) -> None:
    """Skip, or fail under CAPACITY_REQUIRE_DOCKER=1 (.ci/run installs openssh-server)."""
    if REQUIRE_DOCKER:
        pytest.fail(f"CAPACITY_REQUIRE_DOCKER=1 but {reason}", pytrace=False)
    pytest.skip(reason)


@contextlib.contextmanager
def ssh_engine(workdir: Path) -> Iterator[tuple[str, Path]]:
    """A real sshd on a free loopback port that lets a temporary key log in as this user;
    yields ``(DOCKER_HOST, a folder to put first on PATH)``.

    The folder holds an ``ssh`` that runs ``/usr/bin/ssh -F <our config>``: the user's own
    ``~/.ssh`` is never read or written (OpenSSH takes ``~`` from the password database, not
    ``$HOME``, so the config is passed this way). The engine URL is
    ``ssh://capacity-test:PORT``, a host alias that config resolves to 127.0.0.1.
    """
    sshd, ssh, keygen = (shutil.which(n, path="/usr/sbin:/usr/bin:/sbin:/bin")
                         for n in ("sshd", "ssh", "ssh-keygen"))
    if not (sshd and ssh and keygen):
        _unavailable("needs Debian's openssh-server and openssh-client "
                     "(apt-get install openssh-server openssh-client; .ci/run installs them)")
    if os.geteuid() != 0:
        pytest.skip("sshd runs as root here (privilege separation); run the tests as root")
    if shutil.which("docker") is None:
        _unavailable("needs the docker CLI on the 'remote' host (docker system dial-stdio)")
    workdir.mkdir(parents=True, exist_ok=True)
    host_key, user_key = workdir / "host_ed25519", workdir / "id_ed25519"
    for key in (host_key, user_key):
        subprocess.run([keygen, "-q", "-t", "ed25519", "-N", "", "-f", str(key)],
                       check=True, capture_output=True, timeout=30)
    (workdir / "authorized_keys").write_text(user_key.with_suffix(".pub").read_text())
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation dir
    log = workdir / "sshd.log"
    for _attempt in range(3):
        port = free_port()
        (workdir / "sshd_config").write_text("\n".join([
            f"Port {port}", "ListenAddress 127.0.0.1", f"HostKey {host_key}",
            f"PidFile {workdir / 'sshd.pid'}", f"AuthorizedKeysFile {workdir / 'authorized_keys'}",
            "StrictModes no", "UsePAM no", "PasswordAuthentication no",
            "KbdInteractiveAuthentication no", "PubkeyAuthentication yes",
            "PermitRootLogin prohibit-password", "AllowTcpForwarding no",
            "X11Forwarding no", "PrintMotd no", "LogLevel ERROR", ""]))
        proc = subprocess.Popen([sshd, "-D", "-e", "-f", str(workdir / "sshd_config")],
                                stdout=subprocess.DEVNULL, stderr=log.open("wb"))
        deadline = time.monotonic() + SSHD_READY_S
        while time.monotonic() < deadline and proc.poll() is None:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                break
            time.sleep(0.1)
        if proc.poll() is None:
            break
    else:
        _unavailable(f"sshd did not start: {log.read_text()[-500:]}")
    host_pub = host_key.with_suffix(".pub").read_text().split()
    (workdir / "known_hosts").write_text(f"[127.0.0.1]:{port} {host_pub[0]} {host_pub[1]}\n")
    (workdir / "ssh_config").write_text("\n".join([
        "Host capacity-test", "  HostName 127.0.0.1", f"  Port {port}",
        f"  User {pwd.getpwuid(os.geteuid()).pw_name}", f"  IdentityFile {user_key}",
        "  IdentitiesOnly yes", f"  UserKnownHostsFile {workdir / 'known_hosts'}",
        "  HostKeyAlias [127.0.0.1]:" + str(port), "  StrictHostKeyChecking yes",
        "  BatchMode yes", "  ConnectTimeout 10", ""]))
    bin_dir = workdir / "bin"
    bin_dir.mkdir(exist_ok=True)
    wrapper = bin_dir / "ssh"
    wrapper.write_text(f'#!/bin/sh\nexec {ssh} -F {workdir / "ssh_config"} "$@"\n')
    wrapper.chmod(0o755)
    try:
        # the port in the URL: the docker SDK adds ":22" to one without, and passes it as -p
        yield f"ssh://capacity-test:{port}", bin_dir
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def _capacity(*args: str, cwd: Path, docker_host: str,
              path_first: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DOCKER_HOST": docker_host, "NO_COLOR": "1"}
    if path_first is not None:
        env["PATH"] = f"{path_first}{os.pathsep}{env.get('PATH', '')}"
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


@pytest.mark.docker
@pytest.mark.slow
def test_collect_and_machine_size_through_an_ssh_engine(
    docker_client, run_container, tmp_path: Path
) -> None:
    tag = uuid.uuid4().hex[:8]
    run_container("sh", "-c", "while :; do :; done", cpus=0.25,
                  labels={"capacity.remote": tag})
    info = docker_client.info()
    with ssh_engine(tmp_path / "ssh") as (url, bin_dir):
        def run(*args: str) -> subprocess.CompletedProcess[str]:
            return _capacity(*args, cwd=tmp_path, docker_host=url, path_first=bin_dir)

        collected = run("collect", "--source", "api", "--interval", "1s", "--duration", "4s",
                        "--store", "s.sqlite", "--disk-usage-every", "0",
                        "--filter", f"label=capacity.remote={tag}")
        assert collected.returncode == 0, collected.stderr
        assert "through stats-api: 1 containers" in collected.stderr, collected.stderr
        fitted = run("fit", "--store", "s.sqlite")
        assert fitted.returncode == 0, fitted.stderr
        planned = run("plan", "--profiles", "profiles.json", "--machine", "engine", "--json")
    assert planned.returncode in (0, 1, 2), planned.stderr
    assert url in planned.stdout  # the machine is named by its engine
    capacity = json.dumps(json.loads(planned.stdout))
    assert f'"cpu_cores": {float(info["NCPU"])}' in capacity
    assert f'"memory_working_set_bytes": {float(info["MemTotal"])}' in capacity
    # the profile was measured through ssh: the busy loop's quarter of a core
    profiles = json.loads((tmp_path / "profiles.json").read_text())
    assert len(profiles["services"]) == 1


def test_an_ssh_engine_that_refuses_the_key_is_one_line(tmp_path: Path) -> None:
    with ssh_engine(tmp_path / "ssh") as (url, bin_dir):
        (tmp_path / "ssh" / "authorized_keys").write_text("")  # nobody may log in now
        fitted = _capacity("fit", "--demo", "--out", "p.json", cwd=tmp_path,
                           docker_host=url, path_first=bin_dir)
        assert fitted.returncode == 0, fitted.stderr
        planned = _capacity("plan", "--profiles", "p.json", "--machine", "engine",
                            cwd=tmp_path, docker_host=url, path_first=bin_dir)
    # ssh itself may say why first (it writes to the terminal: "Permission denied
    # (publickey)."); capacity's own answer is one line, the last, with what to check
    err = planned.stderr.strip().splitlines()
    assert planned.returncode == 3, planned.stderr
    assert [e for e in err if e.startswith("capacity:")] == err[-1:], err
    port = url.rsplit(":", 1)[1]
    assert err[-1].startswith(f"capacity: error: no Docker Engine answers at {url}"), err
    assert f"'ssh -p {port} capacity-test docker version' works" in err[-1], err
