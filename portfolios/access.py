"""Who may see and change which portfolio (docs/decisions/0001-access-model.md, 0101).

One scoping function for lists and one helper for single objects, used by pages and API alike:

- owners, admins and viewers see every portfolio of the firm; API keys too (read key = viewer,
  write key = admin on data);
- advisors see the portfolios they advise, those whose client they own, and those shared with
  them (the portfolio's ``shared_with`` or its client's ``shared_with``);
- writes need ``user.can_write`` (owner, admin, advisor, write key) on a visible portfolio.

A portfolio outside the caller's book is a 404 (its existence does not leak); a visible one the
caller may not change is a 403.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.http import Http404

from crm.models import Contact
from tenants.accounts.models import Role

from .models import Portfolio

FIRM_WIDE_ROLES = frozenset({Role.OWNER, Role.ADMIN, Role.VIEWER})


def sees_whole_firm(user) -> bool:
    return bool(getattr(user, "is_authenticated", False)) and getattr(user, "role", None) in FIRM_WIDE_ROLES


def book_filter(user) -> Q:
    """The advisor's book as a filter on ``Portfolio``: those they advise, those whose client
    they own (``client_owner``, the client's owner kept on the portfolio by the database,
    decision 1300: an index lookup, where the probe of the client read the advisor's 50,000
    contacts at the big firm), and those shared with them directly or through their client."""
    shared = Portfolio.shared_with.through.objects.filter(portfolio_id=OuterRef("pk"), user_id=user.pk)
    client_shared = Contact.shared_with.through.objects.filter(contact_id=OuterRef("client_id"), user_id=user.pk)
    return Q(advisor_id=user.pk) | Q(client_owner_id=user.pk) | Q(Exists(shared)) | Q(Exists(client_shared))


def sees_every_portfolio(user) -> bool:
    """Whether ``portfolios_visible_to(user)`` is every portfolio of the firm."""
    return bool(getattr(user, "is_active", False)) and sees_whole_firm(user)


def portfolios_visible_to(user, *, include_archived: bool = True) -> QuerySet[Portfolio]:
    """Every portfolio ``user`` may read (a user, or an API key principal)."""
    qs = Portfolio.objects.all()
    if not include_archived:
        qs = qs.filter(archived=False)
    if not getattr(user, "is_authenticated", False) or not getattr(user, "is_active", False):
        return qs.none()
    if sees_every_portfolio(user):
        return qs
    if getattr(user, "role", None) == Role.ADVISOR and user.pk is not None:
        return qs.filter(book_filter(user))
    return qs.none()


def can_write(user) -> bool:
    return bool(getattr(user, "can_write", False))


def portfolio_for_user(user, pk, *, write: bool = False, queryset: QuerySet | None = None) -> Portfolio:
    """The portfolio ``pk`` if ``user`` may read it (and change it, with ``write``).

    Raises ``Http404`` outside the user's book and ``PermissionDenied`` when the user may read
    but not change it."""
    qs = queryset if queryset is not None else Portfolio.objects.all()
    try:
        pk = int(pk)
    except (TypeError, ValueError) as exc:
        raise Http404("No such portfolio.") from exc
    visible = portfolios_visible_to(user)
    portfolio = qs.filter(pk=pk, pk__in=visible.values("pk")).first()
    if portfolio is None:
        raise Http404("No such portfolio.")
    if write and not can_write(user):
        raise PermissionDenied("Your role may read this portfolio but not change it.")
    return portfolio
