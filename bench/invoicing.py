"""Invoicing benchmark: 1,000 firms invoiced by one run, then 20 concurrent runs renew them.

Runs by hand, never in CI, against a THROWAWAY database (default: ``codex_bench_billing`` on the
machine's PostgreSQL at 127.0.0.1:5432, trust auth; override with BENCH_DATABASE_URL). Only the
public schema is migrated: firms are Tenant + Subscription rows without a schema (invoicing reads
the daily seat snapshot, never the firm schema), plus a seat snapshot each.

  1. one ``invoice_run`` makes the first invoice of 1,000 firms (target < 30 s);
  2. the period ends; 20 ``invoice_run`` calls start at once on 20 threads, each with its own
     database connection, and renew the same 1,000 subscriptions: every one must get exactly one
     new invoice, with gapless numbers.

Usage: .venv/bin/python bench/invoicing.py [firms] [concurrent runs]
"""

from __future__ import annotations

import os
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

BENCH_URL = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/codex_bench_billing")
os.environ["DATABASE_URL"] = BENCH_URL
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "codex.settings")
os.environ.setdefault("DJANGO_LOG_LEVEL", "WARNING")


def _create_database() -> None:
    import psycopg

    base, _, name = BENCH_URL.rpartition("/")
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


_create_database()

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection, connections  # noqa: E402

from billing import services  # noqa: E402
from billing.models import (  # noqa: E402
    Invoice,
    InvoiceCounter,
    InvoiceLine,
    Metric,
    Plan,
    Subscription,
    SubscriptionStatus,
    UsageDaily,
)
from tenants.models import AuditEvent, Tenant, TenantStatus  # noqa: E402

START = datetime(2030, 1, 1, tzinfo=UTC)
RENEWAL = datetime(2030, 2, 1, tzinfo=UTC)


def reset() -> None:
    InvoiceLine.objects.all().delete()
    Invoice.objects.all().delete()
    UsageDaily.objects.all().delete()
    Subscription.objects.all().delete()
    AuditEvent.objects.all().delete()
    Tenant.objects.filter(slug__startswith="bench-").delete()
    InvoiceCounter.objects.all().delete()


def create_firms(n: int) -> list[int]:
    plans = list(Plan.objects.filter(code__in=["starter", "pro", "enterprise"]))
    tenants = Tenant.objects.bulk_create(
        Tenant(name=f"Bench {i}", slug=f"bench-{i}", schema_name=f"bench_{i}", status=TenantStatus.ACTIVE)
        for i in range(n)
    )
    subs = Subscription.objects.bulk_create(
        Subscription(
            tenant=t,
            plan=plans[i % len(plans)],
            status=SubscriptionStatus.ACTIVE,
            interval="month",
            billing_anchor=START,
            current_period_start=START,
            current_period_end=RENEWAL,
        )
        for i, t in enumerate(tenants)
    )
    UsageDaily.objects.bulk_create(
        UsageDaily(tenant=t, day=(START - timedelta(days=1)).date(), metric=Metric.SEATS, count=2 + i % 30)
        for i, t in enumerate(tenants)
    )
    return [s.pk for s in subs]


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    call_command("migrate_schemas", shared=True, interactive=False, verbosity=0)
    services.plans_seed()
    reset()
    ids = create_firms(n)

    t0, cpu0 = time.perf_counter(), time.process_time()
    first = services.invoice_run(now=START + timedelta(hours=1))
    single, single_cpu = time.perf_counter() - t0, time.process_time() - cpu0
    assert first.invoices == n, first
    assert Invoice.objects.count() == n

    barrier = threading.Barrier(runs)
    errors: list[BaseException] = []
    results = []

    def run():
        try:
            barrier.wait()
            results.append(services.invoice_run(now=RENEWAL + timedelta(hours=1)))
        except BaseException as exc:  # noqa: BLE001 (reported below)
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run) for _ in range(runs)]
    t0, cpu0 = time.perf_counter(), time.process_time()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    concurrent, concurrent_cpu = time.perf_counter() - t0, time.process_time() - cpu0
    assert not errors, errors[:3]

    per_sub = Invoice.objects.filter(period_start=RENEWAL).values_list("subscription_id", flat=True)
    one_each = sorted(per_sub) == sorted(ids)
    total_invoices = Invoice.objects.count()
    numbers = sorted(int(x.rsplit("-", 1)[1]) for x in Invoice.objects.values_list("number", flat=True))
    gapless = numbers == list(range(1, total_invoices + 1))
    made_by_run = sorted(r.invoices for r in results)

    print(f"firms: {n}; database: {connection.settings_dict['HOST']}:{connection.settings_dict['PORT']}")
    print(f"load average: {os.getloadavg()[0]:.1f}")
    print(f"single run, first invoices: {single:.2f} s wall, {single_cpu:.2f} s CPU ({n / single:.0f} invoices/s)")
    print(f"{runs} concurrent renewal runs: {concurrent:.2f} s wall, {concurrent_cpu:.2f} s CPU of this process")
    print(f"invoices made per run: {made_by_run}")
    print(f"exactly one renewal invoice per subscription: {one_each}; total invoices {total_invoices}")
    print(f"gapless numbers: {gapless}")
    reset()
    if not (one_each and gapless and total_invoices == 2 * n):
        raise SystemExit("FAILED")


if __name__ == "__main__":
    main()
