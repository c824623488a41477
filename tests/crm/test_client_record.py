"""The client record: portfolios with value and returns, activities, deals, newsletter, timeline."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from crm import selectors, services

from .factories import ActivityFactory, ContactFactory, DealFactory, SubscriberFactory, stage

API = "/api/v1"


def _portfolio(client, advisor):
    from portfolios.models import Portfolio
    from portfolios.services import transaction_record

    p = Portfolio.objects.create(name="Balanced", client=client, advisor=advisor, base_currency="USD")
    today = dt.date.today()
    transaction_record(
        portfolio=p, kind="deposit", trade_date=today - dt.timedelta(days=10), amount="1000", currency="USD"
    )
    transaction_record(
        portfolio=p, kind="interest", trade_date=today - dt.timedelta(days=5), amount="10", currency="USD"
    )
    return p


def test_client_record_joins_portfolios_and_crm(firm, owner, advisor):
    client = ContactFactory(owner=advisor, email="client@example.com", lifecycle="client")
    p = _portfolio(client, advisor)
    ActivityFactory(contact=client, subject="Annual review", kind="meeting")
    deal = DealFactory(contact=client, title="Top-up", owner=advisor)
    services.deal_move(actor=owner, deal=deal, stage=stage("Proposal"))
    SubscriberFactory(email="CLIENT@example.com", status="confirmed")

    record = selectors.client_record(user=advisor, contact=client)
    (figures,) = record.portfolios
    assert figures.portfolio == p and figures.value == Decimal("1010")
    assert figures.twr is not None and abs(figures.twr - Decimal("0.01")) < Decimal("0.0001")
    assert figures.mwr is not None and figures.mwr > 0
    assert record.aum == {"USD": Decimal("1010")}
    assert record.last_activity.subject == "Annual review"
    assert [d.title for d in record.open_deals] == ["Top-up"]
    assert record.newsletter_status == "confirmed"
    kinds = [i.kind for i in record.timeline]
    assert {"meeting", "stage", "transaction"} <= set(kinds)
    assert any("moved from Lead to Proposal" in i.title for i in record.timeline)
    assert any("Interest" in i.title for i in record.timeline)
    stamps = [i.at for i in record.timeline]
    assert stamps == sorted(stamps, reverse=True)


def test_client_record_without_portfolios(firm, owner):
    client = ContactFactory()
    record = selectors.client_record(user=owner, contact=client)
    assert record.portfolios == [] and record.aum == {} and record.newsletter_status == "none"


def test_client_record_api(owner_client, owner, advisor):
    client = ContactFactory(owner=advisor)
    _portfolio(client, advisor)
    r = owner_client.get(f"{API}/clients/{client.pk}/")
    assert r.status_code == 200
    body = r.json()
    assert body["aum"] == {"USD": "1010.000000"} or Decimal(body["aum"]["USD"]) == Decimal("1010")
    assert body["portfolios"][0]["name"] == "Balanced" and body["portfolios"][0]["twr"] is not None
    assert body["timeline"] and body["newsletter_status"] == "none"


def test_client_page_shows_aum_and_timeline(owner_client, owner, advisor):
    client = ContactFactory(owner=advisor, first_name="Wanda")
    _portfolio(client, advisor)
    ActivityFactory(contact=client, subject="Phoned about fees", kind="call")
    r = owner_client.get(f"/crm/contacts/{client.pk}/")
    assert r.status_code == 200
    html = r.content.decode()
    assert "Balanced" in html and "$1,010.00" in html and "Phoned about fees" in html and "Interest" in html


def test_shared_client_shows_its_portfolios_to_the_advisor_but_not_to_others(firm, advisor, advisor2, client_for):
    from portfolios.models import Portfolio

    client = ContactFactory(owner=advisor2)
    Portfolio.objects.create(name="Family trust", client=client, advisor=advisor2)
    assert selectors.client_record(user=advisor2, contact=client).portfolios[0].portfolio.name == "Family trust"
    c = client_for(advisor)
    assert c.get(f"{API}/clients/{client.pk}/").status_code == 404
    client.shared_with.add(advisor)
    record = selectors.client_record(user=advisor, contact=client)
    assert [f.portfolio.name for f in record.portfolios] == ["Family trust"]
    assert record.portfolios[0].error  # no transactions yet: shown, not a crash
