"""Demo portfolios for the demo firms: client contacts and a few years of ledger per portfolio.

Deterministic (``random.Random`` with a fixed seed per firm, trade prices taken from the stored
closes) and idempotent (a firm that already has the demo portfolios is left alone). Needs the
market data of ``seed_market``; without it, it does nothing and says so.
"""

from __future__ import annotations

import random
from datetime import date, timedelta
from decimal import ROUND_DOWN, Decimal

from django.core.management.base import BaseCommand
from django.utils import timezone
from django_tenants.utils import schema_context

from crm.models import Contact, Lifecycle
from portfolios import services
from portfolios.market.models import Instrument, Price
from portfolios.models import Portfolio
from tenants.accounts.models import Role, User
from tenants.models import Tenant

FIRMS = ("acme", "globex")
# (first name, last name, portfolio name, base currency, benchmark, instruments held)
CLIENTS = {
    "acme": [
        ("Ada", "Lovelace", "Lovelace growth", "USD", "VTI", ["AAPL", "MSFT", "JPM", "VTI", "GLD", "SAP"]),
        ("Grace", "Hopper", "Hopper income", "USD", "AGG", ["AGG", "TLT", "JNJ", "VNQ", "SGOV"]),
        ("Marie", "Curie", "Curie Europe", "EUR", "CARMP", ["SAP", "ASML", "ALV", "SIE", "IEAG", "MC"]),
    ],
    "globex": [
        ("Alan", "Turing", "Turing family trust", "USD", "VFIAX", ["VFIAX", "MSFT", "XOM", "AGG", "GLD"]),
        ("Emmy", "Noether", "Noether balanced", "EUR", "CARMP", ["CARMP", "IEAG", "SIE", "ASML", "VTI"]),
    ],
}


