"""``manage.py restore_drill [--backup-first] [--keep]``: restore the newest database dump into a
scratch database and compare row counts and checksums per table (tenants.db_backup)."""

from django.core.management.base import BaseCommand, CommandError

from tenants.backup import ExportError
from tenants.db_backup import database_backup, restore_drill


class Command(BaseCommand):
    help = "Restore the newest backup into a scratch database and compare every table with this one."

    def add_arguments(self, parser):
        parser.add_argument("--backup-first", action="store_true", help="Take a fresh backup, then restore it.")
        parser.add_argument("--keep", action="store_true", help="Keep the scratch database afterwards.")

    def handle(self, *args, backup_first=False, keep=False, **options):
        try:
            backup = database_backup() if backup_first else None
            report = restore_drill(backup=backup, keep=keep)
        except ExportError as exc:
            raise CommandError(str(exc)) from exc
        for line in report.mismatches:
            self.stdout.write(line)
        summary = f"{report.backup.name}: {report.tables} tables, {report.rows} rows compared"
        if not report.ok:
            raise CommandError(f"{summary}; {len(report.mismatches)} table(s) differ.")
        self.stdout.write(self.style.SUCCESS(f"{summary}; all match."))
