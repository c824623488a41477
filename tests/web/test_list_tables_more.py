"""Sort, filter and pagination of the staff lists that had none (issue #25 point 2): every list is
sorted and paged on the server, its filters live in the URL, its query count does not grow with its
rows, and another firm's rows never appear."""

from __future__ import annotations

import re
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from django_tenants.utils import schema_context

from portal.models import Post, ReportRun
from portfolios import services as portfolio_services
from portfolios.market.models import CorporateAction
from portfolios.models import CustodianAccount, CustodianMapping, ReconciliationBreak
from tests.crm.factories import ContactFactory as CrmContactFactory
from tests.portfolios.factories import ContactFactory, InstrumentFactory, PortfolioFactory, add_prices
from tests.web.test_list_tables import order_of, queries_for

pytestmark = pytest.mark.django_db


# --- quarterly report runs ----------------------------------------------------------------------------


def report_run(n: int, *, status: str = ReportRun.Status.DONE, quarter_end: date = date(2025, 3, 31)) -> ReportRun:
    """Run ``n`` is marked on the page by its total (``of 10NN done``)."""
    return ReportRun.objects.create(quarter_end=quarter_end, status=status, total=1000 + n, done=1000, failed=n)


def run_marks(*ns: int) -> list[str]:
    return [f"of {1000 + n} done" for n in ns]


def test_report_runs_sort_page_and_filter(owner_client):
    for n in range(30):
        report_run(n, status=ReportRun.Status.FAILED if n % 3 == 0 else ReportRun.Status.DONE)
    report_run(40, quarter_end=date(2025, 6, 30))
    up = owner_client.get("/client-portal/reports/?sort=failed").content.decode()
    assert order_of(up, run_marks(0, 1, 24)) == run_marks(0, 1, 24)
    assert run_marks(25)[0] not in up and 'aria-sort="ascending"' in up
    second = owner_client.get("/client-portal/reports/?sort=failed&page=2").content.decode()
    assert order_of(second, run_marks(25, 29, 40)) == run_marks(25, 29, 40) and run_marks(24)[0] not in second
    down = owner_client.get("/client-portal/reports/?sort=-failed").content.decode()
    assert order_of(down, run_marks(40, 29, 6)) == run_marks(40, 29, 6) and run_marks(5)[0] not in down
    failed = owner_client.get("/client-portal/reports/?status=failed").content.decode()
    assert run_marks(3)[0] in failed and run_marks(1)[0] not in failed
    quarter = owner_client.get("/client-portal/reports/?quarter_end=2025-06-30").content.decode()
    assert run_marks(40)[0] in quarter and run_marks(1)[0] not in quarter
    bad = owner_client.get("/client-portal/reports/?status=nonsense").content.decode()
    assert 'id="filter_status_error"' in bad and run_marks(40)[0] in bad


def test_report_runs_query_count_does_not_grow_with_rows(owner_client):
    report_run(1)
    few = queries_for(owner_client, "/client-portal/reports/?sort=-quarter")
    for n in range(2, 14):
        report_run(n)
    assert queries_for(owner_client, "/client-portal/reports/?sort=-quarter") == few


def test_report_runs_of_another_firm_never_appear(owner_client, outsider_client, other_firm):
    report_run(1)
    with schema_context(other_firm.schema_name):
        report_run(2)
    mine = owner_client.get("/client-portal/reports/").content.decode()
    assert run_marks(1)[0] in mine and run_marks(2)[0] not in mine
    theirs = outsider_client.get("/client-portal/reports/").content.decode()
    assert run_marks(2)[0] in theirs and run_marks(1)[0] not in theirs


# --- reconciliation breaks ----------------------------------------------------------------------------

BREAK_DAY = date(2025, 6, 2)


def open_break(n: int, advisor, *, cash: bool = True, as_of: date = BREAK_DAY) -> ReconciliationBreak:
    """Break ``n`` is marked on the page by its portfolio's name (``brk-NN``); its difference is ``n + 1``."""
    portfolio = PortfolioFactory(name=f"brk-{n:02d}", advisor=advisor, client=ContactFactory(owner=advisor))
    return ReconciliationBreak.objects.create(
        portfolio=portfolio,
        as_of=as_of,
        instrument=None if cash else InstrumentFactory(),
        currency="USD",
        ledger_quantity=Decimal(0),
        custodian_quantity=Decimal(n + 1),
        difference=Decimal(n + 1),
        value=Decimal(n + 1) if cash else None,
    )


