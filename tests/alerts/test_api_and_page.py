"""Alerts API and page: roles, the advisor's book, plan feature, isolation, unread state, query counts."""

from datetime import date
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_tenants.utils import schema_context

from billing.models import Subscription
from portfolios.alerts import services
from portfolios.alerts.models import AlertEvent, AlertNotification, AlertRule
from portfolios.market.models import Price
from tests.market.factories import InstrumentFactory

pytestmark = pytest.mark.django_db
RULES = "/api/v1/alerts/rules/"
EVENTS = "/api/v1/alerts/events/"


def post(client, data, **extra):
    return client.post(RULES, data, content_type="application/json", **extra)


def fired_rule(actor, tenant, instrument, threshold="100"):
    rule = services.alert_rule_create(
        actor=actor, tenant=tenant, kind="price_above", threshold=threshold, instrument=instrument
    )
    Price.objects.get_or_create(instrument=instrument, date=date(2026, 1, 5), defaults={"close": Decimal(120)})
    services.alerts_evaluate()
    return rule


# --- rules ------------------------------------------------------------------------------------------
def test_owner_creates_a_price_rule(owner_client, owner, aapl):
    response = post(
        owner_client, {"kind": "price_above", "instrument": aapl.pk, "threshold": "250.5", "note": "take profit"}
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["instrument_symbol"] == "AAPL" and body["threshold"] == "250.500000"
    assert body["armed"] is True and body["created_by"] == owner.email
    assert AlertRule.objects.get(pk=body["id"]).created_by == owner


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"kind": "price_above", "threshold": "10"}, "instrument"),
        ({"kind": "price_above", "instrument": "AAPL_ID", "threshold": "-1"}, "threshold"),
        ({"kind": "price_above", "instrument": "AAPL_ID", "threshold": "ten"}, "threshold"),
        ({"kind": "daily_move_pct", "instrument": "AAPL_ID", "threshold": "150"}, "threshold"),
        ({"kind": "portfolio_drawdown_pct", "threshold": "10"}, "portfolio"),
        ({"kind": "portfolio_drawdown_pct", "portfolio": 999999, "threshold": "10"}, "portfolio"),
        ({"kind": "weather", "threshold": "10"}, "kind"),
        ({"kind": "price_above", "instrument": 999999, "threshold": "10"}, "instrument"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(owner_client, aapl, data, field):
    data = {k: (aapl.pk if v == "AAPL_ID" else v) for k, v in data.items()}
    response = post(owner_client, data)
    assert response.status_code == 400
    assert field in response.json()["error"]["details"]
    assert not AlertRule.objects.exists()


def test_plan_without_alerts_is_a_402(owner_client, firm, aapl):
    plan = Subscription.objects.select_related("plan").get(tenant_id=firm.pk).plan
    type(plan).objects.filter(pk=plan.pk).update(features=["api"])
    response = post(owner_client, {"kind": "price_above", "instrument": aapl.pk, "threshold": "1"})
    assert response.status_code == 402
    assert response.json()["error"]["code"] == "feature_not_in_plan"


def test_viewer_reads_but_cannot_write(viewer_client, owner, firm, aapl):
    rule = fired_rule(owner, firm, aapl)
    assert viewer_client.get(RULES).json()["count"] == 1
    assert post(viewer_client, {"kind": "price_above", "instrument": aapl.pk, "threshold": "1"}).status_code == 403
    assert viewer_client.delete(f"{RULES}{rule.pk}/").status_code == 403
    assert (
        viewer_client.patch(f"{RULES}{rule.pk}/", {"active": False}, content_type="application/json").status_code == 403
    )


def test_advisor_sees_and_manages_only_their_book(client_for, advisor, advisor2, owner, firm, aapl, client_portfolio):
    mine = services.alert_rule_create(actor=advisor, tenant=firm, kind="price_below", threshold="50", instrument=aapl)
    on_my_book = services.alert_rule_create(
        actor=owner, tenant=firm, kind="portfolio_drawdown_pct", threshold="10", portfolio=client_portfolio
    )
    theirs = services.alert_rule_create(
        actor=advisor2, tenant=firm, kind="price_below", threshold="60", instrument=aapl
    )
    managers = services.alert_rule_create(
        actor=owner, tenant=firm, kind="price_above", threshold="500", instrument=aapl
    )

    c = client_for(advisor)
    assert {r["id"] for r in c.get(RULES).json()["results"]} == {mine.pk, on_my_book.pk}
    assert c.get(f"{RULES}{theirs.pk}/").status_code == 404
    assert c.delete(f"{RULES}{managers.pk}/").status_code == 404
    response = c.patch(f"{RULES}{on_my_book.pk}/", {"threshold": "12"}, content_type="application/json")
    assert response.status_code == 200 and response.json()["threshold"] == "12.000000"
    assert c.delete(f"{RULES}{mine.pk}/").status_code == 204
    # advisor2 cannot put an alert on a portfolio outside their book
    c2 = client_for(advisor2)
    response = c2.post(
        RULES,
        {"kind": "portfolio_drawdown_pct", "portfolio": client_portfolio.pk, "threshold": "5"},
        content_type="application/json",
    )
    assert response.status_code == 400 and "portfolio" in response.json()["error"]["details"]


def test_api_keys_read_with_read_scope_and_write_with_write_scope(firm, api_key_for, anon_client, aapl):
    read = api_key_for(firm, "read")
    write = api_key_for(firm, "write")
    data = {"kind": "price_above", "instrument": aapl.pk, "threshold": "1"}
    assert post(anon_client, data, HTTP_X_API_KEY=read).status_code == 403
    created = post(anon_client, data, HTTP_X_API_KEY=write)
    assert created.status_code == 201 and created.json()["created_by"] is None
    assert anon_client.get(RULES, HTTP_X_API_KEY=read).json()["count"] == 1
    assert anon_client.get(RULES).status_code == 401


def test_other_firm_never_sees_rules_or_events(owner_client, outsider_client, owner, firm, aapl):
    rule = fired_rule(owner, firm, aapl)
    assert owner_client.get(RULES).json()["count"] == 1  # positive control
    assert owner_client.get(EVENTS).json()["count"] == 1
    assert outsider_client.get(RULES).json()["count"] == 0
    assert outsider_client.get(EVENTS).json()["count"] == 0
    assert outsider_client.get(f"{RULES}{rule.pk}/").status_code == 404
    assert outsider_client.delete(f"{RULES}{rule.pk}/").status_code == 404
    page = outsider_client.get("/portfolios/alerts/").content.decode()
    assert "closed at 120.00" not in page and "No alert rules yet." in page


def test_an_acme_key_is_refused_on_globex(firm, other_firm, api_key_for, owner, aapl):
    from tests.conftest import FirmClient

    fired_rule(owner, firm, aapl)
    key = api_key_for(firm, "read")
    assert FirmClient(other_firm).get(RULES, HTTP_X_API_KEY=key).status_code == 401


# --- events -----------------------------------------------------------------------------------------
def test_events_carry_the_callers_unread_state_and_can_be_marked_read(
    owner_client, admin_client_factory, owner, firm, aapl
):
    fired_rule(owner, firm, aapl)
    body = owner_client.get(EVENTS).json()
    assert body["count"] == 1 and body["results"][0]["unread"] is True
    assert "closed at 120.00" in body["results"][0]["message"]
    assert owner_client.get(f"{EVENTS}unread-count/").json() == {"unread": 1}
    # another manager sees the event but has no notification of it
    other = admin_client_factory()
    assert other.get(EVENTS).json()["results"][0]["unread"] is False
    assert other.get(f"{EVENTS}unread-count/").json() == {"unread": 0}

    bad = owner_client.post(f"{EVENTS}mark-read/", {"ids": "all"}, content_type="application/json")
    assert bad.status_code == 400 and "ids" in bad.json()["error"]["details"]
    event_id = body["results"][0]["id"]
    marked = owner_client.post(f"{EVENTS}mark-read/", {"ids": [event_id]}, content_type="application/json")
    assert marked.json() == {"marked": 1}
    assert owner_client.get(f"{EVENTS}unread-count/").json() == {"unread": 0}
    assert owner_client.get(f"{EVENTS}?unread=true").json()["count"] == 0


def test_advisor_sees_events_they_were_notified_of(client_for, advisor, admin_user, firm, aapl, client_portfolio):
    rule = fired_rule(admin_user, firm, aapl)  # a manager's rule on a stock the advisor's client holds
    c = client_for(advisor)
    assert c.get(RULES).json()["count"] == 0
    events = c.get(EVENTS).json()
    assert [e["rule"] for e in events["results"]] == [rule.pk]
    assert c.get(f"{EVENTS}unread-count/").json() == {"unread": 1}


@pytest.fixture
def admin_client_factory(client_for, admin_user):
    return lambda: client_for(admin_user)


def _count(client, url):
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(url).status_code == 200
    return len(ctx.captured_queries)


def test_list_query_counts_do_not_grow(owner_client, owner, firm, aapl):
    fired_rule(owner, firm, aapl)
    owner_client.get(RULES)  # warm the session
    few = {url: _count(owner_client, url) for url in (RULES, EVENTS, "/portfolios/alerts/")}
    for _n in range(12):
        instrument = InstrumentFactory()
        Price.objects.create(instrument=instrument, date=date(2026, 1, 5), close=Decimal(10))
        services.alert_rule_create(actor=owner, tenant=firm, kind="price_above", threshold="1", instrument=instrument)
    services.alerts_evaluate()
    assert AlertEvent.objects.count() == 13
    many = {url: _count(owner_client, url) for url in (RULES, EVENTS, "/portfolios/alerts/")}
    assert many == few
    assert few[RULES] <= 12


# --- page -------------------------------------------------------------------------------------------
def test_page_lists_events_rules_and_creates_a_rule(owner_client, owner, firm, aapl):
    fired_rule(owner, firm, aapl)
    html = owner_client.get("/portfolios/alerts/").content.decode()
    assert "1 unread" in html and "closed at 120.00" in html and "Create alert" in html
    response = owner_client.post(
        "/portfolios/alerts/", {"kind": "price_below", "instrument": aapl.pk, "threshold": "80", "note": "stop"}
    )
    assert response.status_code == 302
    assert AlertRule.objects.filter(kind="price_below", threshold=80, note="stop").exists()


def test_page_shows_field_errors_and_writes_nothing(owner_client, aapl):
    response = owner_client.post("/portfolios/alerts/", {"kind": "price_above", "threshold": "-3"})
    html = response.content.decode()
    assert response.status_code == 200
    assert "Choose the instrument to watch." in html or "above zero" in html
    assert not AlertRule.objects.exists()


def test_page_pause_delete_and_mark_read(owner_client, owner, firm, aapl):
    rule = fired_rule(owner, firm, aapl)
    owner_client.post(f"/portfolios/alerts/rules/{rule.pk}/toggle/")
    rule.refresh_from_db()
    assert rule.active is False
    owner_client.post("/portfolios/alerts/read/")
    assert not AlertNotification.objects.filter(read_at__isnull=True).exists()
    owner_client.post(f"/portfolios/alerts/rules/{rule.pk}/delete/")
    assert not AlertRule.objects.filter(pk=rule.pk).exists()


def test_viewer_page_has_no_form_and_cannot_post(viewer_client, owner, firm, aapl):
    rule = fired_rule(owner, firm, aapl)
    html = viewer_client.get("/portfolios/alerts/").content.decode()
    assert "Create alert" not in html and "AAPL" in html
    viewer_client.post("/portfolios/alerts/", {"kind": "price_below", "instrument": aapl.pk, "threshold": "80"})
    assert AlertRule.objects.count() == 1
    assert viewer_client.post(f"/portfolios/alerts/rules/{rule.pk}/delete/").status_code == 403


def test_page_needs_sign_in(anon_client):
    assert anon_client.get("/portfolios/alerts/").status_code == 302


def test_outsider_firm_rule_is_not_reachable_from_acme(owner_client, other_firm, outsider, aapl):
    with schema_context(other_firm.schema_name):
        theirs = services.alert_rule_create(
            actor=outsider, tenant=other_firm, kind="price_above", threshold="1", instrument=aapl
        )
    assert owner_client.get(f"{RULES}{theirs.pk}/").status_code in (404,)
    assert owner_client.post(f"/portfolios/alerts/rules/{theirs.pk}/delete/").status_code == 404
    with schema_context(other_firm.schema_name):
        assert AlertRule.objects.filter(pk=theirs.pk).exists()
