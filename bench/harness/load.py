"""Load generators, run in processes of their own next to the server under test.

- ``wrk_peak``: closed-loop peak throughput with Debian's ``wrk`` (C, epoll), latency percentiles and
  errors reported by a small Lua ``done()`` hook as JSON;
- ``constant_rate``: an open-loop driver at a fixed request rate (what ``wrk2 -R`` does; wrk2 is not
  packaged by Debian). Each request has a scheduled send time ``t0 + i / rate`` and its latency is
  measured from that time, not from when a thread got round to sending it, so a stalled server shows
  up in the percentiles instead of silently lowering the rate (no coordinated omission).
"""

from __future__ import annotations

import json
import selectors
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

WRK_INSTALL_HINT = "wrk is not installed: `sudo apt-get install -y wrk` (Debian/Ubuntu) or `brew install wrk`."

_LUA_DONE = r"""
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests": %d, "duration_us": %d, "connect": %d, "read": %d, "write": %d, ' ..
    '"status": %d, "timeout": %d, "p50": %.1f, "p90": %.1f, "p99": %.1f, "max": %.1f}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
"""


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


@dataclass
class Result:
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    requests: int
    errors: int  # socket errors + non-2xx/3xx responses
    extra: dict = field(default_factory=dict)


def _cpu_times() -> tuple[int, int] | None:
    """(busy, total) jiffies of all CPUs from /proc/stat; None where there is no /proc/stat."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields) - idle, sum(fields)


def settle(*, busy_below: float = 0.15, window: float = 0.5, timeout: float = 10.0) -> float:
    """Wait until the machine is quiet (CPU busy under ``busy_below`` over ``window`` s); seconds waited.

    A server keeps working after wrk stops: a slow endpoint's queued requests (the dashboard of the
    server with the fixes off takes about a second each) run on for seconds and would take the CPU
    from whatever is measured next. Each measurement starts once that work has drained.
    """
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        before = _cpu_times()
        if before is None:
            return 0.0
        time.sleep(window)
        after = _cpu_times()
        total = after[1] - before[1]
        if total <= 0 or (after[0] - before[0]) / total < busy_below:
            break
    return time.monotonic() - started


def wrk_peak(
    url: str,
    *,
    host: str,
    headers: dict[str, str] | None = None,
    seconds: int = 8,
    connections: int = 4,
    threads: int = 1,
) -> Result:
    """Closed-loop peak: ``connections`` clients send back to back for ``seconds``."""
    if not wrk_available():
        raise RuntimeError(WRK_INSTALL_HINT)
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(_LUA_DONE)
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s", "-s", script.name]
    cmd += ["-H", f"Host: {host}"]
    for name, value in (headers or {}).items():
        cmd += ["-H", f"{name}: {value}"]
    cmd.append(url)
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60, check=True).stdout
    finally:
        Path(script.name).unlink(missing_ok=True)
    line = next(line for line in out.splitlines() if line.startswith("WRKJSON "))
    data = json.loads(line.removeprefix("WRKJSON "))
    # wrk counts a non-2xx/3xx response under errors.status; read errors happen when a sync worker
    # closes an idle keep-alive socket, which wrk then reopens: report them, count only the others.
    errors = data["connect"] + data["write"] + data["status"] + data["timeout"]
    return Result(
        rps=data["requests"] / (data["duration_us"] / 1e6),
        p50_ms=data["p50"] / 1000,
        p90_ms=data["p90"] / 1000,
        p99_ms=data["p99"] / 1000,
        max_ms=data["max"] / 1000,
        requests=data["requests"],
        errors=errors,
        extra={"read_errors": data["read"]},
    )


def constant_rate(
    port: int,
    path: str,
    *,
    host: str,
    rate: float,
    seconds: float = 15.0,
    headers: dict[str, str] | None = None,
    concurrency: int = 256,
) -> Result:
    """Open loop at ``rate`` requests/s for ``seconds``; latency from each request's scheduled time.

    One thread and one ``selectors`` loop, raw sockets, one connection per request (a sync gunicorn
    worker closes every connection anyway): 240 to 270 us of CPU a request here, against 520 us (19 %
    of a core at 380 req/s) for the pool of ``http.client`` threads it replaces, CPU taken from the
    two cores the server under test runs on. ``concurrency`` caps the requests in flight; a request
    that waits for a free slot still counts its latency from its scheduled time.
    """
    total = int(rate * seconds)
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    request = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    address = ("127.0.0.1", port)
    latencies: list[float] = []
    errors = 0
    sel = selectors.DefaultSelector()
    clock = time.perf_counter
    t0 = clock() + 0.05
    sent = 0
    in_flight = 0
    next_scan = t0 + 0.5

    def finish(sock: socket.socket, state: list, ok: bool) -> None:
        nonlocal errors, in_flight
        sel.unregister(sock)
        sock.close()
        in_flight -= 1
        latencies.append(clock() - state[0])
        if not ok:
            errors += 1

    def start(scheduled: float) -> None:
        nonlocal in_flight
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        in_flight += 1
        state = [scheduled, b"", False]  # scheduled time, bytes received so far, request sent yet
        sel.register(sock, selectors.EVENT_WRITE, state)  # writable once connected
        if sock.connect_ex(address) == 0:  # loopback often connects at once: send now
            try:
                sock.sendall(request)
            except OSError:
                finish(sock, state, False)
                return
            state[2] = True
            sel.modify(sock, selectors.EVENT_READ, state)

    while sent < total or in_flight:
        now = clock()
        while sent < total and in_flight < concurrency and t0 + sent / rate <= now:
            start(t0 + sent / rate)
            sent += 1
        timeout = max(0.0, t0 + sent / rate - clock()) if sent < total and in_flight < concurrency else 0.5
        for key, _events in sel.select(timeout):
            sock, state = key.fileobj, key.data
            scheduled = state[0]
            if clock() - scheduled > 10:
                finish(sock, state, False)
                continue
            try:
                if not state[2]:
                    if sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                        finish(sock, state, False)
                        continue
                    sock.sendall(request)
                    state[2] = True
                    sel.modify(sock, selectors.EVENT_READ, state)
                    continue
                chunk = sock.recv(65536)
            except OSError:
                finish(sock, state, False)
                continue
            if chunk:
                state[1] += chunk
                continue
            status = state[1][9:12]  # b"HTTP/1.1 200 OK"
            finish(sock, state, state[1].startswith(b"HTTP/1.") and status[:1] in (b"2", b"3"))
        now = clock()
        if now >= next_scan:  # a request stuck past the timeout with no event at all
            next_scan = now + 0.5
            for key in list(sel.get_map().values()):
                if now - key.data[0] > 10:
                    finish(key.fileobj, key.data, False)
    sel.close()
    wall = clock() - t0
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p / 100 * len(latencies)))] * 1000

    return Result(
        rps=len(latencies) / wall,
        p50_ms=pct(50),
        p90_ms=pct(90),
        p99_ms=pct(99),
        max_ms=latencies[-1] * 1000,
        requests=len(latencies),
        errors=errors,
        extra={"target_rate": rate, "p95_ms": pct(95)},
    )


def median_result(results: list[Result]) -> Result:
    """Per-figure medians over repeated runs (each figure's own median)."""
    return Result(
        rps=statistics.median(r.rps for r in results),
        p50_ms=statistics.median(r.p50_ms for r in results),
        p90_ms=statistics.median(r.p90_ms for r in results),
        p99_ms=statistics.median(r.p99_ms for r in results),
        max_ms=max(r.max_ms for r in results),
        requests=sum(r.requests for r in results),
        errors=sum(r.errors for r in results),
        extra={"runs": [round(r.rps) for r in results]},
    )
