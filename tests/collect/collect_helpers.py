"""Helpers for the live collector tests: a collector running in a thread, waiting, disks."""

from __future__ import annotations

import re
import socket
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from capacity._collect import CachedCgroupReader, Collector, DiskUsageSampler, DockerEngine
from capacity.sources._disk_usage import disk_usage_bytes
from capacity.sources._host import HostReader
from capacity.store import Store

MiB = 1024 * 1024
#: label carried (besides conftest's capacity.test) by the containers of one collector run,
#: so each run samples only its own containers, never another engineer's
RUN_LABEL = "capacity.test.collect"


def new_run_id() -> str:
    return uuid.uuid4().hex[:10]


def wait_until(predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
    """Poll ``predicate`` every 50 ms; fail with ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


def free_port() -> int:
    """A loopback port nothing listens on now (for ``collect --serve``)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def served_rounds(port: int) -> int:
    """``capacity_collector_rounds_total`` of a ``collect --serve 127.0.0.1:PORT`` (0 while
    it does not answer yet): how many rounds the collector has done, committed or not."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
            text = r.read().decode()
    except OSError:
        return 0
    m = re.search(r"^capacity_collector_rounds_total (\S+)$", text, re.M)
    return int(float(m.group(1))) if m else 0


def wait_for_rounds(port: int, n: int, proc: Any, timeout_s: float = 60.0) -> None:
    """Wait (bounded) until the collector serving on ``port`` has done ``n`` rounds, or its
    process ``proc`` has exited. A fixed sleep assumed the rounds happen within it; on a
    loaded host the process start and the first round (engine discovery) may not."""
    wait_until(lambda: served_rounds(port) >= n or proc.poll() is not None, timeout_s,
               f"{n} collector rounds")


def wait_for_log(container: Any, text: str, timeout_s: float = 15.0) -> None:
    wait_until(lambda: text in container.logs().decode(errors="replace"), timeout_s,
               f"{text!r} in the output of {container.name}")


class BackgroundCollector:
    """The real collector (DockerEngine, CgroupReader, HostReader, events, disk usage, Store)
    running in a thread, so the test's thread can drive workloads meanwhile.

    The Store is opened and closed in the collector's thread (SQLite connections belong to
    one thread); read it afterwards with a new ``Store(path, create=False)``.
    """

    def __init__(
        self,
        client: Any,
        path: Path,
        run_id: str,
        *,
        interval_s: float = 1.0,
        disk_usage_every_s: float | None = None,
        reader: Any = None,
    ) -> None:
        self.stop_event = threading.Event()
        self.error: BaseException | None = None
        engine = DockerEngine(client, filters={"label": [f"{RUN_LABEL}={run_id}"]})
        disk = (
            DiskUsageSampler(lambda cid: disk_usage_bytes(client, cid), disk_usage_every_s)
            if disk_usage_every_s
            else None
        )
        self.path = path
        self.interval_s = interval_s
        self._make = lambda store: Collector(
            engine, reader or CachedCgroupReader(), store, sleep=self.stop_event.wait,
            host_reader=HostReader(), host_facts={"test": run_id}, events=engine,
            disk_usage=disk,
        )
        self.collector: Collector | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            with Store(self.path, batch_rounds=2) as store:
                self.collector = self._make(store)
                self._ready.set()
                self.collector.run(interval_s=self.interval_s, duration_s=None,
                                   should_stop=self.stop_event.is_set)
        except BaseException as exc:
            self.error = exc
        finally:
            self._ready.set()

    def __enter__(self) -> BackgroundCollector:
        self._thread.start()
        self._ready.wait(30)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def rounds(self) -> int:
        if self.error is not None:
            raise AssertionError("the collector thread failed") from self.error
        return self.collector.rounds if self.collector else 0

    def wait_rounds(self, n: int, timeout_s: float = 30.0) -> None:
        wait_until(lambda: self.rounds >= n, timeout_s, f"{n} collector rounds")

    def stop(self) -> None:
        self.stop_event.set()
        self._thread.join(60)
        if self.error is not None:
            raise AssertionError("the collector thread failed") from self.error
