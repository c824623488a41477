"""Portfolio pages: list, detail (holdings, charts, returns, ledger), forms, import, export, exposure.

Thin: forms parse, ``services`` write, ``selectors`` read, ``access`` scopes. Every page works
without JavaScript; charts are server-side SVG (``portfolios.charts``).
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import F, Q
from django.http import StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from billing.entitlements import PlanLimitExceeded, check_feature
from codex import charts
from codex import imports as engine
from codex.charts import Series
from codex.confirm import confirmation_required
from codex.idempotent_forms import idempotent_form
from codex.tables import Sortable, table_page

from . import analytics, selectors, services, valuations
from .access import can_write, portfolio_for_user, portfolios_visible_to
from .forms import ExposureForm, ImportForm, LedgerFilterForm, PortfolioForm, TransactionForm
from .imports import COLUMNS, TransactionImport, export_holdings, export_transactions, ledger_import_queue
from .market.models import AssetClass
from .models import TRANSACTION_FIELDS, LedgerImport, LedgerImportStatus, Lot, Transaction

#: Friendly names of the allocation by asset class (the chart never shows a raw code). Cash held
#: and cash-equivalent instruments share the bucket "cash" (``analytics.allocation``).
ASSET_CLASS_LABELS = {**dict(AssetClass.choices), "cash": "Cash"}

IMPORT_SESSION_KEY = "portfolios_import"
#: The import preview lists this many rows of the file and this many of its errors (the CRM's too).
PREVIEW_ROWS = 100
PREVIEW_ERRORS = 500


def _apply_errors(form, exc: ValidationError) -> None:
    if hasattr(exc, "error_dict"):
        for field, errs in exc.message_dict.items():
            form.add_error(field if field in form.fields else None, errs)
    else:
        form.add_error(None, exc.messages)


PORTFOLIO_SORTS = {
    "name": "name",
    "client": ("client__last_name", "client__first_name"),
    "advisor": ("advisor__last_name", "advisor__first_name", "advisor__email"),
    "currency": "base_currency",
    "created": "created_at",
}


@login_required
def portfolio_list(request):
    show_archived = request.GET.get("archived") == "1"
    qs = portfolios_visible_to(request.user, include_archived=show_archived).select_related("client", "advisor")
    q = request.GET.get("q", "").strip()
    if q:
        qs = qs.filter(Q(name__icontains=q) | Q(client__first_name__icontains=q) | Q(client__last_name__icontains=q))
    table = table_page(request, qs, sorts=PORTFOLIO_SORTS, default="name", per_page=25)
    page = table.page
    summaries = selectors.portfolio_summaries(page.object_list)
    rows = [(p, summaries.get(p.pk)) for p in page.object_list]
    return render(
        request,
        "portfolios/list.html",
        {
            "page": page,
            "table_sort": table.sort,
            "rows": rows,
            "q": q,
            "show_archived": show_archived,
            "can_write": can_write(request.user),
        },
    )


@login_required
@idempotent_form
def portfolio_create(request):
    if not can_write(request.user):
        raise PermissionDenied("Your role may read portfolios but not create them.")
    form = PortfolioForm(request.POST or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        try:
            portfolio = services.portfolio_create(tenant=request.tenant, actor=request.user, **form.cleaned_data)
        except ValidationError as exc:
            _apply_errors(form, exc)
        except PlanLimitExceeded as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"Portfolio “{portfolio.name}” created.")
            return redirect("portfolios:detail", pk=portfolio.pk)
    return render(request, "portfolios/form.html", {"form": form, "title": "New portfolio"})


@login_required
def portfolio_edit(request, pk: int):
    portfolio = portfolio_for_user(request.user, pk, write=True)
    initial = {
        "name": portfolio.name,
        "client": portfolio.client_id,
        "advisor": portfolio.advisor_id,
        "base_currency": portfolio.base_currency,
        "benchmark": portfolio.benchmark_id,
        "lot_method": portfolio.lot_method,
        "shared_with": list(portfolio.shared_with.values_list("pk", flat=True)),
    }
    form = PortfolioForm(request.POST or None, user=request.user, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            services.portfolio_update(portfolio=portfolio, actor=request.user, **form.cleaned_data)
        except ValidationError as exc:
            _apply_errors(form, exc)
        else:
            messages.success(request, "Portfolio saved.")
            return redirect("portfolios:detail", pk=portfolio.pk)
    return render(
        request, "portfolios/form.html", {"form": form, "title": f"Edit {portfolio.name}", "portfolio": portfolio}
    )


@login_required
@require_POST
def portfolio_archive(request, pk: int):
    portfolio = portfolio_for_user(request.user, pk, write=True)
    archived = request.POST.get("archived") == "1"
    services.portfolio_update(portfolio=portfolio, actor=request.user, archived=archived)
    messages.success(request, f"Portfolio {'archived' if archived else 'restored'}.")
    return redirect("portfolios:detail", pk=portfolio.pk)


#: While a portfolio's figures are being recomputed in the background, its page refreshes itself this often.
VALUATION_REFRESH_SECONDS = 3
_WATCHED = "valuations_watched"


def _watch_valuation(request, portfolio, info: valuations.ValuationInfo) -> int:
    """A background rebuild runs: the page shows a busy bar and refreshes itself (no script
    needed), and remembers in the session that this user waits for it; the first view after it
    ends says so (a notice), or says that it failed. Returns the refresh interval, 0 for none."""
    watched = set(request.session.get(_WATCHED, []))
    if info.updating and not info.failed:
        if portfolio.pk not in watched:
            request.session[_WATCHED] = sorted(watched | {portfolio.pk})
        return VALUATION_REFRESH_SECONDS
    if portfolio.pk in watched:
        request.session[_WATCHED] = sorted(watched - {portfolio.pk})
        if not info.failed:  # a failure is said by the page's own status line
            messages.success(request, "Figures updated: the page shows the recomputed figures.")
    return 0


#: Rows of the ledger on the portfolio page: 25 as every list (``?per_page=`` shows more). Each
#: row formats its money, price and date and links its edit and delete; 50 rows were a quarter
#: of the page's template time (docs/decisions/1311).
LEDGER_PAGE_SIZE = 25

#: The ledger's sortable columns (the portfolio page, newest first by default).
LEDGER_SORTS: dict[str, Sortable] = {
    "date": ("trade_date", "id"),
    "kind": "kind",
    "instrument": "instrument__symbol",
    "quantity": "quantity",
    "amount": F("amount").asc(nulls_last=True),
}


@login_required
def portfolio_detail(request, pk: int):
    portfolio = portfolio_for_user(
        request.user, pk, queryset=portfolios_visible_to(request.user).select_related("client", "advisor", "benchmark")
    )
    try:
        dash = selectors.portfolio_dashboard(portfolio=portfolio)
        analytics_error = ""
    except analytics.AnalyticsError as exc:  # e.g. no FX rate for a held currency: say so, keep the page
        dash = selectors.Dashboard(
            None,
            None,
            {},
            None,
            [],
            [],
            {},
            valuations.valuation_status(portfolio=portfolio),
        )
        analytics_error = str(exc)
    refresh_seconds = _watch_valuation(request, portfolio, dash.valuation)
    by = request.GET.get("by", "asset_class")
    if by not in dash.allocations:
        by = "asset_class"
    chart_range = request.GET.get("range", "ALL").upper()
    if chart_range not in charts.RANGES:
        chart_range = "ALL"
    value_chart = alloc_chart = ""
    if dash.performance is not None:
        index = dash.twr_index or analytics.twr_index(dash.performance.series)
        lines = [Series("Portfolio (time-weighted)", _growth_in_range(index, chart_range))]
        if dash.benchmark_index and portfolio.benchmark is not None:
            start = lines[0].points[0][0] if lines[0].points else None
            lines.append(
                Series(
                    f"Benchmark {portfolio.benchmark.symbol}",
                    _growth_in_range(dash.benchmark_index, chart_range, start),
                )
            )
        value_chart = charts.line_chart(
            lines,
            title=f"Cumulative return, {charts.RANGE_NAMES[chart_range]} (%)",
            description="; ".join(f"{s.label}: {s.points[-1][1]:.2f}% on {s.points[-1][0]}" for s in lines if s.points),
            percent=True,
            area=False,
        )
        weights = dash.allocations.get(by, {})
        names = ASSET_CLASS_LABELS if by == "asset_class" else None
        alloc_chart = charts.hbar_chart(
            [(charts.category_label(k, dimension=by, labels=names), w * 100) for k, w in weights.items()],
            title=f"Allocation by {charts.category_label(by).lower()} (%)",
            description="; ".join(
                f"{charts.category_label(k, dimension=by, labels=names)}: {w * 100:.1f}%" for k, w in weights.items()
            ),
            percent=True,
        )
    holdings = []
    if dash.snapshot is not None:
        infos = dash.instruments
        total = dash.snapshot.total_value
        for h in sorted(dash.snapshot.holdings, key=lambda h: -h.market_value_base):
            holdings.append(
                {"h": h, "info": infos.get(h.instrument_id), "weight": h.market_value_base / total if total else None}
            )
    ledger_filters = LedgerFilterForm(request.GET)
    ledger = table_page(
        request,
        ledger_filters.filter(Transaction.objects.filter(portfolio=portfolio).select_related("instrument")),
        sorts=LEDGER_SORTS,
        default="-date",
        per_page=LEDGER_PAGE_SIZE,
    )
    txns = ledger.page
    context = {
        "portfolio": portfolio,
        "dash": dash,
        "refresh_seconds": refresh_seconds,
        "analytics_error": analytics_error,
        "holdings": holdings,
        "value_chart": value_chart,
        "alloc_chart": alloc_chart,
        "by": by,
        "dimensions": [(d, charts.category_label(d)) for d in dash.allocations],
        "range_tabs": charts.range_tabs(
            chart_range, anchor="growth-h", query={"by": by} if by != "asset_class" else None
        ),
        "chart_range": chart_range,
        "txns": txns,
        "ledger_filters": ledger_filters,
        "table_sort": ledger.sort,
        "can_write": can_write(request.user) and not portfolio.archived,
        "can_edit": can_write(request.user),
        **_split_messages(request),
    }
    if context["can_write"]:
        # The page's quick form leaves the lot table to the full form (one link): a long-lived
        # portfolio has hundreds of open lots, and rendering them on every view of the page was
        # most of its time (docs/decisions/1210).
        context["form"] = TransactionForm(initial={"trade_date": timezone.localdate()})
        context["lots_url"] = reverse("portfolios:transaction-create", args=[portfolio.pk])
    return render(request, "portfolios/detail.html", context)


def _split_messages(request) -> dict:
    """The page's messages in two: those about the ledger (shown in its card, with Undo after a
    delete) and the rest (the layout's usual place). The view's ``messages`` shadows the context
    processor's for this render."""
    ledger: list = []
    others: list = []
    for m in messages.get_messages(request):
        (ledger if LEDGER_TAG in (m.extra_tags or "").split() else others).append(m)
    return {"messages": others, "ledger_messages": ledger}


def _growth_in_range(index, chart_range: str, start=None, max_points: int = 500) -> list:
    """A growth-of-1 index as cumulative percent from the start of ``chart_range`` (rebased to
    0 % there), thinned to at most ``max_points`` (keeps the last). ``start`` aligns a benchmark
    with the portfolio's first shown day."""
    if not index:
        return []
    if start is None:
        start = charts.range_start(chart_range, first=index[0][0], last=index[-1][0])
    before = [p for p in index if p[0] <= start]
    shown = ([before[-1]] if before else []) + [p for p in index if p[0] > start]
    base = shown[0][1] if shown and shown[0][1] else 1
    step = max(1, len(shown) // max_points)
    points = list(shown[::step])
    if points[-1] != shown[-1]:
        points.append(shown[-1])
    return [(d, (level / base - 1) * 100) for d, level in points]


def _open_lots(portfolio, *, also=()):
    """The lot table's rows: the portfolio's open lots (and the lots an edited sell names, even if
    it closed them), by instrument and age. One query."""
    ids = [int(item["lot"]) for item in also or [] if isinstance(item, dict) and str(item.get("lot", "")).isdigit()]
    return list(
        Lot.objects.filter(Q(quantity__gt=0) | Q(opened_by_id__in=ids), portfolio=portfolio)
        .select_related("instrument")
        .order_by("instrument__symbol", "acquired_on", "opened_by_id")
    )


def _describe(txn: Transaction) -> str:
    """One line naming a ledger row for messages: "buy of 5 AAPL on 2026-03-02"."""
    what = txn.get_kind_display().lower()
    if txn.instrument is not None and txn.kind not in services.CASH_KINDS_WITH_INSTRUMENT:
        what += f" of {txn.quantity.normalize():f} {txn.instrument.symbol}"
    elif txn.amount is not None:
        what += f" of {txn.amount.quantize(Decimal('0.01')):,} {txn.currency}"
    return f"{what} on {txn.trade_date.isoformat()}"


def _ledger_url(portfolio_pk: int) -> str:
    return reverse("portfolios:detail", args=[portfolio_pk]) + "#ledger"


#: Messages the portfolio page shows inside its ledger card, where the user's eyes are after
#: saving or deleting a transaction, instead of at the top of the page (out of view at #ledger).
LEDGER_TAG = "ledger"
UNDO_SESSION_KEY = "portfolios_undo_delete"


@login_required
@idempotent_form
def transaction_create(request, pk: int):
    portfolio = portfolio_for_user(request.user, pk, write=True)
    form = TransactionForm(
        request.POST or None,
        initial={"trade_date": timezone.localdate(), "kind": request.GET.get("kind", "")},
        open_lots=_open_lots(portfolio),
    )
    if request.method == "POST" and form.is_valid():
        try:
            txn = services.transaction_record(portfolio=portfolio, created_by=request.user, **form.to_service())
        except ValidationError as exc:
            _apply_errors(form, exc)
        else:
            messages.success(request, f"Recorded the {_describe(txn)}.", extra_tags=LEDGER_TAG)
            return redirect(_ledger_url(portfolio.pk))
    return render(
        request,
        "portfolios/transaction_form.html",
        {"form": form, "portfolio": portfolio, "title": "Add a transaction"},
    )


def _txn_for(request, pk: int, txn_pk: int, *, write: bool) -> Transaction:
    portfolio = portfolio_for_user(request.user, pk, write=write)
    return get_object_or_404(
        Transaction.objects.select_related("portfolio", "instrument"), pk=txn_pk, portfolio=portfolio
    )


def _same_lots(a, b) -> bool:
    def norm(lots):
        return sorted((int(x["lot"]), Decimal(str(x["quantity"]))) for x in lots or [])

    return norm(a) == norm(b)


@login_required
def transaction_edit(request, pk: int, txn_pk: int):
    txn = _txn_for(request, pk, txn_pk, write=True)
    initial = {
        "kind": txn.kind,
        "trade_date": txn.trade_date,
        "instrument": txn.instrument_id,
        "quantity": txn.quantity.normalize(),
        "price": txn.price.normalize(),
        "fees": txn.fees.normalize(),
        "amount": txn.amount.normalize() if txn.amount is not None else None,
        "currency": txn.currency,
        "fx_rate": txn.fx_rate.normalize(),
        "acquired_on": txn.acquired_on,
        "note": txn.note,
        "counter_currency": txn.counter_currency,
        "counter_amount": txn.counter_amount.normalize() if txn.counter_amount is not None else None,
    }
    form = TransactionForm(
        request.POST or None,
        initial=initial,
        open_lots=_open_lots(txn.portfolio, also=txn.lots),
        chosen_lots=txn.lots,
    )
    if request.method == "POST" and form.is_valid():
        changes = {f: v for f, v in form.to_service().items() if f in form.changed_data and f != "lots"}
        if not _same_lots(form.cleaned_data.get("lots"), txn.lots):
            changes["lots"] = form.cleaned_data.get("lots")
        try:
            txn = services.transaction_update(txn=txn, **changes)
        except ValidationError as exc:
            _apply_errors(form, exc)
        else:
            messages.success(
                request, f"Saved the {_describe(txn)}; holdings and lots were rebuilt.", extra_tags=LEDGER_TAG
            )
            return redirect(_ledger_url(pk))
    return render(
        request,
        "portfolios/transaction_form.html",
        {"form": form, "portfolio": txn.portfolio, "txn": txn, "title": f"Edit the {_describe(txn)}"},
    )


def _ledger_row(txn: Transaction) -> dict:
    """A ledger row as the session keeps it for undo (JSON: dates ISO, decimals as text)."""
    row = {}
    for f in TRANSACTION_FIELDS:
        value: object = txn.instrument_id if f == "instrument" else getattr(txn, f)
        if isinstance(value, date):
            value = value.isoformat()
        elif isinstance(value, Decimal):
            value = str(value)
        row[f] = value
    return row


@login_required
@require_POST
def transaction_delete(request, pk: int, txn_pk: int):
    """Delete after a confirmation (a page without JavaScript, a dialog with it); the message
    offers Undo, which records the same row again (``transaction_restore``)."""
    txn = _txn_for(request, pk, txn_pk, write=True)
    described = _describe(txn)
    if response := confirmation_required(
        request,
        title="Delete this transaction?",
        message=f"The {described} leaves the ledger; holdings and lots are rebuilt without it.",
        label="Delete",
        cancel_url=_ledger_url(pk),
    ):
        return response
    row = _ledger_row(txn)
    try:
        services.transaction_delete(txn=txn)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages), extra_tags=LEDGER_TAG)
    else:
        request.session[UNDO_SESSION_KEY] = {"portfolio": pk, "row": row, "described": described}
        messages.success(request, f"Deleted the {described}.", extra_tags=f"{LEDGER_TAG} undo")
    return redirect(_ledger_url(pk))


