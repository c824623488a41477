"""Writes of the valuation store (``Valuation``, ``ValuationCurrency``, ``ValuationState``).

The store is a cache of ``valuation_engine.compute_valuations`` (docs/analytics.md, "Stored
valuations"). Invalidation rule: whatever changes a portfolio's inputs on day *d* (a ledger row
dated *d*, a close or FX rate of *d*, a corporate action of *d*) recomputes that portfolio from
*d* to today, never earlier days:

- a single ledger write: ``valuations_after_ledger_write`` inside the write's transaction, with
  the portfolio row locked (called by ``portfolios.services``);
- a bulk import, a price or FX import, a corporate action: ``valuations_mark_stale`` records the
  earliest affected day and queues ``portfolios.tasks.valuations_rebuild_task`` on commit; the
  task calls ``valuations_rebuild``.

Every recomputed range is replaced in one transaction, so a reader sees either the previous rows
or the new ones. A failed recomputation keeps the previous rows and records the error.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import date
from decimal import Decimal
from functools import partial
from typing import cast

from django.db import connection, transaction
from django.db.models import F, OuterRef, Subquery
from django.utils import timezone
from django_tenants.utils import get_public_schema_name, schema_context, tenant_context

from codex.db import current_schema
from codex.live.publish import live_publish
from tenants.models import BLOCKED_STATUSES, Tenant

from . import analytics
from .ledger import ledger_currencies, ledger_of
from .models import (
    FirmValuation,
    Portfolio,
    PortfolioFigures,
    Transaction,
    Valuation,
    ValuationCurrency,
    ValuationState,
    ValuationStatus,
)
from .selectors import fx_series
from .selectors.loading import _instrument_infos, _price_series
from .selectors.summaries import PortfolioSummary, _portfolio_summaries
from .valuation_engine import (
    DAY_COLUMNS,
    ONE_DAY,
    DayValuation,
    Opening,
    cents,
    compute_valuations,
    differences,
    inception_opening,
)

logger = logging.getLogger(__name__)

CURRENCY_COLUMNS = ("portfolio_id", "date", "currency", "securities_local", "cash_local", "fx_rate", "value_base")
#: Times a background rebuild starts again because a ledger write committed while it computed.
REBUILD_ATTEMPTS = 5


class ValuationRaced(Exception):
    """The ledger changed while a rebuild computed; it was not written (the caller retries)."""


def _state_for_update(portfolio_id: int) -> ValuationState:
    ValuationState.objects.get_or_create(portfolio_id=portfolio_id)
    return ValuationState.objects.select_for_update().get(portfolio_id=portfolio_id)


def _load(portfolio: Portfolio, ledger: list[analytics.Txn], *, since: date, end: date) -> analytics.PortfolioData:
    ids = {t.instrument_id for t in ledger if t.instrument_id is not None}
    # analytics keys instruments by any hashable id; ours are primary keys.
    instruments = cast(Mapping[object, analytics.InstrumentInfo], _instrument_infos(ids))
    prices = cast(Mapping[object, Sequence[tuple[date, Decimal]]], _price_series(ids, since=since, end=end))
    currencies = ledger_currencies(ledger) | {i.currency for i in instruments.values()}
    return analytics.PortfolioData(
        base_currency=portfolio.base_currency,
        txns=ledger,
        instruments=instruments,
        prices=prices,
        fx=fx_series(currencies, base=portfolio.base_currency, since=since, end=end),
        lot_method=portfolio.lot_method,
    )


def _opening(portfolio_id: int, start: date, inception: date) -> tuple[date, Opening]:
    """Where to start and the state before it: the day after the last stored close before
    ``start`` (``start`` itself when the store is complete), or inception when nothing is
    stored before ``start`` to carry on from."""
    if start <= inception:
        return inception, inception_opening(inception)
    last = (
        Valuation.objects.filter(portfolio_id=portfolio_id, date__lt=start, date__gte=inception)
        .order_by("-date")
        .values_list("date", "twr_index")
        .first()
    )
    if last is None:
        return inception, inception_opening(inception)
    day, level = last
    return day + ONE_DAY, Opening(day, level)


def inputs_of(ledger: list[analytics.Txn]) -> dict:
    """The ledger's instruments and currencies (their closes and rates mark the market days)."""
    return {
        "instruments": sorted({t.instrument_id for t in ledger if t.instrument_id is not None}),
        "currencies": sorted(ledger_currencies(ledger)),
    }


