"""Quarterly fee run benchmark (issue 21): 10,000 accounts in 2,000 households, preview and issue.

Runs by hand (``make bench`` runs it too), never in CI, against the development database (the
embedded PostgreSQL when DATABASE_URL is unset). Once, it migrates, provisions the firm
``feebench`` (Pro plan) and seeds, in bulk:

* 2,000 clients, each with one household (billing group) of 5 accounts: 10,000 portfolios;
* per account, a deposit on 2026-03-02 (the ledger's first day) and a stored valuation for every
  day from 2026-06-30 (the prior close) to 2026-09-30: 930,000 ``Valuation`` rows, values varying
  per account and day (deposits mid-quarter on a fifth of the accounts);
* one tiered schedule (1 % to 1M, 0.75 % to 5M, 0.5 % above; minimum 1,000 a year), one product,
  and one subscription per household: half in advance (prior close), half in arrears on average
  daily balance; actual/365 and quarter = 1/4 alternating; collection "invoice the client".

Then, inside one transaction that is rolled back (the seed stays, the run does not):

1. ``fee_run_preview`` for Q3 2026: reads the stored valuations (one query per account, the
   ``portfolios.valuations`` API), computes every fee, writes the run's 2,000 items;
2. ``fee_run_approve`` + ``fee_run_issue``: 2,000 invoices with gapless numbers, 10,000 lines, and
   a PDF statement per invoice (fpdf2, written to STORAGES; the files are removed afterwards).

Target (brief §7): preview + issue < 60 s on this 2-core machine. Prints the load average too.

Usage: .venv/bin/python bench/fee_run.py [households] [accounts per household]
"""

from __future__ import annotations

import io
import os
import random
import sys
import time
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "codex.settings")
os.environ.setdefault("DJANGO_LOG_LEVEL", "WARNING")

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django_tenants.utils import schema_context  # noqa: E402

SLUG = "feebench"
Q3 = (date(2026, 7, 1), date(2026, 9, 30))
PRIOR_CLOSE = date(2026, 6, 30)
INCEPTION = date(2026, 3, 2)


class Rollback(Exception):
    pass


def firm():
    from billing.services import plans_seed
    from tenants.models import Tenant
    from tenants.services import tenant_provision

    call_command("migrate_all", verbosity=0)  # a no-op once migrated
    with schema_context("public"):
        tenant = Tenant.objects.filter(slug=SLUG).first()
    if tenant is None:
        plans_seed()
        tenant = tenant_provision(name="Fee Bench", slug=SLUG, owner_email="owner@feebench.test", plan_code="pro")
    return tenant


