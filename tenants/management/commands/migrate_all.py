"""Migrate the public schema, the template schema and every firm (parallel subprocess executor)."""

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import connection

from tenants.cloning import CloneError, snapshot_refresh
from tenants.services import clone_function_install


class Command(BaseCommand):
    help = "Migrate public, the tenant template schema, then all firms in parallel."

    def add_arguments(self, parser):
        parser.add_argument("--skip-tenants", action="store_true", help="Only public and the template.")
        parser.add_argument(
            "--executor",
            default=None,
            help="Migration executor for the firms (default: TENANT_MIGRATION_EXECUTOR, 'subprocess').",
        )

    def handle(self, *args, **options):
        verbosity = options["verbosity"]
        call_command("migrate_schemas", shared=True, interactive=False, verbosity=verbosity)
        template = settings.TENANT_BASE_SCHEMA
        with connection.cursor() as cursor:
            cursor.execute(f"CREATE SCHEMA IF NOT EXISTS {connection.ops.quote_name(template)}")
        call_command("migrate_schemas", tenant=True, schema_name=template, interactive=False, verbosity=verbosity)
        connection.set_schema_to_public()
        clone_function_install(force=True)
        try:
            snapshot_refresh()
        except CloneError as exc:
            self.stderr.write(f"template snapshot not refreshed ({exc}); provisioning uses the clone function")
        call_command("createcachetable", verbosity=verbosity)
        if not options["skip_tenants"]:
            call_command(
                "migrate_schemas",
                tenant=True,
                interactive=False,
                verbosity=verbosity,
                executor=options["executor"] or settings.TENANT_MIGRATION_EXECUTOR,
            )
        self.stdout.write(self.style.SUCCESS("public, template and firm schemas are migrated"))
