"""The firm's own instruments: visible only to their firm, manual prices by API and CSV, valued like
shared ones; a shared instrument is never changed by a firm (decision 0970)."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django_tenants.utils import schema_context

from portfolios.market.models import Instrument, Price
from tests.portfolios.factories import InstrumentFactory, in_public

pytestmark = pytest.mark.django_db

FUND = {"symbol": "PEF1", "name": "Private equity fund I", "asset_class": "fund", "currency": "CHF"}


def post(client, path, body):
    return client.post(path, json.dumps(body), content_type="application/json")


def test_owner_creates_a_firm_instrument_the_other_firm_cannot_see(owner_client, outsider_client, firm):
    response = post(owner_client, "/api/v1/instruments/", FUND)
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["firm_instrument"] is True and body["currency"] == "CHF"
    instrument = Instrument.all_objects.get(pk=body["id"])
    assert instrument.owner == firm.schema_name
    symbols = [i["symbol"] for i in owner_client.get("/api/v1/instruments/?search=PEF1").json()["results"]]
    assert symbols == ["PEF1"]
    # the other firm: not in its list, not by id, not its prices, not writable
    assert outsider_client.get("/api/v1/instruments/?search=PEF1").json()["results"] == []
    assert outsider_client.get(f"/api/v1/instruments/{instrument.pk}/").status_code == 404
    assert outsider_client.get(f"/api/v1/instruments/{instrument.pk}/prices/").status_code == 404
    refused = post(
        outsider_client, f"/api/v1/instruments/{instrument.pk}/prices/", {"date": "2025-01-02", "close": "1"}
    )
    assert refused.status_code == 404
    assert not Price.objects.filter(instrument=instrument).exists()


def test_the_same_symbol_in_two_firms_is_two_instruments(owner_client, outsider_client):
    assert post(owner_client, "/api/v1/instruments/", FUND).status_code == 201
    assert post(outsider_client, "/api/v1/instruments/", FUND).status_code == 201
    assert Instrument.all_objects.filter(symbol="PEF1").count() == 2
    again = post(owner_client, "/api/v1/instruments/", FUND)  # schema-valid, refused by what is stored
    assert again.status_code == 409 and "symbol" in again.json()["error"]["details"]
    assert again.json()["error"]["code"] == "symbol_taken"


def test_bad_firm_instrument_names_the_field(owner_client):
    response = post(owner_client, "/api/v1/instruments/", {**FUND, "currency": "francs"})
    assert response.status_code == 400
    assert "currency" in response.json()["error"]["details"]
    assert not Instrument.all_objects.filter(symbol="PEF1").exists()


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"asset_class": None}, "asset_class"),  # required, as the schema now says (it had the model's default)
        ({"currency": "-id"}, "currency"),
        ({"currency": "ÄÖÜ"}, "currency"),  # letters, but not the table's A-Z: was a 500 (IntegrityError)
        ({"country": "D"}, "country"),
        ({"country": "É1"}, "country"),
    ],
)
def test_firm_instrument_input_the_schema_refuses_is_a_400_naming_the_field(owner_client, change, field):
    body = {k: v for k, v in {**FUND, **change}.items() if v is not None}
    response = post(owner_client, "/api/v1/instruments/", body)
    assert response.status_code == 400, response.content
    assert field in response.json()["error"]["details"]
    assert not Instrument.all_objects.filter(symbol="PEF1").exists()


def test_the_service_refuses_a_currency_of_non_ascii_letters(firm):
    from django.core.exceptions import ValidationError

    from portfolios.market import services

    with pytest.raises(ValidationError) as refused:
        services.firm_instrument_create(owner=firm.schema_name, data={**FUND, "currency": "ÄÖÜ"})
    assert "currency" in refused.value.message_dict


def test_the_schema_documents_the_instrument_rules_and_the_prices_upload(owner_client):
    schema = owner_client.get("/api/v1/schema/?format=json").json()
    request = schema["components"]["schemas"]["InstrumentRequest"]
    assert "asset_class" in request["required"]
    assert request["properties"]["currency"]["pattern"] == "^[A-Za-z]{3}$"
    upload = schema["paths"]["/api/v1/instruments/prices/import/"]["post"]["requestBody"]["content"]
    assert upload["multipart/form-data"]["encoding"]["file"]["contentType"] == "text/csv"


def test_a_shared_instrument_is_never_editable_by_a_firm(owner_client):
    shared = in_public(InstrumentFactory, symbol="SHR1", name="Shared Corp")
    patch = owner_client.patch(
        f"/api/v1/instruments/{shared.pk}/", json.dumps({"name": "Mine now"}), content_type="application/json"
    )
    assert patch.status_code == 403
    price = post(owner_client, f"/api/v1/instruments/{shared.pk}/prices/", {"date": "2025-01-02", "close": "5"})
    assert price.status_code == 403
    shared.refresh_from_db()
    assert shared.name == "Shared Corp" and not Price.objects.filter(instrument=shared).exists()


def test_manual_prices_by_api_then_conflict_then_overwrite(owner_client):
    pk = post(owner_client, "/api/v1/instruments/", FUND).json()["id"]
    first = post(owner_client, f"/api/v1/instruments/{pk}/prices/", {"date": "2025-03-31", "close": "104.2"})
    assert first.status_code == 201 and first.json() == {
        "date": "2025-03-31",
        "close": "104.200000",
        "source": "manual",
    }
    clash = post(owner_client, f"/api/v1/instruments/{pk}/prices/", {"date": "2025-03-31", "close": "99"})
    assert clash.status_code == 400 and "close" in clash.json()["error"]["details"]
    fixed = post(
        owner_client, f"/api/v1/instruments/{pk}/prices/", {"date": "2025-03-31", "close": "99", "overwrite": True}
    )
    assert fixed.status_code == 201
    assert Price.objects.get(instrument_id=pk).close == Decimal("99")
    zero = post(owner_client, f"/api/v1/instruments/{pk}/prices/", {"date": "2025-04-30", "close": "0"})
    assert zero.status_code == 400


def test_manual_prices_by_csv_all_or_nothing_and_shared_rows_refused(owner_client):
    in_public(InstrumentFactory, symbol="SHR2", exchange="")
    post(owner_client, "/api/v1/instruments/", FUND)
    csv = b"symbol,exchange,date,close\nPEF1,,2025-01-31,100\nSHR2,,2025-01-31,5\n"
    response = owner_client.post(
        "/api/v1/instruments/prices/import/", {"file": SimpleUploadedFile("p.csv", csv, content_type="text/csv")}
    )
    assert response.status_code == 400
    errors = response.json()["error"]["details"]["errors"]
    assert errors == [
        {"row": 3, "field": "symbol", "message": "unknown instrument SHR2 (no exchange); import it first"}
    ]
    assert not Price.objects.filter(date=date(2025, 1, 31)).exists()
    good = b"symbol,exchange,date,close\nPEF1,,2025-01-31,100\nPEF1,,2025-02-28,101\n"
    upload = SimpleUploadedFile("p.csv", good, content_type="text/csv")
    assert owner_client.post("/api/v1/instruments/prices/import/", {"file": upload}).json()["created"] == 2
    upload = SimpleUploadedFile("p.csv", good, content_type="text/csv")
    again = owner_client.post("/api/v1/instruments/prices/import/", {"file": upload}).json()
    assert (again["created"], again["unchanged"]) == (0, 2)


def test_a_firm_instrument_is_valued_like_a_shared_one(owner_client, owner):
    from portfolios import services as portfolio_services
    from tests.portfolios.factories import PortfolioFactory

    pk = post(owner_client, "/api/v1/instruments/", {**FUND, "currency": "USD"}).json()["id"]
    post(owner_client, f"/api/v1/instruments/{pk}/prices/", {"date": "2025-01-02", "close": "100"})
    post(owner_client, f"/api/v1/instruments/{pk}/prices/", {"date": "2025-01-03", "close": "110"})
    portfolio = PortfolioFactory(advisor=owner, base_currency="USD")
    portfolio_services.transaction_record(
        portfolio=portfolio, kind="deposit", trade_date=date(2025, 1, 2), amount="1000"
    )
    portfolio_services.transaction_record(
        portfolio=portfolio,
        kind="buy",
        trade_date=date(2025, 1, 2),
        instrument=pk,
        quantity="10",
        price="100",
    )
    holdings = owner_client.get(f"/api/v1/portfolios/{portfolio.pk}/holdings/?date=2025-01-03").json()
    (row,) = [h for h in holdings["holdings"] if h["instrument"] == pk]
    assert (row["symbol"], Decimal(row["price"]), Decimal(row["market_value_base"])) == ("PEF1", 110, 1100)


def test_firm_instrument_history_is_recorded(owner_client, firm):
    pk = post(owner_client, "/api/v1/instruments/", FUND).json()["id"]
    owner_client.patch(f"/api/v1/instruments/{pk}/", json.dumps({"name": "Renamed"}), content_type="application/json")
    with schema_context("public"):
        events = Instrument.pgh_event_model.objects.filter(pgh_obj_id=pk).order_by("pgh_id")
        assert [e.name for e in events] == ["Private equity fund I", "Renamed"]


# --- pages ----------------------------------------------------------------------------------------------
def test_pages_create_price_and_show_stale_since(owner_client, outsider_client, viewer_client):
    created = owner_client.post("/portfolios/instruments/new/", {**FUND, "exchange": "", "sector": "", "country": ""})
    assert created.status_code == 302, created.content[:500]
    instrument = Instrument.all_objects.get(symbol="PEF1")
    detail = owner_client.get(f"/portfolios/instruments/{instrument.pk}/")
    assert b"Price stale since" in detail.content  # no price yet: stale since it was added
    saved = owner_client.post(f"/portfolios/instruments/{instrument.pk}/", {"date": "2025-01-31", "close": "100"})
    assert saved.status_code == 302
    assert Price.objects.get(instrument=instrument).source == "manual"
    listing = owner_client.get("/portfolios/instruments/?q=PEF1").content.decode()
    assert "PEF1" in listing and "price stale since Jan 31, 2025" in listing  # older than 95 days
    assert outsider_client.get(f"/portfolios/instruments/{instrument.pk}/").status_code == 404
    assert "Private equity fund I" not in outsider_client.get("/portfolios/instruments/?q=PEF1").content.decode()
    refused = viewer_client.post(f"/portfolios/instruments/{instrument.pk}/", {"date": "2025-02-28", "close": "1"})
    assert refused.status_code == 403
    assert Price.objects.filter(instrument=instrument).count() == 1


def test_page_refuses_a_price_on_a_shared_instrument(owner_client):
    shared = in_public(InstrumentFactory, symbol="SHR3")
    response = owner_client.post(f"/portfolios/instruments/{shared.pk}/", {"date": "2025-01-31", "close": "5"})
    assert response.status_code == 403
    assert not Price.objects.filter(instrument=shared).exists()
