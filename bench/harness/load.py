"""Load generators, run in processes of their own next to the server under test.

- ``wrk_peak``: closed-loop peak throughput with Debian's ``wrk`` (C, epoll), latency percentiles and
  errors reported by a small Lua ``done()`` hook as JSON;
- ``constant_rate``: an open-loop driver at a fixed request rate (what ``wrk2 -R`` does; wrk2 is not
  packaged by Debian). Each request has a scheduled send time ``t0 + i / rate`` and its latency is
  measured from that time, not from when a thread got round to sending it, so a stalled server shows
  up in the percentiles instead of silently lowering the rate (no coordinated omission).
"""

from __future__ import annotations

import http.client
import json
import shutil
import statistics
import subprocess
import tempfile
import threading
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
    concurrency: int = 32,
) -> Result:
    """Open loop at ``rate`` requests/s for ``seconds``; latency from each request's scheduled time."""
    total = int(rate * seconds)
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    counter = iter(range(total))
    send_headers = {"Host": host, **(headers or {})}
    t0 = time.perf_counter() + 0.2

    def worker() -> None:
        nonlocal errors
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                break
            scheduled = t0 + i / rate
            delay = scheduled - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            ok = False
            try:
                conn.request("GET", path, headers=send_headers)
                response = conn.getresponse()
                response.read()
                ok = 200 <= response.status < 400
                if response.getheader("Connection", "").lower() == "close":
                    conn.close()
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            elapsed = time.perf_counter() - scheduled
            with lock:
                latencies.append(elapsed)
                if not ok:
                    errors += 1
        conn.close()

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
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
        extra={"target_rate": rate},
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