def brk(*ns: int) -> list[str]:
    return [f"brk-{n:02d}" for n in ns]


def test_breaks_sort_page_and_filter(owner_client, owner):
    for n in range(27):
        open_break(n, owner, as_of=BREAK_DAY + timedelta(days=n))
    open_break(30, owner, cash=False, as_of=BREAK_DAY - timedelta(days=1))
    url = "/portfolios/reconciliation/"
    up = owner_client.get(url + "?sort=difference").content.decode()
    assert order_of(up, brk(0, 1, 24)) == brk(0, 1, 24) and "brk-25" not in up and 'aria-sort="ascending"' in up
    second = owner_client.get(url + "?sort=difference&page=2").content.decode()
    assert order_of(second, brk(25, 26, 30)) == brk(25, 26, 30) and "brk-24" not in second
    newest = owner_client.get(url).content.decode()  # the default: the latest day first
    assert order_of(newest, brk(26, 25, 2)) == brk(26, 25, 2) and "brk-30" not in newest
    by_name = owner_client.get(url + "?sort=-portfolio").content.decode()
    assert order_of(by_name, brk(30, 26, 6)) == brk(30, 26, 6)
    positions = owner_client.get(url + "?line=position").content.decode()
    assert "brk-30" in positions and "brk-00" not in positions
    one = owner_client.get(url + "?portfolio=brk-1").content.decode()
    assert "brk-12" in one and "brk-22" not in one
    day = owner_client.get(url + f"?as_of={(BREAK_DAY + timedelta(days=3)).isoformat()}").content.decode()
    assert "brk-03" in day and "brk-04" not in day
    bad = owner_client.get(url + "?as_of=2025-13-01&line=position").content.decode()
    assert 'id="filter_as_of_error"' in bad and "brk-30" in bad and "brk-00" not in bad


def test_breaks_query_count_does_not_grow_with_rows(owner_client, owner):
    open_break(0, owner, cash=False)
    open_break(1, owner)
    few = queries_for(owner_client, "/portfolios/reconciliation/?sort=value")
    for n in range(2, 8):
        open_break(n, owner, cash=n % 2 == 0)
    assert queries_for(owner_client, "/portfolios/reconciliation/?sort=value") == few


def test_breaks_of_another_firm_never_appear(owner_client, outsider_client, owner, outsider, other_firm):
    open_break(1, owner)
    with schema_context(other_firm.schema_name):
        open_break(2, outsider)
    mine = owner_client.get("/portfolios/reconciliation/").content.decode()
    assert "brk-01" in mine and "brk-02" not in mine
    theirs = outsider_client.get("/portfolios/reconciliation/").content.decode()
    assert "brk-02" in theirs and "brk-01" not in theirs


# --- the change history of a record -------------------------------------------------------------------


@pytest.fixture
def edited_contact(firm, advisor):
    """A contact and a function that changes its e-mail (one update event, ``h-NN@x.test``)."""
    contact = CrmContactFactory(owner=advisor, email="ada@example.com")

    def edit(n: int) -> None:
        contact.email = f"h-{n:02d}@x.test"
        contact.save()

    return contact, edit


def after(*ns: int) -> list[str]:
    """The "after" cell of update ``n`` (the last cell of its row)."""
    return [f"<td>h-{n:02d}@x.test</td></tr>" for n in ns]