def compute_from(
    *, portfolio: Portfolio, ledger: list[analytics.Txn], since: date | None, today: date, known_inputs: dict
) -> tuple[date | None, list[DayValuation]]:
    """The rows to store through ``today``: ``(first day, rows)``. The first day is ``since``
    when the store holds the day before it, else inception (then every stored row is replaced);
    ``(None, [])`` for an empty ledger or one that starts after today (every row goes).
    ``known_inputs``: ``inputs_of`` the ledger the stored rows came from; when the ledger's
    differ, it starts at inception. Raises ``AnalyticsError``."""
    if not ledger:
        return None, []
    inception = ledger[0].date
    if inception > today:
        return None, []
    if inputs_of(ledger) != known_inputs:
        since = inception  # another set of instruments or currencies: every market-day flag may move
    start, opening = _opening(portfolio.pk, since or inception, inception)
    if start > today:
        return start, []
    data = _load(portfolio, ledger, since=start, end=today)
    return start, compute_valuations(data, start, today, opening=opening)


def _firm_lock() -> None:
    """Serialise the writes of this firm's ``FirmValuation`` rows until the transaction ends (a
    transaction that revalues two portfolios, e.g. a transfer, touches the same days twice:
    without one lock, two of them could each wait for a day the other holds)."""
    with connection.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(hashtext(current_schema() || '.firm_valuation'))")


def _firm_add(portfolio_id: int, currency: str, *, since: date | None, sign: int) -> None:
    """Add (``sign`` 1) or take out (-1) the stored days of ``portfolio_id`` from ``since`` on
    (every day if None) to or from the firm's rows of ``currency``. The arithmetic is done by
    PostgreSQL on the stored numerics, so the sums stay exact; rows left with no portfolio go."""
    firm = connection.ops.quote_name(FirmValuation._meta.db_table)
    day = connection.ops.quote_name(Valuation._meta.db_table)
    when = "AND date >= %s" if since is not None else ""
    params: list = [currency, sign, sign, sign, sign, portfolio_id] + ([since] if since is not None else [])
    with connection.cursor() as cur:
        cur.execute(
            f"INSERT INTO {firm} (date, currency, value, net_flows, cash, portfolios) "  # noqa: S608
            "SELECT date, %s, %s * value, %s * net_flows, %s * cash, %s "
            f"FROM {day} WHERE portfolio_id = %s {when} ORDER BY date "
            "ON CONFLICT (date, currency) DO UPDATE SET "
            f"value = {firm}.value + EXCLUDED.value, net_flows = {firm}.net_flows + EXCLUDED.net_flows, "
            f"cash = {firm}.cash + EXCLUDED.cash, portfolios = {firm}.portfolios + EXCLUDED.portfolios",
            params,
        )
        if sign < 0:
            cur.execute(f"DELETE FROM {firm} WHERE currency = %s AND portfolios = 0", [currency])  # noqa: S608


def firm_valuations_move(*, portfolio: Portfolio, archived: bool) -> None:
    """Take an archived portfolio's whole stored series out of the firm's rows, or put a restored
    one back. Call inside the transaction that changes the flag, with the portfolio row locked."""
    _firm_lock()
    _firm_add(portfolio.pk, portfolio.base_currency, since=None, sign=-1 if archived else 1)


