"""Who may see what in the client portal. One helper per resource (STYLE.md, Access).

A client user sees the portfolios of their scope (not archived): their own contact's, or, bound to
a household (``fees.BillingGroup``, docs/decisions/1020), every portfolio of that household; the
documents shared with the scope's contacts and the firm-wide ones; the issued fee statements of
their contact or household; and the posts for their audience. Anything else, including another
client's or household's objects by id, is ``Http404``: the answer does not say whether the id exists.
Staff see the vault of the clients in their book (``crm.access.contacts_for``).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet
from django.http import Http404

from crm.access import contacts_for
from crm.models import Contact, Lifecycle
from fees.models import BillingGroup, FeeStatement, InvoiceStatus
from portfolios.models import Portfolio
from tenants.accounts.models import Role

from .models import ClientAccess, Document, Post, PostAudience, Visibility


@dataclass(frozen=True)
class ClientScope:
    """What a client user may see: ``contact`` is who they are (advisor card, posts, former client);
    ``household``, when set, is the household whose every portfolio they see instead of the
    contact's own."""

    contact: Contact
    household: BillingGroup | None = None


class PortalAccessEnded(PermissionDenied):
    """The client user's contact is a former client: the portal is closed to them."""


def is_client(user) -> bool:
    return bool(getattr(user, "is_authenticated", False)) and getattr(user, "role", None) == Role.CLIENT


def client_scope(user) -> ClientScope:
    """The contact (and household, if bound to one) of a signed-in client user. One query.

    ``Http404`` for anyone who is not a client user (staff and API keys have their own API);
    ``PortalAccessEnded`` when the contact is a former client (the binding stays, the access ends)."""
    if not is_client(user) or not user.is_active:
        raise Http404("Not found.")
    access = (
        ClientAccess.objects.select_related("contact", "contact__owner", "household").filter(user_id=user.pk).first()
    )
    if access is None:
        raise Http404("Not found.")
    if access.contact.lifecycle == Lifecycle.FORMER:
        raise PortalAccessEnded("Your access to the client portal has ended. Please contact your advisor.")
    return ClientScope(access.contact, access.household)


def client_contact(user) -> Contact:
    """The contact a signed-in client user is (``client_scope`` without the household)."""
    return client_scope(user).contact


def _pk(pk) -> int:
    try:
        return int(pk)
    except (TypeError, ValueError) as exc:
        raise Http404("Not found.") from exc


def contact_portfolios(contact: Contact) -> QuerySet[Portfolio]:
    """A contact's own portfolios (not archived), by name."""
    return Portfolio.objects.filter(client=contact, archived=False).select_related("benchmark").order_by("name", "id")


def client_portfolios(scope: ClientScope) -> QuerySet[Portfolio]:
    """The scope's portfolios: the household's accounts, or the contact's own; not archived."""
    if scope.household is None:
        return contact_portfolios(scope.contact)
    return (
        Portfolio.objects.filter(billing_account__group=scope.household, archived=False)
        .select_related("benchmark")
        .order_by("name", "id")
    )


def client_portfolio(scope: ClientScope, pk) -> Portfolio:
    portfolio = client_portfolios(scope).filter(pk=_pk(pk)).first()
    if portfolio is None:
        raise Http404("Not found.")
    return portfolio


def scope_contact_ids(scope: ClientScope) -> QuerySet | list[int]:
    """Whose documents the scope sees: the contact's; for a household, also the household's client's
    and those of the clients of its accounts (a subquery, no query of its own)."""
    if scope.household is None:
        return [scope.contact.pk]
    return Contact.objects.filter(
        Q(pk=scope.contact.pk) | Q(pk=scope.household.client_id) | Q(portfolios__billing_account__group=scope.household)
    ).values("pk")


def client_documents(scope: ClientScope) -> QuerySet[Document]:
    """Shared documents: the scope's contacts' and the firm-wide ones."""
    return Document.objects.filter(
        Q(contact__in=scope_contact_ids(scope)) | Q(contact__isnull=True), visibility=Visibility.SHARED
    )


def client_document(scope: ClientScope, pk) -> Document:
    document = client_documents(scope).filter(pk=_pk(pk)).first()
    if document is None:
        raise Http404("Not found.")
    return document


def client_fee_statements(scope: ClientScope) -> QuerySet[FeeStatement]:
    """Issued fee statements (fees app, stored PDFs) of the household's invoices, or of the
    contact's; a voided invoice's statement is withdrawn, a credit note's is shown."""
    mine = Q(invoice__group=scope.household) if scope.household is not None else Q(client=scope.contact)
    return FeeStatement.objects.filter(mine).exclude(invoice__status=InvoiceStatus.VOID)


def client_fee_statement(scope: ClientScope, pk) -> FeeStatement:
    statement = client_fee_statements(scope).select_related("invoice").filter(pk=_pk(pk)).first()
    if statement is None:
        raise Http404("Not found.")
    return statement


def client_posts(contact: Contact) -> QuerySet[Post]:
    audience = Q(audience=PostAudience.ALL)
    if contact.tags:
        audience |= Q(audience=PostAudience.TAG, audience_tag__in=contact.tags)
    return Post.objects.filter(audience, published_at__isnull=False)


def staff_contact(user, pk, *, write: bool = False) -> Contact:
    """A contact in a staff member's book (writers only with ``write``); ``Http404`` otherwise."""
    if not getattr(user, "is_authenticated", False) or is_client(user):
        raise Http404("Not found.")
    contact = contacts_for(user).filter(pk=pk).first()
    if contact is None:
        raise Http404("Not found.")
    if write and not getattr(user, "can_write", False):
        raise PermissionDenied("Your role may read this client but not change it.")
    return contact


def staff_document(user, pk, *, write: bool = False) -> Document:
    """A document of a client in the staff member's book, or a firm-wide one (managers write those)."""
    if not getattr(user, "is_authenticated", False) or is_client(user):
        raise Http404("Not found.")
    document = (
        Document.objects.filter(pk=pk)
        .filter(Q(contact__in=contacts_for(user).values("pk")) | Q(contact__isnull=True))
        .first()
    )
    if document is None:
        raise Http404("Not found.")
    if write and not (
        getattr(user, "is_manager", False) or (document.contact_id and getattr(user, "can_write", False))
    ):
        raise PermissionDenied("Your role may read this document but not change it.")
    return document