def test_history_sorts_pages_and_filters(owner_client, edited_contact):
    contact, edit = edited_contact
    for n in range(30):
        edit(n)
    url = f"/crm/contacts/{contact.pk}/history/"
    oldest = owner_client.get(url).content.decode()  # created, then updates 0..23
    assert order_of(oldest, ["ada@example.com", *after(0, 1, 23)])[0] == "ada@example.com"
    assert order_of(oldest, after(0, 1, 23)) == after(0, 1, 23) and "h-24@" not in oldest
    second = owner_client.get(url + "?page=2").content.decode()
    assert order_of(second, after(24, 29)) == after(24, 29) and "ada@example.com" not in second
    assert "<td>h-23@x.test</td><td>h-24@x.test</td>" in second  # the page's first change keeps its "before"
    newest = owner_client.get(url + "?sort=-when").content.decode()
    assert order_of(newest, after(29, 28, 5)) == after(29, 28, 5) and after(4)[0] not in newest
    created = owner_client.get(url + "?action=insert").content.decode()
    assert "ada@example.com" in created and "h-00@" not in created
    tomorrow = (timezone.localdate() + timedelta(days=1)).isoformat()
    future = owner_client.get(url + f"?date_from={tomorrow}").content.decode()
    assert "h-00@" not in future and "No change matches these filters." in future
    bad = owner_client.get(url + "?date_to=2025-02-31&action=update").content.decode()
    assert 'id="filter_date_to_error"' in bad and after(0)[0] in bad and "<td>ada@example.com</td></tr>" not in bad


def test_history_query_count_does_not_grow_with_rows(owner_client, edited_contact):
    contact, edit = edited_contact
    edit(0)
    url = f"/crm/contacts/{contact.pk}/history/?sort=-when&page=1"
    few = queries_for(owner_client, url)
    for n in range(1, 12):
        edit(n)
    assert queries_for(owner_client, url) == few


def test_history_of_another_firms_record_never_appears(
    owner_client, outsider_client, outsider, other_firm, edited_contact
):
    contact, edit = edited_contact
    edit(1)
    with schema_context(other_firm.schema_name):
        theirs = CrmContactFactory(owner=outsider, email="globex@x.test")
    mine = owner_client.get(f"/crm/contacts/{contact.pk}/history/").content.decode()
    assert "h-01@x.test" in mine and "globex@x.test" not in mine
    response = outsider_client.get(f"/crm/contacts/{contact.pk}/history/")
    assert b"h-01@x.test" not in response.content and b"ada@example.com" not in response.content
    assert "globex@x.test" in outsider_client.get(f"/crm/contacts/{theirs.pk}/history/").content.decode()


# --- the firm's posts to its clients (staff side) -----------------------------------------------------


def post(n: int, *, draft: bool = False, audience: str = "all") -> Post:
    return Post.objects.create(
        title=f"post-{n:02d}",
        body_markdown="Hello",
        body_html="<p>Hello</p>",
        audience=audience,
        audience_tag="vip" if audience == "tag" else "",
        published_at=None if draft else timezone.now() - timedelta(days=n),
    )


def posts_of(*ns: int) -> list[str]:
    return [f"post-{n:02d}" for n in ns]


def test_posts_sort_page_and_filter(owner_client):
    for n in range(27):
        post(n, draft=n == 26, audience="tag" if n == 25 else "all")
    url = "/client-portal/posts/"
    newest = owner_client.get(url).content.decode()  # latest published first, drafts last
    assert order_of(newest, posts_of(0, 1, 24)) == posts_of(0, 1, 24) and "post-25" not in newest
    second = owner_client.get(url + "?page=2").content.decode()
    assert order_of(second, posts_of(25, 26)) == posts_of(25, 26) and "post-24" not in second
    by_title = owner_client.get(url + "?sort=-title").content.decode()
    assert order_of(by_title, posts_of(26, 25, 2)) == posts_of(26, 25, 2) and "post-01" not in by_title
    drafts = owner_client.get(url + "?state=draft").content.decode()
    assert "post-26" in drafts and "post-00" not in drafts
    tagged = owner_client.get(url + "?audience=tag").content.decode()
    assert "post-25" in tagged and "post-00" not in tagged
    bad = owner_client.get(url + "?audience=nobody&title=post-2").content.decode()
    assert 'id="filter_audience_error"' in bad and "post-21" in bad and "post-11" not in bad


def test_posts_query_count_does_not_grow_with_rows(owner_client):
    post(1)
    few = queries_for(owner_client, "/client-portal/posts/?sort=title")
    for n in range(2, 14):
        post(n, draft=n % 2 == 0)
    assert queries_for(owner_client, "/client-portal/posts/?sort=title") == few


