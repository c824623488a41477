"""A list path that skips model instances and serializer fields, for the hottest list endpoints.

A ``ModelSerializer`` list builds its fields, a model instance per row (and per joined row) and
calls one field method per value; django-filter builds and validates a form even when the request
names no filter: on the portfolio list that was most of the request's CPU (docs/benchmarks.md,
"Profile and fix"). A view with ``ValuesListMixin`` answers ``GET`` lists from ``.values()`` rows
instead, turned into the response's dicts by a plain function of the view, counts the total in
the page's own query (``StandardPagination.paginate_rows``) and leaves django-filter out when no
query parameter names one of its filters.

The rows function must give exactly what the view's serializer gives for the same objects: every
view that uses this has a test comparing both, row by row and byte for byte over HTTP
(docs/decisions/0703-fast-list-path.md). Everything else is the general path's: authentication,
permissions, throttles, ``get_queryset`` (the caller's book), filters, search, ordering, page
size, links and errors, the renderers.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import ClassVar

import psycopg
from django.conf import settings
from django.core.exceptions import EmptyResultSet, FullResultSet
from django.db import NotSupportedError, connection
from django.db.backends.postgresql.psycopg_any import register_tzloader
from django_filters import FilterSet
from django_filters.rest_framework import DjangoFilterBackend
from psycopg.pq import Format
from psycopg.types.string import TextLoader
from rest_framework.response import Response

TIMESTAMPTZ_OID = psycopg.adapters.types["timestamptz"].oid
_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")  # what may stand in a SQL comment as it is


class ValuesListMixin:
    #: Arguments of ``.values()``: the columns the rows function reads.
    list_values: tuple[str, ...] = ()
    #: Off in tests that compare both paths.
    values_list_path = True
    #: ``timestamptz`` columns arrive as PostgreSQL's text (``drf_datetime`` turns it into DRF's
    #: form without building a ``datetime``): for a rows function that formats them with it.
    list_timestamps_as_text = False
    #: Compiled list queries of this process, by view, caller scope and query string (bounded).
    _list_sql: ClassVar[dict] = {}

    def list_rows(self, rows: list[dict]) -> list[dict]:
        """The serializer's representation of ``rows`` (dicts from ``.values(*list_values)``)."""
        raise NotImplementedError

    def list_scope(self) -> tuple | None:
        """Everything besides the query string that ``get_queryset`` reads of the request, or None.

        Two requests of the same view with the same scope and the same query string must build
        the same SQL: the compiled query is then reused (``_list_sql``). None: build every time.
        """
        return None

    def list(self, request, *args, **kwargs) -> Response:
        paginator = self.paginator
        if self.values_list_path and paginator is not None and hasattr(paginator, "paginate_rows"):
            rows = self._values_page(request, paginator)
            if rows is not None:
                return paginator.get_paginated_response(self.list_rows(rows))
        queryset = self.filter_queryset(self.get_queryset())
        page = self.paginate_queryset(queryset)
        if page is not None:
            return self.get_paginated_response(self.get_serializer(page, many=True).data)
        return Response(self.get_serializer(queryset, many=True).data)

    def _values_page(self, request, paginator) -> list[dict] | None:
        scope = self.list_scope()
        key = None
        if scope is not None and getattr(settings, "CODEX_LIST_SQL_CACHE", True):
            key = (
                type(self),
                connection.alias,
                scope,
                tuple(sorted((k, tuple(v)) for k, v in request.query_params.lists())),
            )
            hit = self._list_sql.get(key)
            if hit is not None:
                query, number, page_size = hit
                paginator.request = request
                return paginator.page_of_rows(query.fetch(), number, page_size)
        queryset = self.filter_queryset(self.get_queryset())
        page = paginator.requested_page(request, queryset)
        if page is None:
            return None
        page_queryset = paginator.page_queryset(queryset, self.list_values, *page)
        query = _compiled(page_queryset, text_timestamps=self.list_timestamps_as_text) if key is not None else None
        if query is None:
            return paginator.page_of_rows(list(page_queryset), *page)
        if len(self._list_sql) >= LIST_SQL_CACHE_SIZE:
            self._list_sql.clear()
        self._list_sql[key] = (query, *page)
        return paginator.page_of_rows(query.fetch(), *page)

    def filter_queryset(self, queryset):
        for backend in list(self.filter_backends):
            if self.values_list_path and issubclass(backend, DjangoFilterBackend) and self._names_no_filter():
                continue
            queryset = backend().filter_queryset(self.request, queryset, self)
        return queryset

    def _names_no_filter(self) -> bool:
        """Whether django-filter would return the queryset unchanged (and raise nothing).

        A filter whose value is empty filters nothing, and a filter's widget reads its own name
        or its name plus a suffix (``_min``, ``_after``, ...): with no query parameter starting
        with a filter's name, no filter is required and the FilterSet class keeping django-filter's
        own ``__init__``, ``filter_queryset`` and ``qs``, every filter is empty. The project's
        strict backend (``codex.api.filters``) only refuses parameters named like a filter, so it
        has nothing to refuse either.
        """
        filterset_class = getattr(self, "filterset_class", None)
        if filterset_class is None or getattr(self, "filterset_fields", None):
            return False
        if any(getattr(filterset_class, name) is not getattr(FilterSet, name) for name in _FILTERSET_HOOKS):
            return False
        filters = filterset_class.base_filters
        if any(f.extra.get("required") for f in filters.values()):
            return False
        return not any(key.startswith(name) for key in self.request.query_params for name in filters)


