"""``manage.py export_tenant SLUG [--output FILE]``: write a firm's schema and public rows to one archive."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from tenants.backup import ExportError, tenant_export
from tenants.models import Tenant


class Command(BaseCommand):
    help = "Export a firm (schema dump + its public rows) to a .tar.gz archive."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("--output", "-o", type=Path, help="Archive path (default: CODEX_EXPORT_DIR/<slug>-<time>).")

    def handle(self, *args, slug, output, **options):
        tenant = Tenant.objects.filter(slug=slug).first()
        if tenant is None:
            raise CommandError(f"no firm with slug {slug!r}")
        try:
            result = tenant_export(tenant=tenant, output=output, actor="manage.py export_tenant")
        except ExportError as exc:
            raise CommandError(str(exc)) from exc
        rows = sum(result.tables.values())
        self.stdout.write(
            self.style.SUCCESS(
                f"exported {slug}: {len(result.tables)} tables, {rows} rows, "
                f"{sum(result.public_rows.values())} public rows -> {result.path} "
                f"({result.size} bytes, sha256 {result.sha256})"
            )
        )
