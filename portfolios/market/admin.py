"""Operator console for market data: browse instruments, prices and FX; upload CSV files."""

from django import forms
from django.contrib import admin, messages
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from codex.admin import RefuseDeleteMixin, operator_site
from codex.uploads import UploadValidator

from .models import CorporateAction, FeedRun, FxRate, Instrument, Price, ProviderCall
from .services import KINDS, ImportRejected, prices_import

MAX_UPLOAD_BYTES = 50 * 1024 * 1024


class MarketUploadForm(forms.Form):
    kind = forms.ChoiceField(choices=[(k, k) for k in KINDS], initial="prices")
    # The shared upload check (size, extension, declared type, no binary content), as every import;
    # market files are larger than a firm's CSV imports, hence their own size limit.
    file = forms.FileField(
        help_text="CSV, UTF-8, with a header row; formats in docs/market-data.md. At most 50 MB.",
        validators=[UploadValidator(kind="csv", max_bytes=MAX_UPLOAD_BYTES)],
    )
    overwrite = forms.BooleanField(
        required=False, help_text="Replace stored values that differ from the file. The change is audited."
    )


def upload_view(request):
    """The admin upload page: one form, one call to ``prices_import``, the report shown on failure."""
    form = MarketUploadForm(request.POST or None, request.FILES or None)
    report = None
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        try:
            result = prices_import(
                file=upload,
                kind=form.cleaned_data["kind"],
                overwrite=form.cleaned_data["overwrite"],
                actor=request.user.email,
                filename=upload.name,
            )
        except ImportRejected as exc:
            form.add_error(None, str(exc))
            report = exc.result
        else:
            messages.success(request, f"{upload.name}: {result.summary()}.")
            return redirect(reverse("admin:market_upload"))
    context = {
        **operator_site.each_context(request),
        "title": "Upload market data",
        "form": form,
        "report": report,
        "issues": (report.errors + report.conflicts)[:500] if report else [],
        "truncated": report is not None and len(report.errors) + len(report.conflicts) > 500,
    }
    return TemplateResponse(request, "admin/market/upload.html", context)


@admin.register(Instrument, site=operator_site)
class InstrumentAdmin(RefuseDeleteMixin, admin.ModelAdmin):
    # Firms' portfolios and alert rules refer to instruments from their own schemas, which a
    # delete from the public schema cannot see.
    delete_refusal = 'Instruments are not deleted (firms\' portfolios may hold them): untick "is active" instead.'
    list_display = ["symbol", "exchange", "name", "asset_class", "currency", "sector", "country", "is_active"]
    list_filter = ["asset_class", "currency", "is_active", "exchange"]
    search_fields = ["symbol", "name"]
    list_per_page = 100
    change_list_template = "admin/market/instrument_change_list.html"

    def get_urls(self):
        return [
            path("upload/", self.admin_site.admin_view(upload_view), name="market_upload"),
            *super().get_urls(),
        ]


@admin.register(Price, site=operator_site)
class PriceAdmin(admin.ModelAdmin):
    list_display = ["instrument", "date", "close", "source"]
    list_filter = ["source", "instrument__asset_class"]
    search_fields = ["instrument__symbol"]
    date_hierarchy = "date"
    list_select_related = ["instrument"]
    raw_id_fields = ["instrument"]
    list_per_page = 100
    show_full_result_count = False


@admin.register(FxRate, site=operator_site)
class FxRateAdmin(admin.ModelAdmin):
    list_display = ["base", "quote", "date", "rate", "source"]
    list_filter = ["base", "quote", "source"]
    date_hierarchy = "date"
    list_per_page = 100
    show_full_result_count = False


@admin.register(FeedRun, site=operator_site)
class FeedRunAdmin(admin.ModelAdmin):
    """Feed health for operators: every provider run, failures first to the eye (status filter)."""

    list_display = ["started_at", "provider", "kind", "status", "written", "unchanged", "failures", "actor"]
    list_filter = ["status", "provider", "kind"]
    date_hierarchy = "started_at"
    list_per_page = 100
    readonly_fields = [f.name for f in FeedRun._meta.fields if f.name != "report"] + ["problems", "calls_link"]
    exclude = ["report"]

    @admin.display(description="Provider calls")
    def calls_link(self, obj):
        url = reverse("admin:market_providercall_changelist") + f"?run__id__exact={obj.pk}"
        return format_html('<a href="{}">{} call(s)</a>', url, obj.calls.count())

    @admin.display(description="Per instrument")
    def problems(self, obj):
        rows = []
        for entry in obj.report:
            notes = [entry["error"]] if entry["error"] else []
            notes += [f"{r['date']} refused: {r['reason']}" for r in entry["rejected"]]
            notes += [f"{c['date']} kept: {c['reason']}" for c in entry["conflicts"]]
            rows.append((entry["label"], entry["written"], entry["unchanged"], "; ".join(notes) or "ok"))
        return format_html_join("", "<div><b>{}</b>: {} written, {} unchanged; {}</div>", rows) or "-"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(ProviderCall, site=operator_site)
class ProviderCallAdmin(admin.ModelAdmin):
    """The audit of every call to a provider (decision 1030): who, what, when, how it went. Read-only."""

    list_display = ["started_at", "provider", "subject", "status", "latency_ms", "rows", "actor", "error"]
    list_filter = ["provider", "status", "actor"]
    search_fields = ["subject", "url", "error"]
    date_hierarchy = "started_at"
    list_per_page = 100
    readonly_fields = [f.name for f in ProviderCall._meta.fields]
    list_select_related = False
    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(CorporateAction, site=operator_site)
class CorporateActionAdmin(RefuseDeleteMixin, admin.ModelAdmin):
    # Firms' decisions on an action (accepted into a ledger, or dismissed) live in their schemas,
    # which a delete from the public schema cannot see.
    delete_refusal = "Corporate actions are not deleted: firms may have accepted or dismissed them."
    list_display = ["date", "instrument", "kind", "value", "source"]
    list_filter = ["kind", "source"]
    raw_id_fields = ["instrument"]
    date_hierarchy = "date"
