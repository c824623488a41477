"""The fee pages: an owner previews, approves and issues a run; revenue with CSV; the client
record lists the client's products; roles and the plan gate; pinned query counts."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from crm import services as crm_services
from fees import services as fee_services
from fees.models import BillingGroup, FeeInvoice, FeeRun
from tests.billing.conftest import activate
from tests.fees.conftest import account
from tests.portfolios.factories import ContactFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def subscribed(owner, client_contact, product):
    portfolio = account(owner, client_contact, {date(2026, 6, 1): "1000000"}, name="Ada main")
    group = fee_services.billing_group_create(name="Ada household", client=client_contact, portfolios=[portfolio])
    fee_services.subscription_create(group=group, product=product, starts_on=date(2026, 6, 1))
    return group


def test_owner_previews_approves_and_issues_from_the_pages(owner_client, subscribed):
    response = owner_client.post(
        "/fees/runs/", {"period_start": "2026-07-01", "period_end": "2026-09-30", "frequency": "quarterly"}
    )
    run = FeeRun.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/fees/runs/{run.pk}/"
    page = owner_client.get(f"/fees/runs/{run.pk}/").content.decode()
    assert "Ada main" in page and "2,520.55" in page and "Approve this preview" in page
    owner_client.post(f"/fees/runs/{run.pk}/approve/")
    assert "Issue invoices" in owner_client.get(f"/fees/runs/{run.pk}/").content.decode()
    owner_client.post(f"/fees/runs/{run.pk}/issue/", {"confirmed": "yes"})
    assert FeeInvoice.objects.get().total == Decimal("2520.55")


def test_a_bad_period_is_shown_on_the_form(owner_client):
    response = owner_client.post(
        "/fees/runs/", {"period_start": "2026-07-01", "period_end": "2026-09-29", "frequency": "quarterly"}
    )
    assert response.status_code == 200 and "The period must be a whole quarter" in response.content.decode()
    assert not FeeRun.objects.exists()


def test_viewer_reads_runs_but_cannot_start_one(viewer_client):
    assert viewer_client.get("/fees/runs/").status_code == 200
    response = viewer_client.post(
        "/fees/runs/", {"period_start": "2026-07-01", "period_end": "2026-09-30", "frequency": "quarterly"}
    )
    assert response.status_code == 403 and not FeeRun.objects.exists()


def test_advisor_is_refused_runs(advisor_client):
    assert advisor_client.get("/fees/runs/").status_code == 403


def test_overview_lists_products_and_households(owner_client, subscribed, django_assert_max_num_queries):
    with django_assert_max_num_queries(20):
        page = owner_client.get("/fees/").content.decode()
    assert "Wealth management" in page and "Ada household" in page and "Ada main" in page


def test_revenue_page_and_csv(owner, owner_client, subscribed):
    run = fee_services.fee_run_preview(
        period_start=date(2026, 7, 1), period_end=date(2026, 9, 30), frequency="quarterly"
    )
    fee_services.fee_run_approve(run=run, actor=owner)
    fee_services.fee_run_issue(run=run, issued_on=date(2026, 10, 1))
    page = owner_client.get("/fees/revenue/?start=2026-01-01&end=2026-12-31&by=household").content.decode()
    assert "Ada household" in page and "2,520.55" in page and "Download CSV" in page
    csv = owner_client.get("/fees/revenue.csv?start=2026-01-01&end=2026-12-31&by=household")
    assert csv.content.decode().splitlines()[1].startswith("Ada household,2520.55,")


def test_client_record_shows_the_clients_products_and_invoices(owner_client, client_contact, subscribed):
    page = owner_client.get(f"/crm/contacts/{client_contact.pk}/").content.decode()
    assert "Subscribed to Wealth management" in page


def test_a_contact_merge_moves_the_fee_rows(owner, client_contact, subscribed):
    survivor = ContactFactory(owner=owner)
    crm_services.contact_merge(actor=owner, survivor=survivor, loser=client_contact)
    assert BillingGroup.objects.get(pk=subscribed.pk).client == survivor


def test_plan_without_fee_billing_shows_the_upgrade_message(firm, owner_client):
    activate(firm, code="starter")
    response = owner_client.get("/fees/")
    assert response.status_code == 402 and "does not include fee_billing" in response.content.decode()


def test_pricing_page_lists_client_fee_billing_by_plan(public_client):
    page = public_client.get("/pricing/").content.decode()
    assert "Client fee billing" in page