def _write(portfolio_id: int, start: date | None, rows: list[DayValuation], *, inception: date | None) -> None:
    """Replace the stored days from ``start`` on by ``rows``; from inception (or with nothing to
    store) every stored day goes, since the ledger may now start later than it did. The firm's
    rows (``FirmValuation``) take the difference in the same transaction."""
    # Locked (the ledger writes hold it already): archiving cannot slip between our old and new sums.
    currency, archived = (
        Portfolio.objects.select_for_update().filter(pk=portfolio_id).values_list("base_currency", "archived").get()
    )
    since = None if start is None or start == inception else start
    if not archived:
        _firm_lock()
        _firm_add(portfolio_id, currency, since=since, sign=-1)
    for model in (Valuation, ValuationCurrency):
        stale = model.objects.filter(portfolio_id=portfolio_id)
        if since is None:
            stale.delete()
        else:
            stale.filter(date__gte=since).delete()
    if not rows:
        return
    _copy(Valuation, ("portfolio_id", *DAY_COLUMNS), [(portfolio_id, *r.row()) for r in rows])
    _copy(
        ValuationCurrency,
        CURRENCY_COLUMNS,
        [
            (portfolio_id, r.date, c.currency, c.securities_local, c.cash_local, c.fx_rate, c.value_base)
            for r in rows
            for c in r.currencies
        ],
    )
    if not archived:
        _firm_add(portfolio_id, currency, since=since, sign=1)


FIGURE_FIELDS = ("as_of", "value", "ytd", "since_inception")


def _figures_of(portfolio_id: int, day: date, summary: PortfolioSummary) -> PortfolioFigures:
    def shown(period: analytics.PeriodReturn | None) -> Decimal | None:
        return None if period is None else period.value

    return PortfolioFigures(
        portfolio_id=portfolio_id,
        as_of=day,
        value=summary.value if summary.value is not None else Decimal(0),
        ytd=shown(summary.ytd),
        since_inception=shown(summary.since_inception),
    )


def _figures_upsert(figures: list[PortfolioFigures]) -> None:
    if figures:
        PortfolioFigures.objects.bulk_create(
            figures, update_conflicts=True, unique_fields=["portfolio"], update_fields=list(FIGURE_FIELDS)
        )


def _figures_write(portfolio: Portfolio, *, last: date | None) -> None:
    """Replace ``portfolio``'s ``PortfolioFigures`` by its summary as of its last stored close
    (``last`` when the caller knows it), computed from the store by the dashboard's own
    selector; no stored close, no figures. Runs in the transaction that wrote the days."""
    if last is None:
        last = (
            Valuation.objects.filter(portfolio_id=portfolio.pk).order_by("-date").values_list("date", flat=True).first()
        )
    if last is None:
        PortfolioFigures.objects.filter(portfolio_id=portfolio.pk).delete()
        return
    summary = _portfolio_summaries([portfolio], today=last)[portfolio.pk]
    _figures_upsert([_figures_of(portfolio.pk, last, summary)])


def _last_closes() -> dict[date, list[Portfolio]]:
    """This firm's portfolios with a stored close, grouped by their last stored day (one query,
    one step along the ``(portfolio, date)`` index per portfolio, then the portfolios)."""
    last = Valuation.objects.filter(portfolio=OuterRef("pk")).order_by("-date").values("date")[:1]
    days = list(
        Portfolio.objects.annotate(last_close=Subquery(last))
        .filter(last_close__isnull=False)
        .order_by("pk")
        .values_list("pk", "last_close")
    )
    portfolios = Portfolio.objects.in_bulk([pk for pk, _day in days])
    by_day: dict[date, list[Portfolio]] = {}
    for pk, day in days:
        by_day.setdefault(day, []).append(portfolios[pk])
    return by_day


