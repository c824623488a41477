"""Reads of the fee business: the fee computation of a period (from the stored valuations,
``portfolios.valuations``, never a ledger replay), scoped lists, the firm's revenue. docs/fees.md.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction

from django.db.models import Min, Q, QuerySet

from crm import access as crm_access
from portfolios import services as portfolio_services
from portfolios.market.models import Instrument, Price
from portfolios.models import Kind, Transaction, ValuationState, ValuationStatus
from portfolios.positions import portfolios_positions_closes
from portfolios.valuations import portfolio_valuations, portfolios_closes

from . import engine
from .models import (
    BillingGroup,
    BillingGroupAccount,
    ClientSubscription,
    FeeInvoice,
    FeeInvoiceLine,
    FeeRun,
    FeeRunJob,
    FeeSchedule,
    FeeScheduleVersion,
    FeeStatement,
    InvoiceKind,
    InvoiceStatus,
    JobStatus,
    Product,
    Timing,
)

ONE_DAY = timedelta(days=1)
# Groups whose accounts' closes are read in one query (500 groups of 5 accounts over a quarter:
# about 230,000 rows).
PREVIEW_CHUNK = 500


# --- access -----------------------------------------------------------------------------------------


def can_manage(user) -> bool:
    """Owners, admins and write API keys manage fees; everyone else reads."""
    return crm_access.can_assign_owner(user)


def groups_for(user) -> QuerySet[BillingGroup]:
    """Owners, admins and viewers: every group; advisors: the groups of clients in their book."""
    qs = BillingGroup.objects.all()
    if crm_access.sees_whole_firm(user):
        return qs
    return qs.filter(client__in=crm_access.contacts_for(user))


def subscriptions_for(user) -> QuerySet[ClientSubscription]:
    return ClientSubscription.objects.filter(group__in=groups_for(user)).select_related("product", "group")


def invoices_for(user) -> QuerySet[FeeInvoice]:
    return FeeInvoice.objects.filter(group__in=groups_for(user)).select_related("group", "client")


def statements_for(user) -> QuerySet[FeeStatement]:
    return FeeStatement.objects.filter(invoice__group__in=groups_for(user)).select_related("invoice", "client")


def products_list() -> QuerySet[Product]:
    return Product.objects.select_related("fee_schedule")


def schedules_list() -> QuerySet[FeeSchedule]:
    """Schedules with their versions (terms and exclusions by effective date)."""
    return FeeSchedule.objects.prefetch_related("versions__excluded_instruments")


def runs_list() -> QuerySet[FeeRun]:
    return FeeRun.objects.all()


def run_jobs_list() -> QuerySet[FeeRunJob]:
    """Fee run jobs, newest first (firm-wide: runs are for those who see the whole firm)."""
    return FeeRunJob.objects.all()


def products_filtered(*, q: str = "", status: str = "") -> QuerySet[Product]:
    qs = products_list()
    if q:
        qs = qs.filter(name__icontains=q)
    if status:
        qs = qs.filter(archived=status == "archived")
    return qs


def groups_filtered(*, user, q: str = "") -> QuerySet[BillingGroup]:
    qs = groups_for(user).select_related("client").prefetch_related("portfolios")
    if q:
        qs = qs.filter(Q(name__icontains=q) | Q(client__first_name__icontains=q) | Q(client__last_name__icontains=q))
    return qs


def subscriptions_filtered(*, user, today: date, q: str = "", frequency: str = "", state: str = ""):
    qs = subscriptions_for(user)
    if q:
        qs = qs.filter(Q(group__name__icontains=q) | Q(product__name__icontains=q))
    if frequency:
        qs = qs.filter(frequency=frequency)
    if state == "active":
        qs = qs.filter(Q(ends_on__isnull=True) | Q(ends_on__gte=today))
    elif state == "ended":
        qs = qs.filter(ends_on__lt=today)
    return qs


def invoices_filtered(*, user, q: str = "", status: str = "", kind: str = "") -> QuerySet[FeeInvoice]:
    qs = invoices_for(user)
    if q:
        qs = qs.filter(
            Q(number__icontains=q)
            | Q(group__name__icontains=q)
            | Q(client__first_name__icontains=q)
            | Q(client__last_name__icontains=q)
        )
    if status:
        qs = qs.filter(status=status)
    if kind:
        qs = qs.filter(kind=kind)
    return qs


def runs_filtered(qs: QuerySet[FeeRun], *, status: str = "", frequency: str = "") -> QuerySet[FeeRun]:
    if status:
        qs = qs.filter(status=status)
    if frequency:
        qs = qs.filter(frequency=frequency)
    return qs


def run_jobs_active() -> QuerySet[FeeRunJob]:
    """Fee run previews and issues queued or running (the firm's: runs are the firm's)."""
    return FeeRunJob.objects.filter(status__in=[JobStatus.QUEUED, JobStatus.RUNNING]).order_by("created_at", "id")


def run_jobs_ended(ids) -> QuerySet[FeeRunJob]:
    return FeeRunJob.objects.filter(pk__in=ids, status__in=[JobStatus.DONE, JobStatus.FAILED]).order_by("id")


def products_of_client(*, contact) -> list[ClientSubscription]:
    """The client record's service packages: every subscription of the client's groups."""
    return list(
        ClientSubscription.objects.filter(group__client=contact)
        .select_related("product", "group")
        .order_by("-starts_on")
    )


def account_inception(*, portfolio) -> date | None:
    return Transaction.objects.filter(portfolio=portfolio).aggregate(d=Min("trade_date"))["d"]


def schedule_terms(version: FeeScheduleVersion) -> engine.Schedule:
    """A stored version's terms as the engine's ``Schedule``."""
    return engine.Schedule(
        method=engine.Method(version.method),
        tiers=tuple(
            engine.Tier(upto=None if t["upto"] is None else Decimal(t["upto"]), bps=Decimal(t["bps"]))
            for t in version.tiers
        ),
        flat_annual=version.flat_annual,
        minimum_annual=version.minimum_annual,
        maximum_annual=version.maximum_annual,
    )


def schedule_version_on(versions, day: date) -> FeeScheduleVersion | None:
    """The version in effect on ``day``: the latest one effective on or before it."""
    chosen = None
    for v in sorted(versions, key=lambda v: v.effective_from):
        if v.effective_from <= day:
            chosen = v
    return chosen


def versions_in_range(versions, first: date, last: date) -> list[FeeScheduleVersion]:
    """The versions in effect on some day of ``[first, last]``, oldest first."""
    ordered = sorted(versions, key=lambda v: v.effective_from)
    return [
        v
        for i, v in enumerate(ordered)
        if v.effective_from <= last and (i + 1 == len(ordered) or ordered[i + 1].effective_from > first)
    ]


# --- the fee computation of a period -----------------------------------------------------------------


@dataclass
class GroupPreview:
    group_id: int
    currency: str
    total: Decimal = Decimal(0)
    lines: list[dict] = field(default_factory=list)
    problems: list[dict] = field(default_factory=list)
    skipped: str = ""


@dataclass(frozen=True)
class Unpriced:
    """A position held at a day's close whose latest close is missing or too old that day."""

    instrument_id: int
    symbol: str
    asset_class: str


