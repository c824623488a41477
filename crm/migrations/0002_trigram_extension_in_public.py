"""pg_trgm, created in the public schema so every firm schema (search_path ``firm_x, public``) sees it.

Django's ``TrigramExtension()`` runs ``CREATE EXTENSION pg_trgm`` without a schema, which puts the
extension in the first schema of the search path: the first firm migrated would own it and every
other firm would fail to find ``gin_trgm_ops``/``similarity``. Extensions are database-wide, so
``IF NOT EXISTS ... SCHEMA public`` is idempotent across the firms' migrations.
"""

from django.contrib.postgres.operations import TrigramExtension
from django.db import migrations

from crm.pg import trigram_available


class TrigramExtensionInPublic(TrigramExtension):
    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor != "postgresql" or not trigram_available(schema_editor.connection):
            return  # see crm/pg.py: search then works without typo tolerance
        schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public")

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        # Shared by every firm: never dropped by one firm's rollback.
        pass


class Migration(migrations.Migration):
    dependencies = [("crm", "0001_initial")]

    operations = [TrigramExtensionInPublic()]
