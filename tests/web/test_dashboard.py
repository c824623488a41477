"""The dashboard: panels from each domain app, scoped to the caller's book, constant query count."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.core.cache import caches
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from codex.site.dashboard import dashboard_for, deals_panel
from crm.models import ActivityKind, DealStatus
from portfolios import services as portfolio_services
from portfolios.alerts.models import AlertEvent, AlertRule
from tests.crm.factories import ActivityFactory, DealFactory, TaskFactory
from tests.portfolios.factories import ContactFactory, InstrumentFactory, PortfolioFactory, daily_prices

pytestmark = pytest.mark.django_db


def build_book(*, advisor, count: int, today: date, tag: str = "") -> None:
    """``count`` clients, each with a priced portfolio, a deal closing this month, a due task,
    a logged call and an alert event, all in ``advisor``'s book."""
    start = today - timedelta(days=40)
    for i in range(count):
        instrument = InstrumentFactory(symbol=f"DB{tag}{count}{i}", sector=["Technology", "Health"][i % 2])
        daily_prices(instrument, start, [Decimal(100 + (d % 7)) for d in range(41)])
        client = ContactFactory(owner=advisor, first_name=f"Client{tag}{i}")
        portfolio = PortfolioFactory(name=f"Book {tag}{i}", advisor=advisor, client=client)
        for kind, fields in (
            ("deposit", {"amount": "10000"}),
            ("buy", {"instrument": instrument, "quantity": "50", "price": "100"}),
        ):
            portfolio_services.transaction_record(
                portfolio=portfolio, created_by=advisor, today=today, kind=kind, trade_date=start, **fields
            )
        DealFactory(title=f"Deal {tag}{i}", contact=client, owner=advisor, expected_close=today, amount=Decimal("5000"))
        TaskFactory(subject=f"Call {tag}{i}", contact=client, owner=advisor, due_date=today)
        ActivityFactory(kind=ActivityKind.CALL, subject=f"Spoke to {tag}{i}", contact=client, owner=advisor)
        rule = AlertRule.objects.create(kind="price_above", instrument=instrument, threshold=1, created_by=advisor)
        AlertEvent.objects.create(
            rule=rule, fired_at=timezone.now(), observed_on=today, value=Decimal(101), message=f"Alert {tag}{i}"
        )


class _Request:
    def __init__(self, user, tenant):
        self.user = user
        self.tenant = tenant


def test_owner_sees_every_panel_with_the_firms_figures(owner_client, owner, advisor, firm):
    today = timezone.localdate()
    build_book(advisor=advisor, count=2, today=today)
    board = dashboard_for(request=_Request(owner, firm), today=today)
    assert board.missing == []
    assert board.book.aum > 0 and board.book.portfolio_count == 2
    assert len(board.performance.rows) == 2 and board.performance.ytd is not None
    assert board.deals.count == 2 and board.deals.total == Decimal("10000")
    assert [a.subject for a in board.activity] == ["Spoke to 1", "Spoke to 0"]
    assert len(board.alerts) == 2
    assert board.tasks.count == 0  # the owner has no task of their own

    html = owner_client.get("/").content.decode()
    assert "Assets under management" in html and "Book 0" in html and "Deal 1" in html
    assert '<svg class="chart"' in html and "Alert 0" in html
    assert "Today's biggest moves" in html and "DB20 · DB20 Corp" in html


def test_advisor_sees_their_tasks_and_book_only(client_for, advisor, advisor2, firm):
    today = timezone.localdate()
    build_book(advisor=advisor, count=1, today=today, tag="mine")
    build_book(advisor=advisor2, count=1, today=today, tag="theirs")
    html = client_for(advisor).get("/").content.decode()
    assert "Call mine0" in html and "Deal mine0" in html and "Book mine0" in html
    assert "theirs" not in html


def test_another_firm_sees_none_of_it(outsider_client, advisor, firm):
    build_book(advisor=advisor, count=1, today=timezone.localdate(), tag="acme")
    html = outsider_client.get("/").content.decode()
    assert "acme0" not in html
    assert "Dashboard" in html