class Command(BaseCommand):
    help = "Seed demo client contacts and portfolios (with a few years of transactions) in acme and globex."

    def handle(self, *args, **options):
        symbols = {s for clients in CLIENTS.values() for c in clients for s in [*c[5], c[4]]}
        instruments = {i.symbol: i for i in Instrument.objects.filter(symbol__in=symbols)}
        if len(instruments) < len(symbols) or not Price.objects.filter(instrument__in=instruments.values()).exists():
            self.stdout.write(
                "seed_portfolios: no demo market data yet (run `manage.py seed_market` first); nothing seeded."
            )
            return
        for slug in FIRMS:
            tenant = Tenant.objects.filter(slug=slug).first()
            if tenant is None:
                self.stdout.write(f"seed_portfolios: firm {slug} does not exist; skipped.")
                continue
            with schema_context(tenant.schema_name):
                created = self.seed_firm(tenant, slug, instruments)
            self.stdout.write(f"seed_portfolios: {slug}: {created} portfolio(s) created.")

    def seed_firm(self, tenant, slug: str, instruments: dict) -> int:
        advisor = (
            User.objects.filter(email__iexact=f"advisor@{slug}.example").first()
            or User.objects.filter(role=Role.OWNER, is_active=True).order_by("pk").first()
        )
        if advisor is None:
            return 0
        created = 0
        for n, (first, last, name, base, bench, held) in enumerate(CLIENTS[slug]):
            if Portfolio.objects.filter(name=name).exists():
                continue
            contact, _ = Contact.objects.get_or_create(
                email=f"{first}.{last}@clients.{slug}.example".lower(),
                defaults={
                    "first_name": first,
                    "last_name": last,
                    "lifecycle": Lifecycle.CLIENT,
                    "owner": advisor,
                    "source": "demo",
                },
            )
            portfolio = services.portfolio_create(
                tenant=tenant,
                actor=None,
                name=name,
                advisor=advisor,
                client=contact,
                base_currency=base,
                benchmark=instruments[bench],
            )
            rows = self.ledger(portfolio, [instruments[s] for s in held], seed=f"{slug}-{n}")
            services.transactions_bulk_record(portfolio=portfolio, rows=rows, created_by=advisor)
            created += 1
        return created

    def ledger(self, portfolio: Portfolio, held: list, *, seed: str) -> list[services.CleanTxn]:
        """A plausible ledger: an opening deposit and buys, monthly savings, quarterly dividends,
        a yearly fee, a few sells and a withdrawal; trade prices are the stored closes."""
        rng = random.Random(seed)  # noqa: S311 - demo data, not security
        today = timezone.localdate()
        closes: dict[int, list[tuple[date, Decimal]]] = {}
        for iid, d, c in (
            Price.objects.filter(instrument__in=held)
            .order_by("instrument_id", "date")
            .values_list("instrument_id", "date", "close")
        ):
            closes.setdefault(iid, []).append((d, c))
        start = max(series[0][0] for series in closes.values()) + timedelta(days=3)
        rows: list[dict] = []
        quantities: dict[int, Decimal] = {i.pk: Decimal(0) for i in held}

        def close_on(inst, day):
            best = None
            for d, c in closes[inst.pk]:
                if d > day:
                    break
                best = c
            return best

        def cash_row(kind, day, amount, ccy, note="", inst=None):
            rows.append(
                {"kind": kind, "trade_date": day, "amount": amount, "currency": ccy, "note": note, "instrument": inst}
            )

        def trade(kind, inst, day, qty):
            px = close_on(inst, day)
            if px is None or qty <= 0:
                return
            fees = (qty * px * Decimal("0.001")).quantize(Decimal("0.01")) + Decimal("1.00")
            rows.append(
                {"kind": kind, "trade_date": day, "instrument": inst, "quantity": qty, "price": px, "fees": fees}
            )
            quantities[inst.pk] += qty if kind == "buy" else -qty

        base = portfolio.base_currency
        opening = Decimal(rng.choice([250_000, 400_000, 600_000, 1_000_000]))
        cash_row("deposit", start, opening, base, "Opening deposit")
        for inst in held:
            px = close_on(inst, start)
            budget = opening * Decimal("0.9") / len(held)
            if inst.currency != base:
                budget = budget * Decimal("0.9")  # leave room for the FX difference
            trade("buy", inst, start, (budget / px).quantize(Decimal(1), rounding=ROUND_DOWN))
        day = start
        month = 0
        while True:
            month += 1
            day = (start.replace(day=1) + timedelta(days=32 * month)).replace(day=min(start.day, 28))
            if day >= today:
                break
            saving = Decimal(rng.choice([2_000, 5_000, 10_000]))
            cash_row("deposit", day, saving, base, "Monthly saving")
            inst = rng.choice(held)
            px = close_on(inst, day)
            if px and inst.currency == base:
                trade("buy", inst, day, (saving * Decimal("0.9") / px).quantize(Decimal(1), rounding=ROUND_DOWN))
            if month % 3 == 0:
                for inst in held:
                    if inst.asset_class in ("equity", "bond", "fund", "etf") and quantities[inst.pk] > 0:
                        px = close_on(inst, day)
                        amount = (quantities[inst.pk] * px * Decimal("0.004")).quantize(Decimal("0.01"))
                        cash_row("dividend", day, amount, inst.currency, f"Dividend {inst.symbol}", inst)
                        cash_row(
                            "tax",
                            day,
                            (amount * Decimal("0.15")).quantize(Decimal("0.01")),
                            inst.currency,
                            f"Withholding tax {inst.symbol}",
                            inst,
                        )
            if month % 12 == 0:
                cash_row(
                    "fee", day, (opening * Decimal("0.008")).quantize(Decimal("0.01")), base, "Annual advisory fee"
                )
            if month % 7 == 0:
                inst = rng.choice(held)
                q = (quantities[inst.pk] * Decimal(rng.choice(["0.1", "0.2", "0.25"]))).quantize(
                    Decimal(1), rounding=ROUND_DOWN
                )
                trade("sell", inst, day, q)
            if month == 20:
                cash_row(
                    "withdrawal", day, (opening * Decimal("0.05")).quantize(Decimal("0.01")), base, "Client withdrawal"
                )
        return [services.transaction_clean(portfolio=portfolio, data=r, today=today) for r in rows]
