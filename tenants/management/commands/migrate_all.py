"""Migrate the public schema, the template schema, then every firm that is behind the template.

Firms already at the template's migrations are skipped (one query, see tenants.migrating), so a
no-op deploy over thousands of firms takes seconds; the rest run in parallel child processes and
the first failure stops the run naming its firm.
"""

import argparse
import time
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from tenants import migrating
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
        parser.add_argument(
            "--all-firms", action="store_true", help="Run migrate for every firm, even those already current."
        )
        parser.add_argument("--parallel", type=int, default=None, help="Child processes (TENANT_SUBPROCESS_PARALLEL).")
        # Internal: a child of the parallel run (tenants.migrating).
        parser.add_argument("--child-firms", help=argparse.SUPPRESS)
        parser.add_argument("--stop-file", help=argparse.SUPPRESS)

    def handle(self, *args, **options):
        verbosity = options["verbosity"]
        if options["child_firms"]:
            code = migrating.run_child(Path(options["child_firms"]), Path(options["stop_file"]), verbosity, self.stdout)
            if code:
                raise SystemExit(code)
            return
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
        if not options["skip_tenants"]:
            self._migrate_firms(options)
        self.stdout.write(self.style.SUCCESS("public, template and firm schemas are migrated"))

    def _migrate_firms(self, options) -> None:
        """Only firms behind the template, in parallel children; the first failure names its firm."""
        executor = options["executor"] or settings.TENANT_MIGRATION_EXECUTOR
        started = time.monotonic()
        firms = migrating.firm_schemas()
        behind = firms if options["all_firms"] else migrating.schemas_behind(firms)
        parallel = 1 if executor == "standard" else (options["parallel"] or settings.TENANT_SUBPROCESS_PARALLEL)
        try:
            migrating.migrate_parallel(behind, parallel=parallel, verbosity=options["verbosity"])
        except migrating.FirmMigrationFailed as exc:
            raise CommandError(str(exc)) from exc
        if options["verbosity"]:
            self.stdout.write(
                f"firms: {len(firms)}, behind the template: {len(behind)}, migrated in "
                f"{time.monotonic() - started:.1f} s ({parallel} process(es))"
            )
