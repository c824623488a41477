"""Import 50,000 transactions from CSV into one portfolio (run by hand, never in CI).

The brief's target: importing 50,000 transactions under 30 s. The file (generated with
``random.Random(7)``) has deposits, buys, sells, dividends and fees over ten instruments in two
currencies; the run times the preview (every row checked, ledger replayed) and the commit (all
checked again under the portfolio lock, written, holdings and lots rebuilt), inside a
transaction that is rolled back.

Usage: .venv/bin/python bench/portfolio_import.py [rows] [firm-slug]   (default 50000, acme)
"""

from __future__ import annotations

import io
import os
import random
import sys
import time
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "codex.settings")

import django  # noqa: E402

django.setup()

from django.core.files.uploadedfile import SimpleUploadedFile  # noqa: E402
from django.db import transaction  # noqa: E402
from django_tenants.utils import schema_context  # noqa: E402

from portfolios.imports import TransactionImport  # noqa: E402
from portfolios.market.models import FxRate, Instrument  # noqa: E402
from portfolios.models import Portfolio, Transaction  # noqa: E402
from tenants.accounts.models import User  # noqa: E402
from tenants.models import Tenant  # noqa: E402


class Rollback(Exception):
    pass


def make_csv(n: int) -> str:
    rng = random.Random(7)
    out = io.StringIO()
    out.write("date,kind,symbol,exchange,quantity,price,fees,amount,currency,note\n")
    held = dict.fromkeys(range(10), 0)
    start = date(2016, 1, 4)
    out.write(f"{start},deposit,,,,,,50000000,USD,opening\n")
    for i in range(1, n):
        day = start + timedelta(days=i * 3000 // n)
        k = rng.randrange(10)
        ccy = "USD" if k < 6 else "EUR"
        roll = rng.random()
        if roll < 0.6 or held[k] == 0:
            q = rng.randint(1, 50)
            held[k] += q
            out.write(f"{day},buy,IMPB{k},XIMP,{q},{rng.uniform(10, 200):.2f},1.50,,{ccy},row {i}\n")
        elif roll < 0.85:
            q = rng.randint(1, held[k])
            held[k] -= q
            out.write(f"{day},sell,IMPB{k},XIMP,{q},{rng.uniform(10, 200):.2f},1.50,,{ccy},row {i}\n")
        elif roll < 0.95:
            out.write(f"{day},dividend,IMPB{k},XIMP,,,,{rng.uniform(1, 90):.2f},{ccy},row {i}\n")
        else:
            out.write(f"{day},fee,,,,,,{rng.uniform(1, 30):.2f},USD,row {i}\n")
    return out.getvalue()


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 50_000
    slug = sys.argv[2] if len(sys.argv) > 2 else "acme"
    tenant = Tenant.objects.filter(slug=slug).first()
    if tenant is None:
        sys.exit(f"firm {slug!r} not found: run `manage.py seed_demo` first")
    text = make_csv(n)
    print(f"file: {n} rows, {len(text) / 1e6:.1f} MB")
    try:
        with schema_context(tenant.schema_name), transaction.atomic():
            for k in range(10):
                Instrument.objects.create(
                    symbol=f"IMPB{k}", exchange="XIMP", name=f"Import bench {k}", currency="USD" if k < 6 else "EUR"
                )
            d = date(2015, 12, 1)
            rates = []
            while d <= date(2025, 1, 1):
                rates.append(FxRate(base="EUR", quote="USD", date=d, rate="1.1", source="bench"))
                d += timedelta(days=1)
            # Days that already have a EUR/USD rate (the demo market data) keep it.
            FxRate.objects.bulk_create(rates, ignore_conflicts=True)
            advisor = User.objects.filter(is_active=True).order_by("pk").first()
            portfolio = Portfolio.objects.create(name="Import benchmark", advisor=advisor, base_currency="USD")
            upload = SimpleUploadedFile("bench.csv", text.encode(), content_type="text/csv")
            t0 = time.perf_counter()
            job = TransactionImport.from_upload(portfolio=portfolio, upload=upload, today=date(2025, 6, 30))
            preview = job.preview()
            t1 = time.perf_counter()
            assert preview.ok, preview.errors[:5]
            report = job.commit()
            t2 = time.perf_counter()
            assert Transaction.objects.filter(portfolio=portfolio).count() == n == report.created
            print(
                f"preview: {t1 - t0:.1f} s   commit: {t2 - t1:.1f} s   total: {t2 - t0:.1f} s ({report.created} rows)"
            )
            again = TransactionImport.from_upload(
                portfolio=portfolio,
                upload=SimpleUploadedFile("bench.csv", text.encode(), content_type="text/csv"),
                today=date(2025, 6, 30),
            )
            t3 = time.perf_counter()
            counts = again.preview().counts
            print(f"re-import preview: {time.perf_counter() - t3:.1f} s, {counts['skip']} duplicates found")
            raise Rollback
    except Rollback:
        print("rolled back: the database is unchanged")


if __name__ == "__main__":
    main()
