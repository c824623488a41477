"""Codex's database backend: django-tenants' PostgreSQL backend, every connection timing its queries."""

from __future__ import annotations

from django.conf import settings
from django.db import connection


def current_schema() -> str:
    """The schema the default connection is set to (a firm's, or public).

    django-tenants' backend adds ``schema_name`` (and more) to the connection; django-stubs
    types ``django.db.connection`` as Django's base wrapper, so the ignores are here, once.
    """
    return connection.schema_name  # type: ignore[attr-defined]


def current_firm_pk() -> int | None:
    """The primary key of the firm the default connection is set to, or None (the public schema,
    or a bare ``schema_context`` that set a schema without a firm). The kernel names no firm model:
    ``tenants.selectors.current_tenant`` gives the firm itself."""
    if current_schema() == settings.PUBLIC_SCHEMA_NAME:
        return None
    return getattr(getattr(connection, "tenant", None), "pk", None)


def set_schema_to_public() -> None:
    """Point the default connection at the public schema (django-tenants' ``set_schema_to_public``)."""
    connection.set_schema_to_public()  # type: ignore[attr-defined]


def search_path_forget() -> None:
    """Make django-tenants set ``search_path`` again before the next query on this connection.

    For SQL that changed ``search_path`` itself (a restored ``pg_dump``): django-tenants sets it
    once per transaction and remembers that it did in ``search_path_set_schemas``."""
    connection.search_path_set_schemas = None  # type: ignore[attr-defined]
