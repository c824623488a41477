"""Strict query filters: a filter the schema types is refused (400 naming it) when its value is not
of that type, instead of being silently ignored.

django-filter reads an empty value as "no filter" and a boolean it cannot read (``unread=null``,
``unread=maybe``) as "no filter" too: the caller asked for something and got everything. The
OpenAPI schema says such a filter is an integer, a date, a boolean or one of a set of values, so
API fuzzing (decision 0503, ``negative_data_rejection``) sends exactly those values and expects a
400. Free-text filters (a plain string in the schema) still accept an empty value.

``StrictFilterBackend`` is the project's default filter backend (``REST_FRAMEWORK`` in settings);
views need no change.
"""

from __future__ import annotations

from datetime import UTC, datetime

from django import forms
from django_filters import filters
from django_filters.rest_framework import DjangoFilterBackend
from rest_framework.exceptions import ValidationError
from rest_framework.filters import OrderingFilter

BOOLEAN_VALUES = {"true": True, "false": False}


def strict_query_errors(filterset, query_params) -> dict[str, list[str]]:
    """Errors for query parameters whose value does not have the type the schema gives them."""
    errors: dict[str, list[str]] = {}
    for name, flt in filterset.filters.items():
        if name not in query_params:
            continue
        values = query_params.getlist(name)
        if isinstance(flt, filters.BooleanFilter):
            if any(value.lower() not in BOOLEAN_VALUES for value in values):
                errors[name] = ["Use true or false."]
            continue
        field = filterset.form.fields.get(name)
        free_text = isinstance(field, forms.CharField) and not isinstance(flt, filters.BaseCSVFilter)
        if not free_text and any(value == "" for value in values):
            errors[name] = ["This filter needs a value; leave it out to not filter."]
    return errors


class StrictFilterBackend(DjangoFilterBackend):
    """``DjangoFilterBackend`` that refuses empty and unreadable values of typed filters.

    A request that names none of the view's filters is not filtered: building the filterset (its
    form, with a deep copy of every field and of each choice filter's queryset) would return the
    queryset unchanged at a cost of about a fifth of a 25-row list's time (``GET
    /api/v1/portfolios/``, measured in docs/benchmarks.md), so that work is skipped.
    """

    def filter_queryset(self, request, queryset, view):
        filterset_class = self.get_filterset_class(view, queryset)
        if filterset_class is not None and not names_a_filter(filterset_class, request.query_params):
            return queryset
        return super().filter_queryset(request, queryset, view)

    def get_filterset(self, request, queryset, view):
        filterset = super().get_filterset(request, queryset, view)
        if filterset is not None:
            errors = strict_query_errors(filterset, request.query_params)
            if errors:
                raise ValidationError(errors)
            if filterset.is_valid():
                _datetimes_to_utc(filterset.form.cleaned_data)
        return filterset


def names_a_filter(filterset_class, query_params) -> bool:
    """Whether a query parameter is one of the filterset's filters (``name``, or ``name_<suffix>``
    as range widgets spell theirs): without one, every filter sees an empty value and leaves the
    queryset as it is."""
    names = filterset_class.base_filters
    return any(key in names or key.rsplit("_", 1)[0] in names for key in query_params)


def _datetimes_to_utc(cleaned_data: dict) -> None:
    """Aware datetimes in UTC before they reach the database: ISO 8601 allows offsets up to
    ±23:59, PostgreSQL only ±15:59 (``since=...-23:00`` was a 500, found by API fuzzing)."""
    for name, value in cleaned_data.items():
        if isinstance(value, datetime) and value.tzinfo is not None:
            try:
                cleaned_data[name] = value.astimezone(UTC)
            except OverflowError as exc:
                raise ValidationError({name: ["The date and time is out of range."]}) from exc


def refuse_empty_params(query_params, *names: str) -> None:
    """400 naming each of ``names`` that is present with an empty value (``?start=``).

    For views that read typed query parameters by hand: absent means "the default", empty is not
    a value of the documented type.
    """
    errors = {
        name: ["This parameter needs a value; leave it out for the default."]
        for name in names
        if query_params.get(name, None) == ""
    }
    if errors:
        raise ValidationError(errors)


class StrictOrderingFilter(OrderingFilter):
    """DRF's ``OrderingFilter`` that refuses what it would silently drop.

    ``?ordering=bogus`` (or a known field next to an unknown one, or an empty value) is a 400
    naming ``ordering`` and listing the allowed values, instead of the default order: docs/api.md
    promises that invalid parameters are never ignored. The allowed fields are DRF's own
    (``get_valid_fields``, the view's ``ordering_fields``), judged by DRF's own rule
    (``remove_invalid_fields``). The schema states them: a comma-separated list (``style: form``,
    ``explode: false``) of the fields, each optionally prefixed with ``-``.
    """

    def get_ordering(self, request, queryset, view):
        raw = request.query_params.get(self.ordering_param)
        if raw is not None:
            terms = [term.strip() for term in raw.split(",")]
            valid = self.remove_invalid_fields(queryset, terms, view, request)
            if not raw.strip() or len(valid) != len(terms):
                allowed = self.allowed_values(queryset, view, request)
                unknown = [term for term in terms if term not in valid]
                got = ", ".join(repr(term) for term in unknown) or "an empty value"
                raise ValidationError(
                    {self.ordering_param: [f"Cannot order by {got}; use one or more of: {', '.join(allowed)}."]}
                )
        return super().get_ordering(request, queryset, view)

    def allowed_values(self, queryset, view, request=None) -> list[str]:
        fields = [name for name, _label in self.get_valid_fields(queryset, view, {"request": request})]
        return [value for name in fields for value in (name, f"-{name}")]

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        queryset = view.get_queryset() if getattr(view, "ordering_fields", None) in (None, "__all__") else None
        allowed = self.allowed_values(queryset, view)
        for parameter in parameters:
            parameter["schema"] = {"type": "array", "items": {"type": "string", "enum": allowed}, "minItems": 1}
            parameter["style"] = "form"
            parameter["explode"] = False
            parameter["description"] = (
                f"Order by these fields, comma-separated; `-` for descending: {', '.join(allowed)}."
            )
        return parameters