@login_required
@require_POST
def transaction_restore(request, pk: int):
    """Undo the last delete on this portfolio: record the deleted row again (a new row, its
    history says so). Refused with a message if nothing is to undo or the ledger no longer allows it."""
    portfolio = portfolio_for_user(request.user, pk, write=True)
    undo = request.session.get(UNDO_SESSION_KEY)
    if not undo or undo.get("portfolio") != portfolio.pk:
        messages.error(request, "There is no deletion to undo on this portfolio.", extra_tags=LEDGER_TAG)
        return redirect(_ledger_url(pk))
    try:
        services.transaction_record(portfolio=portfolio, created_by=request.user, **undo["row"])
    except ValidationError as exc:
        messages.error(request, "The deletion cannot be undone: " + " ".join(exc.messages), extra_tags=LEDGER_TAG)
    else:
        del request.session[UNDO_SESSION_KEY]
        messages.success(request, f"Restored the {undo['described']}.", extra_tags=LEDGER_TAG)
    return redirect(_ledger_url(pk))


@login_required
def transaction_import(request, pk: int):
    """Upload -> preview (per-row errors, duplicates) -> commit (all or nothing)."""
    portfolio = portfolio_for_user(request.user, pk, write=True)
    context = {"portfolio": portfolio, "columns": COLUMNS, "form": ImportForm()}
    try:
        check_feature(tenant=request.tenant, feature="imports")
    except PlanLimitExceeded as exc:
        context["plan_error"] = str(exc)
        return render(request, "portfolios/import.html", context, status=402)
    stash = request.session.get(IMPORT_SESSION_KEY)
    if request.method == "POST" and "commit" in request.POST:
        if not stash or stash.get("portfolio") != portfolio.pk:
            messages.error(request, "Upload the file again: the preview has expired.")
            return redirect("portfolios:import", pk=portfolio.pk)
        queued = ledger_import_queue(
            portfolio=portfolio, headers=stash["headers"], rows=stash["rows"], actor=request.user
        )
        del request.session[IMPORT_SESSION_KEY]
        request.session[_IMPORTS_WATCHED] = sorted(set(request.session.get(_IMPORTS_WATCHED, [])) | {queued.pk})
        return redirect("portfolios:import", pk=portfolio.pk)
    running, ended = _watched_imports(request, portfolio)
    if ended is not None and ended.status == LedgerImportStatus.DONE:
        return redirect(reverse("portfolios:detail", args=[portfolio.pk]) + "#ledger")
    context["running"] = running
    context["refresh_seconds"] = IMPORT_REFRESH_SECONDS if running else 0
    if request.method == "POST":
        form = ImportForm(request.POST, request.FILES)
        context["form"] = form
        if form.is_valid():
            try:
                job = TransactionImport.from_upload(
                    portfolio=portfolio, upload=form.cleaned_data["file"], created_by=request.user
                )
            except engine.ImportFileError as exc:
                form.add_error("file", str(exc))
            else:
                preview = job.preview()
                context["preview"] = preview
                context["mapping"] = job.mapping
                # Every row was checked; the page shows the first rows and the first errors, and
                # counts the rest by field (decision 1330): 5,000 table rows cost a second to render.
                context["preview_rows"] = preview.rows[:PREVIEW_ROWS]
                context["preview_errors"] = preview.errors[:PREVIEW_ERRORS]
                if len(preview.errors) > PREVIEW_ERRORS:
                    context["more_errors"] = len(preview.errors) - PREVIEW_ERRORS
                    context["errors_by_field"] = preview.errors_by_field()
                if preview.ok:
                    request.session[IMPORT_SESSION_KEY] = {
                        "portfolio": portfolio.pk,
                        "headers": job.parsed.headers,
                        "rows": job.parsed.rows,
                    }
        return render(request, "portfolios/import.html", context, status=200 if form.is_valid() else 400)
    return render(request, "portfolios/import.html", context)


