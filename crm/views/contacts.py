"""Contact pages: list, create, detail, edit, log an activity, merge."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import F
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from billing.entitlements import PlanLimitExceeded
from codex import charts
from codex.idempotent_forms import idempotent_form
from codex.tables import Column, columns_chosen, columns_from_input, table_page
from tenants.accounts.services import user_table_columns_set

from .. import access, forms, selectors, services
from ..models import ActivityKind, Contact, Lifecycle
from ..record_sources import TIMELINE_CATEGORIES, client_list_figures_for
from .common import PAGE_SIZE, _find_other, _querystring

# --- contacts ---------------------------------------------------------------------------------------


CLIENT_COLUMNS = (
    Column("email", "E-mail", "email"),
    Column("company", "Company", "company"),
    Column("lifecycle", "Lifecycle", "lifecycle"),
    Column("advisor", "Advisor", "advisor"),
    Column("aum", "AUM", None, numeric=True),
    Column("ytd", "YTD return", None, numeric=True),
    Column("last_review", "Last review", "last_review"),
    Column("next_task", "Next task", "next_task"),
    Column("last_activity", "Last activity", "last_activity"),
    Column("tags", "Tags", None),
)
CLIENT_DEFAULT_COLUMNS = ("company", "lifecycle", "advisor", "aum", "ytd", "last_review", "next_task")
CLIENT_SORTS = {
    "name": ("last_name", "first_name"),
    "email": "email",
    "company": "company__name",
    "lifecycle": "lifecycle",
    "advisor": ("owner__last_name", "owner__first_name", "owner__email"),
    "last_review": F("last_review_at").desc(nulls_last=True),
    "next_task": F("next_task_due").asc(nulls_last=True),
    "last_activity": F("last_activity_at").desc(nulls_last=True),
}


@login_required
def contact_list(request):
    """The clients list: sortable, filtered and paged by query parameters (shareable URLs), with the
    columns each person chose; AUM and YTD read the stored valuations for the page's contacts."""
    f = {k: request.GET.get(k, "").strip() for k in ("q", "lifecycle", "owner", "tag")}
    qs = selectors.contact_list(user=request.user, **f)
    table = table_page(request, qs, sorts=CLIENT_SORTS, default="name", per_page=PAGE_SIZE)
    columns = columns_chosen((request.user.table_columns or {}).get("clients"), CLIENT_COLUMNS, CLIENT_DEFAULT_COLUMNS)
    keys = {c.key for c in columns}
    contacts = list(table.rows)
    money = (
        client_list_figures_for(user=request.user, contacts=contacts, today=timezone.localdate())
        if keys & {"aum", "ytd"}
        else {}
    )
    rows = [(c, money.get(c.pk)) for c in contacts]
    return render(
        request,
        "crm/contact_list.html",
        {
            "page": table.page,
            "table": table,
            "table_sort": table.sort,
            "rows": rows,
            "columns": columns,
            "column_keys": keys,
            "all_columns": CLIENT_COLUMNS,
            "filters": f,
            "lifecycles": Lifecycle.choices,
            "qs": _querystring(request),
            "can_write": access.can_write(request.user),
        },
    )


@login_required
@require_POST
def contact_list_columns(request):
    """Remember the columns this person wants on the clients list, then show it again."""
    chosen = columns_from_input(request.POST.getlist("columns"), CLIENT_COLUMNS)
    if not chosen:
        messages.error(request, "Choose at least one column.")
    else:
        user_table_columns_set(user=request.user, table="clients", columns=chosen)
        messages.success(request, "Columns saved.")
    back = request.POST.get("next", "")
    return redirect(reverse("crm:contact-list") + (f"?{back}" if back and "//" not in back else ""))


@login_required
@idempotent_form
def contact_create(request):
    access.require_write(request.user)
    form = forms.ContactForm(request.POST or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        data = dict(form.cleaned_data)
        shared = data.pop("shared_with", None) or ()
        try:
            contact = services.contact_create(actor=request.user, tenant=request.tenant, shared_with=shared, **data)
        except ValidationError as exc:
            forms.apply_errors(form, exc)
        except PlanLimitExceeded as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"{contact} was added.")
            return redirect("crm:contact-detail", contact.pk)
    return render(
        request, "crm/form.html", {"form": form, "title": "New contact", "cancel": reverse("crm:contact-list")}
    )


