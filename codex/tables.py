"""Sorting and pagination for the web UI's tables, shared by every app's list pages.

A view passes its (already scoped and filtered) queryset, the columns that may be sorted and a
default order; it gets back a page whose query count does not depend on the number of rows (one
COUNT, one SELECT of the page). Templates render headers with ``{% sort_header %}`` (codex_ui) and
the pager with ``{% include "includes/pagination.html" %}``.

    table = table_page(request, Contact.objects.all(), sorts={"name": ("last_name", "first_name"),
                       "created": "created_at"}, default="name")
    render(request, "crm/contacts.html", {"table": table, "page_obj": table.page})
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from django import forms
from django.core.paginator import EmptyPage, Page, PageNotAnInteger, Paginator
from django.db.models import OrderBy, QuerySet

SORT_PARAM = "sort"
PAGE_PARAM = "page"
PER_PAGE_PARAM = "per_page"
PER_PAGE_CHOICES = (10, 25, 50, 100)


@dataclass(frozen=True)
class TablePage:
    page: Page
    sort: str
    per_page: int

    @property
    def rows(self):
        return self.page.object_list

    @property
    def is_empty(self) -> bool:
        return self.page.paginator.count == 0


Sortable = str | OrderBy | Sequence[str | OrderBy]


def _reverse(field: str | OrderBy) -> str | OrderBy:
    if isinstance(field, OrderBy):  # the other direction, empty values still last
        return OrderBy(
            field.expression,
            descending=not field.descending,
            nulls_first=field.nulls_first,
            nulls_last=field.nulls_last,
        )
    return field[1:] if field.startswith("-") else f"-{field}"


def _ordering(sort: str, sorts: Mapping[str, Sortable]) -> list[str | OrderBy] | None:
    """The ORDER BY of a sort key. A field may be an expression (``F("x").desc(nulls_last=True)``)
    so that rows without a value stay last in both directions' natural reading."""
    descending = sort.startswith("-")
    key = sort[1:] if descending else sort
    if key not in sorts:
        return None
    spec = sorts[key]
    fields: list[str | OrderBy] = [spec] if isinstance(spec, (str, OrderBy)) else list(spec)
    return [_reverse(f) if descending else f for f in fields]


def table_page(
    request,
    queryset: QuerySet,
    *,
    sorts: Mapping[str, Sortable],
    default: str,
    per_page: int = 25,
    tiebreak: str = "pk",
    page_param: str = PAGE_PARAM,
) -> TablePage:
    """Sort ``queryset`` by the ``sort`` parameter (only keys of ``sorts``; else ``default``) and page it.

    Unknown sort keys and bad page numbers never error: they fall back to the default order and the
    nearest valid page. A ``tiebreak`` column keeps pages stable when sort values repeat. A second
    table on a page takes its own ``page_param`` and sort keys of its own (``"rules.kind"``): the one
    ``sort`` parameter sorts one table, the other keeps its default order.
    """
    sort = request.GET.get(SORT_PARAM, "") or default
    ordering = _ordering(sort, sorts)
    if ordering is None:
        sort = default
        ordering = _ordering(default, sorts) or []
    if tiebreak and tiebreak not in ordering:
        ordering.append(tiebreak)
    try:
        size = int(request.GET.get(PER_PAGE_PARAM, per_page))
    except ValueError:
        size = per_page
    if size not in PER_PAGE_CHOICES:
        size = per_page
    paginator = Paginator(queryset.order_by(*ordering), size)
    number = request.GET.get(page_param, 1)
    try:
        page = paginator.page(number)
    except PageNotAnInteger:
        page = paginator.page(1)
    except EmptyPage:
        page = paginator.page(paginator.num_pages)
    return TablePage(page=page, sort=sort, per_page=size)


# --- column choice -----------------------------------------------------------------------------------

COLUMNS_PARAM = "columns"


@dataclass(frozen=True)
class Column:
    """A column a person may show or hide. ``sort`` is its key in the view's ``sorts`` (None: not sortable)."""

    key: str
    label: str
    sort: str | None = None
    numeric: bool = False


def columns_from_input(values: Sequence[str], available: Sequence[Column]) -> list[str]:
    """The known keys among ``values``, in the table's own order (unknown keys are dropped)."""
    wanted = set(values)
    return [c.key for c in available if c.key in wanted]


def columns_chosen(saved: Sequence[str] | None, available: Sequence[Column], default: Sequence[str]) -> list[Column]:
    """The columns to show: the person's saved choice (keys still known), else ``default``."""
    keys = columns_from_input(saved or (), available) if saved else []
    keys = keys or list(default)
    return [c for c in available if c.key in keys]


# --- filters -----------------------------------------------------------------------------------------


class TableFilterForm(forms.Form):
    """A list page's filters, read from its query string (shareable URLs): every field optional.

    ``lookups`` maps a field to the ORM lookup it narrows by (``{"kind": "kind", "since":
    "created_at__date__gte"}``) or to a function ``(queryset, value) -> queryset``. ``filter(qs)``
    applies the fields whose values are valid; a bad value is not applied and its error is shown next
    to the field (the form keeps what was typed). Ids are prefixed ``filter_`` so that a page's own
    forms never clash with them.
    """

    lookups: ClassVar[Mapping[str, str | Callable[[QuerySet, Any], QuerySet]]] = {}

    def __init__(self, data=None, **kwargs):
        kwargs.setdefault("auto_id", "filter_%s")
        bound = data is not None and any(data.get(name) not in (None, "") for name in self.base_fields)
        super().__init__(data if bound else None, **kwargs)

    def filter(self, queryset: QuerySet) -> QuerySet:
        if not self.is_bound:
            return queryset
        self.is_valid()
        for name, value in self.cleaned_data.items():
            if value in (None, "", [], ()) or name not in self.lookups:
                continue
            lookup = self.lookups[name]
            queryset = lookup(queryset, value) if callable(lookup) else queryset.filter(**{lookup: value})
        return queryset

    @property
    def active(self) -> bool:
        """Whether any filter narrows the list (the page then offers to clear them)."""
        return self.is_bound and any(v not in (None, "", [], ()) for v in self.cleaned_data.values())
