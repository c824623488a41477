"""Issue 19: each dashboard panel timed in process on the big seed, for the owner and the advisor.

    DATABASE_URL=<server>/codex_bench_pages .venv/bin/python bench/dashboard_panels.py [--repeat 7]

Run from the root of the checkout to measure (the code imported is the current directory's, so
the same script times another checkout: ``cd <other> && python <this file>``). Per panel: the
median wall time of ``--repeat`` calls after one warm-up call (the shared cache warm, as a
steady page view), the number of queries and their summed database time. Prints the machine's
load average with the table: on a shared machine the absolute times move with it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.getcwd())
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "codex.settings")

LARGE_SLUG = "bench-large"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--json", help="write the figures to this file too")
    args = parser.parse_args()

    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone
    from django_tenants.utils import get_public_schema_name, schema_context, tenant_context

    from codex.site import dashboard
    from portfolios import book
    from tenants.models import Tenant

    with schema_context(get_public_schema_name()):
        tenant = Tenant.objects.get(slug=LARGE_SLUG)
    today = timezone.localdate()
    panels = {
        "book_totals": lambda user: book.book_totals(user=user, on=today),
        "book_exposure": lambda user: book.book_exposure(user=user, on=today),
        "performance": lambda user: dashboard.performance_panel(user=user, today=today),
        "deals": lambda user: dashboard.deals_panel(user=user, today=today),
        "activity": lambda user: dashboard.activity_panel(user=user, today=today),
        "tasks": lambda user: dashboard.tasks_panel(user=user, today=today),
        "alerts": lambda user: dashboard.alerts_panel(user=user, today=today),
        "open_breaks": lambda user: dashboard.breaks_panel(user=user, today=today),
    }
    out: dict[str, dict[str, dict]] = {}
    with tenant_context(tenant):
        users = {
            "owner": get_user_model().objects.get(email="owner@bench-large.example"),
            "advisor": get_user_model().objects.get(email="advisor@bench-large.example"),
        }
        for who, user in users.items():
            for name, panel in panels.items():
                panel(user)  # warm-up: the shared cache and the connection
                times, sql_ms, queries = [], 0.0, 0
                for _ in range(args.repeat):
                    with CaptureQueriesContext(connection) as ctx:
                        started = time.perf_counter()
                        panel(user)
                        times.append((time.perf_counter() - started) * 1000)
                    queries = len(ctx.captured_queries)
                    sql_ms = sum(float(q["time"]) for q in ctx.captured_queries) * 1000
                out.setdefault(name, {})[who] = {
                    "ms": round(statistics.median(times), 1),
                    "queries": queries,
                    "sql_ms": round(sql_ms, 1),
                }
    load = "{:.2f} / {:.2f} / {:.2f}".format(*os.getloadavg())
    print(f"| panel | owner ms (queries, SQL ms) | advisor ms (queries, SQL ms) |   load {load}")
    print("|---|---|---|")
    for name, row in out.items():
        cells = [f"{row[w]['ms']} ({row[w]['queries']}, {row[w]['sql_ms']})" for w in ("owner", "advisor")]
        print(f"| {name} | {cells[0]} | {cells[1]} |")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"load": load, "panels": out}, handle, indent=2)


if __name__ == "__main__":
    main()