@dataclass
class AccountDays:
    """An account's stored closes over the run's range: ``value``/``cash`` by day; the days a
    position of it had no recent price (``unpriced``)."""

    portfolio_id: int
    name: str
    currency: str
    inception: date | None
    values: dict[date, tuple[Decimal, Decimal]]
    unpriced: dict[date, list[Unpriced]] = field(default_factory=dict)

    def close(self, day: date, *, exclude_cash: bool, excluded: dict[date, Decimal] | None = None) -> Decimal:
        """The billable close of ``day``: the stored value, less cash when ``exclude_cash``, less
        the close of the excluded positions (``excluded``, by day); 0 before inception."""
        row = self.values.get(day)
        if row is None:
            return Decimal(0)
        value, cash = row
        if exclude_cash:
            value -= cash
        if excluded:
            value -= excluded.get(day, Decimal(0))
        return value

    def missing(self, first: date, last: date) -> list[date]:
        """Days of ``[first, last]`` from inception on that have no stored close."""
        if self.inception is None or self.inception > last:
            return []
        day, out = max(first, self.inception), []
        while day <= last:
            if day not in self.values:
                out.append(day)
            day += ONE_DAY
        return out


# A position's close may be this many calendar days old on a measured day (a weekend and a
# holiday); older, or none at all, and the day's value rests on a missing price (decision 1203).
STALE_PRICE_DAYS = 5
_QUANTITY_SIGN: dict[str, int] = {Kind.BUY: 1, Kind.TRANSFER_IN: 1, Kind.SELL: -1, Kind.TRANSFER_OUT: -1}


