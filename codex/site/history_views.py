"""History pages: the "History" tab of a contact, a portfolio and a transaction, and the owner's
CSV export of the firm's whole trail for a date range."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import ClassVar

from django import forms
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import StreamingHttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET

from codex.history import firm_trail_csv, history_entries, object_history_events
from codex.tables import TableFilterForm, table_page
from crm import access as crm_access
from portfolios.access import portfolio_for_user
from portfolios.models import Transaction
from tenants.accounts.models import Role
from tenants.services import audit_record


class HistoryFilterForm(TableFilterForm):
    action = forms.ChoiceField(
        label="Change",
        choices=[("", "Every change"), ("insert", "Created"), ("update", "Updated"), ("delete", "Deleted")],
        required=False,
    )
    date_from = forms.DateField(label="From", required=False, widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(label="To", required=False, widget=forms.DateInput(attrs={"type": "date"}))

    lookups: ClassVar = {
        "action": "pgh_label",
        "date_from": "pgh_created_at__date__gte",
        "date_to": "pgh_created_at__date__lte",
    }


HISTORY_SORTS = {"when": "pgh_id", "action": ("pgh_label", "pgh_id")}


def _page(request, *, record, title: str, back: str):
    filters = HistoryFilterForm(request.GET)
    table = table_page(
        request, filters.filter(object_history_events(obj=record)), sorts=HISTORY_SORTS, default="when", tiebreak=""
    )
    return render(
        request,
        "history/object.html",
        {
            "record": record,
            "title": title,
            "back": back,
            "entries": history_entries(table.page.object_list, obj=record),
            "page": table.page,
            "filters": filters,
            "table_sort": table.sort,
        },
    )


@require_GET
@login_required
def contact_history(request, pk: int):
    contact = crm_access.contact_for_user(request.user, pk)
    return _page(request, record=contact, title=f"History of {contact}", back=reverse("crm:contact-detail", args=[pk]))


@require_GET
@login_required
def portfolio_history(request, pk: int):
    portfolio = portfolio_for_user(request.user, pk)
    return _page(
        request, record=portfolio, title=f"History of {portfolio.name}", back=reverse("portfolios:detail", args=[pk])
    )


@require_GET
@login_required
def transaction_history(request, pk: int, txn_pk: int):
    portfolio = portfolio_for_user(request.user, pk)
    txn = get_object_or_404(Transaction, pk=txn_pk, portfolio=portfolio)
    title = f"History of transaction {txn.pk} ({txn.get_kind_display()} on {txn.trade_date})"
    return _page(request, record=txn, title=title, back=reverse("portfolios:detail", args=[pk]))


class TrailExportForm(forms.Form):
    start = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}), help_text="Inclusive.")

    def clean(self):
        data = super().clean()
        if data.get("start") and data.get("end") and data["start"] > data["end"]:
            raise forms.ValidationError({"end": "The end is before the start."})
        return data


@require_GET
@login_required
def trail_export(request):
    """Owners download the firm's change trail as CSV (one row per changed field)."""
    if getattr(request.user, "role", None) != Role.OWNER:
        raise PermissionDenied("Only the firm's owners export its change history.")
    form = TrailExportForm(request.GET or None)
    if not form.is_valid():
        return render(request, "history/export.html", {"form": form, "title": "Export the change history"})
    zone = timezone.get_current_timezone()
    start = datetime.combine(form.cleaned_data["start"], time.min, tzinfo=zone)
    end = datetime.combine(form.cleaned_data["end"] + timedelta(days=1), time.min, tzinfo=zone)
    audit_record(
        action="history.exported",
        actor=request.user.email,
        tenant=request.tenant,
        details={"start": str(form.cleaned_data["start"]), "end": str(form.cleaned_data["end"])},
    )
    response = StreamingHttpResponse(firm_trail_csv(start=start, end=end), content_type="text/csv; charset=utf-8")
    name = f"history-{form.cleaned_data['start']}-{form.cleaned_data['end']}.csv"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response
