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

from typing import ClassVar

from django.conf import settings
from django.core.exceptions import EmptyResultSet, FullResultSet
from django.db import connection
from django_filters import FilterSet
from django_filters.rest_framework import DjangoFilterBackend
from rest_framework.response import Response


class ValuesListMixin:
    #: Arguments of ``.values()``: the columns the rows function reads.
    list_values: tuple[str, ...] = ()
    #: Off in tests that compare both paths.
    values_list_path = True
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
                sql, params, converters, number, page_size = hit
                paginator.request = request
                return paginator.page_of_rows(_fetch(sql, params, converters), number, page_size)
        queryset = self.filter_queryset(self.get_queryset())
        page = paginator.requested_page(request, queryset)
        if page is None:
            return None
        page_queryset = paginator.page_queryset(queryset, self.list_values, *page)
        compiled = _compiled(page_queryset) if key is not None else None
        if compiled is None:
            return paginator.page_of_rows(list(page_queryset), *page)
        if len(self._list_sql) >= LIST_SQL_CACHE_SIZE:
            self._list_sql.clear()
        self._list_sql[key] = (*compiled, *page)
        return paginator.page_of_rows(_fetch(*compiled), *page)

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


def _fetch(sql: str, params: tuple, converters: tuple) -> list[dict]:
    """The rows ``.values()`` would give for the compiled query: Django's converters applied."""
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        names = [column.name for column in cursor.description]
        rows = cursor.fetchall()
    if converters:
        rows = [list(row) for row in rows]
        for row in rows:
            for index, functions, expression in converters:
                value = row[index]
                for function in functions:
                    value = function(value, expression, connection)
                row[index] = value
    return [dict(zip(names, row, strict=True)) for row in rows]


def _compiled(queryset) -> tuple[str, tuple, tuple] | None:
    """``(sql, params, converters)`` of a ``.values()`` queryset, or None if it cannot be kept.

    The converters are the ones ``results_iter`` would apply to these columns (fields'
    ``from_db_value``, backend conversions), so rows read with ``_fetch`` are what ``.values()``
    gives. A query that matches nothing by construction (``EmptyResultSet``) is not kept.
    """
    if queryset.db != connection.alias:
        return None
    compiler = queryset.query.get_compiler(connection.alias)
    try:
        sql, params = compiler.as_sql()
    except (EmptyResultSet, FullResultSet):
        return None
    converters = compiler.get_converters([s[0] for s in compiler.select[: compiler.col_count]])
    return sql, tuple(params), tuple((index, tuple(functions), expr) for index, (functions, expr) in converters.items())