def portfolio_figures_rebuild() -> int:
    """Replace every ``PortfolioFigures`` row of this firm by the summaries of the stored days
    (after the migration that adds them, or to repair what ``valuations_verify`` reports):
    a few queries per distinct last day, not per portfolio. Atomic. Returns the rows written."""
    written = 0
    with transaction.atomic():
        by_day = _last_closes()
        PortfolioFigures.objects.exclude(portfolio_id__in=[p.pk for ps in by_day.values() for p in ps]).delete()
        for day, portfolios in by_day.items():
            summaries = _portfolio_summaries(portfolios, today=day)
            _figures_upsert([_figures_of(p.pk, day, summaries[p.pk]) for p in portfolios])
            written += len(portfolios)
    return written


def figures_differences(*, portfolio: Portfolio) -> list[str]:
    """Compare ``portfolio``'s stored ``PortfolioFigures`` with its summary recomputed from the
    stored days: the value to the cent, the returns beyond 1e-10. ``[]`` means they agree."""
    last = Valuation.objects.filter(portfolio=portfolio).order_by("-date").values_list("date", flat=True).first()
    stored = PortfolioFigures.objects.filter(portfolio=portfolio).first()
    if last is None:
        return [] if stored is None else [f"figures stored as of {stored.as_of} but no day is stored"]
    if stored is None:
        return [f"figures as of {last}: missing"]
    want = _figures_of(portfolio.pk, last, _portfolio_summaries([portfolio], today=last)[portfolio.pk])
    out = []
    if stored.as_of != want.as_of:
        out.append(f"figures as of {stored.as_of}, last stored day {want.as_of}")
    if cents(stored.value) != cents(want.value):
        out.append(f"figures value: stored {cents(stored.value)}, recomputed {cents(want.value)}")
    for name in ("ytd", "since_inception"):
        have, fresh = getattr(stored, name), getattr(want, name)
        if (have is None) != (fresh is None) or (
            have is not None and fresh is not None and abs(have - fresh) > FIGURE_TOLERANCE
        ):
            out.append(f"figures {name}: stored {have}, recomputed {fresh}")
    return out


#: Returns are ratios, compared as the TWR index is (decision 0106).
FIGURE_TOLERANCE = Decimal("1e-10")


def _copy(model, columns: tuple[str, ...], rows: list[tuple]) -> None:
    if not rows:
        return
    table = connection.ops.quote_name(model._meta.db_table)
    cols = ", ".join(connection.ops.quote_name(c) for c in columns)
    with connection.cursor() as cur, cur.cursor.copy(f"COPY {table} ({cols}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def _store(
    state: ValuationState,
    start: date | None,
    rows: list[DayValuation],
    *,
    portfolio: Portfolio,
    ledger: list[analytics.Txn],
    version: int,
) -> None:
    _write(state.portfolio_id, start, rows, inception=ledger[0].date if ledger else None)
    _figures_write(portfolio, last=rows[-1].date if rows else None)
    state.inputs = inputs_of(ledger)
    state.valued_version = version
    state.valued_through = rows[-1].date if rows else None
    state.error = ""
    if state.stale_from is None:
        state.status = ValuationStatus.CURRENT
    state.save(update_fields=["inputs", "valued_version", "valued_through", "error", "status", "updated_at"])


def _fail(state: ValuationState, exc: Exception) -> None:
    state.status = ValuationStatus.FAILED
    state.error = str(exc)[:2000]
    state.save(update_fields=["status", "error", "updated_at"])
    logger.error(
        "valuation rebuild failed for portfolio %s in schema %s: %s",
        state.portfolio_id,
        current_schema(),
        exc,
        extra={"portfolio_id": state.portfolio_id, "schema": current_schema()},
    )