def test_posts_of_another_firm_never_appear(owner_client, outsider_client, other_firm):
    post(1)
    with schema_context(other_firm.schema_name):
        post(2)
    mine = owner_client.get("/client-portal/posts/").content.decode()
    assert "post-01" in mine and "post-02" not in mine
    theirs = outsider_client.get("/client-portal/posts/").content.decode()
    assert "post-02" in theirs and "post-01" not in theirs


# --- feed health: the stale instruments ---------------------------------------------------------------


def stale(n: int, *, owner: str = "", asset_class: str = "equity", price: str | None = None) -> None:
    """Instrument ``STL-NN`` without a current price (none at all, or ``price`` a year ago)."""
    instrument = InstrumentFactory(symbol=f"STL-{n:02d}", name=f"Stale {n:02d}", owner=owner, asset_class=asset_class)
    if price is not None:
        add_prices(instrument, {timezone.localdate() - timedelta(days=365): price})


def stl(*ns: int) -> list[str]:
    return [f"STL-{n:02d}" for n in ns]


def test_stale_instruments_sort_page_and_filter(owner_client, firm):
    for n in range(26):
        stale(n, price=str(100 - n) if n < 20 else None)
    stale(26, owner=firm.schema_name, asset_class="bond")
    url = "/portfolios/feeds/?symbol=STL-"
    up = owner_client.get(url + "&sort=instrument").content.decode()
    assert order_of(up, stl(0, 1, 24)) == stl(0, 1, 24) and "STL-25" not in up and 'aria-sort="ascending"' in up
    second = owner_client.get(url + "&sort=instrument&page=2").content.decode()
    assert order_of(second, stl(25, 26)) == stl(25, 26) and "STL-24" not in second
    cheap = owner_client.get(url + "&sort=price").content.decode()  # cheapest first, no price last
    assert order_of(cheap, stl(19, 18, 0, 20)) == stl(19, 18, 0, 20)
    firms = owner_client.get(url + "&source=firm").content.decode()
    assert "STL-26" in firms and "STL-00" not in firms
    market = owner_client.get(url + "&source=market").content.decode()
    assert "STL-00" in market and "STL-26" not in market
    bonds = owner_client.get(url + "&asset_class=bond").content.decode()
    assert "STL-26" in bonds and "STL-01" not in bonds
    bad = owner_client.get(url + "&asset_class=gold&sort=-instrument").content.decode()
    assert 'id="filter_asset_class_error"' in bad and "STL-26" in bad


def test_stale_instruments_query_count_does_not_grow_with_rows(owner_client):
    stale(0)
    few = queries_for(owner_client, "/portfolios/feeds/?sort=-price")
    for n in range(1, 12):
        stale(n, price="10" if n % 2 else None)
    assert queries_for(owner_client, "/portfolios/feeds/?sort=-price") == few


def test_another_firms_stale_instruments_never_appear(owner_client, outsider_client, firm, other_firm):
    stale(1, owner=firm.schema_name)
    stale(2, owner=other_firm.schema_name)
    mine = owner_client.get("/portfolios/feeds/?symbol=STL-").content.decode()
    assert "STL-01" in mine and "STL-02" not in mine
    theirs = outsider_client.get("/portfolios/feeds/?symbol=STL-").content.decode()
    assert "STL-02" in theirs and "STL-01" not in theirs


# --- custodian set-up: account links and column mappings ----------------------------------------------


def account_link(n: int, advisor, *, custodian_name: str = "saxo") -> CustodianAccount:
    portfolio = PortfolioFactory(name=f"cust-{n:02d}", advisor=advisor, client=ContactFactory(owner=advisor))
    return CustodianAccount.objects.create(custodian=custodian_name, account=f"ACC-{99 - n:02d}", portfolio=portfolio)


def cust(*ns: int) -> list[str]:
    return [f"cust-{n:02d}" for n in ns]


