"""Staff pages for the data that comes in without hand work (issue 24): the feeds' health as the firm
sees it, pending corporate actions, custodian set-up (column mappings, account links) and custodian
imports (upload, preview with per-row errors, commit, history).

Feed health and corporate actions (within the caller's book) are read by every member; owners and
admins decide corporate actions. The custodian pages are the owners' and admins' only, to read and
to write, as in the API (account links name portfolios of every advisor's book). Thin: forms parse,
``portfolios.custodian`` and ``portfolios.corporate_actions`` write, selectors read. A refused form
is shown again with what was typed and the error on its field.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import F, Q
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from codex import imports as engine
from codex.tables import SORT_PARAM, Sortable, TableFilterForm, table_page
from codex.uploads import UploadValidator
from portfolios.market.models import SHARED, AssetClass, CorporateAction
from portfolios.market.selectors import instrument_list, latest_feed_runs

from . import corporate_actions, custodian
from .access import portfolios_visible_to
from .imports import FIELDS as LEDGER_FIELDS
from .models import CustodianAccount, CustodianImport, CustodianMapping, Portfolio

STASH_KEY = "custodian_import"


def _is_manager(user) -> bool:
    return bool(getattr(user, "is_manager", False))


def _managers_only(request) -> None:
    if not _is_manager(request.user):
        raise PermissionDenied("Only the firm's owners and admins change this.")


def _apply(form, exc: ValidationError) -> None:
    if hasattr(exc, "error_dict"):
        for name, errors in exc.message_dict.items():
            form.add_error(name if name in form.fields else None, errors)
    else:
        form.add_error(None, exc.messages)


# --- feed health -----------------------------------------------------------------------------------------
class StaleFilterForm(TableFilterForm):
    symbol = forms.CharField(label="Symbol or name", max_length=200, required=False)
    source = forms.ChoiceField(
        label="Source",
        choices=[("", "Market and your firm's"), ("market", "Market"), ("firm", "Your firm's")],
        required=False,
    )
    asset_class = forms.ChoiceField(
        label="Asset class", choices=[("", "Any class"), *AssetClass.choices], required=False
    )

    lookups: ClassVar = {
        "symbol": lambda qs, value: qs.filter(Q(symbol__icontains=value) | Q(name__icontains=value)),
        "source": lambda qs, value: qs.filter(owner=SHARED) if value == "market" else qs.exclude(owner=SHARED),
        "asset_class": "asset_class",
    }


STALE_SORTS: dict[str, Sortable] = {
    "since": ("stale_since", "symbol", "exchange"),
    "instrument": ("symbol", "exchange"),
    "name": "name",
    "price": F("last_close").asc(nulls_last=True),
}


@login_required
def feed_health(request):
    """The feeds as this firm sees them: the latest run of each provider (who started it is the
    platform's business, not shown) and every instrument it sees whose price is stale."""
    filters = StaleFilterForm(request.GET)
    stale = filters.filter(instrument_list().filter(stale_since__isnull=False))
    table = table_page(request, stale, sorts=STALE_SORTS, default="since")
    return render(
        request,
        "portfolios/feed_health.html",
        {"runs": latest_feed_runs(), "page": table.page, "filters": filters, "table_sort": table.sort},
    )


# --- corporate actions -----------------------------------------------------------------------------------
class CorporateActionFilterForm(TableFilterForm):
    """Pending actions are computed, not a queryset: the view applies these fields to the list."""

    kind = forms.ChoiceField(
        label="Action", choices=[("", "Splits and dividends"), *CorporateAction.Kind.choices], required=False
    )
    portfolio = forms.CharField(label="Portfolio", max_length=100, required=False)


# Sort keys of the pending list (Python: it is computed per portfolio and holding), each ending in a
# unique pair so that pages are stable.
CORPORATE_ACTION_SORTS: dict[str, Callable[[corporate_actions.Pending], tuple]] = {
    "date": lambda p: (p.action.date, p.portfolio.name.casefold(), p.action.pk, p.portfolio.pk),
    "portfolio": lambda p: (p.portfolio.name.casefold(), p.action.date, p.action.pk, p.portfolio.pk),
    "instrument": lambda p: (str(p.action.instrument), p.action.date, p.action.pk, p.portfolio.pk),
    "kind": lambda p: (p.action.kind, p.action.date, p.action.pk, p.portfolio.pk),
}


@login_required
def corporate_action_list(request):
    """Splits and dividends the feed proposed for the portfolios the caller may read, each with the
    ledger row accepting would book. Owners and admins accept or dismiss (``corporate_actions.decide``)."""
    if request.method == "POST":
        _managers_only(request)
        try:
            action_id, portfolio_id = int(request.POST.get("action", "")), int(request.POST.get("portfolio", ""))
        except ValueError:
            messages.error(request, "Choose a corporate action and a portfolio.")
            return redirect("portfolios:corporate-actions")
        accept = request.POST.get("decision") == "accept"
        try:
            decision = corporate_actions.decide(
                user=request.user, action_id=action_id, portfolio_id=portfolio_id, accept=accept
            )
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        else:
            what = "booked into the ledger" if decision.transaction_id else "dismissed"
            messages.success(request, f"Corporate action {what}.")
        return redirect("portfolios:corporate-actions")
    filters = CorporateActionFilterForm(request.GET)
    pending = corporate_actions.pending_for(request.user)
    if filters.is_bound:
        filters.is_valid()  # a bad value is shown by its field and not applied
        wanted = filters.cleaned_data
        if wanted.get("kind"):
            pending = [p for p in pending if p.action.kind == wanted["kind"]]
        if wanted.get("portfolio"):
            pending = [p for p in pending if wanted["portfolio"].casefold() in p.portfolio.name.casefold()]
    sort = request.GET.get(SORT_PARAM, "") or "date"
    if sort.lstrip("-") not in CORPORATE_ACTION_SORTS:
        sort = "date"
    pending.sort(key=CORPORATE_ACTION_SORTS[sort.lstrip("-")], reverse=sort.startswith("-"))
    page = Paginator(pending, 25).get_page(request.GET.get("page"))
    return render(
        request,
        "portfolios/corporate_actions.html",
        {
            "pending": [(p, p.proposed()) for p in page.object_list],
            "page": page,
            "filters": filters,
            "table_sort": sort,
            "can_write": _is_manager(request.user),
        },
    )


# --- custodian set-up: column mappings and account links ------------------------------------------------
POSITION_FIELD_NAMES = list(custodian.POSITION_FIELDS)
TRANSACTION_FIELD_NAMES = [f.name for f in LEDGER_FIELDS] + ["account"]


class MappingForm(forms.Form):
    custodian = forms.SlugField(max_length=64, help_text="A short name, e.g. saxo or schwab.")
    kind = forms.ChoiceField(choices=CustodianMapping.FileKind.choices, label="File")
    date_format = forms.CharField(
        max_length=16, initial="%Y-%m-%d", help_text="How the file writes dates, e.g. %Y-%m-%d or %d.%m.%Y."
    )
    columns = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 10, "spellcheck": "false"}),
        help_text="One line per field: our field = the file's column header, e.g. quantity = Qty.",
    )

    def __init__(self, *args, locked: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        if locked:  # editing: the custodian and the file kind are the mapping's identity
            self.fields["custodian"].disabled = True
            self.fields["kind"].disabled = True

    def clean_columns(self) -> dict[str, str]:
        columns: dict[str, str] = {}
        for number, line in enumerate(self.cleaned_data["columns"].splitlines(), start=1):
            if not line.strip():
                continue
            ours, sep, theirs = line.partition("=")
            if not sep or not ours.strip() or not theirs.strip():
                raise ValidationError(f"Line {number}: write “field = column header”.")
            columns[ours.strip()] = theirs.strip()
        if not columns:
            raise ValidationError("Map at least one column.")
        return columns


def columns_as_text(columns: dict) -> str:
    return "\n".join(f"{ours} = {theirs}" for ours, theirs in columns.items())


class AccountForm(forms.Form):
    custodian = forms.SlugField(max_length=64)
    account = forms.CharField(max_length=64, help_text="The account number as the custodian's files write it.")
    portfolio = forms.ModelChoiceField(queryset=Portfolio.objects.none())

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["portfolio"].queryset = portfolios_visible_to(user).order_by("name", "id")


class CustodianFilterForm(TableFilterForm):
    custodian = forms.CharField(label="Custodian", max_length=64, required=False)
    account = forms.CharField(label="Account or portfolio", max_length=200, required=False)

    lookups: ClassVar = {
        "custodian": "custodian__icontains",
        "account": lambda qs, value: qs.filter(Q(account__icontains=value) | Q(portfolio__name__icontains=value)),
    }


ACCOUNT_SORTS: dict[str, Sortable] = {
    "custodian": ("custodian", "account"),
    "account": "account",
    "portfolio": ("portfolio__name", "custodian", "account"),
}
MAPPING_SORTS: dict[str, Sortable] = {
    "mappings.custodian": ("custodian", "kind"),
    "mappings.kind": ("kind", "custodian"),
}


@login_required
def custodian_setup(request):
    """The firm's column mappings (and the shipped example) and its account links, each a table of
    its own (the mappings page with ``mappings_page``); the custodian filter narrows both."""
    _managers_only(request)
    filters = CustodianFilterForm(request.GET)
    accounts = filters.filter(CustodianAccount.objects.select_related("portfolio"))
    table = table_page(request, accounts, sorts=ACCOUNT_SORTS, default="custodian")
    mappings = CustodianMapping.objects.all()
    if filters.is_bound and filters.cleaned_data.get("custodian"):
        mappings = mappings.filter(custodian__icontains=filters.cleaned_data["custodian"])
    mapping_table = table_page(
        request, mappings, sorts=MAPPING_SORTS, default="mappings.custodian", page_param="mappings_page"
    )
    shipped = [(name, kind, columns_as_text(cols)) for (name, kind), cols in custodian.SHIPPED.items()]
    return render(
        request,
        "portfolios/custodian_setup.html",
        {
            "mappings": [(m, columns_as_text(m.columns)) for m in mapping_table.page.object_list],
            "mapping_page": mapping_table.page,
            "shipped": shipped,
            "page": table.page,
            "filters": filters,
            "table_sort": table.sort,
            "can_write": True,
        },
    )


def _mapping_form_page(request, form, *, mapping=None):
    return render(
        request,
        "portfolios/custodian_form.html",
        {
            "form": form,
            "title": f"Edit the {mapping.custodian} {mapping.kind} mapping" if mapping else "New column mapping",
            "fields_help": {"positions": POSITION_FIELD_NAMES, "transactions": TRANSACTION_FIELD_NAMES},
        },
        status=400 if form.is_bound and form.errors else 200,
    )


@login_required
def mapping_create(request):
    _managers_only(request)
    form = MappingForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        if CustodianMapping.objects.filter(custodian=data["custodian"], kind=data["kind"]).exists():
            form.add_error("custodian", f"{data['custodian']} already has a {data['kind']} mapping: edit it.")
        else:
            try:
                custodian.mapping_save(**data)
            except ValidationError as exc:
                _apply(form, exc)
            else:
                messages.success(request, f"Mapping for {data['custodian']} ({data['kind']}) saved.")
                return redirect("portfolios:custodian-setup")
    return _mapping_form_page(request, form)


@login_required
def mapping_edit(request, pk: int):
    _managers_only(request)
    mapping = get_object_or_404(CustodianMapping, pk=pk)
    initial = {
        "custodian": mapping.custodian,
        "kind": mapping.kind,
        "date_format": mapping.date_format,
        "columns": columns_as_text(mapping.columns),
    }
    form = MappingForm(request.POST or None, initial=initial, locked=True)
    if request.method == "POST" and form.is_valid():
        try:
            custodian.mapping_save(
                custodian=mapping.custodian,
                kind=mapping.kind,
                columns=form.cleaned_data["columns"],
                date_format=form.cleaned_data["date_format"],
            )
        except ValidationError as exc:
            _apply(form, exc)
        else:
            messages.success(request, f"Mapping for {mapping.custodian} ({mapping.kind}) saved.")
            return redirect("portfolios:custodian-setup")
    return _mapping_form_page(request, form, mapping=mapping)


def _account_form_page(request, form, *, account=None):
    title = f"Edit account {account.account}" if account else "Link a custodian account"
    return render(
        request,
        "portfolios/custodian_form.html",
        {"form": form, "title": title},
        status=400 if form.is_bound and form.errors else 200,
    )


@login_required
def account_create(request):
    _managers_only(request)
    form = AccountForm(request.POST or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        try:
            link = custodian.account_link_save(**form.cleaned_data, actor=request.user.email)
        except ValidationError as exc:
            _apply(form, exc)
        else:
            messages.success(request, f"{link.custodian} account {link.account} now books into {link.portfolio}.")
            return redirect("portfolios:custodian-setup")
    return _account_form_page(request, form)


@login_required
def account_edit(request, pk: int):
    _managers_only(request)
    link = get_object_or_404(CustodianAccount, pk=pk)
    initial = {"custodian": link.custodian, "account": link.account, "portfolio": link.portfolio_id}
    form = AccountForm(request.POST or None, initial=initial, user=request.user)
    if request.method == "POST" and form.is_valid():
        try:
            link = custodian.account_link_save(link=link, **form.cleaned_data, actor=request.user.email)
        except ValidationError as exc:
            _apply(form, exc)
        else:
            messages.success(request, f"{link.custodian} account {link.account} now books into {link.portfolio}.")
            return redirect("portfolios:custodian-setup")
    return _account_form_page(request, form, account=link)


# --- custodian imports -----------------------------------------------------------------------------------
class CustodianImportForm(forms.Form):
    custodian = forms.SlugField(max_length=64, initial="interactive-brokers")
    kind = forms.ChoiceField(choices=CustodianImport.Kind.choices, label="File")
    portfolio = forms.ModelChoiceField(
        queryset=Portfolio.objects.none(),
        required=False,
        help_text="Transactions only: leave empty to book each row into the portfolio linked to its account.",
    )
    file = forms.FileField(validators=[UploadValidator(kind="csv")])

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["portfolio"].queryset = portfolios_visible_to(user).order_by("name", "id")


def _parsed(stash: dict) -> engine.ParsedFile:
    return engine.ParsedFile(headers=stash["headers"], rows=stash["rows"], encoding="utf-8", delimiter=",")


def _job(stash: dict, *, user):
    """The import a file kept in the session describes: a positions preview, a ledger import into
    the chosen portfolio, or a transactions import routed by account."""
    if stash["kind"] == CustodianImport.Kind.POSITIONS:
        return custodian.positions_preview(custodian=stash["custodian"], parsed=_parsed(stash))
    if stash.get("portfolio"):
        portfolio = get_object_or_404(portfolios_visible_to(user), pk=stash["portfolio"])
        return custodian.transactions_import(
            portfolio=portfolio, custodian=stash["custodian"], parsed=_parsed(stash), created_by=user
        )
    return custodian.transactions_import_by_account(
        custodian=stash["custodian"], parsed=_parsed(stash), created_by=user
    )


def _preview_of(job) -> dict:
    """One shape for the page, whatever the kind: counts, per-row errors, ok."""
    if isinstance(job, custodian.PositionsPreview):
        return {
            "ok": job.ok,
            "summary": f"{job.rows} line(s) for {len(job.snapshots)} portfolio-day(s)",
            "errors": [engine.RowError(e["row"], e["field"], e["message"]) for e in job.errors],
        }
    preview = job.preview()
    if isinstance(preview, custodian.RoutedPreview):
        per = ", ".join(f"{p.name}: {n}" for p, n in preview.portfolios)
        return {
            "ok": preview.ok,
            "summary": f"{preview.new} new, {preview.duplicates} duplicate(s) skipped" + (f" ({per})" if per else ""),
            "errors": preview.errors,
        }
    return {
        "ok": preview.ok,
        "summary": f"{preview.counts['create']} new, {preview.counts['skip']} duplicate(s) skipped",
        "errors": preview.errors,
    }


def _commit(stash: dict, *, request) -> str:
    """Commit the file kept in the session (everything is checked again: all or nothing)."""
    actor, filename = request.user.email, stash.get("filename", "")
    if stash["kind"] == CustodianImport.Kind.POSITIONS:
        result = custodian.positions_import(
            custodian=stash["custodian"], parsed=_parsed(stash), actor=actor, filename=filename
        )
        return f"{result.created} snapshot(s) created, {result.replaced} replaced, {result.unchanged} unchanged."
    job = _job(stash, user=request.user)
    if isinstance(job, custodian.RoutedImport):
        routed = job.commit(actor=actor, filename=filename)
        return (
            f"{routed.new} transaction(s) booked into {len(job.jobs)} portfolio(s); {routed.duplicates} duplicate(s)."
        )
    report = custodian.transactions_commit(job=job, custodian_name=stash["custodian"], actor=actor, filename=filename)
    return f"{report.created} transaction(s) booked; {report.skipped} duplicate(s) skipped."


class CustodianImportFilterForm(TableFilterForm):
    """Filters of the custodian import history, from the query string."""

    kind = forms.ChoiceField(label="File", choices=[("", "Any file"), *CustodianImport.Kind.choices], required=False)
    custodian = forms.CharField(label="Custodian", max_length=64, required=False)

    lookups: ClassVar = {"kind": "kind", "custodian": "custodian__icontains"}


CUSTODIAN_IMPORT_SORTS: dict[str, Sortable] = {
    "when": "imported_at",
    "custodian": "custodian",
    "kind": "kind",
    "rows": "rows",
}


@login_required
def custodian_imports(request):
    """Upload a custodian file -> preview (per-row errors, nothing written) -> commit (all or nothing);
    below, the firm's import history."""
    _managers_only(request)
    filters = CustodianImportFilterForm(request.GET)
    history = table_page(
        request, filters.filter(CustodianImport.objects.all()), sorts=CUSTODIAN_IMPORT_SORTS, default="-when"
    )
    context: dict = {"history": history.page, "filters": filters, "table_sort": history.sort}
    if request.method != "POST":
        context["form"] = CustodianImportForm(user=request.user)
        return render(request, "portfolios/custodian_imports.html", context)
    if "commit" in request.POST:
        stash = request.session.get(STASH_KEY)
        if not stash:
            messages.error(request, "Upload the file again: the preview has expired.")
            return redirect("portfolios:custodian-imports")
        try:
            summary = _commit(stash, request=request)
        except (engine.ImportFileError, ValidationError) as exc:
            messages.error(request, str(exc) if isinstance(exc, engine.ImportFileError) else " ".join(exc.messages))
            return redirect("portfolios:custodian-imports")
        except engine.ImportRejected as exc:
            context["form"] = CustodianImportForm(user=request.user, initial=stash)
            context["preview"] = {"ok": False, "summary": str(exc), "errors": exc.errors}
            return render(request, "portfolios/custodian_imports.html", context, status=400)
        del request.session[STASH_KEY]
        messages.success(request, f"{stash.get('filename') or 'File'}: {summary}")
        return redirect("portfolios:custodian-imports")
    form = CustodianImportForm(request.POST, request.FILES, user=request.user)
    context["form"] = form
    if form.is_valid():
        data = form.cleaned_data
        upload = data["file"]
        try:
            parsed = engine.read_csv(upload)
            stash = {
                "custodian": data["custodian"],
                "kind": data["kind"],
                "portfolio": data["portfolio"].pk if data["portfolio"] else None,
                "filename": upload.name[:200],
                "headers": parsed.headers,
                "rows": parsed.rows,
            }
            context["preview"] = _preview_of(_job(stash, user=request.user))
        except engine.ImportFileError as exc:
            form.add_error("file", str(exc))
        except ValidationError as exc:
            _apply(form, exc)
        else:
            if context["preview"]["ok"]:
                request.session[STASH_KEY] = stash
            else:
                request.session.pop(STASH_KEY, None)
    status = 400 if form.errors or (context.get("preview") and not context["preview"]["ok"]) else 200
    return render(request, "portfolios/custodian_imports.html", context, status=status)


@login_required
@require_POST
def custodian_import_cancel(request):
    _managers_only(request)
    request.session.pop(STASH_KEY, None)
    return redirect("portfolios:custodian-imports")
