"""Issue 19: one page of the big seed profiled in process: time, queries (and their shapes), and
the Python functions that cost most.

    DATABASE_URL=<server>/codex_bench_pages .venv/bin/python bench/profile_page.py /crm/contacts/<id>/ \
        [--as owner|advisor] [--repeat 5] [--profile]
    ... bench/profile_page.py /portfolios/<id>/import/ --csv-preview 5000   # POST: the bench's CSV file

Run from the root of the checkout to measure. The page is requested through Django's test client
(the whole middleware stack, no network) on the big firm's host, signed in as its owner or
advisor (``--csv-preview N``: the page is POSTed the ``N``-row ledger file of bench/pages.py, as the
import preview's bench does). Prints the median wall time and CPU time (``time.process_time``),
the number of queries and their database time, the query shapes that repeat (an N+1 shows as one
shape many times), and with ``--profile`` the top of cProfile's cumulative listing for one more
request.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import re
import statistics
import sys
import time
from collections import Counter

sys.path.insert(0, os.getcwd())
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "codex.settings")

LARGE_SLUG = "bench-large"


def shape(sql: str) -> str:
    return re.sub(r"\b\d+\b", "N", re.sub(r"'[^']*'", "'S'", sql))[:160]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("path")
    parser.add_argument("--as", dest="who", default="owner", choices=["owner", "advisor"])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--csv-preview", type=int, default=0, help="POST an N-row ledger CSV file to the page")
    parser.add_argument(
        "--explain", type=int, default=0, help="EXPLAIN ANALYZE the N slowest queries of the last request"
    )
    parser.add_argument("--key", default="", help="an API key (X-API-Key) instead of a signed-in user")
    args = parser.parse_args()

    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django_tenants.utils import get_public_schema_name, schema_context, tenant_context

    from tenants.models import Tenant

    with schema_context(get_public_schema_name()):
        tenant = Tenant.objects.get(slug=LARGE_SLUG)
    host = f"{LARGE_SLUG}.{settings.CODEX_BASE_DOMAIN}"
    if args.key:
        client = Client(HTTP_HOST=host, HTTP_X_API_KEY=args.key)
    else:
        client = Client(HTTP_HOST=host)
        with tenant_context(tenant):
            user = get_user_model().objects.get(email=f"{args.who}@bench-large.example")
            client.force_login(user)
    request = lambda: client.get(args.path)  # noqa: E731
    if args.csv_preview:
        from django.core.files.uploadedfile import SimpleUploadedFile

        from bench.pages import preview_csv

        body = preview_csv(args.csv_preview)
        request = lambda: client.post(  # noqa: E731
            args.path, {"file": SimpleUploadedFile("ledger.csv", body, content_type="text/csv")}
        )
    response = request()  # warm-up
    if response.status_code != 200:
        raise SystemExit(f"{args.path}: HTTP {response.status_code}")
    times: list[float] = []
    cpu: list[float] = []
    queries: list[dict] = []
    for _ in range(args.repeat):
        with CaptureQueriesContext(connection) as ctx:
            started, started_cpu = time.perf_counter(), time.process_time()
            request()
            times.append((time.perf_counter() - started) * 1000)
            cpu.append((time.process_time() - started_cpu) * 1000)
        queries = ctx.captured_queries
    sql_ms = sum(float(q["time"]) for q in queries) * 1000
    load = "{:.2f} / {:.2f} / {:.2f}".format(*os.getloadavg())
    print(
        f"{args.path} as {args.who}: median {statistics.median(times):.1f} ms of {args.repeat} "
        f"(min {min(times):.1f}), CPU median {statistics.median(cpu):.1f} ms (min {min(cpu):.1f}); "
        f"{len(queries)} queries, {sql_ms:.1f} ms in the database; load {load}"
    )
    for sql, n in Counter(shape(q["sql"]) for q in queries).most_common(5):
        print(f"  {n} x {sql}")
    slowest = sorted(queries, key=lambda q: -float(q["time"]))[:5]
    for q in slowest:
        print(f"  {float(q['time']) * 1000:.1f} ms: {shape(q['sql'])}")
    for q in sorted(queries, key=lambda q: -float(q["time"]))[: args.explain]:
        if not q["sql"].lstrip().upper().startswith(("SELECT", "WITH", "(")):
            continue
        with tenant_context(tenant), connection.cursor() as cur:
            cur.execute("EXPLAIN (ANALYZE, BUFFERS) " + q["sql"])
            plan = "\n".join(r[0] for r in cur.fetchall())
        print(f"\n-- {float(q['time']) * 1000:.1f} ms: {q['sql'][:400]}\n{plan}")
    if args.profile:
        profiler = cProfile.Profile()
        profiler.enable()
        request()
        profiler.disable()
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats(os.environ.get("PROFILE_SORT", "cumulative")).print_stats(35)
        print(out.getvalue())


if __name__ == "__main__":
    main()