#: The transaction imports this session started and has not been told the end of (decision 1001).
_IMPORTS_WATCHED = "ledger_imports_watched"
IMPORT_REFRESH_SECONDS = 2


def _watched_imports(request, portfolio) -> tuple[LedgerImport | None, LedgerImport | None]:
    """``(the import still running, the one that just ended)`` of those this session started
    into ``portfolio``; the end is said once, as a message (one query)."""
    watched = set(request.session.get(_IMPORTS_WATCHED, []))
    if not watched:
        return None, None
    running = ended = None
    for job in LedgerImport.objects.filter(portfolio=portfolio, pk__in=watched).defer("rows"):
        if job.status == LedgerImportStatus.IMPORTING:
            running = job
            continue
        watched.discard(job.pk)
        ended = job
        if job.status == LedgerImportStatus.DONE:
            messages.success(
                request,
                f"Imported {job.report['created']} transaction(s); {job.report['skipped']} duplicate(s) skipped. "
                "The figures are updating.",
            )
        else:
            rows = "; ".join(job.report.get("rows", [])[:5])
            messages.error(request, f"Not imported: {job.report['error']}" + (f" ({rows})" if rows else ""))
    request.session[_IMPORTS_WATCHED] = sorted(watched)
    return running, ended


@login_required
def export_transactions_csv(request, pk: int):
    portfolio = portfolio_for_user(request.user, pk)
    response = StreamingHttpResponse(export_transactions(portfolio), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="transactions-{portfolio.pk}.csv"'
    return response


@login_required
def export_holdings_csv(request, pk: int):
    portfolio = portfolio_for_user(request.user, pk)
    snapshot, infos = selectors.portfolio_holdings(portfolio=portfolio)
    response = StreamingHttpResponse(export_holdings(snapshot, infos), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="holdings-{portfolio.pk}-{snapshot.date}.csv"'
    return response


@login_required
def exposure(request):
    form = ExposureForm(request.GET or {"currency": "USD"})
    exp = None
    if form.is_valid():
        try:
            exp = selectors.firm_exposure(user=request.user, currency=form.cleaned_data["currency"])
        except ValidationError as exc:
            _apply_errors(form, exc)
    sector_chart = ""
    if exp and exp.by_sector:
        sector_chart = charts.hbar_chart(
            [(r.label, r.weight * 100) for r in exp.by_sector],
            title="Exposure by sector (%)",
            description="; ".join(f"{r.label}: {r.weight * 100:.1f}%" for r in exp.by_sector),
            percent=True,
        )
    return render(request, "portfolios/exposure.html", {"form": form, "exp": exp, "sector_chart": sector_chart})
