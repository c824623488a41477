"""Change history of the records a firm keeps in the public schema (decision 0931): its settings,
domains, subscription, invoices, invoice lines and payments (and operators' plans). Recorded by
triggers like the firm's own records, with who and which request copied into each event; the
firm's trail export includes them, never another firm's."""

from __future__ import annotations

import csv
import io

import pghistory
import pytest
from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.utils import timezone
from django_tenants.utils import schema_context

from billing import services as billing_services
from billing.models import Invoice, InvoiceLine, Payment, Plan, Subscription
from codex.history import event_model_of, history_purge, object_history
from tenants.models import Tenant
from tests.billing.conftest import plan, utc
from tests.billing.factories import bare_subscription

pytestmark = pytest.mark.django_db


@pytest.fixture
def in_public():
    previous = connection.tenant
    connection.set_schema_to_public()
    yield
    connection.set_tenant(previous)


def _public(fn, *args, **kwargs):
    with schema_context(settings.PUBLIC_SCHEMA_NAME):
        return fn(*args, **kwargs)


def test_firm_settings_changed_on_the_page_are_recorded_with_who_and_the_request(firm, owner, owner_client):
    response = owner_client.post(
        "/settings/",
        {"name": "Acme Wealth", "brand_color": "#123456", "require_2fa": ""},
        HTTP_X_REQUEST_ID="req-settings-1",
    )
    assert response.status_code == 302, response.content
    last = _public(lambda: object_history(obj=Tenant.objects.get(pk=firm.pk))[-1])
    assert last.action == "update"
    assert last.changes["brand_color"][1] == "#123456" and last.changes["name"][1] == "Acme Wealth"
    assert last.user_id == owner.pk and last.request_id == "req-settings-1"


def test_a_subscription_change_by_any_path_is_recorded(firm):
    sub = _public(Subscription.objects.get, tenant_id=firm.pk)
    with schema_context(settings.PUBLIC_SCHEMA_NAME), connection.cursor() as cursor:
        cursor.execute(
            "UPDATE billing_subscription SET cancel_at_period_end = NOT cancel_at_period_end WHERE id = %s", [sub.pk]
        )
    last = _public(lambda: object_history(obj=Subscription.objects.get(pk=sub.pk))[-1])
    assert last.action == "update"
    assert last.changes["cancel_at_period_end"] == (sub.cancel_at_period_end, not sub.cancel_at_period_end)
    assert last.who == "system"  # no request, no user: a job or a console session without context


def test_invoice_run_and_payment_are_recorded(in_public):
    sub = bare_subscription(plan=plan("starter"), start=utc(2026, 3, 1))
    with pghistory.context(job="billing.invoice_run"):
        billing_services.invoice_run(now=utc(2026, 3, 1, 1), subscription_ids=[sub.pk])
    invoice = Invoice.objects.get(subscription=sub)
    assert [e.action for e in object_history(obj=invoice)][0] == "insert"
    assert object_history(obj=invoice)[0].metadata["job"] == "billing.invoice_run"
    line = InvoiceLine.objects.filter(invoice=invoice).first()
    assert object_history(obj=line)[0].changes["amount"][1] == line.amount
    payment = billing_services.invoice_mark_paid(invoice=invoice, actor="ops@codex.test")
    statuses = [
        e.changes["status"] for e in object_history(obj=Invoice.objects.get(pk=invoice.pk)) if "status" in e.changes
    ]
    assert statuses[-1][1] == "paid"
    assert object_history(obj=Payment.objects.get(pk=payment.pk))[0].action == "insert"


def test_plan_edits_by_operators_are_recorded(in_public):
    starter = Plan.objects.get(code="starter")
    Plan.objects.filter(pk=starter.pk).update(name="Starter 2027")
    assert object_history(obj=starter)[-1].changes["name"][1] == "Starter 2027"


def test_public_history_is_append_only(firm):
    with schema_context(settings.PUBLIC_SCHEMA_NAME):
        Subscription.objects.filter(tenant_id=firm.pk).update(credit_balance=1)
        table = event_model_of(Subscription)._meta.db_table
        with pytest.raises(DatabaseError, match="append_only"), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(f"DELETE FROM {table}")  # noqa: S608


def test_the_firms_trail_includes_its_public_records_and_no_other_firms(firm, other_firm, owner_client):
    with schema_context(settings.PUBLIC_SCHEMA_NAME):
        Tenant.objects.filter(pk=firm.pk).update(brand_color="#00aa00")
        Tenant.objects.filter(pk=other_firm.pk).update(brand_color="#aa0000")
        Subscription.objects.filter(tenant_id__in=[firm.pk, other_firm.pk]).update(credit_balance=2)
        theirs = Subscription.objects.get(tenant_id=other_firm.pk).pk
        mine = Subscription.objects.get(tenant_id=firm.pk).pk
    today = timezone.localdate().isoformat()
    response = owner_client.get("/history/export/", {"start": today, "end": today})
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    firm_rows = [r for r in rows if r["record_type"] == "tenants.Tenant"]
    assert {r["record_id"] for r in firm_rows} == {str(firm.pk)}
    assert any(r["field"] == "brand_color" and r["after"] == "#00aa00" for r in firm_rows)
    subs = {r["record_id"] for r in rows if r["record_type"] == "billing.Subscription"}
    assert subs == {str(mine)} and str(theirs) not in subs


def test_the_purge_in_the_public_schema_removes_old_public_events(firm, settings):
    with schema_context(settings.PUBLIC_SCHEMA_NAME):
        Tenant.objects.filter(pk=firm.pk).update(brand_color="#0000aa")
        model = event_model_of(Tenant)
        assert model.objects.filter(pgh_obj_id=firm.pk).exists()
        settings.CODEX_HISTORY_RETENTION_DAYS = -1
        counts = history_purge()
        assert counts["tenants.TenantEvent"] >= 1
        assert not model.objects.filter(pgh_obj_id=firm.pk).exists()
