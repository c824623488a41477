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


def test_owner_previews_approves_and_issues_from_the_pages(
    owner_client, subscribed, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):  # the background job runs on commit
        response = owner_client.post(
            "/fees/runs/", {"period_start": "2026-07-01", "period_end": "2026-09-30", "frequency": "quarterly"}
        )
    run = FeeRun.objects.get()
    assert response.status_code == 302 and response["Location"] == "/fees/runs/"
    done = owner_client.get("/fees/runs/")  # the preview this session started is ready: go to it
    assert done.status_code == 302 and done["Location"] == f"/fees/runs/{run.pk}/"
    page = owner_client.get(f"/fees/runs/{run.pk}/").content.decode()
    assert "Ada main" in page and "2,520.55" in page and "Approve this preview" in page
    owner_client.post(f"/fees/runs/{run.pk}/approve/")
    assert "Issue invoices" in owner_client.get(f"/fees/runs/{run.pk}/").content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        owner_client.post(f"/fees/runs/{run.pk}/issue/", {"confirmed": "yes"})
    assert FeeInvoice.objects.get().total == Decimal("2520.55")
    assert "1 invoice(s) issued" in owner_client.get(f"/fees/runs/{run.pk}/").content.decode()


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
    assert csv.content.decode().splitlines()[1].startswith("Ada household,USD,2520.55,")


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


# --- create / edit / archive pages ------------------------------------------------------------------


def _tiers(rows: list[tuple[str, str]]) -> dict:
    out = {}
    for i, (upto, bps) in enumerate(rows):
        out[f"tiers-upto_{i}"], out[f"tiers-bps_{i}"] = upto, bps
    return out


def test_owner_creates_a_schedule_with_a_tiers_table_and_exclusions(owner_client):
    from fees.models import FeeSchedule

    data = {
        "name": "Premier",
        "currency": "USD",
        "excluded_asset_classes": ["crypto", "real_estate"],
        "terms-effective_from": "2026-01-01",
        "terms-method": "tiered",
        "terms-minimum_annual": "2500",
        **_tiers([("1000000", "100"), ("", "75")]),
    }
    response = owner_client.post("/fees/schedules/new/", data)
    schedule = FeeSchedule.objects.get(name="Premier")
    assert response.status_code == 302 and response["Location"] == f"/fees/schedules/{schedule.pk}/"
    version = schedule.versions.get()
    assert version.tiers == [{"upto": "1000000", "bps": "100"}, {"upto": None, "bps": "75"}]
    assert version.minimum_annual == Decimal("2500") and version.excluded_asset_classes == ["crypto", "real_estate"]
    page = owner_client.get(f"/fees/schedules/{schedule.pk}/").content.decode()
    assert "Premier" in page and "asset classes: crypto, real_estate" in page


def test_overlapping_tiers_are_shown_on_their_row_and_the_input_is_kept(owner_client):
    from fees.models import FeeSchedule

    data = {
        "name": "Broken tiers",
        "currency": "USD",
        "terms-effective_from": "2026-01-01",
        "terms-method": "tiered",
        **_tiers([("1000000", "100"), ("500000", "90"), ("", "75")]),
    }
    response = owner_client.post("/fees/schedules/new/", data)
    html = response.content.decode()
    assert response.status_code == 200 and not FeeSchedule.objects.filter(name="Broken tiers").exists()
    assert 'value="Broken tiers"' in html and 'value="500000"' in html
    assert 'id="id_tiers-upto_1_error"' in html  # the error sits on the second row's bound


def test_owner_creates_edits_and_archives_a_product(owner_client, schedule):
    from fees.models import Product

    response = owner_client.post(
        "/fees/products/new/",
        {"name": "Retainer", "currency": "USD", "flat_fee": "300", "fee_schedule": schedule.pk, "description": ""},
    )
    product = Product.objects.get(name="Retainer")
    assert response["Location"] == f"/fees/products/{product.pk}/"
    owner_client.post(f"/fees/products/{product.pk}/", {"action": "save", "name": "Retainer plus", "description": "x"})
    owner_client.post(f"/fees/products/{product.pk}/", {"action": "archive"})
    product.refresh_from_db()
    assert (product.name, product.description, product.archived) == ("Retainer plus", "x", True)
    assert "Archived" in owner_client.get(f"/fees/products/{product.pk}/").content.decode()


def test_a_product_without_pricing_is_refused_next_to_the_field(owner_client):
    from fees.models import Product

    response = owner_client.post("/fees/products/new/", {"name": "Nothing", "currency": "USD"})
    html = response.content.decode()
    assert response.status_code == 200 and not Product.objects.filter(name="Nothing").exists()
    assert 'id="id_fee_schedule_error"' in html and 'value="Nothing"' in html


