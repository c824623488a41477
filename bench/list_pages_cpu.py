"""Issue 19: the lists of the big seed measured in process: CPU per request, queries, and the plan
of each query with its real timings (``EXPLAIN (ANALYZE, BUFFERS)``).

    DATABASE_URL=<server>/codex_bench_pages .venv/bin/python bench/list_pages_cpu.py \
        [--repeat 15] [--explain] [--only contacts_search,deals_list]

The requests are those of ``bench/pages.py`` (the read API key on the big firm's host) through
Django's test client: the whole middleware stack, no network, no queueing. CPU time is
``time.process_time`` of this process (Python, not the database server's); the wall time adds
the database's. Medians over ``--repeat`` requests after two warm-up requests. Figures swing with
the machine's load: compare runs made one after the other, and say the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "codex.settings")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seed", help="the seed file (default .data/bench/seed-<database>.json)")
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--explain", action="store_true", help="EXPLAIN ANALYZE each query of each list")
    parser.add_argument("--only", default="")
    args = parser.parse_args()

    import django

    django.setup()
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django_tenants.utils import schema_context

    from bench.harness import report
    from bench.pages import pages
    from tenants.models import Tenant

    name = connection.settings_dict["NAME"]
    seed = json.loads(Path(args.seed or ROOT / ".data" / "bench" / f"seed-{name}.json").read_text())
    schema = Tenant.objects.get(slug=seed["large_slug"]).schema_name
    client = Client(HTTP_HOST=seed["host"], HTTP_X_API_KEY=seed["api_key"])
    only = set(filter(None, args.only.split(",")))
    print(f"load average {report.load_average()}")
    for page in pages(seed):
        if not page.explain or (only and page.key not in only):
            continue
        for _ in range(2):
            assert client.get(page.path).status_code == 200, page.path
        cpu, wall = [], []
        for _ in range(args.repeat):
            c0, w0 = time.process_time(), time.perf_counter()
            response = client.get(page.path)
            cpu.append((time.process_time() - c0) * 1000)
            wall.append((time.perf_counter() - w0) * 1000)
            assert response.status_code == 200
        with CaptureQueriesContext(connection) as ctx:
            body = client.get(page.path).json()
        count = body.get("count", len(body.get("results", [])))
        print(
            f"{page.key:20} cpu {statistics.median(cpu):6.1f} ms  wall {statistics.median(wall):6.1f} ms  "
            f"{len(ctx.captured_queries)} queries  count {count}",
            flush=True,
        )
        if not args.explain:
            continue
        for q in ctx.captured_queries:
            sql = q["sql"]
            if not sql.lstrip().upper().startswith("SELECT"):
                continue
            with schema_context(schema), connection.cursor() as cur:
                cur.execute("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + sql)
                plan = "\n".join(r[0] for r in cur.fetchall())
            print(f"-- {sql[:400]}\n{plan}\n")
    print(f"load average {report.load_average()}")


if __name__ == "__main__":
    main()