def _sparkline(record) -> str:
    return charts.sparkline(record.history, label=f"Value over the last 12 months, in {record.currency}")


def _timeline_params(request) -> dict:
    """The timeline's chip (``?timeline=transactions``) and page (``?tpage=2``) from the query."""
    try:
        page = int(request.GET.get("tpage", "1"))
    except ValueError:
        page = 1
    return {"timeline_page": page, "timeline_category": request.GET.get("timeline", "")}


@login_required
def contact_detail(request, pk: int):
    contact = access.contact_for_user(
        request.user, pk, queryset=access.contacts_for(request.user).select_related("owner", "company")
    )
    record = selectors.client_record(user=request.user, contact=contact, **_timeline_params(request))
    return render(
        request,
        "crm/contact_detail.html",
        {
            "contact": contact,
            "record": record,
            "activity_form": forms.ActivityForm(initial={"kind": ActivityKind.NOTE}),
            "merge_form": forms.MergeForm(),
            "can_write": access.can_write(request.user),
            "timeline_categories": TIMELINE_CATEGORIES,
            "sparkline": _sparkline(record),
        },
    )


@login_required
def contact_edit(request, pk: int):
    contact = access.contact_for_user(request.user, pk, write=True)
    form = forms.ContactForm(request.POST or None, instance=contact, user=request.user)
    if request.method == "POST" and form.is_valid():
        data = dict(form.cleaned_data)
        shared = data.pop("shared_with", None)
        try:
            services.contact_update(actor=request.user, contact=contact, shared_with=shared, **data)
        except (ValidationError, PermissionDenied) as exc:
            forms.apply_errors(form, exc if isinstance(exc, ValidationError) else ValidationError(str(exc)))
        else:
            messages.success(request, "Saved.")
            return redirect("crm:contact-detail", contact.pk)
    return render(
        request,
        "crm/form.html",
        {"form": form, "title": f"Edit {contact}", "cancel": reverse("crm:contact-detail", args=[contact.pk])},
    )


@login_required
@require_POST
@idempotent_form
def contact_log_activity(request, pk: int):
    contact = access.contact_for_user(request.user, pk, write=True)
    form = forms.ActivityForm(request.POST)
    if form.is_valid():
        try:
            services.activity_create(
                actor=request.user,
                contact=contact,
                company=contact.company,
                kind=form.cleaned_data["kind"],
                subject=form.cleaned_data["subject"],
                body=form.cleaned_data["body"],
                occurred_at=form.cleaned_data.get("occurred_at"),
                due_date=form.cleaned_data.get("due_date"),
            )
        except ValidationError as exc:
            forms.apply_errors(form, exc)
        else:
            messages.success(request, "Logged.")
            return redirect("crm:contact-detail", contact.pk)
    record = selectors.client_record(user=request.user, contact=contact)
    return render(
        request,
        "crm/contact_detail.html",
        {
            "contact": contact,
            "record": record,
            "activity_form": form,
            "merge_form": forms.MergeForm(),
            "can_write": True,
            "timeline_categories": TIMELINE_CATEGORIES,
            "sparkline": _sparkline(record),
        },
        status=400,
    )


@login_required
def contact_merge(request, pk: int):
    survivor = access.contact_for_user(request.user, pk, write=True)
    form = forms.MergeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            loser = _find_other(
                request,
                form.cleaned_data["other"],
                finder=access.contact_for_user,
                by_email=access.contacts_for(request.user),
            )
            services.contact_merge(actor=request.user, survivor=survivor, loser=loser)
        except ValidationError as exc:
            forms.apply_errors(form, exc)
        except Contact.DoesNotExist:
            form.add_error("other", "No such record in your book.")
        else:
            messages.success(request, f"Merged into {survivor}.")
            return redirect("crm:contact-detail", survivor.pk)
    duplicates = (
        access.contacts_for(request.user)
        .filter(last_name__iexact=survivor.last_name, first_name__iexact=survivor.first_name)
        .exclude(pk=survivor.pk)[:10]
    )
    return render(
        request,
        "crm/merge.html",
        {"form": form, "survivor": survivor, "duplicates": duplicates, "kind": "contact"},
        status=400 if form.errors else 200,
    )
