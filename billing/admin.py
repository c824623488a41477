"""Operator console for billing: plans, subscriptions, invoices (with actions), payments, webhook
events, usage, and the revenue page (MRR, ARR, churn, revenue per plan; server-side SVG charts)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from codex import charts, formatting
from codex.admin import RefuseDeleteMixin, operator_site
from tenants.admin import register_firm_summary_section

from . import selectors, services
from .models import (
    BillingProfile,
    DunningNotice,
    Invoice,
    InvoiceLine,
    InvoiceStatus,
    Payment,
    PaymentKind,
    Plan,
    Subscription,
    UsageDaily,
    WebhookEvent,
)
from .providers import ManualProvider


@admin.register(Plan, site=operator_site)
class PlanAdmin(admin.ModelAdmin):
    list_display = [
        "code",
        "name",
        "price_month",
        "price_year",
        "currency",
        "seat_price",
        "included_seats",
        "max_seats",
        "max_portfolios",
        "max_contacts",
        "max_api_calls_month",
        "api_overage_price_per_1000",
        "is_public",
    ]
    list_editable = ["is_public"]
    search_fields = ["code", "name"]


@admin.register(Subscription, site=operator_site)
class SubscriptionAdmin(RefuseDeleteMixin, admin.ModelAdmin):
    delete_refusal = (
        "A firm always has a subscription: change its plan or cancel it (the firm's billing page), or close the firm."
    )
    list_display = [
        "tenant",
        "plan",
        "status",
        "interval",
        "current_period_end",
        "cancel_at_period_end",
        "credit_balance",
    ]
    list_filter = ["status", "plan", "interval", "cancel_at_period_end"]
    search_fields = ["tenant__name", "tenant__slug"]
    list_select_related = ["tenant", "plan"]
    readonly_fields = ["created_at", "canceled_at", "cancel_requested_at", "credit_balance"]
    actions = ["run_invoicing"]

    @admin.action(description="Run invoicing now for the selected subscriptions")
    def run_invoicing(self, request, queryset):
        result = services.invoice_run(subscription_ids=list(queryset.values_list("pk", flat=True)))
        self.message_user(
            request, f"{result.invoices} invoice(s) made, {result.renewed} renewed, {result.canceled} ended."
        )


class InvoiceLineInline(admin.TabularInline):
    model = InvoiceLine
    extra = 0
    readonly_fields = ("kind", "description", "quantity", "unit_amount", "amount")
    fields = readonly_fields
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


class PaymentInline(admin.TabularInline):
    model = Payment
    extra = 0
    readonly_fields = ("created_at", "kind", "provider", "external_id", "amount", "currency", "recorded_by", "note")
    fields = readonly_fields
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


def _apply(modeladmin, request, queryset, fn, verb):
    done = 0
    for invoice in queryset:
        try:
            fn(invoice=invoice, actor=request.user.get_username())
            done += 1
        except ValidationError as exc:
            modeladmin.message_user(request, f"{invoice}: {' '.join(exc.messages)}", messages.ERROR)
    if done:
        modeladmin.message_user(request, f"{done} invoice(s) {verb}.")


@admin.register(Invoice, site=operator_site)
class InvoiceAdmin(admin.ModelAdmin):
    list_display = ["__str__", "tenant", "status", "period_start", "total_shown", "paid_shown", "due_at", "printable"]
    list_filter = ["status", "plan", "currency"]
    search_fields = ["number", "tenant__name", "tenant__slug"]
    list_select_related = ["tenant", "plan"]
    date_hierarchy = "period_start"
    inlines = [InvoiceLineInline, PaymentInline]
    actions = ["finalize", "void", "mark_paid", "mark_uncollectible"]
    readonly_fields = [f.name for f in Invoice._meta.fields]

    def has_add_permission(self, request):
        return False  # invoices come from the invoice run and plan changes

    def has_delete_permission(self, request, obj=None):
        return False  # void instead: numbers stay gapless

    # Money through the one formatting layer (codex.formatting), as on every page.
    @admin.display(description="Total", ordering="total")
    def total_shown(self, obj):
        return formatting.money(obj.total, obj.currency)

    @admin.display(description="Paid", ordering="amount_paid")
    def paid_shown(self, obj):
        return formatting.money(obj.amount_paid, obj.currency)

    @admin.display(description="Printable")
    def printable(self, obj):
        if obj.status == InvoiceStatus.DRAFT:
            return "—"
        return format_html('<a href="{}">HTML</a>', reverse("admin:billing_invoice_print", args=[obj.pk]))

    @admin.action(description="Finalize (assign number, open)")
    def finalize(self, request, queryset):
        _apply(self, request, queryset, services.invoice_finalize, "finalized")

    @admin.action(description="Void")
    def void(self, request, queryset):
        _apply(self, request, queryset, services.invoice_void, "voided")

    @admin.action(description="Mark paid (manual payment of the amount due)")
    def mark_paid(self, request, queryset):
        _apply(self, request, queryset, ManualProvider().mark_paid, "marked paid")

    @admin.action(description="Mark uncollectible")
    def mark_uncollectible(self, request, queryset):
        _apply(self, request, queryset, services.invoice_mark_uncollectible, "marked uncollectible")

    def get_urls(self):
        extra = [
            path("revenue/", self.admin_site.admin_view(self.revenue_view), name="billing_revenue"),
            path("<int:pk>/print/", self.admin_site.admin_view(self.print_view), name="billing_invoice_print"),
        ]
        return extra + super().get_urls()

    def print_view(self, request, pk: int):
        invoice = Invoice.objects.select_related("tenant").prefetch_related("lines", "payments").get(pk=pk)
        return TemplateResponse(request, "billing/invoice_print.html", {"invoice": invoice})

    def revenue_view(self, request):
        overview = selectors.revenue_overview(now=timezone.now())
        context = {
            **self.admin_site.each_context(request),
            "title": "Revenue",
            "overview": overview,
            "charts": self._charts(overview),
            "invoice_counts": selectors.invoice_counts_by_status(),
            "churn_percent": (overview.churn_rate * 100).quantize(Decimal("0.1"))
            if overview.churn_rate is not None
            else None,
        }
        return TemplateResponse(request, "admin/billing/revenue.html", context)

    @staticmethod
    def _charts(overview) -> dict[str, str]:
        """The revenue page's charts, drawn by the product's chart module (codex.charts) so that the
        console looks like the firms' pages: inline SVG, theme colours, a data table under each."""
        cur = overview.currency
        month_days = [date.fromisoformat(f"{m}-01") for m in overview.months]
        month_names = [f"{d:%b %Y}" for d in month_days]
        mrr_by_plan = sorted(overview.mrr_by_plan.items(), key=lambda kv: -kv[1])
        return {
            "mrr": charts.hbar_chart(
                mrr_by_plan,
                title=f"MRR by plan ({cur})",
                description="; ".join(f"{name}: {value:,.2f} {cur}" for name, value in mrr_by_plan),
                width=900,
                currency=cur,
            ),
            "mrr_history": charts.line_chart(
                [charts.Series("MRR", list(zip(month_days, overview.mrr_history, strict=True)))],
                title=f"MRR at the start of each month ({cur})",
                description=f"From {overview.mrr_history[0]:,.2f} to {overview.mrr_history[-1]:,.2f} {cur}"
                if overview.mrr_history
                else "",
                width=900,
                height=280,
                currency=cur,
            ),
            "revenue": charts.stacked_bar_chart(
                month_names,
                list(overview.revenue_by_plan.items()),
                title=f"Collected revenue per plan ({cur})",
                description="; ".join(
                    f"{name}: {sum(values, Decimal(0)):,.2f} {cur} in 12 months"
                    for name, values in overview.revenue_by_plan.items()
                ),
                width=900,
                height=280,
                currency=cur,
            ),
            "churn": charts.bar_chart(
                list(zip(month_names, overview.churned_by_month, strict=True)),
                title="Subscriptions ended per month",
                description=f"{sum(overview.churned_by_month)} in 12 months",
                width=900,
            ),
        }


