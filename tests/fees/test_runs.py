"""Fee runs on stored valuations: worked examples through the database, exactly once, gapless
numbers, collection from the account, void and credit notes, bad input."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal as D

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from fees import selectors
from fees import services as fee_services
from fees.models import FeeInvoice, FeeInvoiceLine, InvoiceStatus
from portfolios import services as portfolio_services
from portfolios.models import Kind, Transaction, Valuation
from tests.fees.conftest import account

pytestmark = pytest.mark.django_db

Q3 = {"period_start": date(2026, 7, 1), "period_end": date(2026, 9, 30), "frequency": "quarterly"}


@pytest.fixture
def household(owner, client_contact):
    # A: 1,000,000 from 1 June; 920,000 more on 1 September. B: 500,000 from 1 June.
    a = account(owner, client_contact, {date(2026, 6, 1): "1000000", date(2026, 9, 1): "920000"}, name="Ada main")
    b = account(owner, client_contact, {date(2026, 6, 1): "500000"}, name="Ada IRA")
    return a, b


def _run(owner, **period):
    run = fee_services.fee_run_preview(actor=owner, **(period or Q3))
    return run, {item.group_id: item for item in run.items.all()}


def test_average_daily_balance_with_a_mid_period_deposit(owner, client_contact, household, product):
    a, _ = household
    group = fee_services.billing_group_create(name="Ada alone", client=client_contact, portfolios=[a])
    fee_services.subscription_create(group=group, product=product, starts_on=date(2026, 6, 1), timing="arrears_adb")
    _, items = _run(owner)
    line = items[group.pk].lines[0]
    # ADB = (62 days x 1,000,000 + 30 days x 1,920,000) / 92 = 1,300,000.
    assert line["billable_value"] == "1300000.00"
    # tiered: 10,000 + 300,000 x 0.75 % = 12,250 a year; x 92/365 = 3,087.671... -> 3,087.67
    assert line["annual_fee"] == "12250.00" and line["days"] == 92
    assert line["fee"] == "3087.67" and items[group.pk].total == D("3087.67")


def test_householding_on_period_end_value_with_allocation(owner, client_contact, household, product):
    a, b = household
    group = fee_services.billing_group_create(name="Ada household", client=client_contact, portfolios=[a, b])
    fee_services.subscription_create(
        group=group, product=product, starts_on=date(2026, 6, 1), timing="arrears_end", day_count="quarter"
    )
    _, items = _run(owner)
    lines = {line["portfolio"]: line for line in items[group.pk].lines}
    # combined 1,920,000 + 500,000 = 2,420,000: 10,000 + 1,420,000 x 0.75 % = 20,650 a year; / 4 = 5,162.50
    assert lines[a.pk]["group_value"] == "2420000.00"
    assert items[group.pk].total == D("5162.50")
    # allocated 1,920 : 500 -> 4,095.867.. and 1,066.632..; the odd cent to the larger remainder (A)
    assert (lines[a.pk]["fee"], lines[b.pk]["fee"]) == ("4095.87", "1066.63")


def test_in_advance_bills_the_prior_close(owner, client_contact, household, product):
    a, _ = household
    group = fee_services.billing_group_create(name="Ada", client=client_contact, portfolios=[a])
    fee_services.subscription_create(group=group, product=product, starts_on=date(2026, 6, 1), timing="advance")
    _, items = _run(owner)
    # close of 30 June = 1,000,000 (the September deposit does not count): 10,000 x 92/365 = 2,520.547 -> 2,520.55
    assert items[group.pk].lines[0]["billable_value"] == "1000000.00"
    assert items[group.pk].total == D("2520.55")


def test_inception_pro_rata_and_minimum(owner, client_contact, household):
    a, _ = household
    small = fee_services.fee_schedule_create(
        name="Small",
        effective_from=date(2020, 1, 1),
        method="blended",
        tiers=[{"upto": None, "bps": "10"}],
        minimum_annual="10000",
    )
    product = fee_services.product_create(name="Small", fee_schedule=small, flat_fee="300")
    group = fee_services.billing_group_create(name="Ada", client=client_contact, portfolios=[a])
    fee_services.subscription_create(
        group=group, product=product, starts_on=date(2026, 8, 20), timing="arrears_end", day_count="quarter"
    )
    _, items = _run(owner)
    line = items[group.pk].lines[0]
    # held 20 Aug - 30 Sep = 12 + 30 = 42 of 92 days. 1,920,000 x 0.10 % = 1,920 < minimum 10,000.
    # asset: 10,000 / 4 x 42/92 = 1,141.304... -> 1,141.30; flat 300 x 42/92 = 136.956... -> 136.96
    assert line["days"] == 42 and line["minimum_applied"] is True
    assert (line["asset_fee"], line["flat_fee"], line["fee"]) == ("1141.30", "136.96", "1278.26")
    assert "inception 2026-08-20" in line["description"]


def test_schedule_change_applies_from_its_date_and_history_keeps_the_old_terms(
    owner, client_contact, household, schedule, product
):
    a, _ = household
    fee_services.fee_schedule_change(
        schedule=schedule, effective_from=date(2026, 7, 1), method="blended", tiers=[{"upto": None, "bps": "50"}]
    )
    group = fee_services.billing_group_create(name="Ada", client=client_contact, portfolios=[a])
    fee_services.subscription_create(group=group, product=product, starts_on=date(2026, 6, 1), timing="advance")
    _, q3 = _run(owner)
    # new terms in Q3: 1,000,000 x 0.50 % = 5,000 x 92/365 = 1,260.27
    assert q3[group.pk].total == D("1260.27")
    _, q2 = _run(owner, period_start=date(2026, 4, 1), period_end=date(2026, 6, 30), frequency="quarterly")
    # old terms in Q2: held 1-30 June (30 days); close of 31 March is 0 (before inception): fee 0
    assert q2[group.pk].lines[0]["rate_bps"] == "0.0000" or q2[group.pk].total == D("0.00")
    assert schedule.versions.count() == 2


def test_missing_valuations_are_listed_and_the_group_not_issued(owner, client_contact, household, product):
    a, b = household
    gap = fee_services.billing_group_create(name="Gap", client=client_contact, portfolios=[a])
    fine = fee_services.billing_group_create(name="Fine", client=client_contact, portfolios=[b])
    for g in (gap, fine):
        fee_services.subscription_create(group=g, product=product, starts_on=date(2026, 6, 1))
    Valuation.objects.filter(portfolio=a, date__in=[date(2026, 8, 3), date(2026, 8, 4)]).delete()
    run, items = _run(owner)
    assert items[gap.pk].problems[0]["missing_days"] == ["2026-08-03", "2026-08-04"]
    assert items[gap.pk].problems[0]["name"] == "Ada main"
    fee_services.fee_run_approve(run=run, actor=owner)
    counts = fee_services.fee_run_issue(run=run, actor=owner, issued_on=date(2026, 10, 1))
    assert (counts.ready, counts.with_problems) == (1, 1)
    assert list(FeeInvoice.objects.values_list("group_id", flat=True)) == [fine.pk]


def test_a_run_issues_exactly_once_per_group_and_period_with_gapless_numbers(owner, client_contact, household, product):
    a, b = household
    groups = [
        fee_services.billing_group_create(name=n, client=client_contact, portfolios=[p])
        for n, p in (("A", a), ("B", b))
    ]
    for g in groups:
        fee_services.subscription_create(group=g, product=product, starts_on=date(2026, 6, 1))
    first, _ = _run(owner)
    second, _ = _run(owner)  # started twice: both previews list both groups
    for run in (first, second):
        fee_services.fee_run_approve(run=run, actor=owner)
    assert fee_services.fee_run_issue(run=first, issued_on=date(2026, 10, 1)).ready == 2
    again = fee_services.fee_run_issue(run=second, issued_on=date(2026, 10, 1))
    assert (again.ready, again.skipped) == (0, 2)
    numbers = sorted(FeeInvoice.objects.values_list("number", flat=True))
    assert numbers == ["FEE-2026-000001", "FEE-2026-000002"]
    # the database itself refuses a second live invoice for a group and period
    invoice = FeeInvoice.objects.first()
    with pytest.raises(IntegrityError), transaction.atomic():
        FeeInvoice.objects.create(
            number="X-1",
            group=invoice.group,
            client=invoice.client,
            period_start=invoice.period_start,
            period_end=invoice.period_end,
            issued_on=invoice.issued_on,
            due_on=invoice.due_on,
            currency="USD",
            total=D(1),
            collection="invoice",
        )
    # a third run skips what is issued in its preview already
    _, items = _run(owner)
    assert all(item.skipped for item in items.values())


def test_unapproved_run_does_not_issue(owner, client_contact, household, product):
    group = fee_services.billing_group_create(name="A", client=client_contact, portfolios=[household[0]])
    fee_services.subscription_create(group=group, product=product, starts_on=date(2026, 6, 1))
    run, _ = _run(owner)
    with pytest.raises(ValidationError) as caught:
        fee_services.fee_run_issue(run=run)
    assert "status" in caught.value.message_dict
    assert not FeeInvoice.objects.exists()


def test_deduct_from_account_books_a_ledger_fee_and_void_reverses_it(owner, client_contact, household, product):
    a, _ = household
    group = fee_services.billing_group_create(name="A", client=client_contact, portfolios=[a])
    fee_services.subscription_create(group=group, product=product, starts_on=date(2026, 6, 1), collection="deduct")
    run, _ = _run(owner)
    fee_services.fee_run_approve(run=run, actor=owner)
    fee_services.fee_run_issue(run=run, issued_on=date(2026, 10, 1))
    invoice = FeeInvoice.objects.get()
    assert invoice.status == InvoiceStatus.PAID and invoice.total == D("3087.67")
    fee = Transaction.objects.get(portfolio=a, kind=Kind.FEE)
    assert (fee.amount, fee.trade_date) == (D("3087.67"), date(2026, 10, 1))
    assert Valuation.objects.get(portfolio=a, date=date(2026, 10, 1)).value == D("1920000") - D("3087.67")
    with pytest.raises(ValidationError):
        fee_services.fee_invoice_void(invoice=invoice, reason="  ")
    fee_services.fee_invoice_void(invoice=invoice, reason="wrong schedule")
    assert not Transaction.objects.filter(portfolio=a, kind=Kind.FEE).exists()
    assert Valuation.objects.get(portfolio=a, date=date(2026, 10, 1)).value == D("1920000")
    # voided: the group can be invoiced again for the period, with the next number
    rerun, _ = _run(owner)
    fee_services.fee_run_approve(run=rerun, actor=owner)
    assert fee_services.fee_run_issue(run=rerun, issued_on=date(2026, 10, 2)).ready == 1
    assert FeeInvoice.objects.exclude(status="void").get().number == "FEE-2026-000002"


def test_receivable_is_open_then_overdue_then_paid_and_credit_notes_are_bounded(
    owner, client_contact, household, product
):
    group = fee_services.billing_group_create(name="A", client=client_contact, portfolios=[household[0]])
    fee_services.subscription_create(group=group, product=product, starts_on=date(2026, 6, 1))
    run, _ = _run(owner)
    fee_services.fee_run_approve(run=run, actor=owner)
    fee_services.fee_run_issue(run=run, issued_on=date(2026, 10, 1))
    invoice = FeeInvoice.objects.get()
    assert invoice.status == InvoiceStatus.OPEN and invoice.due_on == date(2026, 10, 31)
    assert selectors.is_overdue(invoice, today=date(2026, 11, 1)) and not selectors.is_overdue(
        invoice, today=date(2026, 10, 31)
    )
    with pytest.raises(ValidationError) as caught:
        fee_services.fee_credit_note(invoice=invoice, amount="5000", reason="goodwill")
    assert "amount" in caught.value.message_dict
    note = fee_services.fee_credit_note(invoice=invoice, amount="87.67", reason="goodwill", issued_on=date(2026, 10, 5))
    assert note.total == D("-87.67") and note.number == "FEE-2026-000002" and note.credit_of == invoice
    assert FeeInvoiceLine.objects.get(invoice=note).amount == D("-87.67")
    with pytest.raises(ValidationError):
        fee_services.fee_invoice_void(invoice=invoice, reason="x")  # credit notes first
    fee_services.fee_invoice_mark_paid(invoice=invoice, paid_on=date(2026, 10, 20))
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.PAID and not selectors.is_overdue(invoice, today=date(2026, 12, 1))


# --- bad input ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tiers", "field"),
    [
        (
            [{"upto": "5000000", "bps": "75"}, {"upto": "1000000", "bps": "100"}, {"upto": None, "bps": "50"}],
            "tiers[1].upto",
        ),
        ([{"upto": "1000000", "bps": "-5"}, {"upto": None, "bps": "50"}], "tiers[0].bps"),
        ([{"upto": "1000000", "bps": "100"}], "tiers[0].upto"),
    ],
)
def test_bad_schedules_are_refused_naming_the_field(firm, tiers, field):
    with pytest.raises(ValidationError) as caught:
        fee_services.fee_schedule_create(name="Bad", effective_from=date(2026, 1, 1), method="tiered", tiers=tiers)
    assert field in caught.value.message_dict


def test_a_run_on_a_period_that_is_not_whole_is_refused(owner):
    with pytest.raises(ValidationError) as caught:
        fee_services.fee_run_preview(period_start=date(2026, 7, 1), period_end=date(2026, 9, 29), frequency="quarterly")
    assert "period_end" in caught.value.message_dict


def test_a_subscription_cannot_start_before_its_account_exists(client_contact, household, product):
    group = fee_services.billing_group_create(name="A", client=client_contact, portfolios=[household[0]])
    with pytest.raises(ValidationError) as caught:
        fee_services.subscription_create(group=group, product=product, starts_on=date(2026, 5, 31))
    assert "starts_on" in caught.value.message_dict


def test_a_household_mixing_currencies_needs_a_stated_base(owner, client_contact, household):
    eur = account(owner, client_contact, {date(2026, 6, 1): "1000"}, currency="EUR")
    with pytest.raises(ValidationError) as caught:
        fee_services.billing_group_create(name="Mixed", client=client_contact, portfolios=[household[0], eur])
    assert "currency" in caught.value.message_dict
    group = fee_services.billing_group_create(
        name="Mixed", client=client_contact, portfolios=[household[0], eur], currency="USD"
    )
    assert group.currency == "USD"


def test_an_account_is_billed_in_one_group_only(client_contact, household):
    fee_services.billing_group_create(name="A", client=client_contact, portfolios=[household[0]])
    with pytest.raises(ValidationError) as caught:
        fee_services.billing_group_create(name="A2", client=client_contact, portfolios=[household[0]])
    assert "portfolios" in caught.value.message_dict


def test_issue_stores_a_branded_pdf_statement_per_invoice(owner, client_contact, household, product):
    from fees.models import FeeStatement

    group = fee_services.billing_group_create(name="A", client=client_contact, portfolios=[household[0]])
    fee_services.subscription_create(group=group, product=product, starts_on=date(2026, 6, 1))
    run, _ = _run(owner)
    fee_services.fee_run_approve(run=run, actor=owner)
    fee_services.fee_run_issue(run=run, issued_on=date(2026, 10, 1))
    statement = FeeStatement.objects.get()
    assert statement.client == client_contact and statement.period_end == date(2026, 9, 30)
    content = statement.file.open("rb").read()
    statement.file.close()
    assert content.startswith(b"%PDF-") and len(content) > 800
    assert b"FEE-2026-000001" in content or b"Fee statement" in content


def test_returns_gross_and_net_of_the_deducted_fee(owner, owner_client, client_contact, household, product):
    a, _ = household
    group = fee_services.billing_group_create(name="A", client=client_contact, portfolios=[a])
    fee_services.subscription_create(group=group, product=product, starts_on=date(2026, 6, 1), collection="deduct")
    run, _ = _run(owner)
    fee_services.fee_run_approve(run=run, actor=owner)
    fee_services.fee_run_issue(run=run, issued_on=date(2026, 10, 1))
    result = selectors.portfolio_returns_gross_net(portfolio=a, start=date(2026, 9, 1), end=date(2026, 10, 31))
    # cash only: no market return. The 920,000 deposit on 1 Sep is a flow; the 3,087.67 fee on
    # 1 Oct is a cost: net = (1,920,000 - 3,087.67) / 1,920,000 - 1 = -0.0016081614.. ; gross = 0
    assert result.net == D("-0.00160816") and result.gross == D("0E-8") and result.fees == D("3087.67")
    # net is the portfolio's own time-weighted return (its stored daily index)
    index = dict(
        Valuation.objects.filter(portfolio=a, date__in=[date(2026, 8, 31), date(2026, 10, 31)]).values_list(
            "date", "twr_index"
        )
    )
    assert abs(index[date(2026, 10, 31)] / index[date(2026, 8, 31)] - 1 - result.net) < D("0.00000001")
    response = owner_client.get(f"/api/v1/portfolios/{a.pk}/fee-returns/?start=2026-09-01&end=2026-10-31")
    assert response.status_code == 200
    assert response.json() == {
        "start": "2026-09-01",
        "end": "2026-10-31",
        "net": "-0.00160816",
        "gross": "0.00000000",
        "fees": "3087.67",
    }


# --- business events (webhooks: fee_invoice.issued / .paid / .voided) -----------------------------------
def _fee_events():
    from codex.outbox.models import OutboxEvent

    return [(e.type, e.data) for e in OutboxEvent.objects.filter(type__startswith="fee_invoice.").order_by("pk")]


def test_fee_invoices_emit_issued_paid_and_voided_events_once(owner, client_contact, household, product):
    a, b = household
    billed = fee_services.billing_group_create(name="A", client=client_contact, portfolios=[a])
    deducted = fee_services.billing_group_create(name="B", client=client_contact, portfolios=[b])
    fee_services.subscription_create(group=billed, product=product, starts_on=date(2026, 6, 1))
    fee_services.subscription_create(group=deducted, product=product, starts_on=date(2026, 6, 1), collection="deduct")
    first, _ = _run(owner)
    second, _ = _run(owner)
    for run in (first, second):
        fee_services.fee_run_approve(run=run, actor=owner)
    fee_services.fee_run_issue(run=first, issued_on=date(2026, 10, 1))
    fee_services.fee_run_issue(run=second, issued_on=date(2026, 10, 1))  # refused by the constraint: no event
    billed_invoice = FeeInvoice.objects.get(group=billed)
    deducted_invoice = FeeInvoice.objects.get(group=deducted)
    events = _fee_events()
    assert [(t, d["id"]) for t, d in events] == [
        ("fee_invoice.issued", billed_invoice.pk),
        ("fee_invoice.issued", deducted_invoice.pk),
        ("fee_invoice.paid", deducted_invoice.pk),  # deducted from the account: paid as issued
    ]
    issued = events[0][1]
    assert issued == {
        "id": billed_invoice.pk,
        "number": billed_invoice.number,
        "kind": "invoice",
        "status": "open",
        "household_id": billed.pk,
        "client_id": client_contact.pk,
        "period_start": "2026-07-01",
        "period_end": "2026-09-30",
        "issued_on": "2026-10-01",
        "due_on": "2026-10-31",
        "total": str(billed_invoice.total),
        "currency": "USD",
        "collection": "invoice",
        "credit_of_id": None,
    }
    note = fee_services.fee_credit_note(invoice=billed_invoice, amount="10", reason="goodwill")
    fee_services.fee_invoice_mark_paid(invoice=billed_invoice, paid_on=date(2026, 10, 20))
    fee_services.fee_invoice_void(invoice=deducted_invoice, reason="wrong schedule")
    with pytest.raises(ValidationError):
        fee_services.fee_invoice_void(invoice=deducted_invoice, reason="again")  # refused: no event
    assert [(t, d["id"], d["status"]) for t, d in _fee_events()[3:]] == [
        ("fee_invoice.issued", note.pk, "paid"),
        ("fee_invoice.paid", billed_invoice.pk, "paid"),
        ("fee_invoice.voided", deducted_invoice.pk, "void"),
    ]
    assert _fee_events()[3][1]["kind"] == "credit_note" and _fee_events()[3][1]["total"] == "-10.00"


def test_a_fee_run_ready_for_review_tells_the_other_managers_once(
    owner, admin_user, advisor, client_contact, household, product
):
    from codex.notifications.models import Notification

    group = fee_services.billing_group_create(name="A", client=client_contact, portfolios=[household[0]])
    fee_services.subscription_create(group=group, product=product, starts_on=date(2026, 6, 1))
    run, _ = _run(owner)
    notices = Notification.objects.filter(kind="fee_run")
    assert [n.recipient for n in notices] == [admin_user]  # not the advisor, not the owner who started it
    assert notices.get().url == f"/fees/runs/{run.pk}/" and "ready for review" in notices.get().title


def test_missing_prices_are_listed_by_account_and_day_and_the_group_not_issued(
    owner, owner_client, client_contact, household, product
):
    """Issue 21, bad input: a run on a period with missing prices lists the accounts and days
    missing and issues nothing for them (decision 1203: no close in the 5 days before a day)."""
    from tests.portfolios.factories import InstrumentFactory, add_prices

    a, b = household
    stale = InstrumentFactory(symbol="STALE", currency="USD")
    # closes every day of Q3 except 10-23 August (a feed outage); bought on 1 July
    add_prices(
        stale,
        {
            date(2026, 7, 1) + timedelta(days=i): "50"
            for i in range(92)
            if not date(2026, 8, 10) <= date(2026, 7, 1) + timedelta(days=i) <= date(2026, 8, 23)
        },
    )
    portfolio_services.transaction_record(
        portfolio=a,
        kind="buy",
        trade_date=date(2026, 7, 1),
        instrument=stale,
        quantity="100",
        price="50",
        currency="USD",
    )
    gap = fee_services.billing_group_create(name="Gap", client=client_contact, portfolios=[a])
    fine = fee_services.billing_group_create(name="Fine", client=client_contact, portfolios=[b])
    for g in (gap, fine):
        fee_services.subscription_create(group=g, product=product, starts_on=date(2026, 6, 1))
    run, items = _run(owner)
    (problem,) = items[gap.pk].problems
    assert problem["name"] == "Ada main" and "STALE" in problem["message"]
    # the last close before the outage is 9 August: stale from 15 August (6 days old) to 23 August
    assert problem["missing_days"] == [f"2026-08-{d}" for d in range(15, 24)]
    assert not items[fine.pk].problems
    fee_services.fee_run_approve(run=run, actor=owner)
    counts = fee_services.fee_run_issue(run=run, actor=owner, issued_on=date(2026, 10, 1))
    assert (counts.ready, counts.with_problems) == (1, 1)
    assert list(FeeInvoice.objects.values_list("group_id", flat=True)) == [fine.pk]
    # the page lists the account and its days
    page = owner_client.get(f"/fees/runs/{run.pk}/").content.decode()
    assert "Not issued: missing data" in page and "No price for STALE on 9 day(s)" in page and "2026-08-15" in page


def test_a_missing_price_of_an_excluded_position_does_not_hold_the_account_back(owner, client_contact, household):
    from tests.portfolios.factories import InstrumentFactory, add_prices

    a, _ = household
    unpriced = InstrumentFactory(symbol="NOPRICE", currency="USD")
    add_prices(unpriced, {date(2026, 6, 1): "10"})  # never again
    portfolio_services.transaction_record(
        portfolio=a,
        kind="buy",
        trade_date=date(2026, 6, 1),
        instrument=unpriced,
        quantity="100",
        price="10",
        currency="USD",
    )
    schedule = fee_services.fee_schedule_create(
        name="Ex NOPRICE",
        effective_from=date(2020, 1, 1),
        method="tiered",
        tiers=[{"upto": None, "bps": "100"}],
        excluded_instruments=[unpriced.pk],
    )
    product = fee_services.product_create(name="Ex", fee_schedule=schedule)
    group = fee_services.billing_group_create(name="Ada", client=client_contact, portfolios=[a])
    fee_services.subscription_create(group=group, product=product, starts_on=date(2026, 6, 1))
    _, items = _run(owner)
    assert items[group.pk].problems == []
