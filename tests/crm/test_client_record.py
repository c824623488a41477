"""The client record: portfolios with value and returns, activities, deals, newsletter, timeline."""

from __future__ import annotations

import datetime as dt
import re
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


# --- money first, income with amounts, timeline chips and pages (issue 25, point 4) ---------------------


def _invested(client, advisor, *, days: int = 40):
    """A portfolio of ``client`` with a deposit, a buy, a dividend, a tax and a fee within the year."""
    from portfolios.models import Portfolio
    from portfolios.services import transaction_record
    from tests.portfolios.factories import InstrumentFactory, daily_prices

    today = dt.date.today()
    start = max(today - dt.timedelta(days=days), dt.date(today.year, 1, 1))
    inst = InstrumentFactory(symbol="RECQ", name="Record Quarry plc", currency="USD")
    daily_prices(inst, start, [str(100 + i) for i in range((today - start).days + 1)])
    p = Portfolio.objects.create(name="Growth", client=client, advisor=advisor, base_currency="USD")
    for kind, extra in (
        ("deposit", {"amount": "10000"}),
        ("buy", {"instrument": inst, "quantity": "10", "price": "100"}),
        ("dividend", {"instrument": inst, "amount": "12.50"}),
        ("tax", {"instrument": inst, "amount": "1.88"}),
        ("fee", {"amount": "25"}),
    ):
        transaction_record(portfolio=p, kind=kind, trade_date=start, **extra)
    return p, inst


def test_client_record_totals_the_money_from_stored_valuations(firm, advisor):
    client = ContactFactory(owner=advisor, kyc_review_due_on=dt.date.today() + dt.timedelta(days=30))
    p, _inst = _invested(client, advisor)
    record = selectors.client_record(user=advisor, contact=client)
    (figures,) = record.portfolios
    assert record.currency == "USD" and figures.ytd is not None
    assert record.ytd == figures.ytd and record.since_inception == figures.twr  # one portfolio: its own
    assert figures.ytd > 0  # the price rose every day since the buy
    assert record.fees_ytd == Decimal("25") and figures.fees_ytd == Decimal("25")
    assert len(record.history) >= 2 and record.history[-1][1] == figures.value
    assert record.next_review == client.kyc_review_due_on


def test_client_page_shows_money_first_as_percentages_with_a_sparkline(owner_client, advisor):
    client = ContactFactory(owner=advisor, first_name="Moneta")
    _invested(client, advisor)
    html = owner_client.get(f"/crm/contacts/{client.pk}/").content.decode()
    assert html.index("Wealth") < html.index("Relationship") < html.index('id="timeline-h"')
    # returns through the formatting layer: signed, two decimals, a no-break space before "%"
    ytd = re.search(r"data-record-ytd>\s*<span[^>]*data-format=\"return\">([^<]+)<", html).group(1)
    assert re.fullmatch(r"[+−]\d+\.\d\d\u00a0%", ytd), ytd
    assert re.search(r"data-record-si>\s*<span[^>]*data-format=\"return\">[+−]\d+\.\d\d\u00a0%<", html)
    assert "data-record-fees>$25.00<" in html
    assert 'class="sparkline' in html and "Value over the last 12 months" in html
    assert "as fractions" not in html and not re.search(r">0\.\d{4}<", html)  # no raw fractions


def test_timeline_shows_income_taxes_and_fees_with_their_amounts(firm, advisor):
    client = ContactFactory(owner=advisor)
    _invested(client, advisor)
    items = selectors.client_record(user=advisor, contact=client, timeline_category="transactions").timeline
    by_title = {i.title.split(": ", 1)[1]: i for i in items}
    # amounts through the formatting layer (codex.formatting: symbol, cents)
    assert by_title["Dividend from RECQ (Record Quarry plc)"].amount == "$12.50"
    assert by_title["Tax from RECQ (Record Quarry plc)"].amount == "$1.88"
    assert by_title["Fee"].amount == "$25.00"
    assert by_title["Buy 10 RECQ (Record Quarry plc) at $100.00"].amount == "$1,000.00"
    assert not any(" 0 RECQ" in i.title for i in items)
    assert {i.category for i in items} == {"transactions"}


