"""Fault drill: Redis down for 30 s under load.

    .venv/bin/python bench/drill_redis_down.py [--down 30] [--threads 4] [--json]

1. a private stack (bench/harness/stack.py): PostgreSQL, Redis, one firm, gunicorn (2 workers,
   production settings);
2. client threads, closed loop: GET /api/v1/portfolios/ (API key on the API host: key lookup,
   throttle, metering), POST a transaction (a ledger write whose side effects are queued on commit),
   GET /health (no Redis, no database) and GET /ready (checks both);
3. Redis is killed (SIGKILL) after ``--before`` s, kept down ``--down`` s, then started again on the
   same port, empty (the worst case: a Redis that lost its data too); load goes on ``--after`` s;
4. checks: no request hangs (every answer within 15 s); while Redis is down, reads and writes that
   do not need it answer 2xx and the rest a 503 envelope (never a 500); /ready stays 200 (the node
   still serves; its body says ``"redis": "unreachable"``); everything is 2xx again after the
   restart without restarting gunicorn; every write answered 201 is in the database, and the
   holding equals the ledger.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.harness.stack import Stack, http  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--down", type=float, default=30.0)
    parser.add_argument("--before", type=float, default=10.0)
    parser.add_argument("--after", type=float, default=20.0)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    stack = Stack(workers=2)
    result: dict = stack.setup()
    stack.web_start()
    import os

    lock = threading.Lock()
    samples: list[tuple[float, str, int, float, bytes]] = []
    acked: set[int] = set()
    stop = threading.Event()
    t0 = time.monotonic()

    def client(n: int):
        i = 0
        while not stop.is_set():
            i += 1
            kind = ("list", "txn", "health", "ready")[i % 4]
            if kind == "list":
                status, body, seconds = stack.api("GET", "/api/v1/portfolios/")
            elif kind == "txn":
                status, body, seconds = stack.api(
                    "POST",
                    f"/api/v1/portfolios/{stack.portfolio.pk}/transactions/",
                    {
                        "kind": "buy",
                        "trade_date": "2026-01-05",
                        "instrument": stack.instrument.pk,
                        "quantity": "1",
                        "price": "10",
                        "currency": "USD",
                        "note": f"r{n}-{i}",
                    },
                )
            else:
                status, body, seconds = http("GET", f"{stack.base}/{kind}", "localhost")
            with lock:
                samples.append((time.monotonic() - t0, kind, status, seconds, body[:300]))
                if kind == "txn" and status == 201:
                    acked.add(json.loads(body)["id"])

    threads = [threading.Thread(target=client, args=(n,)) for n in range(args.threads)]
    for t in threads:
        t.start()
    load_start = os.getloadavg()
    try:
        time.sleep(args.before)
        t_down = time.monotonic() - t0
        stack.redis_kill()
        time.sleep(args.down)
        t_up = time.monotonic() - t0
        stack.redis_start()
        time.sleep(args.after)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=60)
    load_end = os.getloadavg()

    from django.db import connections
    from django_tenants.utils import schema_context

    with schema_context(stack.tenant.schema_name):
        from portfolios.models import Holding, Transaction

        txn_ids = set(Transaction.objects.filter(portfolio=stack.portfolio).values_list("id", flat=True))
        holding = Holding.objects.filter(portfolio=stack.portfolio, instrument=stack.instrument).first()
    connections.close_all()
    stack.stop()

    def phase(t: float) -> str:
        return "before" if t < t_down else ("down" if t < t_up else "after")

    table: dict = defaultdict(lambda: defaultdict(Counter))
    slowest: dict = defaultdict(float)
    examples: dict = {}
    for t, kind, status, seconds, body in samples:
        p = phase(t)
        table[p][kind][status] += 1
        slowest[(p, kind)] = max(slowest[(p, kind)], seconds)
        if p == "down" and status >= 500:
            examples.setdefault(f"{kind} {status}", body.decode(errors="replace"))
    # Recovery: first time after the restart from which every kind answered 2xx.
    recovered_at = {}
    for kind in ("list", "txn", "health", "ready"):
        after = [(t, s) for t, k, s, _, _ in samples if k == kind and t >= t_up]
        last_bad = max((t for t, s in after if not 200 <= s < 300), default=None)
        recovered_at[kind] = round((last_bad or t_up) - t_up, 2) if after else None
    statuses_down = {kind: dict(c) for kind, c in table["down"].items()}
    result.update(
        down_seconds=args.down,
        statuses={p: {k: dict(c) for k, c in kinds.items()} for p, kinds in table.items()},
        slowest_seconds={f"{p} {k}": round(v, 2) for (p, k), v in slowest.items()},
        recovered_after_restart_s=recovered_at,
        examples_of_5xx_while_down=examples,
        acknowledged_writes=len(acked),
        acknowledged_missing=len(acked - txn_ids),
        ledger_rows=len(txn_ids),
        holding_units=str(holding.quantity if holding else 0),
        load_average_start=[round(x, 2) for x in load_start],
        load_average_end=[round(x, 2) for x in load_end],
    )
    after_ok = all(
        all(200 <= s < 300 for t, k, s, _, _ in samples if k == kind and t >= t_up + 5)
        for kind in ("list", "txn", "health", "ready")
    )
    result["checks"] = {
        "no request hung (all answered within 15 s)": all(v < 15 for v in slowest.values()),
        "no 500 while Redis was down (2xx or a 503 envelope)": all(
            s < 500 or s == 503 for c in statuses_down.values() for s in c
        ),
        "reads kept serving while Redis was down": any(200 <= s < 300 for s in statuses_down.get("list", {})),
        "writes kept serving while Redis was down": any(200 <= s < 300 for s in statuses_down.get("txn", {})),
        "/health kept serving": set(statuses_down.get("health", {})) <= {200},
        "/ready stayed 200 while Redis was down (the node still serves; it reports redis unreachable)": set(
            statuses_down.get("ready", {})
        )
        <= {200},
        "all 2xx again 5 s after the restart, gunicorn not restarted": after_ok,
        "every acknowledged write is in the database": result["acknowledged_missing"] == 0,
        "holding equals the ledger": holding is not None and int(holding.quantity) == len(txn_ids),
    }
    result["ok"] = all(result["checks"].values())
    if args.json:
        print(json.dumps(result, default=str))
    else:
        for key, value in result.items():
            if key != "checks":
                print(f"{key:>34}: {value}")
        for name, passed in result["checks"].items():
            print(f"  [{'PASS' if passed else 'FAIL'}] {name}")
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
