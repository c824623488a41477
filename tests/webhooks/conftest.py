"""A webhook receiver on loopback, whose answers each test scripts."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


@dataclass
class Received:
    headers: dict
    body: bytes


@dataclass
class Receiver:
    url: str
    requests: list[Received] = field(default_factory=list)
    # (status, body bytes, seconds to wait before answering, extra headers)
    answer: tuple = (200, b"ok", 0.0, {})


def _handler(receiver: Receiver):
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length)
            receiver.requests.append(Received(headers={k.lower(): v for k, v in self.headers.items()}, body=body))
            status, payload, wait, extra = receiver.answer
            if wait:
                time.sleep(wait)
            self.send_response(status)
            for name, value in extra.items():
                self.send_header(name, value)
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            try:
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the sender stops reading after its cap: that is the behaviour under test

        def log_message(self, *args):
            pass

    return Handler


@pytest.fixture
def receiver():
    rec = Receiver(url="")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(rec))
    server.daemon_threads = True
    rec.url = f"http://127.0.0.1:{server.server_address[1]}/hooks"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield rec
    server.shutdown()
    server.server_close()
