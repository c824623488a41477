"""Codex's database backend: django-tenants' PostgreSQL backend, every connection timing its queries."""

from django.db import connection


def current_schema() -> str:
    """The schema the default connection is set to (a firm's, or public).

    django-tenants' backend adds ``schema_name`` to the connection; django-stubs types
    ``django.db.connection`` as Django's base wrapper, so the one ignore is here.
    """
    return connection.schema_name  # type: ignore[attr-defined]
