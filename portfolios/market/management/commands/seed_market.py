"""``manage.py seed_market``: demo instruments, daily closes up to today and EUR/USD (idempotent)."""

from datetime import date

from django.core.management.base import BaseCommand
from django.utils import timezone

from portfolios.market import seed
from portfolios.market.services import prices_import_rows


class Command(BaseCommand):
    help = "Load deterministic demo market data (about 20 instruments, ~4 years of business days, EUR/USD)."

    def add_arguments(self, parser):
        parser.add_argument("--end", type=date.fromisoformat, help="Last day to generate (default: today).")

    def handle(self, *args, end=None, **options):
        end = end or timezone.localdate()
        for kind, rows in (
            ("instruments", seed.instrument_rows()),
            ("prices", seed.price_rows(end)),
            ("fx", seed.fx_rows(end)),
        ):
            result = prices_import_rows(rows=rows, kind=kind, source="seed", actor="manage.py seed_market")
            self.stdout.write(f"{kind}: {result.summary()}")