def test_custodian_accounts_sort_page_and_filter(owner_client, owner):
    for n in range(26):
        account_link(n, owner)
    account_link(26, owner, custodian_name="schwab")
    CustodianMapping.objects.create(custodian="schwab", kind="positions", columns={"quantity": "Qty"})
    CustodianMapping.objects.create(custodian="saxo", kind="transactions", columns={"amount": "Amt"})
    url = "/portfolios/custodian/"
    by_name = owner_client.get(url + "?sort=portfolio").content.decode()
    assert order_of(by_name, cust(0, 1, 24)) == cust(0, 1, 24) and "cust-25" not in by_name
    second = owner_client.get(url + "?sort=portfolio&page=2").content.decode()
    assert order_of(second, cust(25, 26)) == cust(25, 26) and "cust-24" not in second
    by_account = owner_client.get(url + "?sort=account").content.decode()  # ACC-73 is cust-26's
    assert order_of(by_account, cust(26, 25, 2)) == cust(26, 25, 2) and "cust-01" not in by_account
    schwab = owner_client.get(url + "?custodian=schwab").content.decode()
    assert "cust-26" in schwab and "cust-00" not in schwab
    assert "Qty" in schwab and "Amt" not in schwab  # the custodian filter narrows the mappings too
    found = owner_client.get(url + "?account=cust-1").content.decode()
    assert "cust-12" in found and "cust-22" not in found
    kinds = owner_client.get(url + "?sort=-mappings.kind").content.decode()
    assert order_of(kinds, ["Amt", "Qty"]) == ["Amt", "Qty"]


def test_custodian_setup_query_count_does_not_grow_with_rows(owner_client, owner):
    account_link(0, owner)
    few = queries_for(owner_client, "/portfolios/custodian/?sort=-portfolio")
    for n in range(1, 10):
        account_link(n, owner)
    assert queries_for(owner_client, "/portfolios/custodian/?sort=-portfolio") == few


def test_custodian_accounts_of_another_firm_never_appear(owner_client, outsider_client, owner, outsider, other_firm):
    account_link(1, owner)
    with schema_context(other_firm.schema_name):
        account_link(2, outsider)
    mine = owner_client.get("/portfolios/custodian/").content.decode()
    assert "cust-01" in mine and "cust-02" not in mine
    theirs = outsider_client.get("/portfolios/custodian/").content.decode()
    assert "cust-02" in theirs and "cust-01" not in theirs


# --- CRM search: ranked results, paged ----------------------------------------------------------------


def zebras(advisor, ns) -> None:
    for n in ns:
        CrmContactFactory(owner=advisor, first_name="Zebra", last_name=f"Zz{n:02d}", email=f"zebra{n:02d}@x.test")


def found_on(html: str) -> set[str]:
    return set(re.findall(r"zebra\d\d@x\.test", html))


def test_search_results_page_without_overlap(owner_client, advisor):
    zebras(advisor, range(30))
    first = owner_client.get("/crm/search/?q=zebra").content.decode()
    second = owner_client.get("/crm/search/?q=zebra&page=2").content.decode()
    assert len(found_on(first)) == 25 and len(found_on(second)) == 5
    assert found_on(first) | found_on(second) == {f"zebra{n:02d}@x.test" for n in range(30)}
    assert re.search(r'href="\?q=zebra&amp;page=2"[^>]*rel="next"', first) and 'rel="prev"' not in first
    assert 'rel="prev"' in second and 'rel="next"' not in second and '<ol class="hits" start="26">' in second
    beyond = owner_client.get("/crm/search/?q=zebra&page=9").content.decode()
    assert not found_on(beyond) and "Back to the first page" in beyond
    assert found_on(owner_client.get("/crm/search/?q=zebra&page=x").content.decode()) == found_on(first)


def test_search_query_count_does_not_grow_with_hits(owner_client, advisor):
    zebras(advisor, range(5))
    few = queries_for(owner_client, "/crm/search/?q=zebra")
    zebras(advisor, range(5, 40))
    assert queries_for(owner_client, "/crm/search/?q=zebra") == few
    assert queries_for(owner_client, "/crm/search/?q=zebra&page=2") == few


def test_search_never_finds_another_firms_contacts(owner_client, outsider_client, advisor, outsider, other_firm):
    zebras(advisor, [1])
    with schema_context(other_firm.schema_name):
        zebras(outsider, [2])
    assert found_on(owner_client.get("/crm/search/?q=zebra").content.decode()) == {"zebra01@x.test"}
    assert found_on(outsider_client.get("/crm/search/?q=zebra").content.decode()) == {"zebra02@x.test"}


# --- pending corporate actions ------------------------------------------------------------------------


