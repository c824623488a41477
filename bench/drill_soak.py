"""Fault drill: a soak with writes and a web node killed twice; and the tail latency over runs.

    .venv/bin/python bench/drill_soak.py [--minutes 20] [--kills 2] [--fraction 0.5] [--json]
    .venv/bin/python bench/drill_soak.py --tail [--runs 5] [--run-seconds 60] [--fraction 0.7]

Soak (default):
1. a private stack (bench/harness/stack.py): PostgreSQL, Redis, one firm, gunicorn with
   gunicorn.conf.py (2 sync workers, production settings);
2. the peak of the mix is measured closed-loop (``--peak-seconds``, 4 client threads); the soak then
   sends requests open-loop at ``--fraction`` of that peak, each timed from its scheduled start
   (so a stall shows as latency, not as fewer requests). The mix: 60 % GET /api/v1/portfolios/,
   10 % GET /api/v1/contacts/?search=..., 15 % POST a transaction, 15 % POST a contact (with an
   Idempotency-Key);
3. the whole web node (gunicorn master and workers) is killed with SIGKILL ``--kills`` times, at
   equal intervals, and started again at once;
4. every 10 s: RSS of each gunicorn worker and the load average;
5. checks: every write answered 2xx is in the database (the driver keeps its own ledger of them);
   the holding equals the ledger (no half-written transaction); no 5xx outside the kill windows;
   memory per worker (from its first sample after 60 s of life to its last) grows less than 10 %.

Tail (``--tail``): ``--runs`` constant-rate runs of GET /api/v1/portfolios/ at ``--fraction`` of
its peak, one after the other on the same server; p50/p95/p99/p99.9 of each run, as they are, and
where each run's time went (``decompose``): every request carries its own ``X-Request-ID``, the
server's request log gives its duration, and the driver records when a client thread began it, so
a request's latency splits into the client's lag, the server's time and the rest (connecting,
gunicorn's backlog, waiting for a core), for all requests and for the slowest 1 %.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import threading
import time
import uuid
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.harness.stack import Stack  # noqa: E402


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, int(round(q / 100 * len(ordered) + 0.5)) - 1))
    return round(ordered[index] * 1000, 1)


class Driver:
    def __init__(self, stack: Stack, *, reads_only: bool = False):
        self.stack = stack
        self.reads_only = reads_only
        self.lock = threading.Lock()
        self.samples: list[tuple[float, str, int, float]] = []  # (t since start, kind, status, seconds)
        self.acked_transactions: set[int] = set()
        self.acked_contacts: set[int] = set()
        self.t0 = time.monotonic()
        self.n = 0
        # Tail runs: (request id, seconds from the scheduled start to the moment a client thread
        # began the request) for each list call tagged with ``tag`` (None: not recorded).
        self.tag: str | None = None
        self.starts: dict[str, float] = {}
        self.on_sample = None

    def one(self, scheduled: float | None = None) -> None:
        began = time.monotonic()
        stack = self.stack
        roll = 0.0 if self.reads_only else random.random()  # noqa: S311
        with self.lock:
            self.n += 1
            n = self.n
        if roll < 0.60:
            headers = None
            if self.tag is not None and scheduled is not None:
                request_id = f"{self.tag}-{n}"
                headers = {"X-Request-ID": request_id}
                with self.lock:
                    self.starts[request_id] = began - scheduled
            kind, result = "list", stack.api("GET", "/api/v1/portfolios/", headers=headers)
        elif roll < 0.70:
            kind, result = "search", stack.api("GET", f"/api/v1/contacts/?search=soak{n % 50}")
        elif roll < 0.85:
            kind = "txn"
            result = stack.api(
                "POST",
                f"/api/v1/portfolios/{stack.portfolio.pk}/transactions/",
                {
                    "kind": "buy",
                    "trade_date": "2026-01-05",
                    "instrument": stack.instrument.pk,
                    "quantity": "1",
                    "price": "10",
                    "currency": "USD",
                    "note": f"soak {n}",
                },
            )
        else:
            kind = "contact"
            result = stack.api(
                "POST",
                "/api/v1/contacts/",
                {"first_name": f"Soak{n}", "last_name": "Driver", "email": f"soak{n}@example.com"},
                headers={"Idempotency-Key": uuid.uuid4().hex},
            )
        status, body, seconds = result
        done = time.monotonic()
        if scheduled is not None:
            seconds = done - scheduled  # open loop: from when it should have started
        tagged = kind == "list" and self.tag is not None and scheduled is not None
        if tagged and self.on_sample is not None and 200 <= status < 300:
            self.on_sample(f"{self.tag}-{n}", seconds)
        with self.lock:
            self.samples.append((done - self.t0, kind, status, seconds))
            if 200 <= status < 300 and kind in ("txn", "contact"):
                (self.acked_transactions if kind == "txn" else self.acked_contacts).add(json.loads(body)["id"])

    def closed_loop(self, seconds: float, threads: int = 4) -> float:
        stop = time.monotonic() + seconds
        count = [0]

        def loop():
            while time.monotonic() < stop:
                self.one()
                with self.lock:
                    count[0] += 1

        pool = [threading.Thread(target=loop) for _ in range(threads)]
        for t in pool:
            t.start()
        for t in pool:
            t.join()
        return count[0] / seconds

    def open_loop(self, rate: float, seconds: float, on_tick=None) -> None:
        interval = 1.0 / rate
        start = time.monotonic()
        end = start + seconds
        nxt = start
        with ThreadPoolExecutor(max_workers=48) as pool:
            while nxt < end:
                now = time.monotonic()
                if nxt > now:
                    time.sleep(nxt - now)
                pool.submit(self.one, nxt)
                nxt += interval
                if on_tick:
                    on_tick(time.monotonic() - start)


def rss_by_worker(stack: Stack) -> dict[int, float]:
    import psutil

    out = {}
    for pid in stack.web.worker_pids() if stack.web and stack.web.process.poll() is None else []:
        try:
            out[pid] = round(psutil.Process(pid).memory_info().rss / 1024 / 1024, 1)
        except psutil.Error:
            pass
    return out


def soak(args) -> dict:
    stack = Stack(workers=2)
    result: dict = stack.setup()
    stack.web_start()
    driver = Driver(stack)
    peak = driver.closed_loop(args.peak_seconds)
    rate = max(1.0, peak * args.fraction)
    driver.samples.clear()
    driver.t0 = time.monotonic()
    duration = args.minutes * 60
    kill_at = [duration * (i + 1) / (args.kills + 1) for i in range(args.kills)]
    kills: list[dict] = []
    memory: list[dict] = []
    stop = threading.Event()

    def sampler():
        while not stop.wait(10):
            memory.append(
                {
                    "t": round(time.monotonic() - driver.t0, 1),
                    "rss_mb": rss_by_worker(stack),
                    "load": round(os.getloadavg()[0], 2),
                }
            )

    def killer():
        for at in kill_at:
            if stop.wait(max(0.0, at - (time.monotonic() - driver.t0))):
                return
            t_kill = time.monotonic() - driver.t0
            stack.web_kill()
            stack.web_start()
            kills.append(
                {"killed_at_s": round(t_kill, 1), "serving_again_at_s": round(time.monotonic() - driver.t0, 1)}
            )

    threads = [threading.Thread(target=sampler, daemon=True), threading.Thread(target=killer, daemon=True)]
    for t in threads:
        t.start()
    load_start = os.getloadavg()
    try:
        driver.open_loop(rate, duration)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=120)
    load_end = os.getloadavg()
    # What the database holds.
    from django.db import connections
    from django_tenants.utils import schema_context

    with schema_context(stack.tenant.schema_name):
        from crm.models import Contact
        from portfolios.models import Holding, Transaction

        txn_ids = set(Transaction.objects.filter(portfolio=stack.portfolio).values_list("id", flat=True))
        contact_ids = set(Contact.objects.values_list("id", flat=True))
        holding = Holding.objects.filter(portfolio=stack.portfolio, instrument=stack.instrument).first()
    connections.close_all()
    stack.stop()

    windows = [(k["killed_at_s"], k["serving_again_at_s"] + 2) for k in kills]

    def in_kill(t: float) -> bool:
        return any(a <= t <= b for a, b in windows)

    per_minute = []
    by_minute: dict[int, list] = defaultdict(list)
    for t, kind, status, seconds in driver.samples:
        by_minute[int(t // 60)].append((kind, status, seconds, t))
    for minute in sorted(by_minute):
        rows = by_minute[minute]
        ok = [s for _, status, s, _ in rows if 200 <= status < 300]
        per_minute.append(
            {
                "minute": minute + 1,
                "requests": len(rows),
                "errors": sum(1 for _, status, _, _ in rows if not 200 <= status < 300),
                "p50_ms": pct(ok, 50),
                "p95_ms": pct(ok, 95),
                "p99_ms": pct(ok, 99),
            }
        )
    statuses = Counter(status for _, _, status, _ in driver.samples)
    errors_outside_kills = Counter(
        status for t, _, status, _ in driver.samples if not 200 <= status < 300 and not in_kill(t)
    )
    # Memory: per worker process, first sample after 60 s of its life to its last one.
    first_seen: dict[int, float] = {}
    series: dict[int, list[tuple[float, float]]] = defaultdict(list)
    for sample in memory:
        for pid, mb in sample["rss_mb"].items():
            first_seen.setdefault(pid, sample["t"])
            series[pid].append((sample["t"], mb))
    growth = {}
    for pid, points in series.items():
        settled = [mb for t, mb in points if t - first_seen[pid] >= 60]
        if len(settled) >= 2:
            growth[pid] = {
                "first_mb": settled[0],
                "last_mb": settled[-1],
                "growth_pct": round(100 * (settled[-1] / settled[0] - 1), 1),
            }
    all_ok = [s for _, _, status, s in driver.samples if 200 <= status < 300]
    result.update(
        minutes=args.minutes,
        peak_rps=round(peak, 1),
        rate_rps=round(rate, 1),
        requests=len(driver.samples),
        statuses=dict(statuses),
        errors_outside_kill_windows=dict(errors_outside_kills),
        kills=kills,
        p50_ms=pct(all_ok, 50),
        p95_ms=pct(all_ok, 95),
        p99_ms=pct(all_ok, 99),
        per_minute=per_minute,
        memory_growth_per_worker=growth,
        memory_samples=memory,
        acknowledged_transactions=len(driver.acked_transactions),
        acknowledged_contacts=len(driver.acked_contacts),
        acknowledged_missing=len(driver.acked_transactions - txn_ids) + len(driver.acked_contacts - contact_ids),
        holding_units=str(holding.quantity if holding else 0),
        ledger_rows=len(txn_ids),
        load_average_start=[round(x, 2) for x in load_start],
        load_average_end=[round(x, 2) for x in load_end],
    )
    result["checks"] = {
        "every acknowledged write is in the database": result["acknowledged_missing"] == 0,
        "holding equals the ledger (no half-written transaction)": holding is not None
        and int(holding.quantity) == len(txn_ids),
        "no 5xx outside the kill windows": not any(s >= 500 for s in errors_outside_kills),
        "memory per worker grows less than 10 %": bool(growth) and all(g["growth_pct"] < 10 for g in growth.values()),
        "the node was killed and served again each time": len(kills) == args.kills,
    }
    result["ok"] = all(result["checks"].values())
    return result


def server_durations(log_path: Path, prefix: str) -> dict[str, float]:
    """Seconds the server spent on each request whose id starts with ``prefix``, from the JSON
    request log (``codex.observability``: ``request_id``, ``duration_ms``)."""
    durations = {}
    with log_path.open() as log:
        for line in log:
            if prefix not in line or not line.startswith("{"):
                continue
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            request_id = entry.get("request_id", "")
            if request_id.startswith(prefix) and "duration_ms" in entry:
                durations[request_id] = entry["duration_ms"] / 1000
    return durations


def decompose(total: dict[str, float], client_lag: dict[str, float], server: dict[str, float]) -> dict:
    """Where a run's latency went: the client's own lag (scheduled start to the request begun by a
    client thread), the server's time (its request log), and the rest (connecting, the kernel's
    queue and gunicorn's backlog, waiting for a core), for all requests and for the slowest 1 %."""
    ids = [i for i in total if i in client_lag and i in server]
    if not ids:
        return {"matched": 0}
    slowest = sorted(ids, key=lambda i: total[i])[-max(1, len(ids) // 100) :]

    def parts(chosen: list[str]) -> dict:
        lag = sum(client_lag[i] for i in chosen)
        srv = sum(server[i] for i in chosen)
        whole = sum(total[i] for i in chosen)
        return {
            "mean_ms": round(whole / len(chosen) * 1000, 1),
            "client_lag_share": round(lag / whole, 3),
            "server_share": round(srv / whole, 3),
            "rest_share": round(max(0.0, whole - lag - srv) / whole, 3),
        }

    return {
        "matched": len(ids),
        "server_p50_ms": pct([server[i] for i in ids], 50),
        "server_p99_ms": pct([server[i] for i in ids], 99),
        "client_lag_p99_ms": pct([client_lag[i] for i in ids], 99),
        "all": parts(ids),
        "slowest_1pct": parts(slowest),
    }


def tail(args) -> dict:
    # The request log at INFO: the server's own duration of each tagged request (decompose()).
    stack = Stack(workers=2, extra_env={"DJANGO_LOG_LEVEL": "INFO"})
    result: dict = stack.setup()
    stack.web_start()
    # A realistic list: some portfolios.
    for i in range(24):
        stack.api("POST", "/api/v1/portfolios/", {"name": f"Tail {i}", "base_currency": "USD"})
    driver = Driver(stack, reads_only=True)
    peak = driver.closed_loop(args.peak_seconds)
    rate = max(1.0, peak * args.fraction)
    runs = []
    for run in range(args.runs):
        driver.samples.clear()
        driver.starts.clear()
        driver.tag = f"tail{run + 1}"
        totals: dict[str, float] = {}
        driver.on_sample = totals.__setitem__  # (request id, seconds) of each tagged 2xx
        load = os.getloadavg()[0]
        driver.open_loop(rate, args.run_seconds)
        driver.on_sample = None
        ok = [s for _, _, status, s in driver.samples if 200 <= status < 300]
        time.sleep(0.5)  # the last log lines reach the file
        breakdown = decompose(totals, dict(driver.starts), server_durations(stack.web.log_path, f"tail{run + 1}-"))
        runs.append(
            {
                "run": run + 1,
                "requests": len(driver.samples),
                "errors": sum(1 for _, _, status, _ in driver.samples if not 200 <= status < 300),
                "p50_ms": pct(ok, 50),
                "p95_ms": pct(ok, 95),
                "p99_ms": pct(ok, 99),
                "p99_9_ms": pct(ok, 99.9),
                "max_ms": round(max(ok) * 1000, 1) if ok else None,
                "load_average_at_start": round(load, 2),
                "breakdown": breakdown,
            }
        )
    driver.tag = None
    stack.stop()
    p99s = [r["p99_ms"] for r in runs if r["p99_ms"] is not None]
    result.update(
        peak_rps=round(peak, 1),
        rate_rps=round(rate, 1),
        runs=runs,
        p99_spread_ms=[min(p99s), max(p99s)] if p99s else None,
        p99_median_ms=statistics.median(p99s) if p99s else None,
    )
    result["ok"] = all(r["errors"] == 0 for r in runs)
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tail", action="store_true", help="tail latency over --runs runs instead of the soak")
    parser.add_argument("--minutes", type=float, default=20)
    parser.add_argument("--kills", type=int, default=2)
    parser.add_argument("--fraction", type=float, default=None, help="of the peak (soak 0.5, tail 0.7)")
    parser.add_argument("--peak-seconds", type=float, default=15)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--run-seconds", type=float, default=60)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if args.fraction is None:
        args.fraction = 0.7 if args.tail else 0.5
    result = tail(args) if args.tail else soak(args)
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            if key not in ("checks", "per_minute", "memory_samples", "runs"):
                print(f"{key:>34}: {value}")
        for row in result.get("per_minute", []) + result.get("runs", []):
            print("  ", row)
        for name, passed in result.get("checks", {}).items():
            print(f"  [{'PASS' if passed else 'FAIL'}] {name}")
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
