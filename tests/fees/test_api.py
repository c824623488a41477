"""The fee API: roles (owners/admins manage, advisors read their book, viewers read), another
firm reaches nothing, the plan gates it, a whole run through the API."""

from __future__ import annotations

import json
from datetime import date

import pytest

from fees import services as fee_services
from tests.billing.conftest import activate
from tests.fees.conftest import account
from tests.portfolios.factories import ContactFactory

pytestmark = pytest.mark.django_db


def post(client, path, body):
    return client.post(path, json.dumps(body), content_type="application/json")


@pytest.fixture
def group(owner, advisor2, product):
    contact = ContactFactory(owner=advisor2)
    portfolio = account(advisor2, contact, {date(2026, 6, 1): "1000000"})
    group = fee_services.billing_group_create(name="Private household", client=contact, portfolios=[portfolio])
    fee_services.subscription_create(group=group, product=product, starts_on=date(2026, 6, 1))
    return group


def test_owner_runs_a_quarter_through_the_api(owner_client, group):
    run = post(
        owner_client,
        "/api/v1/fee-runs/",
        {"period_start": "2026-07-01", "period_end": "2026-09-30", "frequency": "quarterly"},
    )
    assert run.status_code == 201, run.content
    item = run.json()["items"][0]
    # 1,000,000 at 1 % = 10,000 a year x 92/365 = 2,520.547.. -> 2,520.55
    assert item["total"] == "2520.55" and item["lines"][0]["days"] == 92
    pk = run.json()["id"]
    assert post(owner_client, f"/api/v1/fee-runs/{pk}/issue/", {}).status_code == 400  # not approved
    assert post(owner_client, f"/api/v1/fee-runs/{pk}/approve/", {}).json()["status"] == "approved"
    issued = post(owner_client, f"/api/v1/fee-runs/{pk}/issue/", {"issued_on": "2026-10-01"})
    assert issued.json() == {"groups": 1, "ready": 1, "with_problems": 0, "skipped": 0}
    invoices = owner_client.get("/api/v1/fee-invoices/").json()["results"]
    assert [(i["number"], i["total"], i["status"]) for i in invoices] == [("FEE-2026-000001", "2520.55", "open")]


def test_bad_schedule_through_the_api_names_the_tier(owner_client):
    response = post(
        owner_client,
        "/api/v1/fee-schedules/",
        {
            "name": "Bad",
            "effective_from": "2026-01-01",
            "method": "tiered",
            "tiers": [{"upto": "5000000", "bps": "75"}, {"upto": "1000000", "bps": "100"}, {"upto": None, "bps": "50"}],
        },
    )
    assert response.status_code == 400
    assert "tiers[1].upto" in response.json()["error"]["details"]


def test_advisor_sees_only_their_book_and_cannot_manage(advisor_client, client_for, advisor2, group):
    assert advisor_client.get("/api/v1/billing-groups/").json()["results"] == []
    assert advisor_client.get(f"/api/v1/billing-groups/{group.pk}/").status_code == 404
    assert advisor_client.get("/api/v1/fee-runs/").status_code == 403
    assert post(advisor_client, "/api/v1/products/", {"name": "Mine", "flat_fee": "10"}).status_code == 403
    own = client_for(advisor2)
    assert [g["id"] for g in own.get("/api/v1/billing-groups/").json()["results"]] == [group.pk]


def test_viewer_reads_but_cannot_run(viewer_client, group):
    assert viewer_client.get(f"/api/v1/billing-groups/{group.pk}/").status_code == 200
    response = post(
        viewer_client,
        "/api/v1/fee-runs/",
        {"period_start": "2026-07-01", "period_end": "2026-09-30", "frequency": "quarterly"},
    )
    assert response.status_code == 403


def test_another_firm_cannot_see_or_run_it(outsider_client, owner_client, group):
    assert owner_client.get(f"/api/v1/billing-groups/{group.pk}/").status_code == 200
    assert outsider_client.get(f"/api/v1/billing-groups/{group.pk}/").status_code in (401, 403, 404)
    # a run in their own firm computes their own groups only, never this firm's
    run = post(
        outsider_client,
        "/api/v1/fee-runs/",
        {"period_start": "2026-07-01", "period_end": "2026-09-30", "frequency": "quarterly"},
    )
    assert run.status_code == 201
    assert "Private household" not in run.content.decode()
    assert outsider_client.get(f"/api/v1/fee-runs/{run.json()['id']}/").status_code == 200