@pytest.fixture
def holdings(firm, owner):
    """``hold(n, instrument)``: portfolio ``ca-NN`` bought 10 units of ``instrument`` on 2025-01-03."""

    def hold(n: int, instrument) -> None:
        portfolio = PortfolioFactory(name=f"ca-{n:02d}", advisor=owner, client=ContactFactory(owner=owner))
        portfolio_services.transaction_record(
            portfolio=portfolio, kind="deposit", trade_date=date(2025, 1, 2), amount="1000"
        )
        portfolio_services.transaction_record(
            portfolio=portfolio,
            kind="buy",
            trade_date=date(2025, 1, 3),
            instrument=instrument,
            quantity="10",
            price="5",
        )

    return hold


def corporate_action(instrument, kind: str = "dividend", day: date = date(2025, 2, 3)) -> CorporateAction:
    value = Decimal(2) if kind == "split" else Decimal("0.25")
    return CorporateAction.objects.create(instrument=instrument, kind=kind, date=day, value=value, source="test")


def ca(*ns: int) -> list[str]:
    return [f"ca-{n:02d}" for n in ns]


def test_corporate_actions_sort_page_and_filter(owner_client, holdings):
    paying, splitting = InstrumentFactory(symbol="PAYS"), InstrumentFactory(symbol="SPLT")
    for n in range(26):
        holdings(n, paying)
    holdings(26, splitting)
    corporate_action(paying)
    corporate_action(splitting, "split", date(2025, 2, 1))
    url = "/portfolios/corporate-actions/"
    up = owner_client.get(url + "?sort=portfolio").content.decode()
    assert order_of(up, ca(0, 1, 24)) == ca(0, 1, 24) and "ca-25" not in up and 'aria-sort="ascending"' in up
    second = owner_client.get(url + "?sort=portfolio&page=2").content.decode()
    assert order_of(second, ca(25, 26)) == ca(25, 26) and "ca-24" not in second
    down = owner_client.get(url + "?sort=-portfolio").content.decode()
    assert order_of(down, ca(26, 25, 2)) == ca(26, 25, 2) and "ca-01" not in down
    earliest = owner_client.get(url).content.decode()  # by ex-date: the split on 1 February first
    assert order_of(earliest, ca(26, 0)) == ca(26, 0)
    splits = owner_client.get(url + "?kind=split").content.decode()
    assert "ca-26" in splits and "ca-00" not in splits
    named = owner_client.get(url + "?portfolio=CA-1").content.decode()
    assert "ca-12" in named and "ca-22" not in named
    bad = owner_client.get(url + "?kind=merger&portfolio=ca-2").content.decode()
    assert 'id="filter_kind_error"' in bad and "ca-21" in bad and "ca-11" not in bad


def test_corporate_actions_query_count_does_not_grow_with_rows(owner_client, holdings):
    paying = InstrumentFactory(symbol="PAYS")
    holdings(0, paying)
    holdings(1, paying)
    corporate_action(paying)
    few = queries_for(owner_client, "/portfolios/corporate-actions/?sort=-portfolio")
    for n in range(2, 9):
        holdings(n, paying)
    corporate_action(paying, day=date(2025, 3, 3))
    assert queries_for(owner_client, "/portfolios/corporate-actions/?sort=-portfolio") == few


def test_corporate_actions_of_another_firm_never_appear(owner_client, outsider_client, holdings, outsider, other_firm):
    paying = InstrumentFactory(symbol="PAYS")
    holdings(1, paying)
    corporate_action(paying)
    with schema_context(other_firm.schema_name):
        theirs = PortfolioFactory(name="ca-02", advisor=outsider, client=ContactFactory(owner=outsider))
        portfolio_services.transaction_record(
            portfolio=theirs, kind="deposit", trade_date=date(2025, 1, 2), amount="1000"
        )
        portfolio_services.transaction_record(
            portfolio=theirs, kind="buy", trade_date=date(2025, 1, 3), instrument=paying, quantity="10", price="5"
        )
    mine = owner_client.get("/portfolios/corporate-actions/").content.decode()
    assert "ca-01" in mine and "ca-02" not in mine
    theirs_page = outsider_client.get("/portfolios/corporate-actions/").content.decode()
    assert "ca-02" in theirs_page and "ca-01" not in theirs_page
