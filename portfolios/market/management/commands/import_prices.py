"""``manage.py import_prices FILE [--kind prices|instruments|fx] [--overwrite]``: see docs/market-data.md."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from portfolios.market.services import KINDS, ImportRejected, prices_import

MAX_LISTED = 1000


class Command(BaseCommand):
    help = "Import a CSV of prices, instruments or FX rates (all or nothing, idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("file", help="Path of the CSV file (UTF-8, header row).")
        parser.add_argument("--kind", choices=KINDS, default="prices")
        parser.add_argument(
            "--overwrite", action="store_true", help="Replace stored values that differ from the file (audited)."
        )

    def handle(self, *args, file, kind, overwrite, **options):
        path = Path(file)
        if not path.is_file():
            raise CommandError(f"No such file: {file}")
        try:
            result = prices_import(
                file=str(path), kind=kind, overwrite=overwrite, actor="manage.py import_prices", filename=path.name
            )
        except ImportRejected as exc:
            issues = exc.result.errors + exc.result.conflicts
            for issue in issues[:MAX_LISTED]:
                self.stderr.write(str(issue))
            if len(issues) > MAX_LISTED:
                self.stderr.write(f"... and {len(issues) - MAX_LISTED} more")
            raise CommandError(str(exc)) from exc
        self.stdout.write(self.style.SUCCESS(f"{path.name} ({kind}): {result.summary()}"))