def unpriced_days(*, portfolio_ids: list[int], start: date, end: date) -> dict[int, dict[date, list[Unpriced]]]:
    """Per account, the days of ``[start, end]`` on which it held an instrument (position not
    zero after the day's trades) whose latest close on or before the day is older than
    ``STALE_PRICE_DAYS`` days, or missing. Three queries whatever the number of accounts: the
    accounts' security trades, the instruments, their closes in the window."""
    trades = (
        Transaction.objects.filter(
            portfolio_id__in=portfolio_ids,
            instrument_id__isnull=False,
            trade_date__lte=end,
            kind__in=[*_QUANTITY_SIGN, Kind.SPLIT],
        )
        .order_by("portfolio_id", "instrument_id", "trade_date", "id")
        .values_list("portfolio_id", "instrument_id", "trade_date", "kind", "quantity")
    )
    # (portfolio, instrument) -> [(day, quantity after that day's trades)]
    steps: dict[tuple[int, int], list[tuple[date, Decimal]]] = defaultdict(list)
    quantity: dict[tuple[int, int], Decimal] = defaultdict(Decimal)
    for pid, iid, day, kind, qty in trades:
        key = (pid, iid)
        if kind == Kind.SPLIT:
            quantity[key] *= qty
        else:
            quantity[key] += _QUANTITY_SIGN[kind] * qty
        if steps[key] and steps[key][-1][0] == day:
            steps[key][-1] = (day, quantity[key])
        else:
            steps[key].append((day, quantity[key]))
    if not steps:
        return {}
    instrument_ids = {iid for _, iid in steps}
    infos = {i.pk: i for i in Instrument.all_objects.filter(pk__in=instrument_ids).only("symbol", "asset_class")}
    fresh: dict[int, set[date]] = defaultdict(set)  # the days of [start, end] with a recent close
    for iid, priced in Price.objects.filter(
        instrument_id__in=instrument_ids, date__gte=start - timedelta(days=STALE_PRICE_DAYS), date__lte=end
    ).values_list("instrument_id", "date"):
        for offset in range(STALE_PRICE_DAYS + 1):
            if start <= priced + timedelta(days=offset) <= end:
                fresh[iid].add(priced + timedelta(days=offset))
    out: dict[int, dict[date, list[Unpriced]]] = defaultdict(lambda: defaultdict(list))
    for (pid, iid), timeline in steps.items():
        info = infos.get(iid)
        what = Unpriced(iid, info.symbol if info else str(iid), info.asset_class if info else "")
        held, i = Decimal(0), 0
        for day in _days(start, end):
            while i < len(timeline) and timeline[i][0] <= day:
                held = timeline[i][1]
                i += 1
            if held != 0 and day not in fresh[iid]:
                out[pid][day].append(what)
    return out


def _days(first: date, last: date) -> list[date]:
    out, day = [], first
    while day <= last:
        out.append(day)
        day += ONE_DAY
    return out


def _fmt(value: Fraction | Decimal, places: int = 2) -> str:
    return str(engine.round_half_up(Fraction(value), places))


