"""Subscription state transitions, plan changes with proration, downgrade refusal, cancel, reactivate."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from billing import services
from billing.models import Invoice, InvoiceStatus, LineKind, PendingItem, Subscription, SubscriptionStatus
from tenants.models import AuditEvent, Tenant, TenantStatus

from .conftest import activate, plan, utc
from .factories import bare_subscription, bare_tenant

D = Decimal
pytestmark = pytest.mark.django_db


def test_trial_ends_into_active_with_a_first_invoice_and_firm_active(in_public):
    tenant = bare_tenant(status=TenantStatus.TRIALING)
    sub = bare_subscription(
        plan=plan("starter"), tenant=tenant, start=utc(2025, 3, 1), status=SubscriptionStatus.TRIALING
    )
    trial_end = sub.current_period_end
    result = services.invoice_run(now=trial_end + timedelta(hours=1))
    sub.refresh_from_db()
    assert (result.activated, result.invoices) == (1, 1)
    assert sub.status == SubscriptionStatus.ACTIVE
    assert (sub.current_period_start, sub.current_period_end) == (trial_end, utc(2025, 5, 1))
    invoice = Invoice.objects.get(subscription=sub)
    assert invoice.status == InvoiceStatus.OPEN and invoice.total == D("49.00")
    assert Tenant.objects.get(pk=tenant.pk).status == TenantStatus.ACTIVE


def test_trial_canceled_before_its_end_ends_without_invoice(in_public):
    sub = bare_subscription(plan=plan("starter"), start=utc(2025, 3, 1), status=SubscriptionStatus.TRIALING)
    services.subscription_cancel(tenant=sub.tenant, actor="owner@x", now=utc(2025, 3, 5))
    services.invoice_run(now=utc(2025, 4, 2))
    sub.refresh_from_db()
    assert sub.status == SubscriptionStatus.CANCELED and sub.canceled_at == utc(2025, 4, 1)
    assert not Invoice.objects.filter(subscription=sub).exists()


def test_renewal_rolls_the_period_from_the_anchor_and_invoices_each_period_once(in_public):
    sub = bare_subscription(plan=plan("starter"), start=utc(2025, 1, 31))
    services.invoice_run(now=utc(2025, 1, 31, 1))  # first period
    services.invoice_run(now=utc(2025, 3, 1))  # Feb 28 period, then nothing more
    services.invoice_run(now=utc(2025, 3, 1))  # again: idempotent
    sub.refresh_from_db()
    starts = list(
        Invoice.objects.filter(subscription=sub).order_by("period_start").values_list("period_start", flat=True)
    )
    assert starts == [utc(2025, 1, 31), utc(2025, 2, 28)]
    assert sub.current_period_end == utc(2025, 3, 31)


def test_cancel_at_period_end_then_reactivate_before_the_end_keeps_it(in_public):
    sub = bare_subscription(plan=plan("starter"), start=utc(2025, 4, 1))
    services.subscription_cancel(tenant=sub.tenant, actor="a", now=utc(2025, 4, 10))
    sub.refresh_from_db()
    assert sub.cancel_at_period_end and sub.status == SubscriptionStatus.ACTIVE
    services.subscription_reactivate(tenant=sub.tenant, actor="a", now=utc(2025, 4, 11))
    services.invoice_run(now=utc(2025, 5, 1, 1))
    sub.refresh_from_db()
    assert sub.status == SubscriptionStatus.ACTIVE and sub.current_period_start == utc(2025, 5, 1)


def test_cancel_takes_effect_at_period_end_and_limits_fall_back_to_free(in_public):
    from billing.selectors import effective_plan

    sub = bare_subscription(plan=plan("pro"), start=utc(2025, 4, 1))
    services.subscription_cancel(tenant=sub.tenant, actor="a", now=utc(2025, 4, 10))
    result = services.invoice_run(now=utc(2025, 5, 1, 0, 0, 1))
    sub.refresh_from_db()
    assert result.canceled == 1 and sub.status == SubscriptionStatus.CANCELED
    assert sub.canceled_at == utc(2025, 5, 1)
    assert effective_plan(sub).code == "free"
    assert not Invoice.objects.filter(subscription=sub, period_start=utc(2025, 5, 1)).exists()
    with pytest.raises(ValidationError):
        services.subscription_cancel(tenant=sub.tenant, actor="a")


def test_reactivating_an_ended_subscription_starts_a_new_invoiced_period(in_public):
    sub = bare_subscription(plan=plan("starter"), start=utc(2025, 4, 1))
    services.subscription_cancel(tenant=sub.tenant, actor="a", now=utc(2025, 4, 10))
    services.invoice_run(now=utc(2025, 5, 2))
    services.subscription_reactivate(tenant=sub.tenant, actor="a", now=utc(2025, 6, 15, 9, 30))
    sub.refresh_from_db()
    assert sub.status == SubscriptionStatus.ACTIVE
    assert (sub.current_period_start, sub.current_period_end) == (utc(2025, 6, 15, 9, 30), utc(2025, 7, 15, 9, 30))
    assert Invoice.objects.filter(subscription=sub, period_start=utc(2025, 6, 15, 9, 30)).exists()


def test_reactivate_refused_when_nothing_is_canceled(in_public):
    sub = bare_subscription(plan=plan("starter"), start=utc(2025, 4, 1))
    with pytest.raises(services.BillingStateError):
        services.subscription_reactivate(tenant=sub.tenant, actor="a")


def test_upgrade_same_interval_prorates_to_the_second_onto_the_next_invoice(in_public):
    # docs/billing.md worked example: Starter 49 -> Pro 149 after 10 of April's 30 days.
    sub = bare_subscription(plan=plan("starter"), start=utc(2025, 4, 1))
    services.invoice_run(now=utc(2025, 4, 1, 1))
    result = services.subscription_change_plan(
        tenant=sub.tenant, plan=plan("pro"), interval="month", actor="owner@x", now=utc(2025, 4, 11)
    )
    assert (result.preview.credit, result.preview.charge, result.preview.net) == (D("-32.67"), D("99.33"), D("66.66"))
    assert result.invoice is None
    items = list(PendingItem.objects.filter(subscription=sub).order_by("kind").values_list("kind", "amount"))
    assert items == [(LineKind.PRORATION_CHARGE, D("99.33")), (LineKind.PRORATION_CREDIT, D("-32.67"))]
    sub.refresh_from_db()
    assert sub.plan.code == "pro" and sub.current_period_end == utc(2025, 5, 1)
    # The May invoice: Pro 149 + proration 99.33 - 32.67 (Pro includes 10 seats; 1 used).
    services.invoice_run(now=utc(2025, 5, 1, 1))
    may = Invoice.objects.get(subscription=sub, period_start=utc(2025, 5, 1))
    assert may.total == D("215.66")
    assert sorted(may.lines.values_list("amount", flat=True)) == [D("-32.67"), D("99.33"), D("149.00")]
    assert not PendingItem.objects.filter(subscription=sub, invoice__isnull=True).exists()
    event = AuditEvent.objects.filter(action="billing.plan_changed", tenant=sub.tenant).get()
    assert event.details["from"] == "starter/month" and event.details["net"] == "66.66"


def test_interval_switch_restarts_the_period_and_is_invoiced_now(in_public):
    # docs/billing.md: Starter monthly 49 -> Pro yearly 1490 on 11 Apr 2025 (anchor 1 Jan).
    sub = bare_subscription(plan=plan("starter"), start=utc(2025, 1, 1))
    services.invoice_run(now=utc(2025, 4, 1, 1))
    result = services.subscription_change_plan(
        tenant=sub.tenant, plan=plan("pro"), interval="year", actor="o", now=utc(2025, 4, 11)
    )
    assert (result.preview.credit, result.preview.charge, result.preview.net) == (
        D("-32.67"),
        D("1490.00"),
        D("1457.33"),
    )
    invoice = result.invoice
    assert invoice.period_start == utc(2025, 4, 11) and invoice.period_end == utc(2026, 4, 11)
    assert invoice.total == D("1457.33") and invoice.status == InvoiceStatus.OPEN


def test_yearly_to_monthly_credit_beyond_the_invoice_goes_to_the_balance(firm):
    sub = activate(firm, code="pro", interval="year", anchor=utc(2025, 1, 1))
    services.invoice_run(now=utc(2025, 1, 1, 1), subscription_ids=[sub.pk])
    result = services.subscription_change_plan(
        tenant=firm, plan=plan("starter"), interval="month", actor="o", now=utc(2025, 7, 2)
    )
    assert result.preview.credit == D("-747.04") and result.preview.net == D("-698.04")
    assert result.invoice.total == D("0.00") and result.invoice.status == InvoiceStatus.PAID
    # Starter includes 3 seats at 15.00 per extra seat per month; acme's seats are counted live.
    from billing.selectors import firm_resource_counts

    extra_seats = D(max(0, firm_resource_counts(firm)["seats"] - 3) * 15)
    lines = dict(result.invoice.lines.values_list("kind", "amount"))
    assert lines[LineKind.BASE] == D("49.00") and lines.get(LineKind.SEATS, D("0")) == extra_seats
    sub.refresh_from_db()
    assert sub.credit_balance == D("747.04") - D("49.00") - extra_seats
    # Next month the balance pays Starter again.
    services.invoice_run(now=utc(2025, 8, 2, 1), subscription_ids=[sub.pk])
    august = Invoice.objects.get(subscription=sub, period_start=utc(2025, 8, 2))
    assert august.total == D("0.00"), list(august.lines.values_list("kind", "amount"))
    sub.refresh_from_db()
    assert sub.credit_balance == D("747.04") - 2 * (D("49.00") + extra_seats)


def test_change_during_trial_switches_plan_without_charge(firm):
    result = services.subscription_change_plan(tenant=firm, plan=plan("enterprise"), interval="month", actor="o")
    assert result.preview.trial and result.preview.net == 0 and result.invoice is None
    assert Subscription.objects.get(tenant=firm).plan.code == "enterprise"
    assert not PendingItem.objects.filter(subscription__tenant=firm).exists()


def test_downgrade_refused_with_reasons_when_usage_exceeds_new_limits(firm):
    # acme has 5 active users; Free allows 1 seat.
    activate(firm, code="pro", anchor=utc(2025, 4, 1))
    with pytest.raises(services.DowngradeRefused) as exc:
        services.subscription_change_plan(
            tenant=firm, plan=plan("free"), interval="month", actor="o", now=utc(2025, 4, 11)
        )
    assert "Free allows 1 seats; you have" in " ".join(exc.value.messages)
    assert Subscription.objects.get(tenant=firm).plan.code == "pro"
    preview = services.subscription_change_preview(
        tenant=firm, plan=plan("free"), interval="month", now=utc(2025, 4, 11)
    )
    assert not preview.allowed and preview.blockers


def test_change_to_same_plan_or_unknown_interval_is_a_field_error(firm):
    activate(firm, code="pro")
    with pytest.raises(ValidationError) as exc:
        services.subscription_change_plan(
            tenant=firm, plan=plan("pro"), interval="month", actor="o", now=utc(2025, 4, 2)
        )
    assert "plan" in exc.value.message_dict
    with pytest.raises(ValidationError) as exc:
        services.subscription_change_plan(
            tenant=firm, plan=plan("starter"), interval="week", actor="o", now=utc(2025, 4, 2)
        )
    assert "interval" in exc.value.message_dict


def test_change_after_an_unbilled_period_end_renews_first(in_public):
    sub = bare_subscription(plan=plan("starter"), start=utc(2025, 4, 1))
    services.invoice_run(now=utc(2025, 4, 1, 1))
    # The invoice run has not run since 1 May; the change on 11 May renews first.
    result = services.subscription_change_plan(
        tenant=sub.tenant, plan=plan("pro"), interval="month", actor="o", now=utc(2025, 5, 11)
    )
    assert Invoice.objects.filter(subscription=sub, period_start=utc(2025, 5, 1)).exists()
    # 21 of May's 31 days left: credit -49 x 21/31 = -33.1935..., charge 149 x 21/31 = 100.9354...
    assert (result.preview.credit, result.preview.charge) == (D("-33.19"), D("100.94"))


def test_change_after_a_pending_cancellation_ended_is_refused(in_public):
    sub = bare_subscription(plan=plan("starter"), start=utc(2025, 4, 1))
    services.subscription_cancel(tenant=sub.tenant, actor="o", now=utc(2025, 4, 2))
    with pytest.raises(services.BillingStateError):
        services.subscription_change_plan(
            tenant=sub.tenant, plan=plan("pro"), interval="month", actor="o", now=utc(2025, 5, 11)
        )


def test_downgrade_refused_when_this_months_api_calls_exceed_the_new_allowance(firm):
    from billing import metering

    activate(firm, code="enterprise", anchor=utc(2025, 1, 1), end=utc(2099, 1, 1))
    metering.record_api_call(firm.pk, count=60_000)  # Starter allows 50,000 a month, hard limit
    preview = services.subscription_change_preview(tenant=firm, plan=plan("starter"), interval="month")
    assert any("50000 API calls a month; you have made 60000" in reason for reason in preview.blockers)
