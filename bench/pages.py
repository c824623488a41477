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
from bench.harness.server import BENCH_ENCRYPTION_KEY, BENCH_SECRET_KEY, Gunicorn, get, production_env  # noqa: E402
from bench.seed_bench import SEED_FORMAT  # noqa: E402

PY = str(ROOT / ".venv" / "bin" / "python")
# Ports of their own: other benchmarks (bench/run_all.py: 8701-8704) may run on this machine.
PORTS = {"c1": 8792, "codex": 8793}
SEQ_SCAN_ROWS = 1000
# Longest wait for the machine to go quiet before each measurement (``--settle``): on a machine
# shared with other work it never does, and 10 s per wait was two thirds of a short run.
SETTLE_SECONDS = 10.0
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
        ("deals", "/api/v1/deals/", f"{seed.get('deals', 0):,} deals"),
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
    out.append(Page("signin", "Sign-in (POST, Argon2)", "/accounts/login/", "post", POST_TARGET_MS, "one user"))
    out.append(
        Page(
            "csv_preview",
            f"CSV import preview, {CSV_ROWS:,} rows (POST)",
            f"/portfolios/{seed.get('portfolio_id')}/import/",
            "post",
            POST_TARGET_MS,
            f"{CSV_ROWS:,} rows",
        )
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
        # Plans from fresh statistics and a visibility map, as autovacuum keeps a table in production:
        # a freshly seeded table has neither (no index-only scan for a COUNT(*) without it).
        cur.execute("VACUUM ANALYZE")
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


# --- CPU per request in process (the scaling curve): steadier than a served p95 on a shared machine --------
def cpu_child(seed_file: str, keys: str, repeat: int) -> None:
    """Each page of ``keys`` through Django's test client (the whole middleware stack, production
    settings, no network): median ``time.process_time`` (this process's CPU: Python, not
    PostgreSQL's), median wall time, queries and their database time, after one warm-up request.
    Prints one ``CPU-RESULTS`` JSON line."""
    import statistics

    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django_tenants.utils import schema_context, tenant_context

    from tenants.models import Tenant

    seed = json.loads(Path(seed_file).read_text())
    with schema_context("public"):
        tenant = Tenant.objects.get(slug=seed["large_slug"])
    clients = {"key": Client(HTTP_HOST=seed["host"], HTTP_X_API_KEY=seed["api_key"])}
    for who in ("owner", "advisor"):
        clients[who] = Client(HTTP_HOST=seed["host"])
        with tenant_context(tenant):
            clients[who].force_login(get_user_model().objects.get(email=f"{who}@{seed['large_slug']}.example"))
    wanted = set(keys.split(","))
    out: dict[str, dict] = {}
    for page in pages(seed):
        if page.key not in wanted or page.auth not in clients:
            continue
        client = clients[page.auth]
        status = client.get(page.path).status_code  # warm-up: this process's first use of the page
        if status != 200:
            out[page.key] = {"error": f"HTTP {status}"}
            continue
        cpu, wall, sql = [], [], []
        queries = 0
        for _ in range(repeat):
            with CaptureQueriesContext(connection) as ctx:
                c0, w0 = time.process_time(), time.perf_counter()
                client.get(page.path)
                cpu.append((time.process_time() - c0) * 1000)
                wall.append((time.perf_counter() - w0) * 1000)
            queries = len(ctx.captured_queries)
            sql.append(sum(float(q["time"]) for q in ctx.captured_queries) * 1000)
        out[page.key] = {
            "cpu_ms": statistics.median(cpu),
            "wall_ms": statistics.median(wall),
            "sql_ms": statistics.median(sql),
            "queries": queries,
            "repeat": repeat,
        }
        print(
            f"  {page.key:20s} CPU {out[page.key]['cpu_ms']:7.1f} ms  wall {out[page.key]['wall_ms']:7.1f} ms  "
            f"SQL {out[page.key]['sql_ms']:7.1f} ms  {queries} queries",
            flush=True,
        )
    print("CPU-RESULTS " + json.dumps(out))


def run_cpu(seed_file: Path, url: str, redis: str, keys: list[str], repeat: int) -> dict:
    env = production_env(database_url=url, redis_url=redis, extra={"CODEX_API_RATE": "100000000/min"})
    collected = subprocess.run(  # production's manifest storage, as the served run has it
        [PY, "manage.py", "collectstatic", "--noinput", "--verbosity", "0"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    if collected.returncode != 0:
        raise SystemExit(collected.stderr[-2000:])
    done = subprocess.run(
        [PY, __file__, "--cpu-child", str(seed_file), "--only", ",".join(keys), "--cpu-repeat", str(repeat)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    print(done.stdout.rsplit("CPU-RESULTS ", 1)[0], end="", flush=True)
    if done.returncode != 0:
        raise SystemExit(f"CPU child failed:\n{done.stderr[-3000:]}")
    line = next(line for line in done.stdout.splitlines() if line.startswith("CPU-RESULTS "))
    return json.loads(line.removeprefix("CPU-RESULTS "))


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


# --- POST pages: sign-in and the 5,000-row CSV preview (form posts with CSRF) --------------------------
CSV_ROWS = 5000
POST_TARGET_MS = 400


def _cookies(headers: list[tuple[str, str]]) -> dict[str, str]:
    out = {}
    for name, value in headers:
        if name.lower() == "set-cookie":
            k, _, rest = value.partition("=")
            out[k.strip()] = rest.split(";", 1)[0]
    return out


def _request(port: int, method: str, path: str, *, host: str, headers: dict, body: bytes | None = None):
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request(method, path, body=body, headers={"Host": host, **headers})
        response = conn.getresponse()
        return response.status, response.read(), response.getheaders()
    finally:
        conn.close()


def _csrf(port: int, path: str, *, host: str, cookie: str = "") -> tuple[str, str]:
    """``(cookie header, form token)`` from a GET of the form's page."""
    status, body, headers = _request(port, "GET", path, host=host, headers={"Cookie": cookie} if cookie else {})
    if status != 200:
        raise SystemExit(f"GET {path} -> {status}")
    jar = _cookies(headers)
    token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', body)
    if token is None:
        raise SystemExit(f"no CSRF token on {path}")
    name = next(k for k in jar if k.endswith("csrftoken"))
    pair = f"{name}={jar[name]}"
    return (f"{cookie}; {pair}" if cookie else pair), token.group(1).decode()


def preview_csv(rows: int = CSV_ROWS) -> bytes:
    """A ledger file of ``rows`` rows (deposits, buys and dividends of the seed's instruments)."""
    lines = ["date,kind,symbol,exchange,quantity,price,fees,amount,currency,fx_rate,acquired_on,note"]
    lines.append("2024-01-02,deposit,,,,,,10000000,USD,,,bench funding")
    for i in range(rows - 1):
        day = f"2024-{1 + i % 12:02d}-{1 + i % 27:02d}"
        if i % 3 == 2:
            lines.append(f"{day},dividend,,,,,,{10 + i % 50}.25,USD,,,row {i}")
        else:
            lines.append(f"{day},buy,BIG{i % 50:02d},XBEN,{1 + i % 9},{50 + i % 40}.5,1,,USD,,,row {i}")
    return ("\n".join(lines) + "\n").encode()


def post_senders(seed: dict, port: int) -> dict:
    """Per POST page, a function that sends one request and returns its status (CSRF taken once)."""
    host = seed["host"]
    senders = {}
    cookie, token = _csrf(port, "/accounts/login/", host=host)
    from urllib.parse import urlencode

    login_body = urlencode(
        {"username": seed["signin_email"], "password": seed["signin_password"], "csrfmiddlewaretoken": token}
    ).encode()
    login_headers = {"Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded"}
    senders["signin"] = lambda: _request(
        port, "POST", "/accounts/login/", host=host, headers=login_headers, body=login_body
    )[0]

    import_path = f"/portfolios/{seed['portfolio_id']}/import/"
    owner = f"__Host-sessionid={seed['session_key']}"
    cookie, token = _csrf(port, import_path, host=host, cookie=owner)
    boundary = "benchboundary19"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="csrfmiddlewaretoken"\r\n\r\n{token}\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="ledger.csv"\r\n'
            "Content-Type: text/csv\r\n\r\n"
        ).encode()
        + preview_csv()
        + f"\r\n--{boundary}--\r\n".encode()
    )
    import_headers = {"Cookie": cookie, "Content-Type": f"multipart/form-data; boundary={boundary}"}
    senders["csv_preview"] = lambda: _request(port, "POST", import_path, host=host, headers=import_headers, body=body)[
        0
    ]
    return senders


POST_OK = {"signin": (302,), "csv_preview": (200,)}


def post_load(send, *, ok: tuple[int, ...], seconds: float) -> dict:
    """Peak: two clients back to back for ``seconds``; then ``seconds`` at 70 % of it, open loop
    (threads send on schedule; latency from each request's scheduled time)."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    done, errors = [0], [0]
    lock = threading.Lock()
    stop = time.perf_counter() + seconds

    def client():
        while time.perf_counter() < stop:
            status = send()
            with lock:
                done[0] += 1
                errors[0] += status not in ok

    started = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    peak = done[0] / (time.perf_counter() - started)
    rate = 0.7 * peak
    total = max(5, int(rate * seconds))
    latencies: list[float] = []
    t0 = time.perf_counter() + 0.05

    def one(i: int):
        scheduled = t0 + i / rate
        time.sleep(max(0.0, scheduled - time.perf_counter()))
        status = send()
        with lock:
            latencies.append((time.perf_counter() - scheduled) * 1000)
            errors[0] += status not in ok

    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(one, range(total)))
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p / 100 * len(latencies)))]

    return {
        "peak_rps": peak,
        "rate": rate,
        "p50_ms": pct(50),
        "p95_ms": pct(95),
        "p99_ms": pct(99),
        "errors": errors[0],
    }


# --- load --------------------------------------------------------------------------------------------
def measure(seed: dict, url: str, redis: str, *, seconds: int, only: set[str] | None = None) -> dict:
    env = production_env(
        database_url=url, redis_url=redis, extra={"CODEX_API_RATE": "100000000/min", "CODEX_RATE_LOGIN": "1000000/min"}
    )
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
    import redis as redis_client

    # Point 4 of the issue: the first request after a deploy *and a cache flush*.
    redis_client.Redis.from_url(redis).flushdb()
    with contextlib.ExitStack() as stack:
        for server in servers.values():
            stack.enter_context(server)
        chosen = [p for p in pages(seed) if not only or p.key in only or p.key == "c1"]
        cold = {}
        senders = post_senders(seed, PORTS["codex"]) if any(p.auth == "post" for p in chosen) else {}
        for page in chosen:  # point 4: each page's first request after the servers started
            started = time.perf_counter()
            if page.auth == "post":
                senders[page.key]()
            else:
                get(PORTS[page.server], page.path, host=seed["host"], headers=headers_for(page, seed))
            cold[page.key] = (time.perf_counter() - started) * 1000
        for page in chosen:
            if page.auth == "post":
                load.settle(timeout=SETTLE_SECONDS)
                r = post_load(senders[page.key], ok=POST_OK[page.key], seconds=seconds)
                results[page.key] = {**r, "cold_ms": cold[page.key]}
                print(
                    f"  {page.key:20s} peak {r['peak_rps']:7.1f}/s  at {r['rate']:6.1f}/s p50 {r['p50_ms']:6.1f} "
                    f"p95 {r['p95_ms']:6.1f} p99 {r['p99_ms']:6.1f} ms  errors {r['errors']}",
                    flush=True,
                )
                continue
            port, host, hdrs = PORTS[page.server], seed["host"], headers_for(page, seed)
            status, body, _ = get(port, page.path, host=host, headers=hdrs)
            if status != 200:
                results[page.key] = {"error": f"HTTP {status}"}
                print(f"  {page.key}: HTTP {status}, skipped", flush=True)
                continue
            # cold: the first request after the servers started (caches empty in this worker)
            load.settle(timeout=SETTLE_SECONDS)
            peak = load.wrk_peak(f"http://127.0.0.1:{port}{page.path}", host=host, headers=hdrs, seconds=seconds)
            load.settle(timeout=SETTLE_SECONDS)
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


# --- the scaling curve (issue 19, point 2): each page at three firm sizes ----------------------------------
SCALING = [(1_000, 500), (10_000, 5_000), (100_000, 50_000)]  # (contacts, the big portfolio's transactions)
# Every GET page of the top table. Sign-in and the CSV preview are left out on purpose: neither reads
# anything that grows with the firm (sign-in: one user by e-mail, then Argon2; the preview: the
# uploaded file checked against the instruments and one small portfolio's own ledger).
SCALING_PAGES = (
    "dashboard_owner",
    "dashboard_advisor",
    "client_record",
    "portfolio_page",
    "performance_si",
    "performance_1y",
    "value_series",
    "contacts_list",
    "contacts_search",
    "portfolios_list",
    "portfolios_search",
    "deals_list",
    "deals_search",
    "activities_list",
    "activities_search",
    "global_search",
)
NOT_SCALED = {
    "signin": "one user looked up by e-mail, then Argon2: no firm-sized read",
    "csv_preview": "the uploaded file against the instruments and one small portfolio's ledger: no firm-sized read",
}
FLAT = 2.0


def prepare(name: str, seed_args: list[str], *, reuse: bool) -> tuple[dict, Path, str]:
    from bench.run_all import prepare_database

    seed = prepare_database(name, seed_args, reuse=reuse)
    seed_file = ROOT / ".data" / "bench" / f"seed-{name}.json"
    url = db.database_url(name)
    if reuse:
        extend_valuations(
            {
                **os.environ,
                "DATABASE_URL": url,
                "DJANGO_SECRET_KEY": BENCH_SECRET_KEY,
                "CODEX_ENCRYPTION_KEYS": BENCH_ENCRYPTION_KEY,
            }
        )
    if "deals" not in seed or "signin_email" not in seed or not seed.get("valued"):  # an older seed
        env = {
            **os.environ,
            "DATABASE_URL": url,
            "DJANGO_SECRET_KEY": BENCH_SECRET_KEY,
            "CODEX_ENCRYPTION_KEYS": BENCH_ENCRYPTION_KEY,
        }
        topped = subprocess.run(
            [PY, "bench/seed_bench.py", "--ensure-deals", "--out", str(seed_file)], cwd=ROOT, env=env, text=True
        )
        if topped.returncode != 0:
            raise SystemExit("topping up the deals failed")
        seed = json.loads(seed_file.read_text())
    return seed, seed_file, url


def extend_valuations(env: dict) -> None:
    """A database seeded on an earlier day: its stored valuations end before today, and until the
    nightly job runs every portfolio page replays its ledger. Do what that job does first."""
    from bench.run_all import run

    done = run([PY, "bench/seed_bench.py", "--extend-valuations", "--out", os.devnull], env=env, timeout=3600)
    if done.returncode != 0:
        raise SystemExit(f"extending the valuations failed:\n{done.stderr[-3000:]}")
    print(f"valuations brought up to today: {done.stdout.strip().splitlines()[-1]}", flush=True)


def scaling_prepare(name: str, seed_args: list[str], *, template: str, fresh: bool) -> tuple[dict, Path, str]:
    """The database of one size of the curve: reused when its seed file says it was seeded with
    ``seed_args`` (after ``migrate_all``, a no-op when nothing is new), else seeded afresh on a
    clone of ``template``, a database migrated once for every size (``migrate_all`` of an empty
    database takes a minute or more; a ``CREATE DATABASE ... TEMPLATE`` a few seconds)."""
    from bench.run_all import run

    seed_file = ROOT / ".data" / "bench" / f"seed-{name}.json"
    url = db.database_url(name)
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "DJANGO_SECRET_KEY": BENCH_SECRET_KEY,  # the server's: sessions are signed with it
        "CODEX_ENCRYPTION_KEYS": BENCH_ENCRYPTION_KEY,
    }
    if not fresh and seed_file.exists() and db.exists(name):
        earlier = json.loads(seed_file.read_text())
        seeded_with = [*earlier.get("seed_args", []), f"format {earlier.get('seed_format', 1)}"]
        if seeded_with == [*seed_args, f"format {SEED_FORMAT}"]:
            migrated = run([PY, "manage.py", "migrate_all", "--verbosity", "0"], env=env)
            if migrated.returncode != 0:
                raise SystemExit(f"migrate_all failed on {name}:\n{migrated.stderr[-3000:]}")
            fresh_session = run([PY, "bench/seed_bench.py", "--new-session", "--out", str(seed_file)], env=env)
            if fresh_session.returncode != 0:
                raise SystemExit(f"a fresh session failed:\n{fresh_session.stderr[-3000:]}")
            extend_valuations(env)
            print(f"reusing {name}: seeded earlier with the same arguments ({seed_file})", flush=True)
            return json.loads(seed_file.read_text()), seed_file, url
        print(f"{name}: seeded with {seeded_with}, not {seed_args} format {SEED_FORMAT}: seeding afresh", flush=True)
    started = time.perf_counter()
    template_env = {**env, "DATABASE_URL": db.database_url(template)}
    if not db.exists(template):
        db.recreate(template)
    migrated = run([PY, "manage.py", "migrate_all", "--verbosity", "0"], env=template_env)
    if migrated.returncode != 0:
        raise SystemExit(f"migrate_all failed on {template}:\n{migrated.stderr[-3000:]}")
    # The small firms are the same at every size: provisioned once into the template (the seed
    # skips the firms that exist), not once per size.
    firms = seed_args[seed_args.index("--firms") + 1] if "--firms" in seed_args else "0"
    provisioned = run(
        [PY, "bench/seed_bench.py", "--only-firms", "--firms", firms, "--out", os.devnull], env=template_env
    )
    if provisioned.returncode != 0:
        raise SystemExit(f"provisioning the small firms failed on {template}:\n{provisioned.stderr[-3000:]}")
    migrate_s = time.perf_counter() - started
    started = time.perf_counter()
    db.clone(template, name)
    clone_s = time.perf_counter() - started
    print(f"seeding {name} (a clone of {template}): {' '.join(seed_args)}", flush=True)
    started = time.perf_counter()
    seeded = run([PY, "bench/seed_bench.py", *seed_args, "--out", str(seed_file)], env=env, timeout=3600)
    if seeded.returncode != 0:
        raise SystemExit(f"seeding failed:\n{seeded.stdout}\n{seeded.stderr[-4000:]}")
    seed = json.loads(seed_file.read_text())
    seed.update(
        seed_args=seed_args,
        seed_seconds=round(time.perf_counter() - started, 1),
        template_seconds=round(migrate_s, 1),  # migrate_all and the small firms (a no-op when done)
        clone_seconds=round(clone_s, 1),
        seed_load=report.load_average(),
    )
    seed_file.write_text(json.dumps(seed, indent=2, default=str))
    print(f"seeded {name} in {seed['seed_seconds']} s: {seed['timings']}", flush=True)
    return seed, seed_file, url


def spread(values: list[float], sizes: int) -> float | None:
    return max(values) / min(values) if len(values) == sizes and min(values) > 0 else None


def verdict(p95_spread: float | None, cost_spread: float | None) -> str:
    """Flat when both the served p95 and the in-process cost (this process's CPU plus the time its
    queries took in PostgreSQL) stay within ``FLAT``; when they disagree, says which one moved.
    ``process_time`` alone is not enough: it leaves out the database's work, which is what grows
    when a query reads more rows at a bigger size."""
    if p95_spread is None and cost_spread is None:
        return "-"
    flat = [x <= FLAT for x in (p95_spread, cost_spread) if x is not None]
    if all(flat):
        return "flat"
    if not any(flat):
        return "NOT flat"
    if cost_spread is not None and cost_spread <= FLAT:
        return "flat in process, not served"
    return "flat served, not in process"


def scaling_tables(by_size: dict, keys: list[str]) -> str:
    sizes = list(by_size)
    n = len(sizes)
    label = [f"{c:,} / {t:,}" for c, t in sizes]
    served_header = ["page"] + [f"{x}: p95 (ratio to C1)" for x in label] + ["max / min"]
    cpu_header = ["page"] + [f"{x}: CPU + SQL ms (CPU, SQL, wall, queries)" for x in label]
    cpu_header += ["CPU + SQL max / min", "CPU max / min"]
    verdict_header = ["page", "p95 max / min", "CPU + SQL max / min", f"within {FLAT:.0f}x"]
    served_rows, cpu_rows, verdict_rows = [], [], []
    for key in keys:
        served, p95s, costs, cpus, cpu_cells = [key], [], [], [], [key]
        for size in sizes:
            results = by_size[size]["results"]
            r = results.get(key, {})
            c1 = r.get("c1_peak") or results.get("c1", {}).get("peak_rps")
            if "p95_ms" in r:
                p95s.append(r["p95_ms"])
                served.append(f"{r['p95_ms']:.1f} ms ({r['peak_rps'] / c1:.0%})" if c1 else f"{r['p95_ms']:.1f} ms")
            else:
                served.append(r.get("error", "not run"))
            c = by_size[size]["cpu"].get(key, {})
            if "cpu_ms" in c:
                costs.append(c["cpu_ms"] + c["sql_ms"])
                cpus.append(c["cpu_ms"])
                cpu_cells.append(
                    f"{c['cpu_ms'] + c['sql_ms']:.1f} ({c['cpu_ms']:.1f}, {c['sql_ms']:.1f}, "
                    f"{c['wall_ms']:.1f}, {c['queries']})"
                )
            else:
                cpu_cells.append(c.get("error", "not run"))
        p95_spread, cost_spread, cpu_spread = spread(p95s, n), spread(costs, n), spread(cpus, n)
        served.append(f"{p95_spread:.2f}x" if p95_spread else "-")
        cpu_cells += [f"{cost_spread:.2f}x" if cost_spread else "-", f"{cpu_spread:.2f}x" if cpu_spread else "-"]
        served_rows.append(served)
        cpu_rows.append(cpu_cells)
        verdict_rows.append(
            [
                key,
                f"{p95_spread:.2f}x" if p95_spread else "-",
                f"{cost_spread:.2f}x" if cost_spread else "-",
                verdict(p95_spread, cost_spread),
            ]
        )
    for key, why in NOT_SCALED.items():
        verdict_rows.append([key, "not run", "not run", f"independent of firm size ({why})"])
    return "\n\n".join(
        [
            "Served (two gunicorn workers, p95 at 70 % of the page's own peak):\n"
            + report.md_table(served_header, served_rows),
            "In process (medians of the requests through Django's test client; SQL: the time its queries "
            "took, PostgreSQL's share of the work):\n" + report.md_table(cpu_header, cpu_rows),
            "Verdict per page:\n" + report.md_table(verdict_header, verdict_rows),
        ]
    )


def scaling(args) -> None:
    """Each page at 1,000 / 10,000 / 100,000 contacts and 500 / 5,000 / 50,000 transactions in the
    big portfolio (2,000 portfolios throughout), on a scratch database per size (reused when seeded
    with the same arguments); per size, first each page's CPU per request in process, then served
    under load; prints both, the ratio to C1, and a verdict per page: flat within 2x or not."""
    redis = args.redis_url or db.redis_url(args.redis_db)
    only = set(filter(None, args.only.split(","))) or set(SCALING_PAGES)
    keys = [k for k in SCALING_PAGES if k in only]
    # Sizes measured by earlier runs (``--sizes`` runs one size at a time) are kept and shown with
    # this run's; each carries the time it was measured.
    results_file = ROOT / "bench" / "results" / "pages-scaling.json"
    kept = json.loads(results_file.read_text()) if results_file.exists() else {}
    by_size = {}
    for contacts, txns in SCALING:
        if f"{contacts}/{txns}" in kept and "cpu" in kept[f"{contacts}/{txns}"]:
            by_size[(contacts, txns)] = kept[f"{contacts}/{txns}"]
    sizes_wanted = {int(n) for n in args.sizes.split(",") if n}
    if args.report:
        sizes_wanted = {-1}
    for contacts, txns in SCALING:
        if sizes_wanted and contacts not in sizes_wanted:
            continue
        name = f"{args.db}_c{contacts}"
        seed_args = ["--firms", "10", "--contacts", str(contacts), "--portfolios", "2000", "--transactions", "10000"]
        seed_args += ["--big", "--big-transactions", str(txns)]
        seed, seed_file, url = scaling_prepare(name, seed_args, template=f"{args.db}_migrated", fresh=args.fresh)
        if args.seed_only:
            continue
        vacuum(url)
        print(f"== {contacts:,} contacts, {txns:,} transactions (load {report.load_average()})", flush=True)
        cpu_load = report.load_average()
        cpu = run_cpu(seed_file, url, redis, keys, args.cpu_repeat)
        served_load = report.load_average()
        results = {} if args.cpu_only else measure(seed, url, redis, seconds=args.seconds, only=only)
        for r in results.values():  # each page's ratio is to the C1 of its own run
            if "peak_rps" in r:
                r["c1_peak"] = results.get("c1", {}).get("peak_rps")
        earlier = by_size.get((contacts, txns))
        if args.only and earlier:  # some pages measured again: the others stay as measured before
            stamp = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
            earlier["cpu"].update(cpu)
            if results:
                earlier["results"].update({k: v for k, v in results.items() if k != "c1"})
            earlier.setdefault("remeasured", []).append(
                {"pages": sorted(cpu), "at": stamp, "load_before_cpu": cpu_load, "load_after": report.load_average()}
            )
            results_file.write_text(
                json.dumps({f"{c}/{t}": v for (c, t), v in sorted(by_size.items())}, indent=2, default=str)
            )
            continue
        by_size[(contacts, txns)] = {
            "measured_at": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
            "cpu": cpu,
            "results": results,
            "load_before_cpu": cpu_load,
            "load_before_served": served_load,
            "load_after": report.load_average(),
            "seed": {k: v for k, v in seed.items() if "key" not in k and "password" not in k},
        }
        results_file.parent.mkdir(exist_ok=True)
        results_file.write_text(
            json.dumps({f"{c}/{t}": v for (c, t), v in sorted(by_size.items())}, indent=2, default=str)
        )
    if args.seed_only:
        return
    by_size = dict(sorted(by_size.items()))
    print(scaling_tables(by_size, keys))
    for (c, t), v in by_size.items():
        print(
            f"{c:,} contacts / {t:,} txns, measured {v.get('measured_at', '?')}: load average before the CPU "
            f"run {v['load_before_cpu']}; before the served run {v['load_before_served']}; after {v['load_after']}"
        )


def vacuum(url: str) -> None:
    """``VACUUM ANALYZE`` of a seeded size before it is measured: fresh statistics and a visibility
    map, as autovacuum keeps a table in production (a just-seeded table has neither)."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")


def main() -> None:
    global SETTLE_SECONDS
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", default="codex_bench_pages")
    parser.add_argument("--reuse-db", action="store_true")
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--redis-db", type=int, default=7)
    parser.add_argument("--skip-explain", action="store_true")
    parser.add_argument("--explain-only", action="store_true", help="print the plans of the list queries, no load")
    parser.add_argument("--only", default="", help="comma-separated page keys to load (C1 always)")
    parser.add_argument("--scaling", action="store_true", help="the scaling curve: each page at three firm sizes")
    parser.add_argument("--fresh", action="store_true", help="--scaling: seed every size afresh, never reuse")
    parser.add_argument("--seed-only", action="store_true", help="--scaling: seed (or check) the sizes, no load")
    parser.add_argument(
        "--sizes", default="", help="--scaling: comma-separated contact counts of the sizes to run (default: all)"
    )
    parser.add_argument("--redis-url", default="", help="the servers' Redis (default: --redis-db on the bench's)")
    parser.add_argument(
        "--ports",
        default="",
        help="C1's and Codex's ports, e.g. 8892,8893 (default 8792,8793: another bench may hold them)",
    )
    parser.add_argument(
        "--settle", type=float, default=SETTLE_SECONDS, help="longest wait for a quiet CPU before each run (s)"
    )
    parser.add_argument("--report", action="store_true", help="--scaling: only the tables of the sizes measured")
    parser.add_argument("--cpu-only", action="store_true", help="--scaling: the in-process CPU only, no load")
    parser.add_argument("--cpu-repeat", type=int, default=7, help="--scaling: requests per page in process")
    parser.add_argument("--explain-child", help=argparse.SUPPRESS)
    parser.add_argument("--cpu-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.cpu_child:
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "codex.settings")
        cpu_child(args.cpu_child, args.only, args.cpu_repeat)
        return
    if args.explain_child:
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "codex.settings")
        explain_child(args.explain_child)
        return
    if not args.db.startswith("codex_bench"):
        raise SystemExit("--db must name a scratch database codex_bench*")
    SETTLE_SECONDS = args.settle
    if args.ports:
        c1_port, codex_port = (int(p) for p in args.ports.split(","))
        PORTS.update(c1=c1_port, codex=codex_port)
    if args.scaling:
        scaling(args)
        return
    seed, seed_file, url = prepare(args.db, SEED_ARGS, reuse=args.reuse_db)
    redis = args.redis_url or db.redis_url(args.redis_db)
    failures = [] if args.skip_explain else run_explain(seed_file, url)
    if args.explain_only:
        print(
            "Seq Scan over a firm table:\n  " + "\n  ".join(failures) if failures else "no Seq Scan over a firm table"
        )
        raise SystemExit(1 if failures else 0)
    only = set(filter(None, args.only.split(",")))
    results = measure(seed, url, redis, seconds=args.seconds, only=only)
    kept = {k: v for k, v in seed.items() if "key" not in k and "password" not in k}
    out = {"seed": kept, "results": results, "explain_failures": failures}
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