def period_previews(
    *, period_start: date, period_end: date, frequency: str, progress: Callable[[int, int], None] | None = None
) -> list[GroupPreview]:
    """Every billing group's fees for the period (subscriptions of ``frequency``). Reads the
    stored valuations: one query per account over the period and the prior close, plus a fixed
    number of queries for the whole firm. ``progress(done, total)`` hears of the groups computed,
    once per chunk of ``PREVIEW_CHUNK``."""
    prior_end = period_start - ONE_DAY
    subs = list(
        ClientSubscription.objects.filter(frequency=frequency, starts_on__lte=period_end)
        .filter(Q(ends_on__isnull=True) | Q(ends_on__gte=period_start))
        .select_related("product", "group")
        .order_by("group_id", "id")
    )
    group_ids = {s.group_id for s in subs}
    invoiced = set(
        FeeInvoice.objects.filter(
            group_id__in=group_ids, period_start=period_start, period_end=period_end, kind=InvoiceKind.INVOICE
        )
        .exclude(status=InvoiceStatus.VOID)
        .values_list("group_id", flat=True)
    )
    accounts: dict[int, list] = defaultdict(list)
    for row in BillingGroupAccount.objects.filter(group_id__in=group_ids).select_related("portfolio"):
        accounts[row.group_id].append(row.portfolio)
    portfolio_ids = [p.pk for ps in accounts.values() for p in ps]
    inceptions = dict(
        Transaction.objects.filter(portfolio_id__in=portfolio_ids)
        .values("portfolio_id")
        .annotate(first=Min("trade_date"))
        .values_list("portfolio_id", "first")
    )
    updating = set(
        ValuationState.objects.filter(portfolio_id__in=portfolio_ids)
        .filter(
            Q(status=ValuationStatus.UPDATING)
            | Q(status=ValuationStatus.FAILED)
            | Q(stale_from__isnull=False, stale_from__lte=period_end)
        )
        .values_list("portfolio_id", flat=True)
    )
    versions: dict[int, list[FeeScheduleVersion]] = defaultdict(list)
    for v in FeeScheduleVersion.objects.filter(
        schedule_id__in={s.product.fee_schedule_id for s in subs}
    ).prefetch_related("excluded_instruments"):
        versions[v.schedule_id].append(v)
    schedules = {s.pk: s for s in FeeSchedule.objects.filter(pk__in=versions)}
    # Versions in effect on some day of the run's range that exclude instruments or asset classes
    # (decision 1200): each one's excluded positions are valued over the whole range, since an
    # in-advance fee measures the prior close with the exclusions of the period's first day.
    exclusions: dict[int, tuple[int, set[int], set[str]]] = {}
    for schedule_id, schedule_versions in versions.items():
        for v in versions_in_range(schedule_versions, prior_end, period_end):
            instrument_ids = {i.pk for i in v.excluded_instruments.all()}
            if instrument_ids or v.excluded_asset_classes:
                exclusions[v.pk] = (schedule_id, instrument_ids, set(v.excluded_asset_classes))
    rates: dict[tuple[str, str, date], Decimal | None] = {}

    def rate(ccy: str, base: str, day: date) -> Decimal | None:
        key = (ccy, base, day)
        if key not in rates:
            rates[key] = portfolio_services.fx_rate_lookup(currency=ccy, base=base, on=day)
        return rates[key]

    by_group: dict[int, list[ClientSubscription]] = defaultdict(list)
    for s in subs:
        by_group[s.group_id].append(s)
    out = []
    group_ids_ordered = list(by_group)
    for chunk_start in range(0, len(group_ids_ordered), PREVIEW_CHUNK):
        chunk = group_ids_ordered[chunk_start : chunk_start + PREVIEW_CHUNK]
        # One query for the stored closes of every account of the chunk's groups.
        chunk_ids = [p.pk for g in chunk for p in accounts[g]]
        closes = portfolios_closes(portfolio_ids=chunk_ids, start=prior_end, end=period_end)
        unpriced = unpriced_days(portfolio_ids=chunk_ids, start=prior_end, end=period_end)
        # Schedules with excluded instruments or asset classes: the excluded positions' closes
        # of the accounts billed on them, by schedule (only those accounts pay for the replay).
        excluded: dict[int, dict[int, dict[date, Decimal]]] = {}  # version id -> portfolio -> day
        for version_id, (schedule_id, instrument_ids, asset_classes) in exclusions.items():
            billed = [
                p
                for g in chunk
                if any(s.product.fee_schedule_id == schedule_id for s in by_group[g])
                for p in accounts[g]
            ]
            if billed:
                excluded[version_id] = portfolios_positions_closes(
                    portfolios=billed,
                    start=prior_end,
                    end=period_end,
                    instrument_ids=instrument_ids,
                    asset_classes=asset_classes,
                )
        for group_id in chunk:
            out.append(
                _preview_group(
                    by_group[group_id],
                    accounts[group_id],
                    closes,
                    inceptions,
                    updating,
                    invoiced,
                    schedules,
                    versions,
                    period_start,
                    period_end,
                    rate,
                    excluded,
                    unpriced,
                )
            )
        if progress is not None:
            progress(len(out), len(group_ids_ordered))
    return out


