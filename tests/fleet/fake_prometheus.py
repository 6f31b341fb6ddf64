"""A tiny HTTP server on loopback that answers like Prometheus, for fault tests.

Tests pass its URL to the real client (nothing is patched): ``answer(path, params)`` returns
``(status, body, delay_s)``; a dict body is sent as JSON, a str as text/html. Every request
is recorded in ``requests`` as ``(path, params)``.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

Answer = Callable[[str, dict[str, str]], tuple[int, Any, float]]


class FakePrometheus:
    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.url = ""


@contextlib.contextmanager
def fake_prometheus(answer: Answer) -> Iterator[FakePrometheus]:
    fake = FakePrometheus(answer)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            params = dict(parse_qsl(parts.query))
            fake.requests.append((parts.path, params))
            status, body, delay_s = fake.answer(parts.path, params)
            if delay_s:
                time.sleep(delay_s)
            if isinstance(body, str):
                data, kind = body.encode(), "text/html"
            else:
                data, kind = json.dumps(body).encode(), "application/json"
            try:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except OSError:  # the client gave up (timeout test)
                pass

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def matrix(series: list[tuple[dict[str, str], list[tuple[float, float]]]]) -> dict[str, Any]:
    """A query_range success body."""
    return {"status": "success", "data": {"resultType": "matrix", "result": [
        {"metric": labels, "values": [[t, repr(float(v))] for t, v in points]}
        for labels, points in series]}}


def error(error_type: str, message: str) -> dict[str, Any]:
    return {"status": "error", "errorType": error_type, "error": message}
