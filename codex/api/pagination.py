from django.core.paginator import Page
from django.db.models import Count, Window
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import PageNumberPagination

# The annotation that carries the total in every row of a page (removed before the rows leave).
TOTAL_COLUMN = "_codex_page_total"


MAX_FAST_PAGE = 10**9


class StandardPagination(PageNumberPagination):
    """``?page=N&page_size=M`` (at most 200); responses carry count, next, previous, results.

    A malformed ``page_size`` is a 400 naming the parameter, not silently the default (found by
    API fuzzing: the schema promises an integer).
    """

    page_size = 25
    page_size_query_param = "page_size"
    max_page_size = 200

    def get_page_size(self, request):
        # Every list path asks for the page size first: an empty ``page`` is refused here too
        # (DRF reads it as page 1; the schema says an integer from 1).
        if request.query_params.get(self.page_query_param, None) == "":
            raise ValidationError({self.page_query_param: ["Use a whole number from 1."]})
        raw = request.query_params.getlist(self.page_size_query_param)
        if raw:
            value = raw[-1]
            if not value.isdigit() or not 1 <= int(value) <= self.max_page_size:
                raise ValidationError({self.page_size_query_param: ["Use a whole number from 1 to 200."]})
        return super().get_page_size(request)

    def paginate_rows(self, queryset, fields, request, view=None) -> list[dict] | None:
        """One page of ``queryset.values(*fields)``, with the total counted by the same query.

        ``COUNT(*) OVER ()`` is evaluated over every row that passed the filters, before ``LIMIT``,
        so each row of the page carries the total: one round trip instead of a ``COUNT(*)`` and a
        ``SELECT`` (docs/decisions/0703-fast-list-path.md). The response is the one
        ``paginate_queryset`` + ``get_paginated_response`` give: same count, links and 404s.

        Returns None when only the general path can answer (see ``requested_page``).
        """
        page = self.requested_page(request, queryset)
        if page is None:
            return None
        return self.page_of_rows(list(self.page_queryset(queryset, fields, *page)), *page)

    def requested_page(self, request, queryset) -> tuple[int, int] | None:
        """``(page number, page size)`` of the request, or None for the general path: ``page=last``
        or a page number that is not plain digits (``paginate_queryset`` resolves or refuses
        those), or a ``DISTINCT`` queryset (the window would count rows before duplicates go)."""
        raw = request.query_params.get(self.page_query_param) or "1"
        # A huge page number would overflow the OFFSET (a bigint): the general path answers 404.
        if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= MAX_FAST_PAGE or queryset.query.distinct:
            return None
        self.request = request
        return int(raw), self.get_page_size(request)

    @staticmethod
    def page_queryset(queryset, fields, number: int, page_size: int):
        start = (number - 1) * page_size
        return queryset.values(*fields, **{TOTAL_COLUMN: Window(Count("*"))})[start : start + page_size]

    def page_of_rows(self, rows: list[dict], number: int, page_size: int) -> list[dict]:
        """Set up ``self.page`` from rows of ``page_queryset``, as ``paginate_queryset`` does."""
        if rows:
            total = rows[0][TOTAL_COLUMN]
            for row in rows:
                del row[TOTAL_COLUMN]
        elif number == 1:
            total = 0  # an empty first page is a valid page, as in Django's paginator
        else:
            raise NotFound(
                self.invalid_page_message.format(page_number=number, message="That page contains no results")
            )
        paginator = self.django_paginator_class((), page_size)
        paginator.count = total  # a cached_property: the total is known, no COUNT query
        self.page = Page(rows, number, paginator)
        if paginator.num_pages > 1 and self.template is not None:
            self.display_page_controls = True
        return rows

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"] = {"type": "integer", "minimum": 1, "maximum": self.max_page_size}
            elif parameter["name"] == self.page_query_param:
                parameter["schema"] = {"type": "integer", "minimum": 1}
        return parameters