def _preview_group(
    group_subs,
    group_accounts,
    closes,
    inceptions,
    updating,
    invoiced,
    schedules,
    versions,
    period_start,
    period_end,
    rate,
    excluded,
    unpriced,
) -> GroupPreview:
    group = group_subs[0].group
    preview = GroupPreview(group_id=group.pk, currency=group.currency)
    if group.pk in invoiced:
        preview.skipped = "Invoiced for this period already."
        return preview
    days = []
    for p in group_accounts:
        days.append(
            AccountDays(
                p.pk, p.name, p.base_currency, inceptions.get(p.pk), closes.get(p.pk, {}), unpriced.get(p.pk, {})
            )
        )
        if p.pk in updating:
            preview.problems.append(
                {"portfolio": p.pk, "name": p.name, "message": "Valuations are being updated.", "missing_days": []}
            )
    for sub in group_subs:
        _preview_subscription(preview, sub, days, schedules, versions, period_start, period_end, rate, excluded)
    preview.total = sum((Decimal(line["fee"]) for line in preview.lines), Decimal(0))
    return preview


def _preview_subscription(preview, sub, days, schedules, versions, period_start, period_end, rate, excluded) -> None:
    product = sub.product
    member = engine.billed_days(
        period_start=period_start, period_end=period_end, starts=sub.starts_on, ends=sub.ends_on
    )
    if member is None:
        return
    fraction, n_days, period_days = engine.period_fraction(
        period_start=period_start,
        period_end=period_end,
        billed_from=member.billed_from,
        billed_to=member.billed_to,
        frequency=sub.frequency,
        day_count=sub.day_count,
    )
    schedule = schedules.get(product.fee_schedule_id)
    version = None
    if schedule is not None:
        # The terms in effect on the first billed day apply to the whole period.
        version = schedule_version_on(versions[schedule.pk], member.billed_from)
        if version is None:
            preview.problems.append(
                {
                    "portfolio": None,
                    "name": schedule.name,
                    "message": f"Schedule {schedule.name} has no terms in effect on {member.billed_from.isoformat()}.",
                    "missing_days": [],
                }
            )
            return
    # What each account's billable value is measured on, and which stored days that needs.
    if sub.timing == Timing.ADVANCE:
        measured = [period_start - ONE_DAY]
    elif sub.timing == Timing.ARREARS_END:
        measured = [member.billed_to]
    else:
        measured = _days(member.billed_from, member.billed_to)
    # The exclusions of each measured day (decision 1200): those in effect that day (average daily
    # balance: a change applies from its date; period-end: the last billed day's), except in
    # advance, where the prior close is measured with the exclusions of the billed period's first
    # day, like the terms.
    rules: list[FeeScheduleVersion | None] = []
    for day in measured:
        if schedule is None:
            rules.append(None)
        elif sub.timing == Timing.ADVANCE:
            rules.append(version)
        else:
            rules.append(schedule_version_on(versions[schedule.pk], day) or version)
    values: list[Fraction] = []
    for account in days:
        missing = account.missing(measured[0], measured[-1])
        if missing:
            preview.problems.append(
                {
                    "portfolio": account.portfolio_id,
                    "name": account.name,
                    "message": f"No stored valuation on {len(missing)} day(s).",
                    "missing_days": [d.isoformat() for d in missing],
                }
            )
            values.append(Fraction(0))
            continue
        # A position without a recent price on a measured day (unless that day's rule excludes it):
        # the day's stored value is not a fair base for a fee.
        gaps: dict[date, list[str]] = {}
        for d, rule in zip(measured, rules, strict=True):
            symbols = [u.symbol for u in account.unpriced.get(d, ()) if not _excluded_by(rule, u)]
            if symbols:
                gaps[d] = symbols
        if gaps:
            names = sorted({s for symbols in gaps.values() for s in symbols})
            preview.problems.append(
                {
                    "portfolio": account.portfolio_id,
                    "name": account.name,
                    "message": f"No price for {', '.join(names)} on {len(gaps)} day(s) "
                    f"(no close in the {STALE_PRICE_DAYS} days before).",
                    "missing_days": [d.isoformat() for d in gaps],
                }
            )
            values.append(Fraction(0))
            continue
        value = engine.average_daily_balance(
            [
                account.close(
                    d,
                    exclude_cash=bool(rule and rule.exclude_cash),
                    excluded=excluded.get(rule.pk, {}).get(account.portfolio_id) if rule else None,
                )
                for d, rule in zip(measured, rules, strict=True)
            ]
        )
        if account.currency != preview.currency:
            fx = rate(account.currency, preview.currency, measured[-1])
            if fx is None:
                preview.problems.append(
                    {
                        "portfolio": account.portfolio_id,
                        "name": account.name,
                        "message": f"No {account.currency}/{preview.currency} rate on {measured[-1].isoformat()}.",
                        "missing_days": [],
                    }
                )
                fx = Decimal(0)
            value *= Fraction(fx)
        values.append(value)
    group_value = sum(values, Fraction(0))
    asset_fee = Decimal(0)
    result = None
    if version is not None:
        result = engine.fee_for(
            value=group_value,
            schedule=schedule_terms(version),
            period_start=period_start,
            period_end=period_end,
            billed_from=member.billed_from,
            billed_to=member.billed_to,
            frequency=sub.frequency,
            day_count=sub.day_count,
            currency=preview.currency,
        )
        asset_fee = result.fee
    flat = Decimal(0)
    if product.flat_fee is not None:
        flat = engine.flat_fee_for(
            amount=product.flat_fee, fraction_of_period=Fraction(n_days, period_days), currency=preview.currency
        )
    shares = engine.allocate(asset_fee + flat, values, currency=preview.currency)
    tiers = (
        [
            {
                "from": str(h.lower),
                "upto": None if h.upper is None else str(h.upper),
                "bps": str(h.bps),
                "value": _fmt(h.charged_value),
            }
            for h in result.tiers_hit
        ]
        if result
        else []
    )
    notes = ", ".join(member.notes)
    for account, value, share in zip(days, values, shares, strict=True):
        preview.lines.append(
            {
                "subscription": sub.pk,
                "product": product.name,
                "portfolio": account.portfolio_id,
                "portfolio_name": account.name,
                "collection": sub.collection,
                "timing": sub.timing,
                "billable_value": _fmt(value),
                "group_value": _fmt(group_value),
                "tiers": tiers,
                "days": n_days,
                "period_days": period_days,
                "fraction": _fmt(fraction, 8),
                "rate_bps": _fmt(result.effective_bps, 4) if result else "0",
                "annual_fee": _fmt(result.annual) if result else "0",
                "minimum_applied": bool(result and result.minimum_applied),
                "maximum_applied": bool(result and result.maximum_applied),
                "asset_fee": str(asset_fee),
                "flat_fee": str(flat),
                "fee": str(share),
                "notes": notes,
                "description": f"{product.name}: {account.name}, {period_start.isoformat()} to {period_end.isoformat()}"
                + (f" ({notes})" if notes else ""),
            }
        )