def test_a_plan_without_fee_billing_gets_402(firm, owner_client, group):
    activate(firm, code="starter")
    response = owner_client.get("/api/v1/billing-groups/")
    assert response.status_code == 402
    assert response.json()["error"]["code"] == "feature_not_in_plan"


def test_list_query_counts_do_not_grow_with_rows(owner, owner_client, product):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def counts():
        out = {}
        for path in (
            "/api/v1/billing-groups/",
            "/api/v1/client-subscriptions/",
            "/api/v1/fee-invoices/",
            "/api/v1/products/",
        ):
            with CaptureQueriesContext(connection) as ctx:
                assert owner_client.get(path).status_code == 200
            out[path] = len(ctx.captured_queries)
        return out

    def household(n):
        contact = ContactFactory(owner=owner)
        accounts = [account(owner, contact, {date(2026, 6, 1): "1000"}) for _ in range(2)]
        group = fee_services.billing_group_create(name=f"H{n}", client=contact, portfolios=accounts)
        fee_services.subscription_create(group=group, product=product, starts_on=date(2026, 6, 1))

    household(0)
    run = fee_services.fee_run_preview(
        period_start=date(2026, 7, 1), period_end=date(2026, 9, 30), frequency="quarterly"
    )
    fee_services.fee_run_approve(run=run, actor=owner)
    fee_services.fee_run_issue(run=run, issued_on=date(2026, 10, 1))
    counts()  # warm: the first request caches the firm's plan and routing
    one = counts()
    for n in range(1, 4):
        household(n)
    run = fee_services.fee_run_preview(
        period_start=date(2026, 7, 1), period_end=date(2026, 9, 30), frequency="quarterly"
    )
    fee_services.fee_run_approve(run=run, actor=owner)
    fee_services.fee_run_issue(run=run, issued_on=date(2026, 10, 1))
    assert counts() == one


def test_statement_listed_and_downloaded_as_pdf(owner, owner_client, advisor_client, client_for, advisor2, group):
    run = fee_services.fee_run_preview(
        period_start=date(2026, 7, 1), period_end=date(2026, 9, 30), frequency="quarterly"
    )
    fee_services.fee_run_approve(run=run, actor=owner)
    fee_services.fee_run_issue(run=run, issued_on=date(2026, 10, 1))
    listed = owner_client.get("/api/v1/fee-statements/").json()["results"]
    assert [s["number"] for s in listed] == ["FEE-2026-000001"]
    pdf = owner_client.get(f"/api/v1/fee-statements/{listed[0]['id']}/pdf/")
    assert pdf.status_code == 200 and pdf["Content-Type"] == "application/pdf"
    assert b"".join(pdf.streaming_content).startswith(b"%PDF-")
    # the client's advisor sees it; another advisor does not
    assert client_for(advisor2).get(f"/api/v1/fee-statements/{listed[0]['id']}/").status_code == 200
    assert advisor_client.get(f"/api/v1/fee-statements/{listed[0]['id']}/pdf/").status_code == 404


# --- the API as documented (issue 21: the fuzz run of tests/security/test_api_fuzz.py) ---------------


def _fee_schema() -> dict:
    from drf_spectacular.generators import SchemaGenerator

    return SchemaGenerator(urlconf="codex.site.urls_tenant").get_schema(request=None, public=True)["components"][
        "schemas"
    ]


def test_a_tier_without_bps_is_refused_by_the_schema_and_the_api(owner_client):
    tiers = _fee_schema()["FeeScheduleWriteRequest"]["properties"]["tiers"]
    assert tiers["minItems"] == 1 and tiers["items"] == {"$ref": "#/components/schemas/FeeTierRequest"}
    assert "bps" in _fee_schema()["FeeTierRequest"]["required"]
    body = {"name": "Empty tier", "effective_from": "2026-01-01", "method": "tiered", "tiers": [{}]}
    response = post(owner_client, "/api/v1/fee-schedules/", body)
    assert response.status_code == 400 and "tiers" in response.json()["error"]["details"]


def test_schema_states_a_group_has_an_account_and_a_product_a_fee(owner_client):
    schemas = _fee_schema()
    assert schemas["BillingGroupRequest"]["allOf"] == [{"properties": {"portfolios": {"minItems": 1}}}]
    assert {tuple(option["required"]) for option in schemas["FeeProductRequest"]["anyOf"]} == {
        ("flat_fee",),
        ("fee_schedule",),
    }
    assert post(owner_client, "/api/v1/products/", {"name": "No fee"}).status_code == 400