def valuations_after_ledger_write(
    *, portfolio: Portfolio, since: date, ledger: list[analytics.Txn], today: date | None = None
) -> ValuationState:
    """Recompute ``portfolio`` from ``since`` (the earliest ledger date the write touched) in the
    caller's transaction. Must run inside ``transaction.atomic()`` with the portfolio row locked
    (``portfolios.services`` does). Bumps the ledger version. A figure that cannot be computed
    (``AnalyticsError``, e.g. no FX rate for a held currency) does not refuse the write: the
    previous rows stay, the state says ``failed`` with the reason."""
    today = today or timezone.localdate()
    state = _state_for_update(portfolio.pk)
    ValuationState.objects.filter(pk=state.pk).update(ledger_version=F("ledger_version") + 1)
    state.refresh_from_db()
    try:
        start, rows = compute_from(
            portfolio=portfolio, ledger=ledger, since=since, today=today, known_inputs=state.inputs
        )
    except analytics.AnalyticsError as exc:
        _fail(state, exc)
        return state
    _store(state, start, rows, portfolio=portfolio, ledger=ledger, version=state.ledger_version)
    return state


def valuations_mark_stale(*, portfolio_ids, since: date, bump_version: bool = False) -> list[int]:
    """Record that the stored figures of ``portfolio_ids`` from ``since`` on wait for a rebuild
    and queue one task per portfolio when the transaction commits. ``bump_version``: the
    caller changed the ledger (a bulk import). Returns the ids marked."""
    from .tasks import valuations_rebuild_task  # tasks imports this module

    ids = sorted(set(portfolio_ids))
    if not ids:
        return []
    existing = set(ValuationState.objects.filter(portfolio_id__in=ids).values_list("portfolio_id", flat=True))
    ValuationState.objects.bulk_create([ValuationState(portfolio_id=i) for i in ids if i not in existing])
    with transaction.atomic():
        for state in ValuationState.objects.select_for_update().filter(portfolio_id__in=ids).order_by("portfolio_id"):
            state.stale_from = since if state.stale_from is None else min(state.stale_from, since)
            state.status = ValuationStatus.UPDATING
            if bump_version:
                state.ledger_version += 1
            state.save(update_fields=["stale_from", "status", "ledger_version", "updated_at"])
    for pid in ids:
        transaction.on_commit(partial(valuations_rebuild_task.delay, portfolio_id=pid), robust=True)
    return ids


def valuations_rebuild(*, portfolio: Portfolio, since: date | None = None, today: date | None = None) -> ValuationState:
    """Recompute ``portfolio`` from ``since`` (default: the state's ``stale_from``, else
    inception) through today and replace those rows atomically. The computation runs outside
    the lock; if a ledger write committed meanwhile (the ledger version moved), it starts again
    with the newer ledger, so a rebuild that races a write ends with the newest ledger's figures.
    On ``AnalyticsError`` the previous rows stay and the state records the failure. Idempotent."""
    today = today or timezone.localdate()
    for _attempt in range(REBUILD_ATTEMPTS):
        state, _ = ValuationState.objects.get_or_create(portfolio_id=portfolio.pk)
        version, stale_from, known = state.ledger_version, state.stale_from, state.inputs
        begin = min(d for d in (since, stale_from) if d is not None) if (since or stale_from) else None
        ledger = ledger_of(portfolio=portfolio)
        try:
            start, rows = compute_from(portfolio=portfolio, ledger=ledger, since=begin, today=today, known_inputs=known)
            failure = None
        except analytics.AnalyticsError as exc:
            start, rows, failure = None, [], exc
        with transaction.atomic():
            # The portfolio row first, as the ledger writes lock it (then the state row).
            Portfolio.objects.select_for_update().filter(pk=portfolio.pk).values_list("pk").get()
            state = _state_for_update(portfolio.pk)
            if state.ledger_version != version or state.stale_from != stale_from:
                continue  # a write (or a newer invalidation) came in while computing: again
            state.stale_from = None
            _announce_figures(portfolio.pk)
            if failure is not None:
                _fail(state, failure)
                state.save(update_fields=["stale_from", "updated_at"])
                return state
            state.status = ValuationStatus.CURRENT
            _store(state, start, rows, portfolio=portfolio, ledger=ledger, version=version)
            state.save(update_fields=["stale_from", "updated_at"])
            return state
    raise ValuationRaced(f"portfolio {portfolio.pk}: the ledger kept changing during {REBUILD_ATTEMPTS} rebuilds")


