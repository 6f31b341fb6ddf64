"""A real Prometheus server for tests: Debian's ``prometheus`` on a free loopback port.

Never the packaged service: each test starts its own server with a temporary data dir and
its own config, and stops it when done, pass or fail. Without the binary the test skips with
the reason, unless ``CAPACITY_REQUIRE_DOCKER=1`` (as in ``.ci/run``): then it fails.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from docker_labels import REQUIRE_DOCKER

#: how long a fresh server may take to answer /-/ready, seconds
READY_TIMEOUT_S = 30.0


def require_binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        reason = f"needs Debian's {name} (apt-get install prometheus; .ci/run installs it)"
        if REQUIRE_DOCKER:
            pytest.fail(f"CAPACITY_REQUIRE_DOCKER=1 but {reason}", pytrace=False)
        pytest.skip(reason)
    return path


def free_port() -> int:
    """A port nothing listens on now (another process may still take it: tests retry)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str, timeout_s: float = 2.0) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout_s) as response:  # loopback only
        return bytes(response.read())


@contextlib.contextmanager
def prometheus_server(
    workdir: Path,
    *,
    targets: Sequence[str] = (),
    job: str = "capacity",
    scrape_interval: str = "1s",
    data_dir: Path | None = None,
) -> Iterator[str]:
    """Run ``prometheus`` scraping ``targets`` (host:port) every ``scrape_interval``;
    yield its base URL. ``data_dir`` may hold blocks made by ``promtool`` beforehand."""
    binary = require_binary("prometheus")
    workdir.mkdir(parents=True, exist_ok=True)
    data = data_dir or workdir / "data"
    data.mkdir(parents=True, exist_ok=True)
    config = workdir / "prometheus.yml"
    scrape = []
    if targets:
        scrape = [{"job_name": job, "scrape_interval": scrape_interval,
                   "scrape_timeout": scrape_interval,
                   "static_configs": [{"targets": list(targets)}]}]
    config.write_text(json.dumps({"global": {"scrape_interval": scrape_interval},
                                  "scrape_configs": scrape}))  # JSON is YAML
    log = (workdir / "prometheus.log").open("wb")
    for _attempt in range(3):
        port = free_port()
        proc = subprocess.Popen(
            [binary, f"--config.file={config}", f"--storage.tsdb.path={data}",
             f"--web.listen-address=127.0.0.1:{port}", "--storage.tsdb.retention.time=30d",
             "--log.level=warn"],
            stdout=log, stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                _get(f"{url}/-/ready")
                break
            except OSError:
                time.sleep(0.2)
        if proc.poll() is None:
            break
    else:  # pragma: no cover - the machine is broken
        log.close()
        pytest.fail(f"prometheus did not start: {(workdir / 'prometheus.log').read_text()}")
    try:
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        log.close()


def instant(url: str, query: str) -> list[dict]:
    """An instant query's result list (for waiting on data in tests)."""
    from urllib.parse import urlencode

    body = json.loads(_get(f"{url}/api/v1/query?{urlencode({'query': query})}"))
    return list(body["data"]["result"])
