"""``manage.py purge_history [--dry-run]``: delete change-history events older than the retention
period (``CODEX_HISTORY_RETENTION_DAYS``, 7 years by default) in the public schema (firms' settings,
subscriptions, invoices: decision 0931) and in every firm's schema."""

from django.conf import settings
from django.core.management.base import BaseCommand
from django_tenants.utils import schema_context

from codex.history import history_purge
from tenants.selectors import firm_schema_names


class Command(BaseCommand):
    help = "Delete change-history events older than CODEX_HISTORY_RETENTION_DAYS in public and every firm."

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="Count what would go; delete nothing.")

    def handle(self, *args, dry_run=False, **options):
        total = 0
        for schema in [settings.PUBLIC_SCHEMA_NAME, *firm_schema_names()]:
            with schema_context(schema):
                counts = history_purge(dry_run=dry_run)
            for label, count in counts.items():
                if count:
                    self.stdout.write(f"{schema} {label}: {count}")
                total += count
        self.stdout.write(self.style.SUCCESS(f"{'would delete' if dry_run else 'deleted'} {total} event(s)."))