def _announce_figures(portfolio_id: int) -> None:
    """After the commit, tell the firm's open pages that this portfolio's figures changed (the
    portfolio page and the dashboard fetch themselves again). Only the id goes out: each page
    reads the figures through its own access checks."""
    schema = current_schema()
    transaction.on_commit(lambda: live_publish(schema=schema, event="figures", data={"portfolio_id": portfolio_id}))


def valuations_for_market_data(*, instrument_ids=(), currencies=(), since: date) -> list[int]:
    """Mark stale, from ``since``, every portfolio of this firm whose ledger holds one of
    ``instrument_ids`` or trades in one of ``currencies`` (or whose base is one of them) and
    queue their rebuilds. Called per firm after a price or FX import."""
    ids: set[int] = set()
    if instrument_ids:
        ids |= set(
            Transaction.objects.filter(instrument_id__in=list(instrument_ids), trade_date__lte=timezone.localdate())
            .values_list("portfolio_id", flat=True)
            .distinct()
        )
    if currencies:
        currencies = list(currencies)
        ids |= set(
            Transaction.objects.filter(currency__in=currencies).values_list("portfolio_id", flat=True).distinct()
        )
        ids |= set(Portfolio.objects.filter(base_currency__in=currencies).values_list("pk", flat=True))
        ids |= set(
            Transaction.objects.filter(instrument__currency__in=currencies)
            .values_list("portfolio_id", flat=True)
            .distinct()
        )
    # Portfolios whose valuations start after ``since`` still need it: their opening is earlier data.
    return valuations_mark_stale(portfolio_ids=ids, since=since)


def valuations_extend_all(*, today: date | None = None) -> list[int]:
    """Mark every portfolio of this firm whose store ends before ``today`` (or that has a ledger
    and nothing stored) stale from the day after its last valuation, and queue the rebuilds:
    the nightly job, so that no reader finds a day missing."""
    today = today or timezone.localdate()
    behind: dict[date, list[int]] = {}
    states = dict(ValuationState.objects.values_list("portfolio_id", "valued_through"))
    with_ledger = Transaction.objects.filter(trade_date__lte=today).values_list("portfolio_id", flat=True).distinct()
    for pid in with_ledger:
        through = states.get(pid)
        if through is None or through < today:
            since = through + ONE_DAY if through is not None else date.min
            behind.setdefault(since, []).append(pid)
    marked = []
    for since, ids in behind.items():
        marked += valuations_mark_stale(portfolio_ids=ids, since=since)
    return marked


def valuations_enqueue_for_import(*, kind: str, result, **_signal_kwargs) -> int:
    """After a price or FX import commits: one task per open firm (each in its schema) marks
    the firm's affected portfolios stale from the import's first date and queues their rebuilds.
    Returns the number of firms."""
    from .tasks import valuations_market_data_task  # tasks imports this module

    instrument_ids = sorted(result.instrument_ids) if kind in ("prices", "instruments") else []
    currencies = sorted(result.currencies) if kind == "fx" else []
    # An instrument whose currency changed changes every valuation of its holders.
    since = date.min if kind == "instruments" else result.first_date
    if since is None or not (instrument_ids or currencies):
        return 0
    with schema_context(get_public_schema_name()):
        firms = list(
            Tenant.objects.exclude(schema_name=get_public_schema_name())
            .exclude(status__in=list(BLOCKED_STATUSES))
            .order_by("pk")
        )
    for tenant in firms:
        with tenant_context(tenant):
            valuations_market_data_task.delay(
                since=since.isoformat(), instrument_ids=instrument_ids, currencies=currencies
            )
    return len(firms)


