"""Portfolio pages: list, detail (holdings, charts, returns, ledger), forms, import, export, exposure.

Thin: forms parse, ``services`` write, ``selectors`` read, ``access`` scopes. Every page works
without JavaScript; charts are server-side SVG (``portfolios.charts``).
"""

from __future__ import annotations

import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from billing.entitlements import PlanLimitExceeded, check_feature
from codex import imports as engine
from codex.charts import Series, bar_chart, line_chart
from codex.idempotent_forms import idempotent_form

from . import analytics, selectors, services, valuations
from .access import can_write, portfolio_for_user, portfolios_visible_to
from .forms import ExposureForm, ImportForm, PortfolioForm, TransactionForm
from .imports import COLUMNS, TransactionImport, export_holdings, export_transactions, ledger_import_queue
from .models import LedgerImport, LedgerImportStatus, Transaction

IMPORT_SESSION_KEY = "portfolios_import"


def _apply_errors(form, exc: ValidationError) -> None:
    if hasattr(exc, "error_dict"):
        for field, errs in exc.message_dict.items():
            form.add_error(field if field in form.fields else None, errs)
    else:
        form.add_error(None, exc.messages)


@login_required
def portfolio_list(request):
    show_archived = request.GET.get("archived") == "1"
    qs = (
        portfolios_visible_to(request.user, include_archived=show_archived)
        .select_related("client", "advisor")
        .order_by("name", "id")
    )
    q = request.GET.get("q", "").strip()
    if q:
        qs = qs.filter(Q(name__icontains=q) | Q(client__first_name__icontains=q) | Q(client__last_name__icontains=q))
    page = Paginator(qs, 25).get_page(request.GET.get("page"))
    summaries = selectors.portfolio_summaries(page.object_list)
    rows = [(p, summaries.get(p.pk)) for p in page.object_list]
    return render(
        request,
        "portfolios/list.html",
        {"page": page, "rows": rows, "q": q, "show_archived": show_archived, "can_write": can_write(request.user)},
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
    value_chart = alloc_chart = ""
    if dash.performance is not None:
        lines = [Series("Portfolio (time-weighted)", _as_growth(analytics.twr_index(dash.performance.series)))]
        if dash.benchmark_index and portfolio.benchmark is not None:
            lines.append(Series(f"Benchmark {portfolio.benchmark.symbol}", _as_growth(dash.benchmark_index)))
        value_chart = line_chart(
            lines,
            title="Cumulative return since inception (%)",
            description="; ".join(f"{s.label}: {s.points[-1][1]:.2f}% on {s.points[-1][0]}" for s in lines if s.points),
            percent=True,
            area=False,
        )
        weights = dash.allocations.get(by, {})
        alloc_chart = bar_chart(
            [(str(k).replace("_", " ")[:14], w * 100) for k, w in weights.items()],
            title=f"Allocation by {by.replace('_', ' ')} (%)",
            description="; ".join(f"{k}: {w * 100:.1f}%" for k, w in weights.items()),
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
    txns = Paginator(
        Transaction.objects.filter(portfolio=portfolio).select_related("instrument").order_by("-trade_date", "-id"), 50
    ).get_page(request.GET.get("page"))
    context = {
        "portfolio": portfolio,
        "dash": dash,
        "refresh_seconds": refresh_seconds,
        "analytics_error": analytics_error,
        "holdings": holdings,
        "value_chart": value_chart,
        "alloc_chart": alloc_chart,
        "by": by,
        "dimensions": list(dash.allocations),
        "txns": txns,
        "can_write": can_write(request.user) and not portfolio.archived,
        "can_edit": can_write(request.user),
        "form": TransactionForm(initial={"trade_date": timezone.localdate()}),
    }
    return render(request, "portfolios/detail.html", context)


def _as_growth(index, max_points: int = 500) -> list:
    """A growth-of-1 series as cumulative percent, thinned to at most ``max_points`` (keeps the last)."""
    step = max(1, len(index) // max_points)
    points = list(index[::step])
    if index and points[-1] != index[-1]:
        points.append(index[-1])
    return [(d, (level - 1) * 100) for d, level in points]


@login_required
@idempotent_form
def transaction_create(request, pk: int):
    portfolio = portfolio_for_user(request.user, pk, write=True)
    form = TransactionForm(request.POST or None, initial={"trade_date": timezone.localdate()})
    if request.method == "POST" and form.is_valid():
        try:
            services.transaction_record(portfolio=portfolio, created_by=request.user, **form.to_service())
        except ValidationError as exc:
            _apply_errors(form, exc)
        else:
            messages.success(request, "Transaction recorded.")
            return redirect(reverse("portfolios:detail", args=[portfolio.pk]) + "#ledger")
    return render(
        request,
        "portfolios/transaction_form.html",
        {"form": form, "portfolio": portfolio, "title": "Add a transaction"},
    )


def _txn_for(request, pk: int, txn_pk: int, *, write: bool) -> Transaction:
    portfolio = portfolio_for_user(request.user, pk, write=write)
    return get_object_or_404(Transaction.objects.select_related("portfolio"), pk=txn_pk, portfolio=portfolio)


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
        "lots": json.dumps(txn.lots) if txn.lots else "",
        "acquired_on": txn.acquired_on,
        "note": txn.note,
    }
    form = TransactionForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        changes = {f: v for f, v in form.to_service().items() if f in form.changed_data}
        try:
            services.transaction_update(txn=txn, **changes)
        except ValidationError as exc:
            _apply_errors(form, exc)
        else:
            messages.success(request, "Transaction saved; holdings and lots were rebuilt.")
            return redirect(reverse("portfolios:detail", args=[pk]) + "#ledger")
    return render(
        request,
        "portfolios/transaction_form.html",
        {"form": form, "portfolio": txn.portfolio, "txn": txn, "title": f"Edit {txn}"},
    )


@login_required
@require_POST
def transaction_delete(request, pk: int, txn_pk: int):
    txn = _txn_for(request, pk, txn_pk, write=True)
    try:
        services.transaction_delete(txn=txn)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, "Transaction deleted; holdings and lots were rebuilt.")
    return redirect(reverse("portfolios:detail", args=[pk]) + "#ledger")


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
        sector_chart = bar_chart(
            [(r.label[:14], r.weight * 100) for r in exp.by_sector],
            title="Exposure by sector (%)",
            description="; ".join(f"{r.label}: {r.weight * 100:.1f}%" for r in exp.by_sector),
            percent=True,
        )
    return render(request, "portfolios/exposure.html", {"form": form, "exp": exp, "sector_chart": sector_chart})