def _excluded_by(rule: FeeScheduleVersion | None, position: Unpriced) -> bool:
    """Whether the day's version excludes the position (its price then does not matter)."""
    if rule is None:
        return False
    return position.asset_class in rule.excluded_asset_classes or any(
        i.pk == position.instrument_id for i in rule.excluded_instruments.all()
    )


def is_overdue(invoice: FeeInvoice, *, today: date) -> bool:
    """An open invoice past its due date (a state derived from the date, not stored)."""
    return invoice.status == InvoiceStatus.OPEN and invoice.due_on < today


@dataclass(frozen=True)
class FeeReturns:
    start: date
    end: date
    net: Decimal | None
    gross: Decimal | None
    fees: Decimal


def portfolio_returns_gross_net(*, portfolio, start: date, end: date) -> FeeReturns:
    """Time-weighted return over ``[start, end]`` net of fees (the ledger's fee is a cost) and
    gross (the advisory fees deducted by fee invoices added back). Stored valuations (one query)
    and the fee lines booked in the range (one query). docs/analytics.md, "Gross and net of fees"."""
    from django.db.models import Sum

    rows = portfolio_valuations(portfolio=portfolio, start=start - ONE_DAY, end=end)
    fees = dict(
        FeeInvoiceLine.objects.filter(
            portfolio=portfolio,
            fee_transaction__isnull=False,
            fee_transaction__trade_date__gte=start,
            fee_transaction__trade_date__lte=end,
        )
        .values("fee_transaction__trade_date")
        .annotate(total=Sum("amount"))
        .values_list("fee_transaction__trade_date", "total")
    )
    opening = rows[0].value if rows and rows[0].date == start - ONE_DAY else Decimal(0)
    days = [(r.value, r.net_flows, fees.get(r.date, Decimal(0))) for r in rows if r.date >= start]
    result = engine.gross_and_net_twr(opening, days)

    def rounded(x: Fraction | None) -> Decimal | None:
        return None if x is None else engine.round_half_up(x, 8)

    return FeeReturns(start, end, rounded(result.net), rounded(result.gross), engine.round_half_up(result.fees, 2))