_FILTERSET_HOOKS = ("__init__", "filter_queryset", "qs", "get_form_class")
LIST_SQL_CACHE_SIZE = 512


class CompiledQuery:
    """A ``.values()`` page query compiled once: its SQL, parameters, Django's converters for its
    columns and, after its first run, the column names (the same for every run of the same SQL)."""

    __slots__ = ("converters", "names", "params", "sql", "text_timestamps")

    def __init__(self, sql: str, params: tuple, converters: tuple, *, text_timestamps: bool = False):
        self.sql = sql
        self.params = params
        self.converters = converters
        self.names: list[str] | None = None
        self.text_timestamps = text_timestamps

    def fetch(self) -> list[dict]:
        """The rows ``.values()`` would give for the compiled query: Django's converters applied.

        Run as a prepared statement where it can be (``_prepared_cursor``): the page query joins
        four tables, and PostgreSQL spent more CPU planning it on every request than running it
        (docs/decisions/0705-prepared-list-queries.md)."""
        with connection.cursor() as cursor:
            prepared = _prepared_cursor(self.params)
            if prepared is None:
                rows = self._run(cursor, self.sql)
            else:
                # One statement per firm on the connection (psycopg keys them by their text, at most
                # ``prepared_max`` = 100, least recently used dropped): PostgreSQL plans a statement
                # again whenever it runs under another ``search_path``, so one statement shared by
                # firms taking turns on a worker would be planned at almost every request.
                schema = connection.schema_name
                sql = f"{self.sql} /* {schema} */" if _SCHEMA_NAME.fullmatch(schema) else self.sql
                with prepared:
                    try:
                        rows = self._run(prepared, sql)
                    except NotSupportedError:
                        # "cached plan must not change result type": a migration changed the type
                        # of a column this statement returns after this connection prepared it.
                        # Forget the connection's statements (psycopg too, on seeing DEALLOCATE
                        # ALL) and run it again, prepared anew. In a transaction the error has
                        # aborted it: nothing can run, and psycopg forgets them on its rollback.
                        if _in_transaction():
                            raise
                        prepared.execute("DEALLOCATE ALL")
                        rows = self._run(prepared, sql)
        if self.converters:
            rows = [list(row) for row in rows]
            for row in rows:
                for index, functions, expression in self.converters:
                    value = row[index]
                    for function in functions:
                        value = function(value, expression, connection)
                    row[index] = value
        return [dict(zip(self.names, row, strict=True)) for row in rows]

    def _run(self, cursor, sql: str) -> list[tuple]:
        if self.text_timestamps:
            cursor.cursor.adapters.register_loader(TIMESTAMPTZ_OID, TextLoader)
        cursor.execute(sql, self.params)
        if self.names is None:
            # psycopg builds a Column object per column at every ``description``: read them once.
            self.names = [column.name for column in cursor.description]
        return cursor.fetchall()


