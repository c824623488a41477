"""The advisor's book, in one place, for pages and API alike (docs/decisions/0001-access-model.md).

- owners, admins, viewers and API keys see the whole firm; viewers and read keys change nothing;
- advisors see the contacts, companies and deals they own or that are shared with them, the deals
  and activities of contacts in their book, and the activities they own;
- something outside the caller's book is a 404 (its existence does not leak); something inside it
  that the caller may not change is a 403.

Every list is ``<entity>s_for(user)`` and every single object ``<entity>_for_user(user, pk, write=)``.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.http import Http404

from tenants.accounts.models import FIRM_WIDE_ROLES

from .models import Activity, Campaign, Company, Contact, Deal, ImportJob, Subscriber


def sees_whole_firm(user) -> bool:
    """Owners, admins, viewers and API keys (firm-wide by design) see everything in the firm."""
    return getattr(user, "role", None) in FIRM_WIDE_ROLES


def can_write(user) -> bool:
    return bool(getattr(user, "can_write", False))


def can_assign_owner(user) -> bool:
    """Only managers and write keys give a record to someone else; advisors own what they create."""
    return sees_whole_firm(user) and can_write(user)


def require_write(user) -> None:
    if not can_write(user):
        raise PermissionDenied("Your role may read but not change this.")


def require_manager_or_key(user) -> None:
    """Firm-wide operations (newsletter, pipeline settings, imports of the whole book) need this."""
    if not can_assign_owner(user):
        raise PermissionDenied("Only the firm's owners and admins (or a write API key) may do this.")


def _user_pk(user):
    return getattr(user, "pk", None)


def _shared_ids(model, user):
    through = model.shared_with.through
    column = f"{model._meta.model_name}_id"
    return through.objects.filter(user_id=user.pk).values(column)


def contact_book_q(user) -> Q:
    """The advisor's contacts as a filter on Contact: owned, or shared with them (a small hashed
    set). Written without a self-join so PostgreSQL can combine it with other indexes."""
    return Q(owner_id=user.pk) | Q(pk__in=_shared_ids(Contact, user))


def _contact_in_book(user, contact_ref: str) -> Exists:
    """EXISTS: the contact ``contact_ref`` (an outer column) is in the book. Checked per candidate
    row with an index lookup, so a search or a page never builds the whole book first."""
    return Exists(Contact.objects.filter(contact_book_q(user), pk=OuterRef(contact_ref)))


def _deal_book_q(user) -> Q:
    return Q(owner_id=user.pk) | Q(pk__in=_shared_ids(Deal, user)) | Q(_contact_in_book(user, "contact_id"))


def contacts_for(user) -> QuerySet[Contact]:
    qs = Contact.objects.all()
    if sees_whole_firm(user):
        return qs
    if _user_pk(user) is None:
        return qs.none()
    return qs.filter(contact_book_q(user))


def companies_for(user) -> QuerySet[Company]:
    qs = Company.objects.all()
    if sees_whole_firm(user):
        return qs
    if _user_pk(user) is None:
        return qs.none()
    # "a contact of mine works there", as two EXISTS: one probe of the (company, owner) index, and
    # the few contacts shared with me. One EXISTS with the OR read every contact of each candidate
    # company (56 µs a company; the advisor's typo search checked 1,400 of them).
    owns_contact_there = Exists(Contact.objects.filter(owner_id=user.pk, company_id=OuterRef("pk")))
    shared_contact_there = Exists(
        Contact.shared_with.through.objects.filter(user_id=user.pk, contact__company_id=OuterRef("pk"))
    )
    return qs.filter(
        Q(owner_id=user.pk) | Q(pk__in=_shared_ids(Company, user)) | owns_contact_there | shared_contact_there
    )


def deals_for(user) -> QuerySet[Deal]:
    qs = Deal.objects.all()
    if sees_whole_firm(user):
        return qs
    if _user_pk(user) is None:
        return qs.none()
    return qs.filter(_deal_book_q(user))


def activities_for(user) -> QuerySet[Activity]:
    qs = Activity.objects.all()
    if sees_whole_firm(user):
        return qs
    if _user_pk(user) is None:
        return qs.none()
    deal_in_book = Exists(Deal.objects.filter(_deal_book_q(user), pk=OuterRef("deal_id")))
    return qs.filter(Q(owner_id=user.pk) | _contact_in_book(user, "contact_id") | deal_in_book)


def activity_book_parts(user) -> list[QuerySet[Activity]]:
    """``activities_for(user)`` as querysets whose union is the same set, each one plain filter
    that PostgreSQL reads in recency order along an index. What "the latest N" of the book asks:
    the single filter's OR of EXISTS is planned as hashes of the whole book (every contact and
    deal of it) before the first row comes out (docs/decisions/1000)."""
    qs = Activity.objects.all()
    if sees_whole_firm(user):
        return [qs]
    if _user_pk(user) is None:
        return []
    return [
        qs.filter(owner_id=user.pk),
        qs.filter(contact__owner_id=user.pk),
        qs.filter(contact_id__in=_shared_ids(Contact, user)),
        # ``deal_id IS NOT NULL`` says nothing new to the IN, but tells the planner how rare
        # activities with a deal are: without it, it read every activity of the firm in recency
        # order looking for six with a deal in the book (77 ms at the big firm, where none has
        # one); with it, the few rows with a deal come from the deal index (decision 1300).
        qs.filter(deal_id__isnull=False, deal_id__in=Deal.objects.filter(_deal_book_q(user)).values("pk")),
    ]


def subscribers_for(user) -> QuerySet[Subscriber]:
    """The mailing list is the firm's: managers, viewers and keys see it, advisors do not."""
    return Subscriber.objects.all() if sees_whole_firm(user) else Subscriber.objects.none()