REVENUE_DIMENSIONS = ("month", "advisor", "product", "household", "client")


@dataclass(frozen=True)
class RevenueRow:
    key: str
    label: str
    currency: str
    revenue: Decimal
    billable_value: Decimal  # sum of the lines' billable values (one per account and subscription)
    rate_bps: Decimal | None  # annualised: revenue / sum(billable value x days / 365)


@dataclass(frozen=True)
class RevenueTotal:
    currency: str
    revenue: Decimal
    billable_aum: Decimal  # billable value of the last period invoiced in the range


@dataclass(frozen=True)
class Revenue:
    """Amounts are never added across currencies: a row per key and currency, a total per
    currency (decision 1202)."""

    start: date
    end: date
    by: str
    rows: list[RevenueRow]
    totals: list[RevenueTotal]

    def _single(self) -> RevenueTotal | None:
        """The one currency's total; zero when nothing was billed; None when several currencies
        were billed (never added up)."""
        if not self.totals:
            return RevenueTotal("", Decimal(0), Decimal(0))
        return self.totals[0] if len(self.totals) == 1 else None

    @property
    def total(self) -> Decimal | None:
        """API v1's single total (decision 1350): the revenue when one currency was billed."""
        single = self._single()
        return None if single is None else single.revenue

    @property
    def billable_aum(self) -> Decimal | None:
        """API v1's single billable AUM (decision 1350), as ``total``."""
        single = self._single()
        return None if single is None else single.billable_aum


