"""Evaluation after imports: fire once per crossing, re-arm, right firm, e-mail, CRM task."""

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone
from django_tenants.utils import schema_context

from billing.models import Subscription
from crm.models import Activity
from portfolios.alerts import services
from portfolios.alerts.models import AlertEvent, AlertNotification, AlertRule
from portfolios.alerts.tasks import alerts_evaluate_firm
from portfolios.market.models import Price
from tenants.accounts.models import User

from .conftest import DAY

pytestmark = pytest.mark.django_db


def rule_for(actor, tenant, instrument, kind="price_above", threshold="100"):
    return services.alert_rule_create(actor=actor, tenant=tenant, kind=kind, threshold=threshold, instrument=instrument)


def test_fires_once_per_crossing_and_rearms_when_it_clears(firm, owner, aapl, import_closes, mailoutbox):
    rule = rule_for(owner, firm, aapl)
    fired = []
    for offset, close in enumerate([95, 101, 104, 99, 98, 100.5, 102]):
        import_closes(aapl, {DAY + timedelta(days=offset): close})
        fired.append(AlertEvent.objects.filter(rule=rule).count())
    assert fired == [0, 1, 1, 1, 1, 2, 2]
    events = list(AlertEvent.objects.filter(rule=rule).order_by("fired_at", "pk"))
    assert [(e.observed_on, e.value) for e in events] == [
        (DAY + timedelta(days=1), Decimal("101")),
        (DAY + timedelta(days=5), Decimal("100.5")),
    ]
    rule.refresh_from_db()
    assert rule.armed is False and rule.last_value == Decimal("102")
    assert events[0].message == "AAPL (Apple Inc.) closed at 101.00 on 2026-01-06, at or above 100."


def test_evaluating_again_without_new_data_fires_nothing(firm, owner, aapl):
    Price.objects.create(instrument=aapl, date=DAY, close=Decimal(120))
    rule_for(owner, firm, aapl)
    assert len(services.alerts_evaluate()) == 1
    assert services.alerts_evaluate() == []
    assert AlertEvent.objects.count() == 1


def test_inactive_rules_are_not_evaluated_and_resuming_rearms(firm, owner, aapl):
    Price.objects.create(instrument=aapl, date=DAY, close=Decimal(120))
    rule = rule_for(owner, firm, aapl)
    services.alert_rule_update(actor=owner, rule=rule, active=False)
    assert services.alerts_evaluate() == []
    services.alert_rule_update(actor=owner, rule=rule, active=True)
    assert len(services.alerts_evaluate()) == 1


def test_daily_move_and_price_below(firm, owner, aapl, import_closes):
    move = rule_for(owner, firm, aapl, kind="daily_move_pct", threshold="5")
    below = rule_for(owner, firm, aapl, kind="price_below", threshold="90")
    import_closes(aapl, {DAY: 100, DAY + timedelta(days=1): 96})
    assert not AlertEvent.objects.exists()
    import_closes(aapl, {DAY + timedelta(days=2): 89})
    assert {e.rule_id for e in AlertEvent.objects.all()} == {move.pk, below.pk}
    assert "fell 7.29%" in AlertEvent.objects.get(rule=move).message


def test_changing_the_threshold_rearms(firm, owner, aapl):
    Price.objects.create(instrument=aapl, date=DAY, close=Decimal(120))
    rule = rule_for(owner, firm, aapl)
    services.alerts_evaluate()
    services.alert_rule_update(actor=owner, rule=rule, threshold="110")
    assert len(services.alerts_evaluate()) == 1


def test_import_runs_one_task_per_firm_each_in_its_own_schema(firm, other_firm, owner, outsider, aapl, import_closes):
    acme_rule = rule_for(owner, firm, aapl, threshold="100")
    with schema_context(other_firm.schema_name):
        globex_rule = rule_for(outsider, other_firm, aapl, threshold="150")
    schemas = []
    original = services.alerts_evaluate

    def spy(**kwargs):
        schemas.append(connection.schema_name)
        return original(**kwargs)

    services.alerts_evaluate = spy
    try:
        connection.set_schema_to_public()  # imports run in the public schema (command, admin)
        import_closes(aapl, {DAY: 120})
    finally:
        services.alerts_evaluate = original
    assert sorted(schemas) == sorted(t.schema_name for t in services.firms_to_evaluate())
    assert {"firm_acme", "firm_globex"} <= set(schemas)
    assert connection.schema_name == "public"  # restored after the tasks
    with schema_context(firm.schema_name):
        assert list(AlertEvent.objects.values_list("rule_id", flat=True)) == [acme_rule.pk]
    with schema_context(other_firm.schema_name):
        assert not AlertEvent.objects.exists()  # 120 is below globex's 150
        assert AlertRule.objects.get(pk=globex_rule.pk).last_value == Decimal(120)


