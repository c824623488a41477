"""Paging and record look-up shared by the CRM pages."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.paginator import Paginator

from codex.tables import table_page

PAGE_SIZE = 50


def _page(request, qs, *, sorts=None, default: str = ""):
    """A page of ``qs``; with ``sorts``, sorted by the ``sort`` parameter (``codex.tables``)."""
    if sorts:
        return table_page(request, qs, sorts=sorts, default=default, per_page=PAGE_SIZE).page
    return Paginator(qs, PAGE_SIZE).get_page(request.GET.get("page"))


def _querystring(request, **drop) -> str:
    params = request.GET.copy()
    params.pop("page", None)
    return params.urlencode()


def _find_other(request, value: str, *, finder, by_email=None):
    value = value.strip()
    if value.isdigit():
        return finder(request.user, int(value), write=True)
    if by_email is not None and "@" in value:
        other = by_email.filter(email__iexact=value).first()
        if other is not None:
            return other
    raise ValidationError({"other": "No such record in your book."})