def test_owner_creates_a_household_and_subscribes_it(owner, owner_client, client_contact, product):
    a = account(owner, client_contact, {date(2026, 6, 1): "1000000"}, name="Ada main")
    b = account(owner, client_contact, {date(2026, 6, 1): "500000"}, name="Ada IRA")
    response = owner_client.post(
        "/fees/groups/new/", {"name": "Ada family", "client": client_contact.pk, "portfolios": [a.pk, b.pk]}
    )
    group = BillingGroup.objects.get(name="Ada family")
    assert response["Location"] == f"/fees/groups/{group.pk}/"
    assert sorted(group.portfolios.values_list("pk", flat=True)) == sorted([a.pk, b.pk])
    response = owner_client.post(
        "/fees/subscriptions/new/",
        {
            "group": group.pk,
            "product": product.pk,
            "starts_on": "2026-06-01",
            "frequency": "quarterly",
            "timing": "arrears_adb",
            "day_count": "actual_365",
            "collection": "invoice",
        },
    )
    sub = group.subscriptions.get()
    assert response["Location"] == f"/fees/subscriptions/{sub.pk}/"
    owner_client.post(f"/fees/subscriptions/{sub.pk}/", {"ends_on": "2026-12-31"})
    sub.refresh_from_db()
    assert sub.ends_on == date(2026, 12, 31)
    # the group page: its accounts can be changed, one taken out
    owner_client.post(f"/fees/groups/{group.pk}/", {"name": "Ada family", "portfolios": [a.pk]})
    assert list(group.portfolios.values_list("pk", flat=True)) == [a.pk]


def test_a_subscription_before_the_accounts_exist_is_refused_next_to_the_field(owner_client, subscribed, product):
    response = owner_client.post(
        "/fees/subscriptions/new/",
        {
            "group": subscribed.pk,
            "product": product.pk,
            "starts_on": "2020-01-01",
            "frequency": "quarterly",
            "timing": "arrears_adb",
            "day_count": "actual_365",
            "collection": "invoice",
        },
    )
    html = response.content.decode()
    assert response.status_code == 200 and 'id="id_starts_on_error"' in html and 'value="2020-01-01"' in html
    assert subscribed.subscriptions.count() == 1


def test_owner_voids_an_issued_invoice_from_the_page(owner, owner_client, subscribed):
    run = fee_services.fee_run_preview(
        period_start=date(2026, 7, 1), period_end=date(2026, 9, 30), frequency="quarterly"
    )
    fee_services.fee_run_approve(run=run, actor=owner)
    fee_services.fee_run_issue(run=run, issued_on=date(2026, 10, 1))
    invoice = FeeInvoice.objects.get()
    assert f"/fees/invoices/{invoice.pk}/void/" in owner_client.get(f"/fees/runs/{run.pk}/").content.decode()
    refused = owner_client.post(f"/fees/invoices/{invoice.pk}/void/", {"reason": ""})
    assert refused.status_code == 200 and 'id="id_reason_error"' in refused.content.decode()
    response = owner_client.post(f"/fees/invoices/{invoice.pk}/void/", {"reason": "Wrong schedule"})
    invoice.refresh_from_db()
    assert response.status_code == 302 and (invoice.status, invoice.void_reason) == ("void", "Wrong schedule")


def test_create_forms_carry_a_one_time_key_and_a_resend_creates_one_product(owner_client, schedule):
    import re

    from fees.models import Product

    html = owner_client.get("/fees/products/new/").content.decode()
    key = re.search(r'name="idempotency_key" value="([0-9a-f]{32})"', html).group(1)
    data = {"name": "Once", "currency": "USD", "fee_schedule": schedule.pk, "idempotency_key": key}
    first = owner_client.post("/fees/products/new/", data)
    second = owner_client.post("/fees/products/new/", data)
    assert second["Location"] == first["Location"] and second["Idempotent-Replayed"] == "true"
    assert Product.objects.filter(name="Once").count() == 1


def test_viewer_reads_the_pages_but_cannot_write(viewer_client, schedule, product, subscribed):
    assert viewer_client.get(f"/fees/schedules/{schedule.pk}/").status_code == 200
    assert viewer_client.get(f"/fees/groups/{subscribed.pk}/").status_code == 200
    assert viewer_client.get("/fees/products/new/").status_code == 403
    response = viewer_client.post(f"/fees/products/{product.pk}/", {"action": "archive"})
    assert response.status_code == 403
    product.refresh_from_db()
    assert not product.archived


def test_advisor_sees_their_own_book_and_not_another(advisor, advisor_client, client_for, advisor2, product):
    mine = ContactFactory(owner=advisor, first_name="Mine")
    theirs = ContactFactory(owner=advisor2, first_name="Theirs")
    own_group = fee_services.billing_group_create(
        name="Mine household", client=mine, portfolios=[account(advisor, mine, {date(2026, 6, 1): "1000"})]
    )
    other_group = fee_services.billing_group_create(
        name="Theirs household", client=theirs, portfolios=[account(advisor2, theirs, {date(2026, 6, 1): "1000"})]
    )
    assert advisor_client.get(f"/fees/groups/{own_group.pk}/").status_code == 200
    assert advisor_client.get(f"/fees/groups/{other_group.pk}/").status_code == 404
    assert advisor_client.post(f"/fees/groups/{own_group.pk}/", {"name": "Renamed"}).status_code == 403


def test_another_firm_reaches_none_of_the_fee_pages(outsider_client, schedule, product, subscribed):
    sub = subscribed.subscriptions.get()
    for path in (
        f"/fees/schedules/{schedule.pk}/",
        f"/fees/products/{product.pk}/",
        f"/fees/groups/{subscribed.pk}/",
        f"/fees/subscriptions/{sub.pk}/",
    ):
        response = outsider_client.get(path)
        assert response.status_code == 404, path
        assert "Ada household" not in response.content.decode()