def fee_revenue(*, user, start: date, end: date, by: str) -> Revenue:
    """The firm's fee revenue issued in ``[start, end]`` (invoices and credit notes, not void),
    grouped by ``by``; advisors see their book's clients. One aggregate query per figure."""
    from django.db.models import Case, DecimalField, ExpressionWrapper, F, Sum, Value, When
    from django.db.models.functions import Cast, Coalesce, Concat, TruncMonth

    if by not in REVENUE_DIMENSIONS:
        raise ValueError(by)
    lines = FeeInvoiceLine.objects.filter(
        invoice__in=invoices_for(user).exclude(status=InvoiceStatus.VOID),
        invoice__issued_on__gte=start,
        invoice__issued_on__lte=end,
    )
    key_label = {
        "month": (TruncMonth("invoice__issued_on"), TruncMonth("invoice__issued_on")),
        "advisor": (F("invoice__client__owner_id"), F("invoice__client__owner__email")),
        "product": (F("subscription__product_id"), Coalesce(F("subscription__product__name"), Value("Credits"))),
        "household": (F("invoice__group_id"), F("invoice__group__name")),
        "client": (
            F("invoice__client_id"),
            Concat(F("invoice__client__first_name"), Value(" "), F("invoice__client__last_name")),
        ),
    }[by]
    weighted = ExpressionWrapper(
        F("billable_value") * Cast(F("days"), DecimalField(max_digits=6, decimal_places=0)),
        output_field=DecimalField(max_digits=30, decimal_places=2),
    )
    rows = (
        lines.annotate(k=key_label[0], label=key_label[1], ccy=F("invoice__currency"))
        .values("k", "label", "ccy")
        .annotate(
            revenue=Sum("amount"),
            value=Sum(
                Case(
                    When(invoice__kind=InvoiceKind.INVOICE, then=F("billable_value")),
                    default=Value(Decimal(0)),
                    output_field=DecimalField(max_digits=20, decimal_places=2),
                )
            ),
            value_days=Sum(weighted),
        )
        .order_by("k", "ccy")
    )
    out = []
    for r in rows:
        rate = None
        if r["value_days"]:
            rate = engine.round_half_up(Fraction(r["revenue"]) * 365 * 10_000 / Fraction(r["value_days"]), 2)
        key = r["k"].isoformat()[:7] if by == "month" and r["k"] else str(r["k"] if r["k"] is not None else "")
        label = key if by == "month" else str(r["label"] or "(none)")
        out.append(RevenueRow(key, label, r["ccy"], r["revenue"], r["value"], rate))
    revenue_by_currency = dict(
        lines.values("invoice__currency").annotate(t=Sum("amount")).values_list("invoice__currency", "t")
    )
    last = (
        lines.filter(invoice__kind=InvoiceKind.INVOICE)
        .order_by("-invoice__period_end")
        .values("invoice__period_end")
        .first()
    )
    per_account: dict[tuple[str, int], Decimal] = {}
    if last:
        # one billable value per account in the last period (an account under two products counts once)
        for pid, value, ccy in lines.filter(
            invoice__kind=InvoiceKind.INVOICE, invoice__period_end=last["invoice__period_end"]
        ).values_list("portfolio_id", "billable_value", "invoice__currency"):
            per_account[ccy, pid] = max(value, per_account.get((ccy, pid), Decimal(0)))
    aum: dict[str, Decimal] = defaultdict(Decimal)
    for (ccy, _), value in per_account.items():
        aum[ccy] += value
    totals = [
        RevenueTotal(ccy, revenue_by_currency.get(ccy, Decimal(0)), aum.get(ccy, Decimal(0)))
        for ccy in sorted(set(revenue_by_currency) | set(aum))
    ]
    return Revenue(start, end, by, out, totals)


def revenue_csv_rows(revenue: Revenue, *, currency_last: bool = False) -> list[list[str]]:
    """The revenue as CSV rows: plain numbers (machine-readable) with a currency column; a total
    per currency. ``currency_last``: API v1's layout, the columns it had before currencies came
    with the currency appended, so a reader by position still finds them (decision 1350)."""
    head = [revenue.by, "currency", "revenue", "billable_value", "effective_rate_bps"]
    body = [
        [r.label, r.currency, str(r.revenue), str(r.billable_value), "" if r.rate_bps is None else str(r.rate_bps)]
        for r in revenue.rows
    ]
    rows = [head, *body, *(["total", t.currency, str(t.revenue), "", ""] for t in revenue.totals)]
    if currency_last:
        rows = [[row[0], *row[2:], row[1]] for row in rows]
    return rows
