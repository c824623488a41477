"""Corporate actions from the feed are pending ledger entries to accept or dismiss, never booked
silently (decision 0973)."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal as D

import pytest

from portfolios import services
from portfolios.market.models import CorporateAction
from portfolios.models import Transaction

from .factories import InstrumentFactory, PortfolioFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def held(firm, owner):
    instrument = InstrumentFactory(symbol="DIVI", currency="USD")
    portfolio = PortfolioFactory(advisor=owner, base_currency="USD")
    services.transaction_record(portfolio=portfolio, kind="deposit", trade_date=date(2025, 1, 2), amount="10000")
    services.transaction_record(
        portfolio=portfolio, kind="buy", trade_date=date(2025, 1, 3), instrument=instrument, quantity="40", price="50"
    )
    dividend = CorporateAction.objects.create(
        instrument=instrument, kind="dividend", date=date(2025, 2, 3), value=D("0.25"), source="alphavantage"
    )
    split = CorporateAction.objects.create(
        instrument=instrument, kind="split", date=date(2025, 3, 3), value=D(2), source="alphavantage"
    )
    CorporateAction.objects.create(  # before the portfolio held it: not proposed
        instrument=instrument, kind="dividend", date=date(2024, 12, 2), value=D("0.2"), source="alphavantage"
    )
    return portfolio, dividend, split


def post(client, body):
    return client.post("/api/v1/corporate-actions/", json.dumps(body), content_type="application/json")


def test_feed_actions_are_pending_until_accepted_or_dismissed(held, owner_client, outsider_client):
    portfolio, dividend, split = held
    pending = owner_client.get("/api/v1/corporate-actions/").json()["results"]
    assert [(p["kind"], p["quantity_held"], p["proposed"].get("amount")) for p in pending] == [
        ("dividend", "40", "10.000000"),
        ("split", "40", None),
    ]
    assert not Transaction.objects.filter(portfolio=portfolio, kind__in=["dividend", "split"]).exists()
    assert outsider_client.get("/api/v1/corporate-actions/").json()["results"] == []
    refused = post(outsider_client, {"action": dividend.pk, "portfolio": portfolio.pk, "accept": True})
    assert refused.status_code == 404
    accepted = post(owner_client, {"action": dividend.pk, "portfolio": portfolio.pk, "accept": True})
    assert accepted.status_code == 201, accepted.content
    txn = Transaction.objects.get(pk=accepted.json()["transaction"])
    assert (txn.kind, txn.amount, txn.trade_date) == ("dividend", D(10), date(2025, 2, 3))
    dismissed = post(owner_client, {"action": split.pk, "portfolio": portfolio.pk, "accept": False})
    assert dismissed.status_code == 201 and dismissed.json()["transaction"] is None
    assert owner_client.get("/api/v1/corporate-actions/").json()["results"] == []
    again = post(owner_client, {"action": dividend.pk, "portfolio": portfolio.pk, "accept": True})
    assert again.status_code == 409, again.content
    assert "action" in again.json()["error"]["details"]
    assert Transaction.objects.filter(portfolio=portfolio, kind="dividend").count() == 1


def test_an_action_that_is_not_pending_is_a_conflict_and_an_unknown_one_names_the_field(held, owner_client):
    # Schema-valid requests the state refuses: 409 (the fuzzer's check), never a 400; a made-up id is a 400.
    portfolio, dividend, _ = held
    unheld = PortfolioFactory(advisor=portfolio.advisor, base_currency="USD")
    conflict = post(owner_client, {"action": dividend.pk, "portfolio": unheld.pk, "accept": True})
    assert conflict.status_code == 409, conflict.content
    assert conflict.json()["error"]["code"] == "action_not_pending"
    unknown = post(owner_client, {"action": dividend.pk + 1000, "portfolio": portfolio.pk, "accept": True})
    assert unknown.status_code == 400
    assert unknown.json()["error"]["details"] == {"action": ["No corporate action has this id."]}
    assert not Transaction.objects.filter(kind="dividend").exists()