def valuations_verify(*, portfolio: Portfolio, today: date | None = None) -> list[str]:
    """Recompute ``portfolio`` from scratch (inception through the last stored day, or today) and
    list every difference with the store: a day missing or extra, a money figure to the cent, the
    TWR index beyond 1e-10, and the headline figures (``PortfolioFigures``) against the stored
    days. Writes nothing. ``[]`` means the store is right."""
    ledger = ledger_of(portfolio=portfolio)
    stored = list(Valuation.objects.filter(portfolio=portfolio).order_by("date").values_list(*DAY_COLUMNS))
    if not ledger:
        return differences(stored, []) + figures_differences(portfolio=portfolio)
    inception = ledger[0].date
    end = stored[-1][0] if stored else (today or timezone.localdate())
    if inception > end:
        return differences(stored, []) + figures_differences(portfolio=portfolio)
    data = _load(portfolio, ledger, since=inception, end=end)
    try:
        fresh = compute_valuations(data, inception, end, opening=inception_opening(inception))
    except analytics.AnalyticsError as exc:
        return [f"cannot be recomputed: {exc}"]
    # The figures are checked against the stored days; those against a recomputation from scratch.
    return differences(stored, fresh) + figures_differences(portfolio=portfolio)


def _firm_sums_sql() -> str:
    day = connection.ops.quote_name(Valuation._meta.db_table)
    portfolio = connection.ops.quote_name(Portfolio._meta.db_table)
    return (
        "SELECT v.date, p.base_currency, SUM(v.value), SUM(v.net_flows), SUM(v.cash), COUNT(*) "  # noqa: S608
        f"FROM {day} v JOIN {portfolio} p ON p.id = v.portfolio_id WHERE NOT p.archived "
        "GROUP BY v.date, p.base_currency"
    )


def firm_valuations_rebuild() -> int:
    """Replace this firm's ``FirmValuation`` rows by the sums of the stored portfolio days (after
    the migration that adds them, or to repair what ``firm_valuations_verify`` reports). Atomic.
    Returns the number of rows."""
    firm = connection.ops.quote_name(FirmValuation._meta.db_table)
    with transaction.atomic():
        _firm_lock()
        FirmValuation.objects.all().delete()
        with connection.cursor() as cur:
            cur.execute(
                f"INSERT INTO {firm} (date, currency, value, net_flows, cash, portfolios) {_firm_sums_sql()}"  # noqa: S608
            )
            return cur.rowcount


def firm_valuations_verify() -> list[str]:
    """Compare every ``FirmValuation`` row with the sum of the stored days of the firm's
    portfolios that are not archived, computed the slow way (a scan of ``Valuation``): a day
    missing or extra, a figure off by a cent, a portfolio count. ``[]`` means they agree."""
    with connection.cursor() as cur:
        cur.execute(_firm_sums_sql())
        expected: dict[tuple[date, str], list] = {(d, c): rest for d, c, *rest in cur.fetchall()}
    stored: dict[tuple[date, str], list] = {
        (d, c): rest
        for d, c, *rest in FirmValuation.objects.values_list(
            "date", "currency", "value", "net_flows", "cash", "portfolios"
        )
    }
    out = []
    for key in sorted(set(expected) | set(stored)):
        day, ccy = key
        want, have = expected.get(key), stored.get(key)
        if want is None:
            out.append(f"firm {day} {ccy}: stored but no portfolio has that day")
            continue
        if have is None:
            out.append(f"firm {day} {ccy}: missing")
            continue
        for name, w, h in zip(("value", "net_flows", "cash"), want, have, strict=False):
            if cents(w) != cents(h):
                out.append(f"firm {day} {ccy} {name}: stored {cents(h)}, sum of portfolios {cents(w)}")
        if want[3] != have[3]:
            out.append(f"firm {day} {ccy} portfolios: stored {have[3]}, counted {want[3]}")
    return out
