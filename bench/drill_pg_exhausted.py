"""Fault drill: PostgreSQL connections exhausted (max_connections reached).

    .venv/bin/python bench/drill_pg_exhausted.py [--max-connections 24] [--hold 20] [--json]

1. a private stack (bench/harness/stack.py) whose PostgreSQL has ``max_connections`` set low;
   gunicorn (2 workers, production settings) started and warm;
2. the drill opens connections of its own until PostgreSQL refuses more ("too many clients"),
   holds them ``--hold`` s, then closes them;
3. meanwhile client threads keep calling GET /api/v1/portfolios/, POST a transaction and
   GET /ready. By default the web node opens a connection per request (``--conn-max-age 0``), so
   every request meets the full database; ``--conn-max-age 60`` keeps production's persistent
   connections; ``--reload`` also restarts the workers (SIGHUP) while the database is full;
4. checks: no request hangs (each answered within 15 s: bounded, never a stuck worker); while
   the database is full each answer is 2xx (a worker that still holds its connection) or a 503
   envelope with Retry-After, never a 500; /ready says 503 for a worker that cannot connect;
   everything is 2xx again once connections are free, without restarting gunicorn by hand;
   every acknowledged write is in the database.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.harness.drill import ClientLoad, print_result  # noqa: E402
from bench.harness.stack import Stack  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--max-connections", type=int, default=24)
    parser.add_argument("--before", type=float, default=8.0)
    parser.add_argument("--hold", type=float, default=20.0)
    parser.add_argument("--after", type=float, default=15.0)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument(
        "--conn-max-age",
        default="0",
        help="DJANGO_CONN_MAX_AGE of the web node: 0 (default) opens a connection per request, so every "
        "request meets the full database; 60 (production's default) keeps each worker's connection",
    )
    parser.add_argument("--reload", action="store_true", help="also SIGHUP gunicorn (new workers) while full")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    stack = Stack(workers=2, extra_env={"DJANGO_CONN_MAX_AGE": args.conn_max_age})
    result: dict = stack.setup(pg_settings={"max_connections": str(args.max_connections)})
    stack.web_start()
    import psycopg

    load = ClientLoad(
        stack, kinds=("list", "txn", "ready"), threads=args.threads, note_prefix="p", pause_after_error=0.05
    )
    load.start()
    held = []
    refused_with = ""
    try:
        time.sleep(args.before)
        t_full = load.now()
        while True:
            try:
                held.append(
                    psycopg.connect(stack.database_url.replace("postgres://", "postgresql://"), connect_timeout=5)
                )
            except psycopg.OperationalError as exc:
                refused_with = str(exc).strip().splitlines()[-1][:200]
                break
            if len(held) > args.max_connections + 5:
                break
        if args.reload:  # new workers while the database is full (they must open new connections)
            os.kill(stack.web.process.pid, signal.SIGHUP)
        time.sleep(args.hold)
        t_free = load.now()
        for conn in held:
            conn.close()
        time.sleep(args.after)
    finally:
        load.stop()

    from django.db import connections
    from django_tenants.utils import schema_context

    with schema_context(stack.tenant.schema_name):
        from portfolios.models import Transaction

        txn_ids = set(Transaction.objects.filter(portfolio=stack.portfolio).values_list("id", flat=True))
    connections.close_all()
    stack.stop()

    def phase(t: float) -> str:
        return "before" if t < t_full else ("full" if t < t_free else "after")

    table, slowest, examples = load.by_phase(phase, example=lambda p, status: p == "full" and not 200 <= status < 300)
    statuses_full = {kind: dict(c) for kind, c in table["full"].items()}
    result.update(
        max_connections=args.max_connections,
        conn_max_age=args.conn_max_age,
        reload=args.reload,
        connections_taken_by_the_drill=len(held),
        refused_with=refused_with,
        hold_seconds=args.hold,
        statuses={p: {k: dict(c) for k, c in kinds.items()} for p, kinds in table.items()},
        slowest_seconds={f"{p} {k}": round(v, 2) for (p, k), v in slowest.items()},
        examples_while_full=examples,
        acknowledged_writes=len(load.acked),
        acknowledged_missing=len(load.acked - txn_ids),
        **load.load_averages(),
    )
    result["checks"] = {
        "the database was really full": bool(refused_with),
        "no request hung (all answered within 15 s)": all(v < 15 for v in slowest.values()),
        "no 500 while full (2xx or a 503 envelope)": all(
            s != 500 and s != 0 for c in statuses_full.values() for s in c
        ),
        "all 2xx again 5 s after connections were freed": load.all_ok_after(t_free + 5),
        "every acknowledged write is in the database": result["acknowledged_missing"] == 0,
    }
    result["ok"] = all(result["checks"].values())
    return print_result(result, as_json=args.json)


if __name__ == "__main__":
    sys.exit(main())