def seed(households: int, per: int) -> None:
    from crm.models import Contact
    from fees import services as fee_services
    from fees.models import BillingGroup, BillingGroupAccount, ClientSubscription, FeeSchedule, Product
    from portfolios.models import Portfolio, Transaction, Valuation
    from tenants.accounts.models import User

    existing = BillingGroup.objects.count()
    if existing >= households:
        return
    households -= existing  # a smaller seed before: top it up
    started = time.perf_counter()
    owner = User.objects.order_by("pk").first()
    rng = random.Random(21)
    with transaction.atomic():
        contacts = Contact.objects.bulk_create(
            [Contact(first_name=f"Client{i}", last_name="Bench", owner=owner) for i in range(households)],
            batch_size=2000,
        )
        portfolios = Portfolio.objects.bulk_create(
            [
                Portfolio(name=f"Account {i}-{j}", client=c, advisor=owner, base_currency="USD")
                for i, c in enumerate(contacts)
                for j in range(per)
            ],
            batch_size=2000,
        )
        Transaction.objects.bulk_create(
            [
                Transaction(
                    portfolio=p,
                    kind="deposit",
                    trade_date=INCEPTION,
                    amount=Decimal(100000),
                    currency="USD",
                    fingerprint=f"bench-{p.pk}",
                )
                for p in portfolios
            ],
            batch_size=5000,
        )
        # Stored valuations by COPY: every day from the prior close to the quarter's end.
        days = [PRIOR_CLOSE + timedelta(days=k) for k in range((Q3[1] - PRIOR_CLOSE).days + 1)]
        table = Valuation._meta.db_table
        columns = (
            "portfolio_id, date, value, net_flows, cash, dividends, interest, fees, taxes, deposits, withdrawals, "
            "realised_short, realised_long, twr_index, market_day"
        )
        with connection.cursor() as cursor, cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
            for p in portfolios:
                value = Decimal(rng.randrange(50_000, 3_000_000))
                deposit_day = days[rng.randrange(1, len(days))] if rng.random() < 0.2 else None
                buf = io.StringIO()
                for d in days:
                    flow = Decimal(0)
                    if d == deposit_day:
                        flow = Decimal(250_000)
                        value += flow
                    value = (value * Decimal(1 + rng.uniform(-0.01, 0.0105))).quantize(Decimal("0.01"))
                    buf.write(f"{p.pk}\t{d}\t{value}\t{flow}\t{value / 20:.2f}\t0\t0\t0\t0\t{flow}\t0\t0\t0\t1\tt\n")
                copy.write(buf.getvalue())
        schedule = FeeSchedule.objects.filter(name="Bench tiered").first() or fee_services.fee_schedule_create(
            name="Bench tiered",
            effective_from=date(2020, 1, 1),
            method="tiered",
            tiers=[{"upto": "1000000", "bps": "100"}, {"upto": "5000000", "bps": "75"}, {"upto": None, "bps": "50"}],
            minimum_annual="1000",
        )
        product = Product.objects.filter(name="Bench wealth management").first() or fee_services.product_create(
            name="Bench wealth management", fee_schedule=schedule
        )
        groups = BillingGroup.objects.bulk_create(
            [BillingGroup(name=f"Household {i}", client=c, currency="USD") for i, c in enumerate(contacts)],
            batch_size=2000,
        )
        BillingGroupAccount.objects.bulk_create(
            [
                BillingGroupAccount(group=g, portfolio=p)
                for k, g in enumerate(groups)
                for p in portfolios[k * per : (k + 1) * per]
            ],
            batch_size=5000,
        )
        ClientSubscription.objects.bulk_create(
            [
                ClientSubscription(
                    group=g,
                    product=product,
                    starts_on=INCEPTION,
                    frequency="quarterly",
                    timing="advance" if k % 2 else "arrears_adb",
                    day_count="quarter" if k % 4 < 2 else "actual_365",
                    collection="invoice",
                )
                for k, g in enumerate(groups)
            ],
            batch_size=2000,
        )
    rows = len(days) * households * per
    print(f"seeded {households} households, {households * per} accounts, {rows} valuations")
    print(f"seed time: {time.perf_counter() - started:.1f} s")


def main() -> None:
    households = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    per = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    tenant = firm()
    from django.db.models import Count

    from fees import services as fee_services
    from fees.models import FeeInvoice, FeeStatement

    with schema_context(tenant.schema_name):
        connection.set_tenant(tenant)
        seed(households, per)
        load_before = os.getloadavg()
        files: list[str] = []
        try:
            with transaction.atomic():
                t0, c0 = time.perf_counter(), time.process_time()
                run = fee_services.fee_run_preview(period_start=Q3[0], period_end=Q3[1], frequency="quarterly")
                t1, c1 = time.perf_counter(), time.process_time()
                fee_services.fee_run_approve(run=run, actor=None)
                counts = fee_services.fee_run_issue(run=run, issued_on=date(2026, 10, 1))
                t2, c2 = time.perf_counter(), time.process_time()
                invoices = FeeInvoice.objects.filter(run=run)
                numbers = sorted(int(n.rsplit("-", 1)[1]) for n in invoices.values_list("number", flat=True))
                gapless = numbers == list(range(numbers[0], numbers[0] + len(numbers))) if numbers else False
                lines = invoices.aggregate(n=Count("lines"))["n"]
                files = list(FeeStatement.objects.filter(invoice__run=run).values_list("file", flat=True))
                items = run.items.count()
                raise Rollback
        except Rollback:
            pass
        finally:
            from django.core.files.storage import default_storage

            for name in files:
                default_storage.delete(name)
        load_after = os.getloadavg()
    print(f"households: {households}, accounts: {households * per}")
    print(f"preview: {t1 - t0:.1f} s ({items} groups)")
    print(
        f"approve + issue: {t2 - t1:.1f} s ({counts.ready} invoices, {lines} lines, {len(files)} PDF statements; "
        f"problems {counts.with_problems}, skipped {counts.skipped})"
    )
    print(f"gapless numbers: {gapless}")
    print(f"quarterly fee run, preview + issue: {t2 - t0:.1f} s")
    print(f"of which CPU time of this process: preview {c1 - c0:.1f} s, issue {c2 - c1:.1f} s")
    print(f"load average before {load_before[0]:.1f}, after {load_after[0]:.1f}")


if __name__ == "__main__":
    main()