def campaigns_for(user) -> QuerySet[Campaign]:
    return Campaign.objects.all() if sees_whole_firm(user) else Campaign.objects.none()


def imports_for(user) -> QuerySet[ImportJob]:
    qs = ImportJob.objects.all()
    if sees_whole_firm(user):
        return qs
    if _user_pk(user) is None:
        return qs.none()
    return qs.filter(created_by_id=user.pk)


def _get(qs: QuerySet, pk, user, *, write: bool):
    try:
        obj = qs.get(pk=pk)
    except (qs.model.DoesNotExist, ValueError, TypeError):
        raise Http404(f"No such {qs.model._meta.verbose_name}.") from None
    if write:
        require_write(user)
    return obj


def contact_for_user(user, pk, *, write: bool = False, queryset: QuerySet | None = None) -> Contact:
    return _get(queryset if queryset is not None else contacts_for(user), pk, user, write=write)


def company_for_user(user, pk, *, write: bool = False, queryset: QuerySet | None = None) -> Company:
    return _get(queryset if queryset is not None else companies_for(user), pk, user, write=write)


def deal_for_user(user, pk, *, write: bool = False, queryset: QuerySet | None = None) -> Deal:
    return _get(queryset if queryset is not None else deals_for(user), pk, user, write=write)


def activity_for_user(user, pk, *, write: bool = False, queryset: QuerySet | None = None) -> Activity:
    return _get(queryset if queryset is not None else activities_for(user), pk, user, write=write)


def subscriber_for_user(user, pk, *, write: bool = False) -> Subscriber:
    obj = _get(subscribers_for(user), pk, user, write=write)
    if write:
        require_manager_or_key(user)
    return obj


def campaign_for_user(user, pk, *, write: bool = False) -> Campaign:
    obj = _get(campaigns_for(user), pk, user, write=write)
    if write:
        require_manager_or_key(user)
    return obj


def import_for_user(user, pk, *, write: bool = False) -> ImportJob:
    return _get(imports_for(user), pk, user, write=write)