def test_the_task_reports_its_schema_and_skips_firms_without_the_feature(firm, owner, aapl):
    Price.objects.create(instrument=aapl, date=DAY, close=Decimal(120))
    rule_for(owner, firm, aapl)
    assert alerts_evaluate_firm.delay().get() == {"schema": "firm_acme", "fired": 1}
    plan = Subscription.objects.select_related("plan").get(tenant_id=firm.pk).plan
    type(plan).objects.filter(pk=plan.pk).update(features=[])
    assert alerts_evaluate_firm.delay().get()["skipped"] == "alerts not in plan"


def test_notifies_owner_and_affected_advisor_by_email_once_and_opens_a_crm_task(
    firm, admin_user, advisor, aapl, client_portfolio, import_closes, mailoutbox
):
    rule = rule_for(admin_user, firm, aapl)
    import_closes(aapl, {DAY: 120})
    event = AlertEvent.objects.get(rule=rule)
    recipients = set(AlertNotification.objects.filter(event=event).values_list("recipient__email", flat=True))
    assert recipients == {admin_user.email, advisor.email}
    assert sorted(m.to[0] for m in mailoutbox) == sorted([admin_user.email, advisor.email])
    assert "AAPL (Apple Inc.) closed at 120.00" in mailoutbox[0].subject
    mails = {m.to[0]: m.body for m in mailoutbox}
    assert "http" in mails[advisor.email] and "acme" in mails[advisor.email]
    assert "/portfolios/alerts/" in mails[advisor.email]
    assert "Portfolios concerned:\n- Ada growth (Ada Client)" in mails[advisor.email]
    assert "Ada growth" in mails[admin_user.email]  # managers see every portfolio concerned
    assert AlertNotification.objects.filter(event=event, emailed_at__isnull=False).count() == 2

    task = Activity.objects.get(kind="task", owner=advisor)
    assert task.contact == client_portfolio.client
    assert task.due_date == timezone.localdate() + timedelta(days=1)
    assert "Ada Client" in task.subject and "AAPL" in task.subject
    assert task.source == f"alert:{event.pk}:{client_portfolio.pk}"

    # delivering again (a retried task) sends nothing twice and opens no second task
    assert services.alert_event_deliver(event_id=event.pk, tenant=firm) == {"emailed": 0, "tasks": 1}
    assert len(mailoutbox) == 2
    assert Activity.objects.filter(kind="task", owner=advisor).count() == 1


def test_archived_portfolios_and_inactive_advisors_get_nothing(
    firm, admin_user, advisor, aapl, client_portfolio, mailoutbox
):
    client_portfolio.archived = True
    client_portfolio.save()
    Price.objects.create(instrument=aapl, date=DAY, close=Decimal(120))
    rule_for(admin_user, firm, aapl)
    with_capture = services.alerts_evaluate()
    assert len(with_capture) == 1
    assert set(AlertNotification.objects.values_list("recipient_id", flat=True)) == {admin_user.pk}
    User.objects.filter(pk=admin_user.pk).update(is_active=False)
    assert services.event_recipients(with_capture[0]) == []


