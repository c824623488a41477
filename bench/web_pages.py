"""Server time and query count of the dashboard and the main list pages, with the demo data.

    .venv/bin/python bench/web_pages.py [--runs 30] [--reuse-db]

Seeds a scratch database ``codex_bench_web`` on the development PostgreSQL server (``migrate_all``
then ``seed_demo``: firms acme and globex with their demo portfolios, CRM and billing), signs in as
``owner@acme.example`` and times each page in process through Django's whole middleware stack
(the test client; no network, no gunicorn): the median and p95 of ``--runs`` requests after two
warm-up requests, and the number of SQL statements of one request. Writes
bench/results/web_pages_<cache>.json and prints a Markdown table (docs/web.md keeps the latest figures).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.harness import db  # noqa: E402

PAGES = [
    ("dashboard", "/"),
    ("portfolios", "/portfolios/"),
    ("clients", "/crm/contacts/"),
    ("pipeline", "/crm/pipeline/"),
    ("tasks", "/crm/tasks/"),
    ("newsletter", "/crm/newsletter/"),
    ("billing", "/billing/"),
    ("team", "/accounts/team/"),
    ("api keys", "/accounts/api-keys/"),
    ("settings", "/settings/"),
]
NAME = "codex_bench_web"


def seed(url: str) -> None:
    env = {**os.environ, "DATABASE_URL": url, "DJANGO_LOG_LEVEL": "WARNING"}
    py = str(ROOT / ".venv" / "bin" / "python")
    for args in (["migrate_all", "--verbosity", "0"], ["seed_demo"]):
        subprocess.run([py, "manage.py", *args], cwd=ROOT, env=env, check=True, capture_output=True)


def measure(runs: int) -> list[dict]:
    import django

    django.setup()
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django_tenants.utils import schema_context

    from tenants.accounts.models import User
    from tenants.models import Tenant

    tenant = Tenant.objects.get(slug="acme")
    with schema_context(tenant.schema_name):
        owner = User.objects.get(email="owner@acme.example")
    client = Client(HTTP_HOST="acme.localhost")
    with schema_context(tenant.schema_name):
        client.force_login(owner)
    rows = []
    for label, path in PAGES:
        for _ in range(2):
            assert client.get(path).status_code == 200, path
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            response = client.get(path)
            times.append((time.perf_counter() - start) * 1000)
            assert response.status_code == 200, path
        with CaptureQueriesContext(connection) as ctx:
            client.get(path)
        statements = [q for q in ctx.captured_queries if not q["sql"].startswith("SET search_path")]
        times.sort()
        rows.append(
            {
                "page": label,
                "path": path,
                "median_ms": round(statistics.median(times), 1),
                "p95_ms": round(times[int(0.95 * (len(times) - 1))], 1),
                "queries": len(statements),
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--reuse-db", action="store_true")
    parser.add_argument("--no-redis", action="store_true", help="database cache even when Redis answers")
    args = parser.parse_args()
    url = db.database_url(NAME) if args.reuse_db and db.exists(NAME) else db.recreate(NAME)
    if not args.reuse_db:
        seed(url)
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "codex.settings")
    os.environ["DJANGO_DEBUG"] = "false"
    # As in production: Redis for the cache (portfolio summaries, host lookups) when one answers.
    redis = "" if args.no_redis else db.redis_url(12)
    if redis:
        db.redis_flush(redis)
        os.environ["REDIS_URL"] = redis
        os.environ["CELERY_TASK_ALWAYS_EAGER"] = "true"
    print(f"cache: {'Redis' if redis else 'database'}")
    os.environ.setdefault("DJANGO_LOG_LEVEL", "WARNING")
    rows = measure(args.runs)
    out = ROOT / "bench" / "results" / "web_pages.json"
    out.parent.mkdir(exist_ok=True)
    suffix = "redis" if redis else "dbcache"
    out = out.with_name(f"web_pages_{suffix}.json")
    out.write_text(json.dumps({"runs": args.runs, "cache": suffix, "pages": rows}, indent=1))
    print("| page | path | median ms | p95 ms | queries |")
    print("|---|---|---:|---:|---:|")
    for r in rows:
        print(f"| {r['page']} | `{r['path']}` | {r['median_ms']} | {r['p95_ms']} | {r['queries']} |")


if __name__ == "__main__":
    main()
