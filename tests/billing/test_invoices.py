"""Invoices: lines and totals rounded once per line, tax per firm, gapless numbers, one per period,
state transitions (draft/open/paid/void/uncollectible), pages, API and isolation between firms."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction

from billing import services
from billing.models import (
    BillingProfile,
    Invoice,
    InvoiceCounter,
    InvoiceStatus,
    LineKind,
    Metric,
    PendingItem,
    UsageDaily,
)

from .conftest import activate, plan, utc
from .factories import bare_subscription

D = Decimal
pytestmark = pytest.mark.django_db


def _first_invoice(sub, now=None):
    services.invoice_run(now=now or sub.current_period_start + timedelta(minutes=1), subscription_ids=[sub.pk])
    return Invoice.objects.get(subscription=sub, period_start=sub.current_period_start)


def test_lines_are_rounded_once_and_tax_once_on_the_subtotal(in_public):
    # Pro, 13 seats (10 included: 3 extra at 25.00), 20 % tax, and a proration charge of 0.005-ish
    # amounts held as exact pending items.
    sub = bare_subscription(plan=plan("pro"), start=utc(2026, 3, 1), seats=13)
    BillingProfile.objects.create(tenant=sub.tenant, tax_rate=D("0.2"), legal_name="Bare Ltd")
    PendingItem.objects.create(
        subscription=sub, kind=LineKind.PRORATION_CHARGE, description="x", amount=D("33.335"), currency="USD"
    )
    invoice = _first_invoice(sub)
    lines = list(invoice.lines.values_list("kind", "quantity", "unit_amount", "amount"))
    assert lines == [
        (LineKind.BASE, D("1"), D("149.00"), D("149.00")),
        (LineKind.SEATS, D("3"), D("25.00"), D("75.00")),
        (LineKind.PRORATION_CHARGE, D("1"), D("33.335"), D("33.34")),  # half up, once
    ]
    assert invoice.subtotal == D("257.34")
    assert invoice.tax == D("51.47")  # 257.34 * 0.2 = 51.468
    assert invoice.total == D("308.81")
    assert invoice.bill_to["name"] == "Bare Ltd" and invoice.tax_rate == D("0.2")


def test_yearly_seats_are_charged_for_twelve_months(in_public):
    sub = bare_subscription(plan=plan("starter"), interval="year", start=utc(2026, 1, 1), seats=4)
    invoice = _first_invoice(sub)
    assert invoice.lines.get(kind=LineKind.SEATS).amount == D("180.00")  # 1 extra x 15 x 12
    assert invoice.total == D("670.00")


def test_overage_billed_in_arrears_on_the_next_invoice(in_public):
    sub = bare_subscription(plan=plan("pro"), start=utc(2026, 3, 1))
    _first_invoice(sub)
    UsageDaily.objects.create(tenant=sub.tenant, day=utc(2026, 3, 10).date(), metric=Metric.API_CALLS, count=1_002_001)
    services.invoice_run(now=utc(2026, 4, 1, 1), subscription_ids=[sub.pk])
    april = Invoice.objects.get(subscription=sub, period_start=utc(2026, 4, 1))
    overage = april.lines.get(kind=LineKind.OVERAGE)
    assert (overage.quantity, overage.unit_amount, overage.amount) == (
        D("3"),
        D("0.50"),
        D("1.50"),
    )  # 2,001 -> 3 x 1,000


def test_numbers_are_sequential_without_gaps_per_year(in_public):
    subs = [bare_subscription(plan=plan("starter"), start=utc(2031, 1, 1, h)) for h in range(3)]
    services.invoice_run(now=utc(2031, 1, 1, 5), subscription_ids=[s.pk for s in subs])
    numbers = sorted(Invoice.objects.filter(subscription__in=subs).values_list("number", flat=True))
    last = InvoiceCounter.objects.get(year=2031).last_number
    assert numbers == [f"CDX-2031-{n:06d}" for n in range(last - 2, last + 1)]


def test_a_failed_finalize_rolls_the_counter_back(in_public):
    sub = bare_subscription(plan=plan("starter"), start=utc(2032, 1, 1))
    before = InvoiceCounter.objects.filter(year=2032).values_list("last_number", flat=True).first() or 0
    with pytest.raises(RuntimeError), transaction.atomic():
        services.invoice_run(now=utc(2032, 1, 1, 1), subscription_ids=[sub.pk])
        raise RuntimeError("crash after numbering")
    assert (InvoiceCounter.objects.filter(year=2032).values_list("last_number", flat=True).first() or 0) == before
    services.invoice_run(now=utc(2032, 1, 1, 1), subscription_ids=[sub.pk])
    assert Invoice.objects.get(subscription=sub).number == f"CDX-2032-{before + 1:06d}"


def test_database_refuses_a_second_invoice_for_the_same_period(in_public):
    sub = bare_subscription(plan=plan("starter"), start=utc(2026, 3, 1))
    invoice = _first_invoice(sub)
    with pytest.raises(IntegrityError), transaction.atomic():
        Invoice.objects.create(
            tenant=sub.tenant,
            subscription=sub,
            plan=sub.plan,
            currency="USD",
            period_start=invoice.period_start,
            period_end=invoice.period_end,
            interval="month",
        )


def test_free_plan_invoice_is_paid_at_once(in_public):
    sub = bare_subscription(plan=plan("free"), start=utc(2026, 3, 1))
    invoice = _first_invoice(sub)
    assert invoice.total == 0 and invoice.status == InvoiceStatus.PAID and invoice.number


def test_void_keeps_the_number_and_returns_pending_items(in_public):
    sub = bare_subscription(plan=plan("starter"), start=utc(2026, 3, 1))
    PendingItem.objects.create(
        subscription=sub, kind=LineKind.PRORATION_CHARGE, description="x", amount=D("5"), currency="USD"
    )
    invoice = _first_invoice(sub)
    services.invoice_void(invoice=invoice, actor="op")
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.VOID and invoice.number and invoice.voided_at
    assert PendingItem.objects.filter(subscription=sub, invoice__isnull=True).count() == 1
    with pytest.raises(services.BillingStateError):
        services.invoice_void(invoice=invoice, actor="op")


def test_open_to_uncollectible_then_paid(in_public):
    sub = bare_subscription(plan=plan("starter"), start=utc(2026, 3, 1))
    invoice = _first_invoice(sub)
    services.invoice_mark_uncollectible(invoice=invoice, actor="op")
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.UNCOLLECTIBLE
    services.invoice_mark_paid(invoice=invoice, actor="op")
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.PAID and invoice.amount_due == 0


def test_paid_invoice_cannot_be_voided_or_marked_uncollectible(in_public):
    sub = bare_subscription(plan=plan("starter"), start=utc(2026, 3, 1))
    invoice = _first_invoice(sub)
    services.invoice_mark_paid(invoice=invoice, actor="op")
    with pytest.raises(services.BillingStateError):
        services.invoice_void(invoice=invoice, actor="op")
    with pytest.raises(services.BillingStateError):
        services.invoice_mark_uncollectible(invoice=invoice, actor="op")
    with pytest.raises(services.BillingStateError):
        services.invoice_mark_paid(invoice=invoice, actor="op")


def test_draft_finalize_assigns_a_number(in_public):
    sub = bare_subscription(plan=plan("starter"), start=utc(2026, 3, 1))
    draft = Invoice.objects.create(
        tenant=sub.tenant,
        subscription=sub,
        plan=sub.plan,
        currency="USD",
        period_start=utc(2020, 1, 1),
        period_end=utc(2020, 2, 1),
        interval="month",
        total=D("10"),
        subtotal=D("10"),
    )
    assert draft.number is None
    services.invoice_finalize(invoice=draft, actor="op", now=utc(2026, 3, 2))
    draft.refresh_from_db()
    assert draft.status == InvoiceStatus.OPEN and draft.number.startswith("CDX-2026-")
    with pytest.raises(services.BillingStateError):
        services.invoice_finalize(invoice=draft, actor="op")


# --- Pages, API, isolation -------------------------------------------------------------------------
@pytest.fixture
def acme_invoice(firm):
    sub = activate(firm, code="starter", anchor=utc(2026, 3, 1))
    services.invoice_run(now=utc(2026, 3, 1, 1), subscription_ids=[sub.pk])
    return Invoice.objects.get(subscription=sub)


@pytest.fixture
def globex_invoice(other_firm):
    sub = activate(other_firm, code="starter", anchor=utc(2026, 2, 1))
    services.invoice_run(now=utc(2026, 2, 1, 1), subscription_ids=[sub.pk])
    return Invoice.objects.get(subscription=sub)


def test_owner_sees_the_printable_invoice(owner_client, acme_invoice):
    response = owner_client.get(f"/billing/invoices/{acme_invoice.pk}/")
    assert response.status_code == 200
    body = response.content.decode()
    assert acme_invoice.number in body and "Starter plan (monthly)" in body and "@media print" not in body
    assert "billing/billing.css" in body


def test_firm_never_sees_another_firms_invoice_page(owner_client, acme_invoice, globex_invoice):
    assert owner_client.get(f"/billing/invoices/{acme_invoice.pk}/").status_code == 200
    assert owner_client.get(f"/billing/invoices/{globex_invoice.pk}/").status_code == 404


def test_firm_never_sees_another_firms_invoices_in_the_api(owner_client, acme_invoice, globex_invoice):
    listing = owner_client.get("/api/v1/billing/invoices/").json()
    assert [row["number"] for row in listing["results"]] == [acme_invoice.number]
    assert owner_client.get(f"/api/v1/billing/invoices/{acme_invoice.pk}/").status_code == 200
    detail = owner_client.get(f"/api/v1/billing/invoices/{globex_invoice.pk}/")
    assert detail.status_code == 404 and detail.json()["error"]["code"] == "not_found"


def test_outsider_key_cannot_read_acme_invoice(client, api_key_for, other_firm, acme_invoice):
    key = api_key_for(other_firm, "read")
    response = client.get(f"/api/v1/billing/invoices/{acme_invoice.pk}/", HTTP_HOST="api.localhost", HTTP_X_API_KEY=key)
    assert response.status_code == 404


def test_invoice_detail_api_has_lines_and_amount_due(owner_client, acme_invoice):
    data = owner_client.get(f"/api/v1/billing/invoices/{acme_invoice.pk}/").json()
    assert data["lines"][0]["kind"] == "base" and D(data["amount_due"]) == acme_invoice.total
    assert data["html_url"] == f"/billing/invoices/{acme_invoice.pk}/"


def test_invoice_list_query_count_does_not_grow_with_rows(owner_client, firm):
    sub = activate(firm, code="starter", anchor=utc(2026, 1, 1))
    services.invoice_run(now=utc(2026, 1, 1, 1), subscription_ids=[sub.pk])
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    owner_client.get("/api/v1/billing/invoices/")  # warm the session and throttle cache rows
    with CaptureQueriesContext(connection) as one:
        assert owner_client.get("/api/v1/billing/invoices/").json()["count"] == 1
    services.invoice_run(now=utc(2026, 6, 1, 1), subscription_ids=[sub.pk])  # 5 more periods
    with CaptureQueriesContext(connection) as many:
        assert owner_client.get("/api/v1/billing/invoices/").json()["count"] == 6
    assert len(many) == len(one)