def test_an_account_billed_in_another_group_is_a_conflict(owner_client, owner, group):
    portfolio = group.portfolios.get()
    body = {"name": "Second household", "client": group.client_id, "portfolios": [portfolio.pk]}
    response = post(owner_client, "/api/v1/billing-groups/", body)
    assert response.status_code == 409, response.content
    assert "portfolios" in response.json()["error"]["details"]


def test_a_name_in_use_is_a_conflict(owner_client, product, schedule):
    response = post(owner_client, "/api/v1/products/", {"name": product.name.upper(), "flat_fee": "10"})
    assert response.status_code == 409 and "name" in response.json()["error"]["details"]
    body = {
        "name": schedule.name,
        "effective_from": "2026-01-01",
        "method": "blended",
        "tiers": [{"upto": None, "bps": "1"}],
    }
    response = post(owner_client, "/api/v1/fee-schedules/", body)
    assert response.status_code == 409 and "name" in response.json()["error"]["details"]


def test_a_product_is_not_created_archived(owner_client):
    # Was a 500: the serializer accepted ``archived`` and passed it to product_create.
    response = post(owner_client, "/api/v1/products/", {"name": "Archived?", "flat_fee": "10", "archived": True})
    assert response.status_code == 201, response.content
    assert response.json()["archived"] is False
    assert _fee_schema()["FeeProductRequest"]["properties"].get("archived") is None


def test_an_unknown_currency_is_refused_as_the_schema_says(owner_client, owner):
    # The schema took any text ("Ï"); the service refuses codes billing has no minor unit for.
    schemas = _fee_schema()
    assert schemas["FeeProductRequest"]["properties"]["currency"]["allOf"] == [
        {"$ref": "#/components/schemas/CurrencyEnum"}
    ]
    assert "USD" in schemas["CurrencyEnum"]["enum"] and "XQQ" not in schemas["CurrencyEnum"]["enum"]
    response = post(owner_client, "/api/v1/products/", {"name": "Odd", "flat_fee": "10", "currency": "XQQ"})
    assert response.status_code == 400 and "currency" in response.json()["error"]["details"]


def test_a_negative_fee_is_refused_as_the_schema_says(owner_client):
    # The schema's pattern allowed a minus sign; the service refuses a negative fee.
    assert "-" not in _fee_schema()["FeeProductRequest"]["properties"]["flat_fee"]["pattern"]
    response = post(owner_client, "/api/v1/products/", {"name": "Negative", "flat_fee": "-10"})
    assert response.status_code == 400 and "flat_fee" in response.json()["error"]["details"]


def test_owner_renames_a_group_and_changes_its_accounts(owner_client, owner, advisor2, group):
    contact = group.client
    second = account(advisor2, contact, {date(2026, 6, 1): "500000"})
    first = group.portfolios.get()
    response = owner_client.patch(
        f"/api/v1/billing-groups/{group.pk}/",
        json.dumps({"name": "Smith household", "portfolios": [first.pk, second.pk]}),
        content_type="application/json",
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["name"] == "Smith household" and sorted(body["portfolios"]) == sorted([first.pk, second.pk])
    group.refresh_from_db()
    assert group.name == "Smith household"
    assert set(group.portfolios.values_list("pk", flat=True)) == {first.pk, second.pk}


def test_group_patch_refuses_no_account_a_taken_account_and_non_managers(
    owner_client, advisor_client, client_for, owner, advisor2, group
):
    path = f"/api/v1/billing-groups/{group.pk}/"
    empty = owner_client.patch(path, json.dumps({"portfolios": []}), content_type="application/json")
    assert empty.status_code == 400 and "portfolios" in empty.json()["error"]["details"]
    other_contact = ContactFactory(owner=advisor2)
    taken = account(advisor2, other_contact, {date(2026, 6, 1): "1000"})
    fee_services.billing_group_create(name="Other", client=other_contact, portfolios=[taken])
    conflict = owner_client.patch(path, json.dumps({"portfolios": [taken.pk]}), content_type="application/json")
    assert conflict.status_code == 409 and "portfolios" in conflict.json()["error"]["details"]
    assert group.portfolios.count() == 1 and group.portfolios.get().pk != taken.pk
    # the advisor whose book holds the group reads it but does not manage fees
    own = client_for(advisor2)
    assert own.patch(path, json.dumps({"name": "Mine"}), content_type="application/json").status_code == 403
    assert advisor_client.patch(path, json.dumps({"name": "Mine"}), content_type="application/json").status_code in (
        403,
        404,
    )
    group.refresh_from_db()
    assert group.name == "Private household"