def test_timeline_chips_filter_by_category(firm, owner_client, owner, advisor):
    from portal.services import document_store

    client = ContactFactory(owner=advisor)
    _portfolio(client, advisor)
    ActivityFactory(contact=client, subject="Quarterly call", kind="call")
    document_store(
        actor=owner,
        tenant=firm,
        contact=client,
        title="Signed mandate",
        kind="agreement",
        visibility="internal",
        filename="mandate.pdf",
        content_type="application/pdf",
        content=b"%PDF-1.4 mandate",
    )
    url = f"/crm/contacts/{client.pk}/"

    def timeline(query: str) -> str:
        html = owner_client.get(url + query).content.decode()
        return html[html.index('id="timeline-h"') :]

    everything = timeline("")
    assert "Quarterly call" in everything and "Interest" in everything and "Signed mandate" in everything
    docs = timeline("?timeline=documents")
    assert "Agreement: Signed mandate" in docs and "Quarterly call" not in docs and "Interest" not in docs
    assert 'href="?timeline=documents#timeline" aria-current="page"' in docs
    txns = timeline("?timeline=transactions")
    assert "Interest" in txns and "Signed mandate" not in txns and "Quarterly call" not in txns
    acts = timeline("?timeline=activities")
    assert "Quarterly call" in acts and "Interest" not in acts
    assert "Quarterly call" in timeline("?timeline=nonsense")  # an unknown chip shows everything


def test_timeline_pages_on_the_server(firm, owner, advisor):
    client = ContactFactory(owner=advisor)
    now = dt.datetime.now(dt.UTC)
    for i in range(30):
        ActivityFactory(contact=client, subject=f"Note {i:02d}", kind="note", occurred_at=now - dt.timedelta(hours=i))
    first = selectors.contact_timeline_page(user=owner, contact=client, page=1)
    second = selectors.contact_timeline_page(user=owner, contact=client, page=2)
    assert [i.title for i in first.items] == [f"Note {i:02d}" for i in range(25)]
    assert [i.title for i in second.items] == [f"Note {i:02d}" for i in range(25, 30)]
    assert first.has_next and not first.has_previous and second.has_previous and not second.has_next
    assert selectors.contact_timeline_page(user=owner, contact=client, page=0).number == 1


def test_timeline_page_links_keep_the_chip(owner_client, advisor):
    client = ContactFactory(owner=advisor)
    now = dt.datetime.now(dt.UTC)
    for i in range(27):
        ActivityFactory(contact=client, subject=f"Call {i:02d}", kind="call", occurred_at=now - dt.timedelta(hours=i))
    html = owner_client.get(f"/crm/contacts/{client.pk}/?timeline=activities").content.decode()
    assert 'href="?timeline=activities&amp;tpage=2#timeline" rel="next"' in html
    page2 = owner_client.get(f"/crm/contacts/{client.pk}/?timeline=activities&tpage=2").content.decode()
    page2 = page2[page2.index('id="timeline-h"') :]
    assert "Call 26" in page2 and "Call 00" not in page2
    assert owner_client.get(f"/crm/contacts/{client.pk}/?tpage=x").status_code == 200


def test_another_firm_cannot_reach_a_client_timeline_page(owner_client, outsider_client, advisor):
    client = ContactFactory(owner=advisor)
    _portfolio(client, advisor)
    assert owner_client.get(f"/crm/contacts/{client.pk}/?timeline=transactions&tpage=1").status_code == 200
    r = outsider_client.get(f"/crm/contacts/{client.pk}/?timeline=transactions&tpage=1")
    assert r.status_code == 404 and "Balanced" not in r.content.decode()


def test_an_advisor_outside_the_book_sees_neither_record_nor_documents(firm, owner, advisor, advisor2, client_for):
    client = ContactFactory(owner=advisor2)
    ActivityFactory(contact=client, subject="Private chat", kind="call")
    c = client_for(advisor)
    r = c.get(f"/crm/contacts/{client.pk}/?timeline=documents")
    assert r.status_code in (403, 404) and "Private chat" not in r.content.decode()
