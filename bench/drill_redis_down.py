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
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.harness.drill import ClientLoad, print_result  # noqa: E402
from bench.harness.stack import Stack  # noqa: E402

KINDS = ("list", "txn", "health", "ready")


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
    load = ClientLoad(stack, kinds=KINDS, threads=args.threads, note_prefix="r")
    load.start()
    try:
        time.sleep(args.before)
        t_down = load.now()
        stack.redis_kill()
        time.sleep(args.down)
        t_up = load.now()
        stack.redis_start()
        time.sleep(args.after)
    finally:
        load.stop()

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

    table, slowest, examples = load.by_phase(phase, example=lambda p, status: p == "down" and status >= 500)
    # Recovery: first time after the restart from which every kind answered 2xx.
    recovered_at = {}
    for kind in KINDS:
        after = [(t, s) for t, k, s, _, _ in load.samples if k == kind and t >= t_up]
        last_bad = max((t for t, s in after if not 200 <= s < 300), default=None)
        recovered_at[kind] = round((last_bad or t_up) - t_up, 2) if after else None
    statuses_down = {kind: dict(c) for kind, c in table["down"].items()}
    result.update(
        down_seconds=args.down,
        statuses={p: {k: dict(c) for k, c in kinds.items()} for p, kinds in table.items()},
        slowest_seconds={f"{p} {k}": round(v, 2) for (p, k), v in slowest.items()},
        recovered_after_restart_s=recovered_at,
        examples_of_5xx_while_down=examples,
        acknowledged_writes=len(load.acked),
        acknowledged_missing=len(load.acked - txn_ids),
        ledger_rows=len(txn_ids),
        holding_units=str(holding.quantity if holding else 0),
        **load.load_averages(),
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
        "all 2xx again 5 s after the restart, gunicorn not restarted": load.all_ok_after(t_up + 5),
        "every acknowledged write is in the database": result["acknowledged_missing"] == 0,
        "holding equals the ledger": holding is not None and int(holding.quantity) == len(txn_ids),
    }
    result["ok"] = all(result["checks"].values())
    return print_result(result, as_json=args.json)


if __name__ == "__main__":
    sys.exit(main())
