"""API v1 keeps its word (docs/api.md, decision 1350): the requests an older client sends to the
fee API still work as they did when the revenue's totals became one per currency and a schedule's
exclusions moved into its dated versions; the old fields are deprecated in the schema, with a
sunset at least six months away."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest
from django.conf import settings
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator

from codex.api.lifecycle import MIN_NOTICE, deprecated_fields, field_deprecation
from fees import services as fee_services
from fees.api import FeeRevenueSerializer, FeeScheduleSerializer
from tests.fees.conftest import account
from tests.portfolios.factories import ContactFactory, InstrumentFactory

pytestmark = pytest.mark.django_db

Q3 = {"period_start": date(2026, 7, 1), "period_end": date(2026, 9, 30), "frequency": "quarterly"}


def _issue(owner, issued_on: date) -> None:
    run = fee_services.fee_run_preview(**Q3)
    fee_services.fee_run_approve(run=run, actor=owner)
    fee_services.fee_run_issue(run=run, issued_on=issued_on)


@pytest.fixture
def usd_billed(owner, client_contact, product):
    portfolio = account(owner, client_contact, {date(2026, 6, 1): "1000000"})
    group = fee_services.billing_group_create(name="Ada household", client=client_contact, portfolios=[portfolio])
    fee_services.subscription_create(group=group, product=product, starts_on=date(2026, 6, 1))
    _issue(owner, date(2026, 10, 1))


REVENUE = "/api/v1/fee-revenue/?start=2026-10-01&end=2026-10-31&by=month"


def test_an_old_client_reads_the_total_and_billable_aum_of_a_one_currency_firm(owner_client, usd_billed):
    body = owner_client.get(REVENUE).json()
    # 1,000,000 at 1 % for 92 days = 2,520.55
    assert (body["total"], body["billable_aum"]) == ("2520.55", "1000000.00")
    assert body["totals"] == [{"currency": "USD", "revenue": "2520.55", "billable_aum": "1000000.00"}]


def test_nothing_billed_reads_zero_as_before(owner_client):
    body = owner_client.get(REVENUE).json()
    assert (body["total"], body["billable_aum"], body["totals"]) == ("0.00", "0.00", [])


def test_two_currencies_give_a_null_total_never_a_sum(owner, owner_client, usd_billed):
    eur = fee_services.fee_schedule_create(
        name="Euro",
        currency="EUR",
        effective_from=date(2020, 1, 1),
        method="tiered",
        tiers=[{"upto": None, "bps": 100}],
    )
    product = fee_services.product_create(name="Euro mandate", currency="EUR", fee_schedule=eur)
    contact = ContactFactory(owner=owner)
    portfolio = account(owner, contact, {date(2026, 6, 1): "365000"}, currency="EUR", name="EUR account")
    group = fee_services.billing_group_create(name="EUR household", client=contact, portfolios=[portfolio])
    fee_services.subscription_create(group=group, product=product, starts_on=date(2026, 6, 1))
    _issue(owner, date(2026, 10, 2))
    body = owner_client.get(REVENUE).json()
    assert body["total"] is None and body["billable_aum"] is None
    assert [(t["currency"], t["revenue"]) for t in body["totals"]] == [("EUR", "920.00"), ("USD", "2520.55")]


def test_the_api_csv_keeps_v1s_columns_with_the_currency_appended(owner_client, usd_billed):
    lines = owner_client.get(REVENUE.replace("fee-revenue/", "fee-revenue/export/")).content.decode().splitlines()
    assert lines[0] == "month,revenue,billable_value,effective_rate_bps,currency"
    assert lines[1].startswith("2026-10,2520.55,1000000.00,") and lines[1].endswith(",USD")
    assert lines[-1] == "total,2520.55,,,USD"
    # the web page's CSV keeps its own layout (currency second)
    web = owner_client.get("/fees/revenue.csv?start=2026-10-01&end=2026-10-31&by=month").content.decode()
    assert web.splitlines()[0] == "month,currency,revenue,billable_value,effective_rate_bps"


def _patch(api, schedule, body):
    return api.patch(f"/api/v1/fee-schedules/{schedule.pk}/", json.dumps(body), content_type="application/json")


def test_an_old_client_reads_a_schedules_exclusions_as_the_version_in_effect_today(owner_client, schedule):
    today = timezone.localdate()
    real_estate_later = today + timedelta(days=30)
    fee_services.fee_schedule_change(schedule=schedule, effective_from=today - timedelta(days=1), exclude_cash=True)
    fee_services.fee_schedule_change(
        schedule=schedule, effective_from=real_estate_later, excluded_asset_classes=["real_estate"]
    )
    body = owner_client.get(f"/api/v1/fee-schedules/{schedule.pk}/").json()
    assert (body["exclude_cash"], body["excluded_instruments"], body["excluded_asset_classes"]) == (True, [], [])
    listed = owner_client.get("/api/v1/fee-schedules/").json()["results"]
    assert [(s["id"], s["exclude_cash"]) for s in listed] == [(schedule.pk, True)]


def test_an_old_clients_patch_of_exclusions_makes_a_version_from_today(
    owner, owner_client, advisor, client_for, schedule
):
    legacy = InstrumentFactory(symbol="LEGACY", currency="USD")
    body = {"excluded_asset_classes": ["real_estate"], "exclude_cash": True, "excluded_instruments": [legacy.pk]}
    assert _patch(client_for(advisor), schedule, body).status_code == 403
    bad = _patch(owner_client, schedule, {"excluded_instruments": [999_999_999]})
    assert bad.status_code == 400 and "excluded_instruments[0]" in bad.json()["error"]["details"]
    assert schedule.versions.count() == 1  # nothing half-written

    response = _patch(owner_client, schedule, {**body, "name": "Standard (ex real estate)"})
    assert response.status_code == 200, response.content
    got = response.json()
    assert got["name"] == "Standard (ex real estate)"
    assert (got["exclude_cash"], got["excluded_instruments"], got["excluded_asset_classes"]) == (
        True,
        [legacy.pk],
        ["real_estate"],
    )
    today = timezone.localdate()
    new = schedule.versions.get(effective_from=today)
    old = schedule.versions.get(effective_from=date(2020, 1, 1))
    assert (new.tiers, new.method) == (old.tiers, old.method)  # the terms carried over
    assert old.excluded_asset_classes == [] and not old.exclude_cash  # history kept

    again = _patch(owner_client, schedule, {"exclude_cash": False})
    assert again.status_code == 409
    message = again.json()["error"]["details"]["exclude_cash"][0]
    assert f"/api/v1/fee-schedules/{schedule.pk}/versions/" in message and "effective_from" in message
    assert schedule.versions.get(effective_from=today).exclude_cash is True


def test_terms_sent_to_the_patch_are_refused_naming_the_versions_endpoint(owner_client, schedule):
    response = _patch(owner_client, schedule, {"method": "blended", "excluded_asset_classes": ["crypto"]})
    assert response.status_code == 400
    details = response.json()["error"]["details"]
    assert f"/api/v1/fee-schedules/{schedule.pk}/versions/" in str(details["method"])
    assert "excluded_asset_classes" not in details
    assert schedule.versions.count() == 1


def test_another_firm_cannot_patch_a_schedules_exclusions(outsider, client_for, other_firm, schedule):
    response = _patch(client_for(outsider, other_firm), schedule, {"exclude_cash": True})
    assert response.status_code == 404
    assert schedule.versions.count() == 1 and not schedule.versions.get().exclude_cash


def test_the_kept_fields_are_deprecated_in_the_schema_with_six_months_notice():
    schema = SchemaGenerator(urlconf=settings.ROOT_URLCONF).get_schema(request=None, public=True)
    components = schema["components"]["schemas"]
    revenue = components["FeeRevenue"]["properties"]
    assert revenue["total"]["deprecated"] is True and revenue["billable_aum"]["deprecated"] is True
    assert "totals" in revenue and "deprecated" not in revenue["totals"]
    assert "2027-06-30" in revenue["total"]["description"]
    schedule = components["FeeSchedule"]["properties"]
    assert all(schedule[f]["deprecated"] is True for f in ("exclude_cash", "excluded_instruments"))
    patch = components["PatchedFeeSchedulePatchRequest"]["properties"]
    assert patch["excluded_asset_classes"]["deprecated"] is True and "deprecated" not in patch["name"]
    for serializer in (FeeRevenueSerializer, FeeScheduleSerializer):
        for mark in serializer.codex_deprecated_fields.values():
            assert mark.sunset - mark.since >= MIN_NOTICE


def test_a_field_deprecation_with_less_than_six_months_notice_is_refused():
    with pytest.raises(ValueError, match="six months"):
        field_deprecation(since=date(2026, 12, 7), sunset=date(2027, 3, 1))
    with pytest.raises(ValueError, match="no field"):
        deprecated_fields(field_deprecation(since=date(2026, 12, 7), sunset=date(2027, 6, 30)), "nope")(
            FeeRevenueSerializer
        )


def test_docs_api_lists_every_deprecated_operation_and_field():
    """docs/api.md's policy: the document lists each deprecation with its sunset and replacement."""
    from pathlib import Path

    docs = (Path(settings.BASE_DIR) / "docs" / "api.md").read_text()
    schema = SchemaGenerator(urlconf=settings.ROOT_URLCONF).get_schema(request=None, public=True)
    operations = [
        f"`{method.upper()} {path.removeprefix('/api/v1')}`"
        for path, item in schema["paths"].items()
        for method, op in item.items()
        if isinstance(op, dict) and op.get("deprecated")
    ]
    fields = {
        name
        for component in schema["components"]["schemas"].values()
        for name, prop in component.get("properties", {}).items()
        if isinstance(prop, dict) and prop.get("deprecated")
    }
    assert operations and fields  # the test can fail
    table = docs[docs.index("Deprecated in v1") :]
    assert [op for op in operations if op not in table] == []
    assert sorted(f for f in fields if f"`{f}`" not in table) == []
