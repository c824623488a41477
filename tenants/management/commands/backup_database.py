"""``manage.py backup_database [--directory DIR]``: dump the whole database now (tenants.db_backup)."""

from django.core.management.base import BaseCommand, CommandError

from tenants.backup import ExportError
from tenants.db_backup import database_backup


class Command(BaseCommand):
    help = "pg_dump the whole database into CODEX_BACKUP_DIR and prune dumps past CODEX_BACKUP_KEEP_DAYS."

    def add_arguments(self, parser):
        parser.add_argument("--directory", default=None, help="Instead of CODEX_BACKUP_DIR.")

    def handle(self, *args, directory=None, **options):
        try:
            backup = database_backup(directory=directory)
        except ExportError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(self.style.SUCCESS(f"{backup.path} ({backup.size} bytes)"))
