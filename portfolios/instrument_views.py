"""Instrument pages on a firm host: the market instruments and the firm's own, with "price stale
since", manual prices (one at a time or a CSV), and the feeds' health as the firm sees it.

Also the reconciliation breaks page. Thin: ``portfolios.market.services`` write (they refuse a
shared instrument), the market selectors read, scoped to this firm by the instrument manager
(decision 0970); ``portfolios.custodian`` resolves breaks."""

from __future__ import annotations

from typing import ClassVar

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.db.models import F, Q
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from codex.idempotent_forms import idempotent_form
from codex.tables import TableFilterForm, table_page
from codex.uploads import UploadValidator
from portfolios.market import services as market_services
from portfolios.market.models import AssetClass
from portfolios.market.selectors import feed_runs_for_firm, instrument_list, price_series

from . import custodian
from .access import can_write, portfolio_for_user, portfolios_visible_to
from .models import BreakStatus, ReconciliationBreak


class FirmInstrumentForm(forms.Form):
    symbol = forms.CharField(max_length=32)
    exchange = forms.CharField(max_length=16, required=False, help_text="Empty for an unlisted asset.")
    name = forms.CharField(max_length=200)
    asset_class = forms.ChoiceField(choices=AssetClass.choices)
    currency = forms.CharField(max_length=3, help_text="ISO code, e.g. CHF.")
    sector = forms.CharField(max_length=64, required=False)
    country = forms.CharField(max_length=2, required=False, help_text="ISO code, e.g. CH.")


class ManualPriceForm(forms.Form):
    date = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))
    close = forms.DecimalField(max_digits=20, decimal_places=6, label="Price")
    overwrite = forms.BooleanField(required=False, help_text="Replace a different price stored for that day.")


class ManualPriceImportForm(forms.Form):
    file = forms.FileField(
        help_text="CSV with symbol,exchange,date,close for your firm's instruments.",
        validators=[UploadValidator(kind="csv")],
    )
    overwrite = forms.BooleanField(required=False)


def _apply(form, exc: ValidationError) -> None:
    for field, errors in exc.message_dict.items():
        form.add_error(field if field in form.fields else None, errors)


def _refuse_readers(request) -> None:
    if not can_write(request.user):
        raise PermissionDenied("Your role may read but not change instruments.")


INSTRUMENT_SORTS = {
    "symbol": ("owner", "symbol", "exchange"),
    "name": "name",
    "class": "asset_class",
    "currency": "currency",
    "on": F("last_date").desc(nulls_last=True),
}


@login_required
def instrument_index(request):
    q = request.GET.get("q", "").strip()
    qs = instrument_list()
    if q:
        qs = qs.filter(Q(symbol__icontains=q) | Q(name__icontains=q))
    if request.GET.get("stale") == "1":
        qs = qs.filter(stale_since__isnull=False)
    table = table_page(request, qs, sorts=INSTRUMENT_SORTS, default="symbol", per_page=50)
    page = table.page
    latest_runs = list(feed_runs_for_firm()[:5])
    return render(
        request,
        "portfolios/instruments.html",
        {
            "page": page,
            "table_sort": table.sort,
            "q": q,
            "stale": request.GET.get("stale") == "1",
            "runs": latest_runs,
            "can_write": can_write(request.user),
            "import_form": ManualPriceImportForm(),
        },
    )


@login_required
@idempotent_form
def instrument_create(request):
    _refuse_readers(request)
    form = FirmInstrumentForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            instrument = market_services.firm_instrument_create(
                owner=connection.schema_name, data=form.cleaned_data, actor=request.user.email
            )
        except ValidationError as exc:
            _apply(form, exc)
        else:
            messages.success(request, f"{instrument} added: only your firm sees it.")
            return redirect("portfolios:instrument-detail", pk=instrument.pk)
    return render(request, "portfolios/instrument_form.html", {"form": form})


@login_required
def instrument_detail(request, pk):
    instrument = get_object_or_404(instrument_list(), pk=pk)
    form = ManualPriceForm(request.POST or None)
    if request.method == "POST":
        _refuse_readers(request)
        if not instrument.is_firm_instrument:
            raise market_services.SharedInstrumentReadOnly()
        if form.is_valid():
            try:
                market_services.manual_price_set(
                    instrument=instrument,
                    owner=connection.schema_name,
                    day=form.cleaned_data["date"],
                    close=form.cleaned_data["close"],
                    overwrite=form.cleaned_data["overwrite"],
                    actor=request.user.email,
                )
            except ValidationError as exc:
                _apply(form, exc)
            else:
                messages.success(request, f"Price of {instrument} on {form.cleaned_data['date']} saved.")
                return redirect("portfolios:instrument-detail", pk=instrument.pk)
    prices = list(price_series(instrument=instrument).order_by("-date")[:30])
    return render(
        request,
        "portfolios/instrument_detail.html",
        {"instrument": instrument, "prices": prices, "form": form, "can_write": can_write(request.user)},
    )


