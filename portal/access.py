"""Who may see what in the client portal. One helper per resource (STYLE.md, Access).

A client user sees their own contact's portfolios (not archived), the documents shared with them
(their own or firm-wide) and the posts for their audience. Anything else, including another
client's objects by id, is ``Http404``: the answer does not say whether the id exists.
Staff see the vault of the clients in their book (``crm.access.contacts_for``).
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet
from django.http import Http404

from crm.access import contacts_for
from crm.models import Contact, Lifecycle
from portfolios.models import Portfolio
from tenants.accounts.models import Role

from .models import ClientAccess, Document, Post, PostAudience, Visibility


class PortalAccessEnded(PermissionDenied):
    """The client user's contact is a former client: the portal is closed to them."""


def is_client(user) -> bool:
    return bool(getattr(user, "is_authenticated", False)) and getattr(user, "role", None) == Role.CLIENT


def client_contact(user) -> Contact:
    """The contact a signed-in client user is bound to.

    ``Http404`` for anyone who is not a client user (staff and API keys have their own API);
    ``PortalAccessEnded`` when the contact is a former client (the binding stays, the access ends)."""
    if not is_client(user) or not user.is_active:
        raise Http404("Not found.")
    access = ClientAccess.objects.select_related("contact", "contact__owner").filter(user_id=user.pk).first()
    if access is None:
        raise Http404("Not found.")
    if access.contact.lifecycle == Lifecycle.FORMER:
        raise PortalAccessEnded("Your access to the client portal has ended. Please contact your advisor.")
    return access.contact


def client_portfolios(contact: Contact) -> QuerySet[Portfolio]:
    return Portfolio.objects.filter(client=contact, archived=False).select_related("benchmark").order_by("name", "id")


def client_portfolio(contact: Contact, pk) -> Portfolio:
    try:
        pk = int(pk)
    except (TypeError, ValueError) as exc:
        raise Http404("Not found.") from exc
    portfolio = client_portfolios(contact).filter(pk=pk).first()
    if portfolio is None:
        raise Http404("Not found.")
    return portfolio


def client_documents(contact: Contact) -> QuerySet[Document]:
    """Shared documents: the client's own and the firm-wide ones."""
    return Document.objects.filter(Q(contact=contact) | Q(contact__isnull=True), visibility=Visibility.SHARED)


def client_document(contact: Contact, pk) -> Document:
    try:
        pk = int(pk)
    except (TypeError, ValueError) as exc:
        raise Http404("Not found.") from exc
    document = client_documents(contact).filter(pk=pk).first()
    if document is None:
        raise Http404("Not found.")
    return document


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
