"""PostgreSQL capabilities the CRM uses when the server has them (pg_trgm for typo-tolerant names).

pg_trgm is a contrib extension: every packaged PostgreSQL has it, but a stripped-down server may
not. Migrations then skip the trigram indexes and search falls back to full text only, instead of
failing the whole migration run (see docs/decisions/0201-crm-search.md).
"""

from __future__ import annotations

from django.db import migrations

_cache: dict[str, bool] = {}


def trigram_installed(connection) -> bool:
    """True when pg_trgm is installed in this database (cached per process once True)."""
    if _cache.get(connection.alias):
        return True
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'")
        found = cursor.fetchone() is not None
    if found:
        _cache[connection.alias] = True
    return found


def trigram_available(connection) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm'")
        return cursor.fetchone() is not None


class AddTrigramIndex(migrations.AddIndex):
    """AddIndex for a ``gin_trgm_ops`` index, skipped in the database when pg_trgm is missing."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if trigram_installed(schema_editor.connection):
            super().database_forwards(app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if trigram_installed(schema_editor.connection):
            super().database_backwards(app_label, schema_editor, from_state, to_state)