def test_advisor_of_another_firm_with_the_same_id_sees_none_of_the_clients_portfolios(
    client_for, owner, advisor, firm, other_firm
):
    """The client's owner kept on the portfolio (decision 1300) is a user id of this firm's
    schema: the other firm's advisor with the same id reads their own schema only."""
    from django_tenants.utils import schema_context

    from tenants.accounts.models import User

    with schema_context(other_firm.schema_name):
        theirs = User.objects.get(email="advisor@globex.test")
    assert theirs.pk == advisor.pk  # both firms made their users in the same order
    today = timezone.localdate()
    start = today - timedelta(days=10)
    instrument = InstrumentFactory(symbol="SAMEID")
    daily_prices(instrument, start, [Decimal(100)] * 11)
    client = ContactFactory(owner=advisor, first_name="Sameid")
    portfolio = PortfolioFactory(name="Sameid book", advisor=owner, client=client)  # theirs only as the client's owner
    portfolio_services.transaction_record(
        portfolio=portfolio, created_by=owner, today=today, kind="deposit", trade_date=start, amount="7777777"
    )
    mine = client_for(advisor).get("/").content.decode()
    assert "Sameid book" in mine and "7,777,777" in mine
    html = client_for(theirs, other_firm).get("/").content.decode()
    assert "Sameid book" not in html and "7,777,777" not in html
    assert "Dashboard" in html


def test_dashboard_query_count_does_not_grow_with_the_book(client_for, owner, advisor, firm):
    today = timezone.localdate()
    client = client_for(owner)
    build_book(advisor=advisor, count=1, today=today, tag="a")
    client.get("/")  # warm caches (host, session)

    def cold_and_warm() -> tuple[list[str], list[str]]:
        """The page with the shared cache (Redis) emptied, then again with the summaries cached."""
        caches["default"].clear()
        runs = []
        for _ in range(2):
            with CaptureQueriesContext(connection) as ctx:
                assert client.get("/").status_code == 200
            runs.append([q["sql"][:90] for q in ctx.captured_queries])
        return runs[0], runs[1]

    few_cold, few_warm = cold_and_warm()
    build_book(advisor=advisor, count=6, today=today, tag="b")
    many_cold, many_warm = cold_and_warm()
    assert len(many_cold) == len(few_cold), many_cold
    assert len(many_warm) == len(few_warm), many_warm


def test_onboarding_checklist_ticks_itself_off(owner_client, owner, firm, api_key_for):
    from codex.site.onboarding import onboarding_checklist

    steps = {s.key: s.done for s in onboarding_checklist(tenant=firm).steps}
    assert set(steps) == {"colleague", "client", "transactions", "api_key"}
    assert steps["colleague"] is True  # the fixtures' firm has several members
    assert steps["client"] is steps["transactions"] is steps["api_key"] is False
    html = owner_client.get("/").content.decode()
    assert "Get Acme Wealth Partners started" in html

    ContactFactory(first_name="First")
    api_key_for(firm, "read")
    steps = {s.key: s.done for s in onboarding_checklist(tenant=firm).steps}
    assert steps == {"colleague": True, "client": True, "transactions": False, "api_key": True}


def test_onboarding_checklist_query_is_one(firm):
    from codex.site.onboarding import onboarding_checklist

    with CaptureQueriesContext(connection) as ctx:
        checklist = onboarding_checklist(tenant=firm)
    # Statements proper; ``SET search_path`` is django-tenants' schema switch, not a read.
    assert len([q for q in ctx.captured_queries if not q["sql"].startswith("SET search_path")]) == 1
    assert checklist.done_count >= 1 and checklist.progress_class.startswith("w")


def test_complete_checklist_disappears(owner_client, owner, advisor, firm, api_key_for):
    build_book(advisor=advisor, count=1, today=timezone.localdate())
    api_key_for(firm, "read")
    html = owner_client.get("/").content.decode()
    assert "started" not in html and "checklist" not in html


def test_deals_panel_counts_only_open_deals_closing_this_month(owner, advisor, firm):
    today = timezone.localdate()
    DealFactory(title="Now", owner=advisor, expected_close=today)
    DealFactory(title="Later", owner=advisor, expected_close=today + timedelta(days=40))
    DealFactory(title="Won", owner=advisor, expected_close=today, status=DealStatus.WON, closed_at=timezone.now())
    board = dashboard_for(request=_Request(owner, firm), today=today)
    assert [d.title for d in board.deals.deals] == ["Now"]


