"""The portfolios API: CRUD, ledger writes, analytics endpoints, errors, scoping, query counts."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from portfolios import services
from portfolios.models import Holding, Portfolio, Transaction
from tests.conftest import FirmClient

from .factories import ContactFactory, PortfolioFactory, add_prices

D = date
pytestmark = pytest.mark.django_db
BASE = "/api/v1/portfolios/"


@pytest.fixture
def ledger(portfolio, aapl):
    add_prices(aapl, {D(2025, 1, 2): "100", D(2025, 1, 3): "110", D(2025, 1, 6): "99"})
    services.transaction_record(portfolio=portfolio, kind="deposit", trade_date=D(2025, 1, 2), amount="1000")
    services.transaction_record(
        portfolio=portfolio, kind="buy", trade_date=D(2025, 1, 2), instrument=aapl, quantity="10", price="100"
    )
    return portfolio


def test_advisor_lists_their_book_only(advisor_client, portfolio, advisor2):
    other = PortfolioFactory(advisor=advisor2, name="Not mine")
    r = advisor_client.get(BASE)
    assert r.status_code == 200
    ids = [p["id"] for p in r.json()["results"]]
    assert portfolio.pk in ids and other.pk not in ids
    assert advisor_client.get(f"{BASE}{other.pk}/").status_code == 404


def test_shared_portfolio_is_visible_to_the_advisor(advisor_client, advisor, advisor2):
    other = PortfolioFactory(advisor=advisor2)
    other.shared_with.add(advisor)
    assert advisor_client.get(f"{BASE}{other.pk}/").status_code == 200


def test_portfolio_of_a_client_shared_with_the_advisor_is_visible(advisor_client, advisor, advisor2):
    contact = ContactFactory(owner=advisor2)
    contact.shared_with.add(advisor)
    other = PortfolioFactory(advisor=advisor2, client=contact)
    assert advisor_client.get(f"{BASE}{other.pk}/").status_code == 200


def test_owner_and_viewer_see_every_portfolio(owner_client, viewer_client, portfolio, advisor2):
    other = PortfolioFactory(advisor=advisor2)
    for c in (owner_client, viewer_client):
        ids = [p["id"] for p in c.get(BASE).json()["results"]]
        assert {portfolio.pk, other.pk} <= set(ids)


def test_outsider_sees_nothing_of_another_firm(outsider_client, owner_client, portfolio, other_firm):
    assert owner_client.get(f"{BASE}{portfolio.pk}/").status_code == 200
    r = outsider_client.get(f"{BASE}{portfolio.pk}/")
    assert r.status_code == 404
    assert portfolio.pk not in [p["id"] for p in outsider_client.get(BASE).json()["results"]]
    assert outsider_client.get(f"{BASE}{portfolio.pk}/transactions/").status_code == 404


def test_api_key_of_another_firm_is_rejected(api_key_for, other_firm, firm, portfolio):
    raw = api_key_for(other_firm, "read")
    c = FirmClient(firm)
    assert c.get(BASE, HTTP_X_API_KEY=raw).status_code == 401
    own = api_key_for(firm, "read")
    assert c.get(BASE, HTTP_X_API_KEY=own).status_code == 200


def test_create_portfolio(advisor_client, advisor, client_contact):
    r = advisor_client.post(
        BASE, {"name": "New", "client": client_contact.pk, "base_currency": "eur"}, content_type="application/json"
    )
    assert r.status_code == 201, r.json()
    body = r.json()
    assert body["advisor"] == advisor.pk and body["base_currency"] == "EUR" and body["client_name"] == "Ada Lovelace"


def test_create_with_bad_currency_is_400_with_field(advisor_client):
    r = advisor_client.post(BASE, {"name": "X", "base_currency": "E1"}, content_type="application/json")
    assert r.status_code == 400
    assert "base_currency" in r.json()["error"]["details"]
    assert not Portfolio.objects.filter(name="X").exists()


def test_plan_limit_is_402(advisor_client, monkeypatch):
    from billing.entitlements import PlanLimitExceeded

    def refuse(*, tenant, resource, adding=1):
        raise PlanLimitExceeded("Your plan allows 1 portfolio.", limit=resource, allowed=1, used=1)

    monkeypatch.setattr(services.portfolio, "check_can_add", refuse)
    r = advisor_client.post(BASE, {"name": "X"}, content_type="application/json")
    assert r.status_code == 402
    assert r.json()["error"]["code"] == "plan_limit_exceeded"


def test_viewer_cannot_write(viewer_client, portfolio, aapl):
    assert viewer_client.get(f"{BASE}{portfolio.pk}/").status_code == 200
    assert viewer_client.post(BASE, {"name": "X"}, content_type="application/json").status_code == 403
    r = viewer_client.post(
        f"{BASE}{portfolio.pk}/transactions/",
        {"kind": "deposit", "trade_date": "2025-01-02", "amount": "5"},
        content_type="application/json",
    )
    assert r.status_code == 403
    assert not Transaction.objects.filter(portfolio=portfolio).exists()


def test_read_key_cannot_write_but_write_key_can(api_key_for, firm, portfolio):
    c = FirmClient(firm)
    body = {"kind": "deposit", "trade_date": "2025-01-02", "amount": "5"}
    url = f"{BASE}{portfolio.pk}/transactions/"
    read = api_key_for(firm, "read")
    assert c.post(url, body, content_type="application/json", HTTP_X_API_KEY=read).status_code == 403
    write = api_key_for(firm, "write")
    r = c.post(url, body, content_type="application/json", HTTP_X_API_KEY=write)
    assert r.status_code == 201, r.json()
    assert Transaction.objects.get(portfolio=portfolio).created_by is None


def test_transaction_create_edit_delete(advisor_client, portfolio, aapl):
    url = f"{BASE}{portfolio.pk}/transactions/"
    r = advisor_client.post(
        url,
        {"kind": "buy", "trade_date": "2025-01-02", "instrument": aapl.pk, "quantity": "10", "price": "100"},
        content_type="application/json",
    )
    assert r.status_code == 201, r.json()
    tid = r.json()["id"]
    assert Holding.objects.get(portfolio=portfolio).quantity == 10
    r = advisor_client.patch(f"{url}{tid}/", {"quantity": "12"}, content_type="application/json")
    assert r.status_code == 200, r.json()
    assert Holding.objects.get(portfolio=portfolio).quantity == 12
    assert advisor_client.delete(f"{url}{tid}/").status_code == 204
    assert not Holding.objects.filter(portfolio=portfolio).exists()


def test_sell_more_than_held_is_400_and_writes_nothing(advisor_client, ledger, aapl):
    r = advisor_client.post(
        f"{BASE}{ledger.pk}/transactions/",
        {"kind": "sell", "trade_date": "2025-01-03", "instrument": aapl.pk, "quantity": "11", "price": "100"},
        content_type="application/json",
    )
    assert r.status_code == 400
    assert "only 10 held" in r.json()["error"]["details"]["quantity"][0]
    assert Transaction.objects.filter(portfolio=ledger).count() == 2


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "buy", "trade_date": "2099-01-02", "quantity": "1", "price": "1"}, "trade_date"),
        ({"kind": "buy", "trade_date": "2025-01-02", "quantity": "1", "price": "-1"}, "price"),
        (
            {"kind": "buy", "trade_date": "2025-01-02", "instrument": 99999999, "quantity": "1", "price": "1"},
            "instrument",
        ),
        ({"kind": "bogus", "trade_date": "2025-01-02"}, "kind"),
    ],
)
def test_ledger_field_errors(advisor_client, portfolio, aapl, body, field):
    body = {"instrument": aapl.pk, **body}
    r = advisor_client.post(f"{BASE}{portfolio.pk}/transactions/", body, content_type="application/json")
    assert r.status_code == 400
    assert field in r.json()["error"]["details"]


def test_delete_portfolio_with_ledger_is_409(owner_client, ledger):
    r = owner_client.delete(f"{BASE}{ledger.pk}/")
    assert r.status_code == 409
    assert Portfolio.objects.filter(pk=ledger.pk).exists()


def test_delete_empty_portfolio(owner_client, portfolio):
    assert owner_client.delete(f"{BASE}{portfolio.pk}/").status_code == 204


def test_holdings_lots_performance_allocation_series(advisor_client, ledger, aapl):
    r = advisor_client.get(f"{BASE}{ledger.pk}/holdings/?date=2025-01-06")
    assert r.status_code == 200
    h = r.json()
    assert h["total_value"] == "990" and h["holdings"][0]["symbol"] == "AAPLT"
    assert h["holdings"][0]["unrealised_gain_base"] == "-10"

    lots = advisor_client.get(f"{BASE}{ledger.pk}/lots/?status=open").json()
    assert lots["count"] == 1 and lots["results"][0]["quantity"] == "10.0000000000"

    perf = advisor_client.get(f"{BASE}{ledger.pk}/performance/?start=2025-01-02&end=2025-01-06").json()
    assert Decimal(perf["twr"]["cumulative"]) == Decimal("-0.01")
    assert perf["end_value"] == "990"

    alloc = advisor_client.get(f"{BASE}{ledger.pk}/allocation/?by=sector&date=2025-01-06").json()
    assert alloc["weights"] == [{"bucket": "Technology", "weight": "1"}]

    series = advisor_client.get(f"{BASE}{ledger.pk}/value-series/?start=2025-01-02&end=2025-01-06").json()
    assert [p["value"] for p in series["points"]] == ["1000", "1100", "1100", "1100", "990"]


def test_analytics_bad_parameters_are_400(advisor_client, ledger):
    assert advisor_client.get(f"{BASE}{ledger.pk}/performance/?preset=10Y").status_code == 400
    assert advisor_client.get(f"{BASE}{ledger.pk}/allocation/?by=colour").status_code == 400
    r = advisor_client.get(f"{BASE}{ledger.pk}/holdings/?date=tomorrow")
    assert r.status_code == 400 and "date" in r.json()["error"]["details"]


def test_analytics_of_another_advisors_portfolio_is_404(advisor_client, advisor2):
    other = PortfolioFactory(advisor=advisor2)
    for suffix in (
        "holdings/",
        "performance/",
        "allocation/",
        "value-series/",
        "lots/",
        "transactions/",
        "realised-gains/",
    ):
        assert advisor_client.get(f"{BASE}{other.pk}/{suffix}").status_code == 404


def test_firm_exposure_endpoint(owner_client, ledger):
    r = owner_client.get("/api/v1/firm/exposure/?date=2025-01-06")
    assert r.status_code == 200
    body = r.json()
    assert body["total_value"] == "990" and body["by_instrument"][0]["clients"] == ["Ada Lovelace"]


def test_transaction_list_filters_and_search(advisor_client, ledger):
    url = f"{BASE}{ledger.pk}/transactions/"
    assert advisor_client.get(url).json()["count"] == 2
    assert advisor_client.get(f"{url}?kind=buy").json()["count"] == 1
    assert advisor_client.get(f"{url}?search=AAPLT").json()["count"] == 1
    assert advisor_client.get(f"{url}?ordering=trade_date").status_code == 200


def _count(client, url) -> int:
    client.get(url)  # warm up: the first request of a session fills caches
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(url).status_code == 200
    return len(ctx)


def test_portfolio_list_query_count_is_constant(owner_client, owner, advisor):
    PortfolioFactory(advisor=advisor).shared_with.add(owner)
    few = _count(owner_client, BASE)
    for _ in range(6):
        p = PortfolioFactory(advisor=advisor, client=ContactFactory(owner=advisor))
        p.shared_with.add(owner)
    assert _count(owner_client, BASE) == few


def test_transaction_list_query_count_is_constant(advisor_client, ledger, aapl):
    url = f"{BASE}{ledger.pk}/transactions/"
    few = _count(advisor_client, url)
    for i in range(6):
        services.transaction_record(portfolio=ledger, kind="deposit", trade_date=D(2025, 1, 3), amount=str(i + 1))
    assert _count(advisor_client, url) == few


def test_lot_list_query_count_is_constant(advisor_client, ledger, aapl):
    url = f"{BASE}{ledger.pk}/lots/"
    few = _count(advisor_client, url)
    for _ in range(5):
        services.transaction_record(
            portfolio=ledger, kind="buy", trade_date=D(2025, 1, 3), instrument=aapl, quantity="1", price="1"
        )
    assert _count(advisor_client, url) == few


def test_idempotency_key_records_a_transaction_once(advisor_client, portfolio):
    url = f"{BASE}{portfolio.pk}/transactions/"
    body = {"kind": "deposit", "trade_date": "2025-01-02", "amount": "500"}
    first = advisor_client.post(url, body, content_type="application/json", HTTP_IDEMPOTENCY_KEY="dep-1")
    again = advisor_client.post(url, body, content_type="application/json", HTTP_IDEMPOTENCY_KEY="dep-1")
    assert first.status_code == again.status_code == 201
    assert again.headers.get("Idempotent-Replayed") == "true" and again.json()["id"] == first.json()["id"]
    assert Transaction.objects.filter(portfolio=portfolio).count() == 1
    other = advisor_client.post(
        url, {**body, "amount": "600"}, content_type="application/json", HTTP_IDEMPOTENCY_KEY="dep-1"
    )
    assert other.status_code == 422 and other.json()["error"]["code"] == "idempotency_key_reused"


def test_realised_gains_per_year_and_lot(advisor_client, portfolio, aapl):
    # Bought 10 at 100 (fees 10: cost 1010) in 2023, sold 4 at 150 (fees 2) in 2025:
    # proceeds 598, cost 404, gain 194, long term (held more than 365 days).
    services.transaction_record(
        portfolio=portfolio,
        kind="buy",
        trade_date=D(2023, 1, 2),
        instrument=aapl,
        quantity="10",
        price="100",
        fees="10",
    )
    services.transaction_record(
        portfolio=portfolio, kind="sell", trade_date=D(2025, 3, 3), instrument=aapl, quantity="4", price="150", fees="2"
    )
    body = advisor_client.get(f"{BASE}{portfolio.pk}/realised-gains/").json()
    assert body["years"] == [{"year": 2025, "short": "0", "long": "194", "total": "194"}]
    (lot,) = body["lots"]
    assert (lot["proceeds_base"], lot["cost_base"], lot["term"], lot["symbol"]) == ("598", "404", "long", "AAPLT")
    assert advisor_client.get(f"{BASE}{portfolio.pk}/realised-gains/?year=2024").json()["lots"] == []
    assert advisor_client.get(f"{BASE}{portfolio.pk}/realised-gains/?year=x").status_code == 400


def test_patch_portfolio_archive_and_share(owner_client, portfolio, advisor2):
    r = owner_client.patch(
        f"{BASE}{portfolio.pk}/", {"archived": True, "shared_with": [advisor2.pk]}, content_type="application/json"
    )
    assert r.status_code == 200, r.json()
    assert r.json()["archived"] is True and r.json()["shared_with"] == [advisor2.pk]
    ids = [p["id"] for p in owner_client.get(f"{BASE}?archived=false").json()["results"]]
    assert portfolio.pk not in ids
    assert portfolio.pk in [p["id"] for p in owner_client.get(f"{BASE}?archived=true").json()["results"]]


def test_viewer_cannot_patch_and_advisor_cannot_reassign(viewer_client, advisor_client, portfolio, advisor2):
    assert (
        viewer_client.patch(f"{BASE}{portfolio.pk}/", {"name": "X"}, content_type="application/json").status_code == 403
    )
    r = advisor_client.patch(f"{BASE}{portfolio.pk}/", {"advisor": advisor2.pk}, content_type="application/json")
    assert r.status_code == 400 and "advisor" in r.json()["error"]["details"]
    portfolio.refresh_from_db()
    assert portfolio.name == "Ada growth"


def test_api_key_must_name_the_advisor(api_key_for, firm, advisor):
    c = FirmClient(firm)
    key = api_key_for(firm, "write")
    r = c.post(BASE, {"name": "By key"}, content_type="application/json", HTTP_X_API_KEY=key)
    assert r.status_code == 400 and "advisor" in r.json()["error"]["details"]
    r = c.post(BASE, {"name": "By key", "advisor": advisor.pk}, content_type="application/json", HTTP_X_API_KEY=key)
    assert r.status_code == 201


def test_advisor_cannot_probe_other_clients(advisor_client, advisor2):
    theirs = ContactFactory(owner=advisor2)
    r = advisor_client.post(BASE, {"name": "X", "client": theirs.pk}, content_type="application/json")
    missing = advisor_client.post(BASE, {"name": "X", "client": 987654321}, content_type="application/json")
    assert r.status_code == missing.status_code == 400
    assert r.json()["error"]["details"]["client"] == [
        m.replace("987654321", str(theirs.pk)) for m in missing.json()["error"]["details"]["client"]
    ]
