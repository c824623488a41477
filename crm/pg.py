"""PostgreSQL capabilities the CRM uses when the server has them (pg_trgm for typo-tolerant names).

pg_trgm is a contrib extension: every packaged PostgreSQL has it, but a stripped-down server may
not. Migrations then skip the trigram indexes and search falls back to full text only, instead of
failing the whole migration run (see docs/decisions/0201-crm-search.md).
"""

from __future__ import annotations

from django.db import migrations

_cache: dict[str, bool] = {}


def trigram_installed(connection, *, cached: bool = True) -> bool:
    """True when pg_trgm is installed in this database. Asked once per process (installing the
    extension is a migration, followed by a restart)."""
    if not cached or connection.alias not in _cache:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'")
            _cache[connection.alias] = cursor.fetchone() is not None
    return _cache[connection.alias]


def trigram_available(connection) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm'")
        return cursor.fetchone() is not None


class AddTrigramIndex(migrations.AddIndex):
    """AddIndex for a ``gin_trgm_ops`` index, skipped in the database when pg_trgm is missing."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if trigram_installed(schema_editor.connection, cached=False):
            super().database_forwards(app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if trigram_installed(schema_editor.connection, cached=False):
            super().database_backwards(app_label, schema_editor, from_state, to_state)