def _in_transaction() -> bool:
    return connection.in_atomic_block


def _prepared_cursor(params: tuple):
    """A cursor on the open connection that binds on the server, wrapped as Django wraps its own
    (query logging, the slow-query wrapper), or None to run the query as every other query runs.

    psycopg prepares a query that a server-binding cursor has run ``prepare_threshold`` times on
    the connection (``DATABASES["default"]["OPTIONS"]``; None, Django's default, turns it off):
    from then on PostgreSQL reuses its parse and plan. A plan is tied to the ``search_path`` it
    was made under: PostgreSQL parses the statement again when a firm's request sets another one,
    so the same SQL never reads another firm's tables. Only integer (and boolean) parameters are
    bound this way (the book's advisor id; page offsets are in the SQL): a text parameter sent
    untyped can make PostgreSQL refuse a function call that client-side binding accepts.
    """
    raw = connection.connection
    if getattr(raw, "prepare_threshold", None) is None or not all(isinstance(p, int) for p in params):
        return None
    cursor = psycopg.Cursor(raw)
    # As Django's ``create_cursor``: its own timestamptz loader where the connection's differs.
    if connection.timezone != raw.adapters.get_loader(TIMESTAMPTZ_OID, Format.TEXT).timezone:
        register_tzloader(connection.timezone, cursor)
    return connection.make_debug_cursor(cursor) if connection.queries_logged else connection.make_cursor(cursor)


def _compiled(queryset, *, text_timestamps: bool = False) -> CompiledQuery | None:
    """The compiled form of a ``.values()`` queryset, or None if it cannot be kept.

    The converters are the ones ``results_iter`` would apply to these columns (fields'
    ``from_db_value``, backend conversions), so rows read with ``CompiledQuery.fetch`` are what
    ``.values()`` gives. A query that matches nothing by construction (``EmptyResultSet``) is not
    kept.
    """
    if queryset.db != connection.alias:
        return None
    compiler = queryset.query.get_compiler(connection.alias)
    try:
        sql, params = compiler.as_sql()
    except (EmptyResultSet, FullResultSet):
        return None
    converters = compiler.get_converters([s[0] for s in compiler.select[: compiler.col_count]])
    return CompiledQuery(
        sql,
        tuple(params),
        tuple((index, tuple(functions), expr) for index, (functions, expr) in converters.items()),
        text_timestamps=text_timestamps,
    )


def drf_datetime(value, zone) -> str | None:
    """What DRF's ``DateTimeField`` writes for ``value`` in ``zone``: ISO 8601, ``Z`` for UTC.

    ``value`` is a ``datetime``, or PostgreSQL's text form of a ``timestamptz``
    (``list_timestamps_as_text``). In a UTC session that text is ``YYYY-MM-DD HH:MM:SS[.f]+00``,
    the fraction without its trailing zeros: for a UTC ``zone`` it becomes DRF's text by moving
    characters (a third of the cost of loading a ``datetime`` and formatting it, for 50 values a
    page); any other text is parsed first.
    """
    if not value:
        return None
    if type(value) is str:
        if value[-3:] == "+00" and value[10:11] == " " and value[4:5] == "-" and _is_utc(zone):
            body = value[:-3]
            if len(body) > 19:  # a fraction: DRF writes six digits
                body = body.ljust(26, "0")
            return f"{body[:10]}T{body[11:]}Z"
        value = datetime.fromisoformat(value)
    text = value.astimezone(zone).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def _is_utc(zone) -> bool:
    return zone is UTC or getattr(zone, "key", None) in ("UTC", "Etc/UTC")
