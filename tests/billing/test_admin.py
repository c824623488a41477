"""Operator console: invoice filters and actions, manual payments, webhook events, revenue page
with inline SVG charts from codex.charts."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.conf import settings
from django_otp import DEVICE_ID_SESSION_KEY
from django_tenants.utils import schema_context

from billing import services
from billing.models import Invoice, InvoiceStatus, Payment
from tenants.accounts.models import SealedTOTPDevice, User

from .conftest import plan, utc
from .factories import bare_subscription

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator_client(public_client):
    with schema_context(settings.PUBLIC_SCHEMA_NAME):
        operator = User.objects.create_superuser("ops-billing@codex.test", None)  # no hashing: fast
        device = SealedTOTPDevice.objects.create(user=operator, name="test", confirmed=True)
        public_client.force_login(operator)
        session = public_client.session
        session[DEVICE_ID_SESSION_KEY] = device.persistent_id
        session.save()
    return public_client


@pytest.fixture
def invoices(in_public):
    made = []
    for code, day in (("starter", 1), ("pro", 2), ("starter", 3)):
        sub = bare_subscription(plan=plan(code), start=utc(2026, 3, day))
        services.invoice_run(now=utc(2026, 3, day, 1), subscription_ids=[sub.pk])
        made.append(Invoice.objects.get(subscription=sub))
    return made


def test_invoice_list_filters_by_state(operator_client, invoices):
    services.invoice_mark_paid(invoice=invoices[0], actor="op")
    page = operator_client.get("/admin/billing/invoice/?status__exact=paid").content.decode()
    assert invoices[0].number in page and invoices[1].number not in page


def test_actions_mark_paid_void_and_refuse_bad_transitions(operator_client, invoices):
    a, b, c = invoices
    r = operator_client.post(
        "/admin/billing/invoice/", {"action": "mark_paid", "_selected_action": [a.pk]}, follow=True
    )
    assert "1 invoice(s) marked paid" in r.content.decode()
    operator_client.post("/admin/billing/invoice/", {"action": "void", "_selected_action": [b.pk]})
    r = operator_client.post("/admin/billing/invoice/", {"action": "void", "_selected_action": [a.pk]}, follow=True)
    assert "cannot be voided" in r.content.decode()
    operator_client.post("/admin/billing/invoice/", {"action": "mark_uncollectible", "_selected_action": [c.pk]})
    statuses = dict(Invoice.objects.filter(pk__in=[a.pk, b.pk, c.pk]).values_list("pk", "status"))
    assert statuses == {a.pk: InvoiceStatus.PAID, b.pk: InvoiceStatus.VOID, c.pk: InvoiceStatus.UNCOLLECTIBLE}


def test_finalize_action_numbers_a_draft(operator_client, invoices):
    sub = invoices[0].subscription
    draft = Invoice.objects.create(
        tenant=sub.tenant, subscription=sub, plan=sub.plan, currency="USD",
        period_start=utc(2020, 1, 1), period_end=utc(2020, 2, 1), interval="month", subtotal=1, total=1,
    )  # fmt: skip
    operator_client.post("/admin/billing/invoice/", {"action": "finalize", "_selected_action": [draft.pk]})
    draft.refresh_from_db()
    assert draft.status == InvoiceStatus.OPEN and draft.number


def test_operator_records_a_partial_manual_payment(operator_client, invoices):
    invoice = invoices[0]
    r = operator_client.post(
        "/admin/billing/payment/add/", {"invoice": invoice.pk, "kind": "payment", "amount": "20.00", "note": "wire"}
    )
    assert r.status_code == 302, r.content.decode()[:2000]
    invoice.refresh_from_db()
    assert invoice.amount_paid == Decimal("20.00") and invoice.status == InvoiceStatus.OPEN
    payment = Payment.objects.get(invoice=invoice)
    assert payment.provider == "manual" and payment.recorded_by == "ops-billing@codex.test"


def test_operator_overpayment_is_a_form_error(operator_client, invoices):
    r = operator_client.post(
        "/admin/billing/payment/add/", {"invoice": invoices[0].pk, "kind": "payment", "amount": "99.00", "note": ""}
    )
    assert r.status_code == 200 and "is due" in r.content.decode()
    assert not Payment.objects.exists()


def test_revenue_page_draws_its_charts_inline_with_the_product_chart_module(operator_client, invoices):
    services.invoice_mark_paid(invoice=invoices[1], actor="op")
    page = operator_client.get("/admin/billing/invoice/revenue/")
    body = page.content.decode()
    assert page.status_code == 200 and "MRR" in body and "ARR" in body and "Churn" in body
    # the four charts of the firms' pages' look: inline SVG with a data table, no pygal, no inline style
    assert body.count('<svg class="chart"') == 4 and body.count('class="chart-data"') == 4
    assert "css/charts.css" in body and "js/charts.js" in body
    assert "kozea" not in body and 'style="' not in body.split('<div id="content-main">')[1]
    assert 'data-chart="' in body  # the MRR line carries its points for the crosshair
    gone = operator_client.get("/admin/billing/invoice/revenue/mrr.svg")  # the pygal images are gone
    assert gone.status_code != 200 and gone.get("Content-Type") != "image/svg+xml"


def test_revenue_figures(in_public):
    from billing.selectors import revenue_overview

    base = revenue_overview(now=utc(2026, 3, 20))
    bare_subscription(plan=plan("pro"), start=utc(2026, 3, 1))
    bare_subscription(plan=plan("starter"), interval="year", start=utc(2026, 3, 1))
    after = revenue_overview(now=utc(2026, 3, 20))
    assert after.mrr - base.mrr == Decimal("189.83")  # 149.00 + 490.00 / 12, rounded once
    assert after.arr == after.mrr * 12


def test_mrr_history_comes_from_invoiced_periods(in_public):
    from billing.selectors import revenue_overview

    before = revenue_overview(now=utc(2026, 5, 20)).mrr_history
    sub = bare_subscription(plan=plan("starter"), interval="year", start=utc(2026, 3, 15))
    services.invoice_run(now=utc(2026, 3, 15, 1), subscription_ids=[sub.pk])
    after = revenue_overview(now=utc(2026, 5, 20)).mrr_history
    delta = [a - b for a, b in zip(after, before, strict=True)]
    # Months 2026-04 and 2026-05 start inside the yearly period: 490 / 12 = 40.83 each; March does not.
    assert delta[-2:] == [Decimal("40.83"), Decimal("40.83")] and delta[-3] == 0


def test_webhook_events_and_printable_invoice_in_console(operator_client, invoices):
    assert operator_client.get("/admin/billing/webhookevent/").status_code == 200
    r = operator_client.get(f"/admin/billing/invoice/{invoices[0].pk}/print/")
    assert r.status_code == 200 and invoices[0].number in r.content.decode()


def test_firm_user_has_no_access_to_the_console(public_client, invoices):
    assert public_client.get("/admin/billing/invoice/revenue/").status_code == 302


def test_seed_billing_makes_paid_and_open_invoices_once(firm, in_public):
    from django.core.management import call_command

    call_command("seed_billing", verbosity=0)
    statuses = list(Invoice.objects.filter(tenant=firm).order_by("period_start").values_list("status", flat=True))
    assert statuses[:-1] == [InvoiceStatus.PAID] * (len(statuses) - 1) and statuses[-1] == InvoiceStatus.OPEN
    assert len(statuses) == 4
    call_command("seed_billing", verbosity=0)
    assert Invoice.objects.filter(tenant=firm).count() == 4
    assert Invoice.objects.filter(tenant=firm).first().tax_rate == Decimal("0.2")


def test_invoice_list_links_to_the_revenue_page(operator_client, invoices):
    page = operator_client.get("/admin/billing/invoice/").content.decode()
    assert 'href="/admin/billing/invoice/revenue/"' in page
