"""``manage.py import_tenant FILE --slug NEW``: restore an export as a new firm (new schema, new domain)."""

from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from tenants.backup import ImportError_, tenant_import


class Command(BaseCommand):
    help = "Restore a firm export as a new firm. All or nothing."

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path)
        parser.add_argument("--slug", required=True, help="Slug (and host name) of the restored firm.")
        parser.add_argument("--name", help="Display name (default: the exported firm's).")

    def handle(self, *args, file, slug, name, **options):
        try:
            result = tenant_import(path=file, slug=slug, name=name, actor="manage.py import_tenant")
        except ValidationError as exc:
            raise CommandError("; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())) from exc
        except ImportError_ as exc:
            raise CommandError(str(exc)) from exc
        skipped = ", ".join(f"{k} ({v})" for k, v in result.skipped.items()) or "nothing"
        self.stdout.write(
            self.style.SUCCESS(
                f"restored {result.tenant.slug} (schema {result.tenant.schema_name}): "
                f"{len(result.tables)} tables, {sum(result.tables.values())} rows; "
                f"public rows {result.public_rows}; not restored: {skipped}"
            )
        )