def test_portfolio_drawdown_rule(firm, advisor, aapl, django_capture_on_commit_callbacks, mailoutbox):
    from portfolios import services as portfolio_services

    portfolio = portfolio_services.portfolio_create(
        tenant=firm, actor=advisor, name="Drawdown test", advisor=advisor, base_currency="USD"
    )
    start = date.today() - timedelta(days=10)
    for offset, close in enumerate([100, 110, 104, 97]):
        Price.objects.create(instrument=aapl, date=start + timedelta(days=offset), close=Decimal(close))
    portfolio_services.transaction_record(
        portfolio=portfolio, kind="deposit", trade_date=start, amount=Decimal(1000), currency="USD"
    )
    portfolio_services.transaction_record(
        portfolio=portfolio,
        kind="buy",
        trade_date=start,
        instrument=aapl,
        quantity=Decimal(10),
        price=Decimal(100),
        currency="USD",
    )
    rule = services.alert_rule_create(
        actor=advisor, tenant=firm, kind="portfolio_drawdown_pct", threshold="15", portfolio=portfolio
    )
    with django_capture_on_commit_callbacks(execute=True):
        events = services.alerts_evaluate()
    # the deposit buys 10 AAPL: value 1000, peak 1100, now 970: (1100 - 970) / 1100 = 11.82 % down
    assert events == []
    rule.refresh_from_db()
    assert rule.last_value == Decimal("11.818182")
    services.alert_rule_update(actor=advisor, rule=rule, threshold="10")
    with django_capture_on_commit_callbacks(execute=True):
        events = services.alerts_evaluate()
    assert len(events) == 1 and "Portfolio Drawdown test is 11.82% below its peak" in events[0].message
    assert [m.to for m in mailoutbox] == [[advisor.email]]


def test_suspended_and_closed_firms_are_not_evaluated(firm, other_firm):
    from tenants.models import Tenant

    assert {t.slug for t in services.firms_to_evaluate()} >= {"acme", "globex"}
    with schema_context("public"):
        Tenant.objects.filter(pk=other_firm.pk).update(status="suspended")
    assert "globex" not in {t.slug for t in services.firms_to_evaluate()}
    assert "acme" in {t.slug for t in services.firms_to_evaluate()}


def test_instrument_only_imports_queue_nothing(firm):
    assert services.alerts_enqueue_all_firms(kind="instruments") == 0


def test_the_task_runs_in_the_schema_it_carries_not_the_senders(firm, other_firm, outsider, aapl):
    Price.objects.create(instrument=aapl, date=DAY, close=Decimal(120))
    with schema_context(other_firm.schema_name):
        rule_for(outsider, other_firm, aapl)
    assert connection.schema_name == "firm_acme"
    result = alerts_evaluate_firm.apply(headers={"_schema_name": other_firm.schema_name}).get()
    assert result == {"schema": "firm_globex", "fired": 1}
    assert connection.schema_name == "firm_acme"  # the sender's schema is restored
    assert not AlertEvent.objects.exists()  # nothing fired in acme
    with schema_context(other_firm.schema_name):
        assert AlertEvent.objects.count() == 1


def test_an_advisor_is_not_told_about_other_advisors_clients(firm, admin_user, advisor, advisor2, aapl, mailoutbox):
    from crm.models import Contact
    from portfolios.models import Holding, Portfolio

    for user, name in ((advisor, "Mine"), (advisor2, "Theirs")):
        contact = Contact.objects.create(first_name=name, last_name="Client", owner=user, lifecycle="client")
        portfolio = Portfolio.objects.create(name=f"{name} book", client=contact, advisor=user)
        Holding.objects.create(
            portfolio=portfolio, instrument=aapl, quantity=1, currency="USD", cost_local=100, cost_base=100
        )
    Price.objects.create(instrument=aapl, date=DAY, close=Decimal(120))
    rule_for(admin_user, firm, aapl)
    event = services.alerts_evaluate()[0]
    services.alert_event_deliver(event_id=event.pk, tenant=firm)
    mails = {m.to[0]: m.body for m in mailoutbox}
    assert set(mails) == {admin_user.email, advisor.email, advisor2.email}
    assert "Mine book" in mails[advisor.email] and "Theirs book" not in mails[advisor.email]
    assert "Theirs book" in mails[advisor2.email] and "Mine book" not in mails[advisor2.email]
    assert "Mine book" in mails[admin_user.email] and "Theirs book" in mails[admin_user.email]
    assert {(a.owner_id, a.contact.first_name) for a in Activity.objects.filter(kind="task")} == {
        (advisor.pk, "Mine"),
        (advisor2.pk, "Theirs"),
    }
