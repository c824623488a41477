"""The open-loop driver of ``make bench`` (bench/harness/load.py ``constant_rate``).

Against a small threaded HTTP server in this process: every scheduled request is sent and
answered, non-2xx/3xx answers and refused connections count as errors, and a server that stalls
shows in the latency measured from each request's scheduled time (no coordinated omission).
"""

from __future__ import annotations

import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from bench.harness.load import constant_rate


class _Handler(BaseHTTPRequestHandler):
    seen: list[tuple[str, str, str]] = []
    stall_until = 0.0

    def do_GET(self):  # noqa: N802 (http.server's name)
        type(self).seen.append((self.path, self.headers.get("Host"), self.headers.get("X-Key")))
        wait = type(self).stall_until - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        status = 500 if self.path == "/fail/" else 200
        body = b'{"ok": true}'
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    _Handler.seen = []
    _Handler.stall_until = 0.0
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd.server_address[1]
    httpd.shutdown()
    httpd.server_close()


def test_every_scheduled_request_is_sent_with_its_headers(server):
    res = constant_rate(server, "/ok/?q=1", host="firm.localhost", rate=200, seconds=0.5, headers={"X-Key": "k1"})
    assert res.requests == 100
    assert res.errors == 0
    assert len(_Handler.seen) == 100
    assert set(_Handler.seen) == {("/ok/?q=1", "firm.localhost", "k1")}
    assert 0 < res.p50_ms <= res.p90_ms <= res.p99_ms <= res.max_ms
    assert res.extra["target_rate"] == 200


def test_error_statuses_count_as_errors(server):
    res = constant_rate(server, "/fail/", host="firm.localhost", rate=100, seconds=0.3)
    assert res.requests == 30
    assert res.errors == 30


def test_refused_connections_count_as_errors():
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    res = constant_rate(port, "/", host="x", rate=50, seconds=0.2)
    assert res.requests == 10
    assert res.errors == 10


def test_a_stall_shows_in_latency_from_the_scheduled_time(server):
    # The server answers nothing for 300 ms: requests scheduled during the stall wait for it, and
    # each one's latency counts from when it should have been sent, not from when it was.
    _Handler.stall_until = time.monotonic() + 0.35
    res = constant_rate(server, "/ok/", host="firm.localhost", rate=100, seconds=0.5)
    assert res.errors == 0
    assert res.requests == 50
    assert res.max_ms >= 250
    assert res.p50_ms >= 50  # most requests were scheduled inside the stall