class ManualPaymentForm(forms.ModelForm):
    class Meta:
        model = Payment
        fields = ["invoice", "kind", "amount", "note"]


@admin.register(Payment, site=operator_site)
class PaymentAdmin(admin.ModelAdmin):
    """Operators record manual payments and refunds here; provider payments come from webhooks."""

    list_display = ["created_at", "invoice", "tenant", "kind", "provider", "amount_shown", "recorded_by"]
    list_filter = ["kind", "provider", "currency"]
    search_fields = ["invoice__number", "external_id", "tenant__slug"]
    list_select_related = ["invoice", "tenant"]
    form = ManualPaymentForm
    autocomplete_fields = ["invoice"]

    @admin.display(description="Amount", ordering="amount")
    def amount_shown(self, obj):
        return formatting.money(obj.amount, obj.currency)

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        provider = ManualProvider()
        record = provider.record_refund if obj.kind == PaymentKind.REFUND else provider.record_payment
        try:
            payment = record(invoice=obj.invoice, amount=obj.amount, actor=request.user.get_username(), note=obj.note)
        except ValidationError as exc:
            raise forms.ValidationError(exc.messages) from exc
        obj.pk = payment.pk

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        original_clean = form.clean

        def clean(this):
            data = original_clean(this)
            invoice, amount, kind = data.get("invoice"), data.get("amount"), data.get("kind")
            if invoice and amount is not None:
                if kind == PaymentKind.PAYMENT and amount > invoice.amount_due:
                    raise forms.ValidationError({"amount": f"Only {invoice.amount_due:.2f} {invoice.currency} is due."})
                if invoice.status not in (InvoiceStatus.OPEN, InvoiceStatus.UNCOLLECTIBLE, InvoiceStatus.PAID):
                    raise forms.ValidationError({"invoice": f"A {invoice.status} invoice takes no payment."})
            return data

        form.clean = clean
        return form


@admin.register(WebhookEvent, site=operator_site)
class WebhookEventAdmin(admin.ModelAdmin):
    list_display = ["received_at", "provider", "type", "event_id", "result"]
    list_filter = ["provider", "type"]
    search_fields = ["event_id", "result"]
    readonly_fields = ["provider", "event_id", "type", "payload", "received_at", "result"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(BillingProfile, site=operator_site)
class BillingProfileAdmin(admin.ModelAdmin):
    list_display = ["tenant", "legal_name", "billing_email", "tax_rate", "tax_id"]
    search_fields = ["tenant__slug", "legal_name", "billing_email"]
    list_select_related = ["tenant"]


@admin.register(UsageDaily, site=operator_site)
class UsageDailyAdmin(admin.ModelAdmin):
    list_display = ["day", "tenant", "metric", "count"]
    list_filter = ["metric", "day"]
    search_fields = ["tenant__slug"]
    list_select_related = ["tenant"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(DunningNotice, site=operator_site)
class DunningNoticeAdmin(admin.ModelAdmin):
    list_display = ["created_at", "invoice", "offset_days", "sent"]
    list_select_related = ["invoice"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


operator_site.register_index_link("Revenue", "billing_revenue", "MRR, ARR, churn and collected revenue per plan")

# The firm's page in the console (tenants' admin) shows its plan, MRR, usage and open invoices.
register_firm_summary_section(
    "admin/billing/_firm_summary.html", lambda tenant: selectors.firm_billing_summary(tenant=tenant)
)
