"""Issue 19: server p95 of every page a user waits on, at the big firm's size, as a ratio of C1.

    DATABASE_URL=<server> .venv/bin/python bench/pages.py --db codex_bench_pages [--reuse-db] \
        [--seconds 10] [--write]

The scratch database is seeded by ``bench/seed_bench.py --big`` (100,000 contacts, 2,000
portfolios, one portfolio with 10 years of daily closes of 50 instruments and 5,000 transactions,
20,000 activities). For each page: its own peak (wrk, closed loop), then an open-loop run at a
steady 70 % of that peak, whose p50/p95/p99 are reported (latency from each request's scheduled
send time on loopback: server time plus any queueing). C1 (25 rows with ``.values()``) is measured
in the same run; "ratio to C1" is the page's peak over C1's peak. Two gunicorn workers, Redis.

Before the load, each list request is replayed in process and ``EXPLAIN`` of every query it makes
is printed; a ``Seq Scan`` over a firm table of more than ``SEQ_SCAN_ROWS`` rows fails the run.
Sign-in and the 5,000-row CSV preview (POSTs with CSRF) are not driven by this script yet.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.harness import db, load, report  # noqa: E402
from bench.harness.server import BENCH_SECRET_KEY, Gunicorn, get, production_env  # noqa: E402

PY = str(ROOT / ".venv" / "bin" / "python")
# Ports of their own: other benchmarks (bench/run_all.py: 8701-8704) may run on this machine.
PORTS = {"c1": 8792, "codex": 8793}
SEQ_SCAN_ROWS = 1000
SEED_ARGS = ["--firms", "10", "--contacts", "100000", "--portfolios", "2000", "--transactions", "10000", "--big"]


@dataclass
class Page:
    key: str
    label: str
    path: str
    auth: str  # "owner", "advisor" (session cookie) or "key" (read API key)
    target_ms: float
    size: str
    server: str = "codex"
    explain: bool = False


def pages(seed: dict) -> list[Page]:
    big, client = seed["big_portfolio_id"], seed["big_client_id"]
    book = (
        f"{seed['big_transactions']:,} transactions, "
        f"{seed['big_instruments']} instruments x {seed['big_price_days']:,} days"
    )
    firm = f"{seed['contacts']:,} contacts, {seed['portfolios'] + 1:,} portfolios"
    term = seed["search_term"]
    out = [
        Page("c1", "C1: 25 portfolios with `.values()`", "/bench/rows/", "none", 0, "25 rows", server="c1"),
        Page("dashboard_owner", "Dashboard (owner)", "/", "owner", 100, firm),
        Page("dashboard_advisor", "Dashboard (advisor)", "/", "advisor", 100, firm),
        Page("client_record", "Client record (big client)", f"/crm/contacts/{client}/", "owner", 100, book),
        Page("portfolio_page", "Portfolio page (big portfolio)", f"/portfolios/{big}/", "owner", 100, book),
        Page(
            "performance_si",
            "Performance SI (big)",
            f"/api/v1/portfolios/{big}/performance/?preset=SI",
            "key",
            100,
            book,
        ),
        Page(
            "performance_1y",
            "Performance 1Y (big)",
            f"/api/v1/portfolios/{big}/performance/?preset=1Y",
            "key",
            100,
            book,
        ),
        Page(
            "value_series",
            "Value series SI (big)",
            f"/api/v1/portfolios/{big}/value-series/?preset=SI",
            "key",
            100,
            book,
        ),
    ]
    lists = [
        ("contacts", "/api/v1/contacts/", f"{seed['contacts']:,} contacts"),
        ("portfolios", "/api/v1/portfolios/", f"{seed['portfolios'] + 1:,} portfolios"),
        ("deals", "/api/v1/deals/", "deals of the seed"),
        ("activities", "/api/v1/activities/", f"{seed.get('activities', 0):,} activities"),
    ]
    for name, path, size in lists:
        out.append(Page(f"{name}_list", f"{name.title()} list", path, "key", 50, size, explain=True))
        out.append(
            Page(
                f"{name}_search",
                f"{name.title()} list `?search={term}`",
                f"{path}?search={term}",
                "key",
                50,
                size,
                explain=True,
            )
        )
    out.append(
        Page("global_search", f"Global search `?q={term}`", f"/api/v1/search/?q={term}", "key", 50, firm, explain=True)
    )
    return out


def headers_for(page: Page, seed: dict) -> dict[str, str]:
    if page.auth == "key":
        return {"X-API-Key": seed["api_key"]}
    if page.auth in ("owner", "advisor"):
        key = seed["session_key"] if page.auth == "owner" else seed["advisor_session_key"]
        return {"Cookie": f"__Host-sessionid={key}"}
    return {}


# --- EXPLAIN of every query of the list requests (in a child process, Django set up on the bench DB) ---
def explain_child(seed_file: str) -> None:
    import django

    django.setup()
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django_tenants.utils import schema_context

    seed = json.loads(Path(seed_file).read_text())
    from tenants.models import Tenant

    schema = Tenant.objects.get(slug=seed["large_slug"]).schema_name
    with connection.cursor() as cur:
        # Plans from fresh statistics: a freshly seeded table has none (or those of its first rows).
        cur.execute("ANALYZE")
        cur.execute(
            "SELECT c.relname, c.reltuples FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND c.relkind = 'r'",
            [schema],
        )
        firm_tables = {name: rows for name, rows in cur.fetchall()}
    client = Client(HTTP_HOST=seed["host"], HTTP_X_API_KEY=seed["api_key"])
    failures = []
    for page in pages(seed):
        if not page.explain:
            continue
        with CaptureQueriesContext(connection) as ctx:
            status = client.get(page.path).status_code
        print(f"### {page.key}: GET {page.path} -> {status}, {len(ctx.captured_queries)} queries")
        for q in ctx.captured_queries:
            sql = q["sql"]
            if not sql.lstrip().upper().startswith("SELECT"):
                continue
            with schema_context(schema), connection.cursor() as cur:
                cur.execute("EXPLAIN " + sql)
                plan = "\n".join(r[0] for r in cur.fetchall())
            print(f"-- {sql[:300]}\n{plan}\n")
            for table in re.findall(r"Seq Scan on (\w+)", plan):
                if firm_tables.get(table, 0) > SEQ_SCAN_ROWS:
                    failures.append(f"{page.key}: Seq Scan on {table} ({int(firm_tables[table]):,} rows)")
    print("EXPLAIN-FAILURES " + json.dumps(failures))


def run_explain(seed_file: Path, url: str) -> list[str]:
    env = {**os.environ, "DATABASE_URL": url, "DJANGO_SECRET_KEY": BENCH_SECRET_KEY}
    done = subprocess.run(
        [PY, __file__, "--explain-child", str(seed_file)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    print(done.stdout)
    if done.returncode != 0:
        raise SystemExit(f"EXPLAIN child failed:\n{done.stderr[-3000:]}")
    line = next(line for line in done.stdout.splitlines() if line.startswith("EXPLAIN-FAILURES "))
    return json.loads(line.removeprefix("EXPLAIN-FAILURES "))


# --- load --------------------------------------------------------------------------------------------
def measure(seed: dict, url: str, redis: str, *, seconds: int, only: set[str] | None = None) -> dict:
    env = production_env(database_url=url, redis_url=redis, extra={"CODEX_API_RATE": "100000000/min"})
    collected = subprocess.run(
        [PY, "manage.py", "collectstatic", "--noinput", "--verbosity", "0"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    if collected.returncode != 0:
        raise SystemExit(collected.stderr[-2000:])
    c1_env = {**env, "DJANGO_SETTINGS_MODULE": "bench.ceiling_firm_settings"}
    servers = {
        "c1": Gunicorn("c1", port=PORTS["c1"], env=c1_env, app="bench.ceiling_wsgi:application"),
        "codex": Gunicorn("codex", port=PORTS["codex"], env=env),
    }
    results = {}
    with contextlib.ExitStack() as stack:
        for server in servers.values():
            stack.enter_context(server)
        chosen = [p for p in pages(seed) if not only or p.key in only or p.key == "c1"]
        cold = {}
        for page in chosen:  # point 4: each page's first request after the servers started
            started = time.perf_counter()
            get(PORTS[page.server], page.path, host=seed["host"], headers=headers_for(page, seed))
            cold[page.key] = (time.perf_counter() - started) * 1000
        for page in chosen:
            port, host, hdrs = PORTS[page.server], seed["host"], headers_for(page, seed)
            status, body, _ = get(port, page.path, host=host, headers=hdrs)
            if status != 200:
                results[page.key] = {"error": f"HTTP {status}"}
                print(f"  {page.key}: HTTP {status}, skipped", flush=True)
                continue
            # cold: the first request after the servers started (caches empty in this worker)
            load.settle()
            peak = load.wrk_peak(f"http://127.0.0.1:{port}{page.path}", host=host, headers=hdrs, seconds=seconds)
            load.settle()
            steady = load.constant_rate(port, page.path, host=host, headers=hdrs, rate=0.7 * peak.rps, seconds=seconds)
            results[page.key] = {
                "peak_rps": peak.rps,
                "rate": 0.7 * peak.rps,
                "p50_ms": steady.p50_ms,
                "p95_ms": steady.extra["p95_ms"],
                "p99_ms": steady.p99_ms,
                "errors": steady.errors + peak.errors,
                "bytes": len(body),
                "cold_ms": cold[page.key],
            }
            print(
                f"  {page.key:20s} peak {peak.rps:7.1f}/s  at {0.7 * peak.rps:6.1f}/s p50 {steady.p50_ms:6.1f} "
                f"p95 {steady.extra['p95_ms']:6.1f} p99 {steady.p99_ms:6.1f} ms  errors {steady.errors}",
                flush=True,
            )
    return results


def table(seed: dict, results: dict) -> str:
    c1 = results.get("c1", {}).get("peak_rps")
    rows = []
    for page in pages(seed):
        r = results.get(page.key, {})
        if page.key == "c1":
            continue
        if "error" in r or not r:
            rows.append([page.label, page.size, "-", "-", f"< {page.target_ms:.0f} ms", r.get("error", "not run"), "-"])
            continue
        verdict = "meets" if r["p95_ms"] < page.target_ms else "misses"
        ratio = f"{r['peak_rps'] / c1:.0%}" if c1 else "-"
        cold = f"{r['cold_ms']:.0f} ms ({r['cold_ms'] / r['p95_ms']:.1f}x)"
        rows.append(
            [page.label, page.size, f"{r['p95_ms']:.1f} ms", ratio, f"< {page.target_ms:.0f} ms", verdict, cold]
        )
    header = ["page", "data size", "p95", "ratio to C1 (peak)", "target", "verdict", "cold first request (x p95)"]
    return report.md_table(header, rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", default="codex_bench_pages")
    parser.add_argument("--reuse-db", action="store_true")
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--redis-db", type=int, default=7)
    parser.add_argument("--skip-explain", action="store_true")
    parser.add_argument("--explain-only", action="store_true", help="print the plans of the list queries, no load")
    parser.add_argument("--only", default="", help="comma-separated page keys to load (C1 always)")
    parser.add_argument("--explain-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.explain_child:
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "codex.settings")
        explain_child(args.explain_child)
        return
    if not args.db.startswith("codex_bench"):
        raise SystemExit("--db must name a scratch database codex_bench*")
    from bench.run_all import prepare_database

    seed = prepare_database(args.db, SEED_ARGS, reuse=args.reuse_db)
    seed_file = ROOT / ".data" / "bench" / f"seed-{args.db}.json"
    url = db.database_url(args.db)
    redis = db.redis_url(args.redis_db)
    failures = [] if args.skip_explain else run_explain(seed_file, url)
    if args.explain_only:
        print(
            "Seq Scan over a firm table:\n  " + "\n  ".join(failures) if failures else "no Seq Scan over a firm table"
        )
        raise SystemExit(1 if failures else 0)
    only = set(filter(None, args.only.split(",")))
    results = measure(seed, url, redis, seconds=args.seconds, only=only)
    out = {"seed": {k: v for k, v in seed.items() if "key" not in k}, "results": results, "explain_failures": failures}
    (ROOT / "bench" / "results").mkdir(exist_ok=True)
    (ROOT / "bench" / "results" / f"pages{'-only' if only else ''}.json").write_text(
        json.dumps(out, indent=2, default=str)
    )
    print(table(seed, results))
    print(f"load average: {report.load_average()}")
    if failures:
        print("Seq Scan over a firm table:\n  " + "\n  ".join(failures))
        raise SystemExit(1)


if __name__ == "__main__":
    main()
