from django.db.models import QuerySet
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import PageNumberPagination


class StandardPagination(PageNumberPagination):
    """``?page=N&page_size=M`` (at most 200); responses carry count, next, previous, results.

    A malformed ``page_size`` is a 400 naming the parameter, not silently the default (found by
    API fuzzing: the schema promises an integer).
    """

    page_size = 25
    page_size_query_param = "page_size"
    max_page_size = 200

    def get_page_size(self, request):
        # DRF asks for the page size first: an empty ``page`` is refused here too
        # (DRF reads it as page 1; the schema says an integer from 1).
        if request.query_params.get(self.page_query_param, None) == "":
            raise ValidationError({self.page_query_param: ["Use a whole number from 1."]})
        raw = request.query_params.getlist(self.page_size_query_param)
        if raw:
            value = raw[-1]
            if not value.isdigit() or not 1 <= int(value) <= self.max_page_size:
                raise ValidationError({self.page_size_query_param: ["Use a whole number from 1 to 200."]})
        return super().get_page_size(request)

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"] = {"type": "integer", "minimum": 1, "maximum": self.max_page_size}
            elif parameter["name"] == self.page_query_param:
                parameter["schema"] = {"type": "integer", "minimum": 1}
        return parameters


class KnownCount:
    """A queryset to page whose number of rows is already known (a count kept on write), so the
    page does not run ``COUNT(*)`` over the table. Django's ``Paginator`` pages any sliceable
    object with a ``count()`` method (its documented contract for ``object_list``); a slice of
    this one is a slice of the queryset, read as usual."""

    def __init__(self, queryset: QuerySet, count: int) -> None:
        self.queryset = queryset
        self.known = count

    def count(self) -> int:
        return self.known

    def __len__(self) -> int:
        return self.known

    def __getitem__(self, key):
        return self.queryset[key]

    @property
    def ordered(self) -> bool:
        return self.queryset.ordered