@login_required
@require_POST
def manual_prices_import(request):
    _refuse_readers(request)
    form = ManualPriceImportForm(request.POST, request.FILES)
    if not form.is_valid():
        messages.error(request, "; ".join(e for errors in form.errors.values() for e in errors))
        return redirect("portfolios:instruments")
    upload = form.cleaned_data["file"]
    try:
        result = market_services.manual_prices_import(
            file=upload,
            owner=connection.schema_name,
            overwrite=form.cleaned_data["overwrite"],
            actor=request.user.email,
            filename=upload.name,
        )
    except market_services.ImportRejected as exc:
        issues = (exc.result.errors + exc.result.conflicts)[:20]
        messages.error(request, f"{exc} " + "; ".join(str(issue) for issue in issues))
    else:
        messages.success(request, f"{upload.name}: {result.summary()}.")
    return redirect("portfolios:instruments")


# --- reconciliation breaks (portfolios.custodian) -------------------------------------------------------
class BreakResolveForm(forms.Form):
    action = forms.ChoiceField(choices=[("adjust", "Book the adjusting transaction"), ("explain", "Mark explained")])
    note = forms.CharField(max_length=500, required=False)


class ReconcileForm(forms.Form):
    as_of = forms.DateField(label="Day", widget=forms.DateInput(attrs={"type": "date"}))
    tolerance = forms.DecimalField(
        label="Tolerance", required=False, min_value=0, max_digits=28, decimal_places=10,
        help_text="Empty: the firm's setting.",
    )  # fmt: skip


class BreakFilterForm(TableFilterForm):
    line = forms.ChoiceField(
        label="Line", choices=[("", "Positions and cash"), ("position", "Positions"), ("cash", "Cash")], required=False
    )
    portfolio = forms.CharField(label="Portfolio", max_length=100, required=False)
    as_of = forms.DateField(label="Day", required=False, widget=forms.DateInput(attrs={"type": "date"}))

    lookups: ClassVar = {
        "line": lambda qs, value: qs.filter(instrument__isnull=value == "cash"),
        "portfolio": "portfolio__name__icontains",
        "as_of": "as_of",
    }


BREAK_SORTS = {
    "day": ("as_of", "portfolio__name"),
    "portfolio": ("portfolio__name", "-as_of"),
    "difference": "difference",
    "value": F("value").asc(nulls_last=True),
}


@login_required
def reconciliation(request):
    """Open breaks in the caller's book, each with its proposed adjusting transaction; resolving
    one books it or records the explanation (``custodian.break_resolve``). Owners and admins also
    reconcile a day from here (``custodian.reconcile``)."""
    visible = portfolios_visible_to(request.user)
    can_run = bool(getattr(request.user, "is_manager", False))
    run_form = ReconcileForm(request.POST if request.method == "POST" and "run" in request.POST else None)
    if request.method == "POST" and "run" in request.POST:
        if not can_run:
            raise PermissionDenied("Only the firm's owners and admins reconcile.")
        if run_form.is_valid():
            result = custodian.reconcile(
                as_of=run_form.cleaned_data["as_of"],
                tolerance=run_form.cleaned_data["tolerance"],
                actor=request.user.email,
            )
            messages.success(
                request,
                f"Reconciled {result.portfolios} portfolio(s) on {result.as_of:%Y-%m-%d}: "
                f"{result.breaks} open break(s), {result.closed} closed.",
            )
            return redirect("portfolios:reconciliation")
    elif request.method == "POST":
        _refuse_readers(request)
        brk = get_object_or_404(ReconciliationBreak.objects.filter(portfolio__in=visible), pk=request.POST.get("break"))
        portfolio_for_user(request.user, brk.portfolio_id, write=True)
        form = BreakResolveForm(request.POST)
        if form.is_valid():
            try:
                custodian.break_resolve(
                    brk=brk, action=form.cleaned_data["action"], note=form.cleaned_data["note"], user=request.user
                )
            except ValidationError as exc:
                messages.error(request, " ".join(exc.messages))
            else:
                messages.success(request, "Break resolved.")
        else:
            messages.error(request, "Choose how to resolve the break.")
        return redirect("portfolios:reconciliation")
    filters = BreakFilterForm(request.GET)
    breaks = ReconciliationBreak.objects.filter(portfolio__in=visible, status=BreakStatus.OPEN).select_related(
        "portfolio", "instrument"
    )
    table = table_page(request, filters.filter(breaks), sorts=BREAK_SORTS, default="-day")
    page = table.page
    rows = [(b, custodian.proposed_adjustment(b)) for b in page.object_list]
    return render(
        request,
        "portfolios/reconciliation.html",
        {
            "page": page,
            "rows": rows,
            "filters": filters,
            "table_sort": table.sort,
            "can_write": can_write(request.user),
            "can_run": can_run,
            "run_form": run_form,
        },
        status=400 if run_form.is_bound and run_form.errors else 200,
    )