def test_deals_panel_sums_the_month_in_sql_and_lists_the_soonest_six(owner, advisor, advisor2, firm):
    # decision 1210: six rows, the month's count and the amounts of the soonest deal's currency,
    # in two queries whatever the number of deals; another advisor's deals stay out of the book.
    first = timezone.localdate().replace(day=1)
    for i in range(8):
        DealFactory(
            title=f"USD {i}",
            owner=advisor,
            expected_close=first,
            amount=Decimal("1000.10"),
            probability=25,
            currency="USD",
        )
    DealFactory(title="EUR", owner=advisor, expected_close=first, amount=Decimal("700"), probability=50, currency="EUR")
    DealFactory(title="Not mine", owner=advisor2, expected_close=first, amount=Decimal("9"), currency="USD")
    for user, expected_count in ((owner, 10), (advisor, 9)):
        with CaptureQueriesContext(connection) as ctx:
            panel = deals_panel(user=user, today=first)
        assert len(ctx.captured_queries) == 2, [q["sql"] for q in ctx.captured_queries]
        assert panel.count == expected_count
        assert len(panel.deals) == 6 and [d.title for d in panel.deals] == [f"USD {i}" for i in range(6)]
        assert panel.currency == "USD"
        usd = 8 if user == advisor else 9
        assert panel.total == Decimal("1000.10") * 8 + (Decimal(9) if usd == 9 else 0)
        assert panel.weighted == Decimal("1000.10") * 8 * 25 / 100 + (Decimal(9) * 10 / 100 if usd == 9 else 0)


def test_deals_panel_with_no_deal_this_month_is_one_query(advisor, firm):
    today = timezone.localdate()
    DealFactory(title="Later", owner=advisor, expected_close=today + timedelta(days=40))
    with CaptureQueriesContext(connection) as ctx:
        panel = deals_panel(user=advisor, today=today)
    assert len(ctx.captured_queries) == 1
    assert (panel.count, panel.total, panel.weighted, panel.deals) == (0, 0, 0, [])


def test_read_only_support_session_sees_the_firm_dashboard_without_tasks(advisor, firm):
    from codex.security.support import SupportPrincipal

    today = timezone.localdate()
    build_book(advisor=advisor, count=1, today=today)
    support = SupportPrincipal({"operator": "ops@codex.example", "reason": "ticket 42"})
    board = dashboard_for(request=_Request(support, firm), today=today)
    assert board.missing == []
    assert board.book.portfolio_count == 1 and board.deals.count == 1
    assert board.tasks.count == 0 and board.tasks.items == []


def test_dashboard_says_what_the_aum_leaves_out(owner_client, advisor, firm):
    today = timezone.localdate()
    start = today - timedelta(days=10)
    franc = InstrumentFactory(symbol="CHFONLY", currency="CHF")
    daily_prices(franc, start, [Decimal(50)] * 11)
    portfolio = PortfolioFactory(name="Swiss", advisor=advisor, client=ContactFactory(owner=advisor))
    for kind, fields in (
        ("deposit", {"amount": "10000"}),
        ("buy", {"instrument": franc, "quantity": "10", "price": "50", "fx_rate": "1.1"}),
    ):
        portfolio_services.transaction_record(
            portfolio=portfolio, created_by=advisor, today=today, kind=kind, trade_date=start, **fields
        )
    html = owner_client.get("/").content.decode()
    assert "Incomplete" in html and "Left out: amounts in CHF (no rate to USD yet)." in html


@pytest.mark.parametrize(
    "path",
    [
        "/portfolios/",
        "/portfolios/alerts/",
        "/crm/contacts/",
        "/crm/deals/",
        "/crm/pipeline/",
        "/crm/tasks/",
        "/accounts/api-keys/",
    ],
)
def test_list_page_query_count_does_not_grow_with_rows(client_for, owner, advisor, firm, path):
    """The main list pages, as the web layer sees them: same number of statements for 1 and 7 books."""
    today = timezone.localdate()
    client = client_for(owner)
    build_book(advisor=advisor, count=1, today=today, tag="a")
    TaskFactory(subject="Mine", owner=owner, due_date=today)
    client.get(path)

    def statements() -> tuple[list[str], list[str]]:
        """The page with the shared cache (Redis) emptied, then again with what it caches cached."""
        caches["default"].clear()
        runs = []
        for _ in range(2):
            with CaptureQueriesContext(connection) as ctx:
                assert client.get(path).status_code == 200
            runs.append([q["sql"] for q in ctx.captured_queries if not q["sql"].startswith("SET search_path")])
        return runs[0], runs[1]

    few_cold, few_warm = statements()
    build_book(advisor=advisor, count=6, today=today, tag="b")
    for i in range(6):
        TaskFactory(subject=f"Mine {i}", owner=owner, due_date=today)
    many_cold, many_warm = statements()
    assert len(many_cold) == len(few_cold), [s[:100] for s in many_cold]
    assert len(many_warm) == len(few_warm), [s[:100] for s in many_warm]
