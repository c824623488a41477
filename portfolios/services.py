"""Writes of the portfolios app: portfolios and the transaction ledger.

Every ledger write (record, update, delete, import) runs in one database transaction that
1. locks the portfolio row (``select_for_update``), so concurrent writers to one portfolio queue up;
2. writes the ledger row(s);
3. replays the whole ledger of that portfolio through ``analytics.build_lots`` and rewrites the
   derived ``Holding``, ``Lot`` and ``CashBalance`` rows;
4. recomputes the stored valuations from the earliest day the write touched (a single write, in
   the same transaction), or marks them stale from there for a background job (a bulk import);
   see ``portfolios.valuation_services``.
If the replay fails (a sell of more than is held, a named lot that is not open...) a
``ValidationError`` with a field dict is raised and the transaction is rolled back: nothing is
written. Validation of a single row happens before any write, with one message per field.

Over 600 lines because validation, the replay that rebuilds the derived tables and the ledger
writes are one transaction's parts and are read together.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import ProtectedError
from django.utils import timezone
from psycopg.types.json import Jsonb

from billing.entitlements import check_can_add
from codex.outbox.services import event_emit
from portfolios.market.models import FxRate, Instrument
from tenants.accounts.models import Role

from . import analytics, events
from .analytics import CASH_KINDS, SECURITY_KINDS
from .ledger import TXN_VALUES, ledger_of, txn_from_row, txn_from_tuple  # noqa: F401 (their home was here)
from .models import (
    TRANSACTION_FIELDS,
    CashBalance,
    Holding,
    Kind,
    LedgerSettings,
    Lot,
    NegativeCash,
    Portfolio,
    Transaction,
)
from .valuation_services import valuations_after_ledger_write, valuations_mark_stale

ZERO = Decimal(0)
ONE = Decimal(1)
KIND_VALUES = frozenset(Kind.values)
# Cash kinds that may name the instrument they relate to (a dividend of a share, its withholding tax).
CASH_KINDS_WITH_INSTRUMENT = frozenset({Kind.DIVIDEND, Kind.INTEREST, Kind.FEE, Kind.TAX})


# --------------------------------------------------------------------------------------------
# Portfolios
# --------------------------------------------------------------------------------------------


def _check_currency(code: str, field: str, errors: dict) -> str:
    code = (code or "").strip().upper()
    if len(code) != 3 or not code.isalpha():
        errors[field] = "Enter a three-letter ISO currency code, e.g. USD."
    return code


def _check_portfolio_people(*, actor, advisor, client, errors: dict, creating: bool = True) -> None:
    if advisor is not None and advisor.role not in (Role.OWNER, Role.ADMIN, Role.ADVISOR):
        errors["advisor"] = "The advisor must be an owner, admin or advisor of the firm."
    elif advisor is not None and not advisor.is_active:
        errors["advisor"] = "This person's account is deactivated."
    if actor is not None and getattr(actor, "role", None) == Role.ADVISOR:
        # An advisor builds their own book: they advise it, and the client is theirs or shared.
        if creating and advisor is not None and advisor.pk != actor.pk:
            errors["advisor"] = "Advisors create portfolios they advise themselves."
        elif not creating and advisor is not None:
            errors["advisor"] = "Only owners and admins move a portfolio to another advisor."
        if client is not None and not (client.owner_id == actor.pk or client.shared_with.filter(pk=actor.pk).exists()):
            errors["client"] = "This client is not in your book."


def portfolio_create(
    *,
    tenant,
    actor,
    name: str,
    advisor,
    base_currency: str = "USD",
    client=None,
    benchmark: Instrument | None = None,
    lot_method: str = "fifo",
    shared_with=(),
) -> Portfolio:
    """Create a portfolio. Checks the plan's portfolio limit (``PlanLimitExceeded``) and raises
    ``ValidationError`` with field errors for a bad currency, advisor or client. Atomic."""
    errors: dict = {}
    name = (name or "").strip()
    if not name:
        errors["name"] = "Give the portfolio a name."
    base_currency = _check_currency(base_currency, "base_currency", errors)
    if lot_method not in analytics.LOT_METHODS:
        errors["lot_method"] = f"Choose one of {', '.join(analytics.LOT_METHODS)}."
    _check_portfolio_people(actor=actor, advisor=advisor, client=client, errors=errors)
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        check_can_add(tenant=tenant, resource="portfolios")
        portfolio = Portfolio.objects.create(
            name=name,
            advisor=advisor,
            client=client,
            base_currency=base_currency,
            benchmark=benchmark,
            lot_method=lot_method,
        )
        if shared_with:
            portfolio.shared_with.set(shared_with)
    return portfolio


class LedgerStateConflict(ValidationError):
    """A change the portfolio's ledger no longer allows (its base currency once it has rows): the
    request is well formed, the stored state refuses it (409 in the API, the field's error on pages)."""


def portfolio_update(*, portfolio: Portfolio, actor, **changes) -> Portfolio:
    """Change name, client, advisor, benchmark, sharing, lot method or the archived flag.

    The base currency and the lot method change how the whole ledger is valued, so they can only
    change while the ledger is empty (``LedgerStateConflict``, a ValidationError naming the field,
    otherwise: 409 in the API). Atomic."""
    allowed = {"name", "client", "advisor", "base_currency", "benchmark", "lot_method", "archived", "shared_with"}
    unknown = set(changes) - allowed
    if unknown:
        raise ValidationError({f: "This field cannot be changed." for f in unknown})
    errors: dict = {}
    if "name" in changes:
        changes["name"] = (changes["name"] or "").strip()
        if not changes["name"]:
            errors["name"] = "Give the portfolio a name."
    if "base_currency" in changes:
        changes["base_currency"] = _check_currency(changes["base_currency"], "base_currency", errors)
    if "lot_method" in changes and changes["lot_method"] not in analytics.LOT_METHODS:
        errors["lot_method"] = f"Choose one of {', '.join(analytics.LOT_METHODS)}."
    with transaction.atomic():
        portfolio = Portfolio.objects.select_for_update().get(pk=portfolio.pk)
        has_ledger = portfolio.transactions.exists()
        state_errors = {
            f: "This can only change while the portfolio has no transactions."
            for f in ("base_currency", "lot_method")
            if f in changes and changes[f] != getattr(portfolio, f) and has_ledger and f not in errors
        }
        # Only what changes is checked: an advisor may edit a portfolio shared with them
        # without being its advisor, but not move it to another advisor (themselves included).
        _check_portfolio_people(
            actor=actor,
            advisor=changes["advisor"] if changes.get("advisor", portfolio.advisor) != portfolio.advisor else None,
            client=changes["client"] if changes.get("client", portfolio.client) != portfolio.client else None,
            errors=errors,
            creating=False,
        )
        if errors:
            raise ValidationError(errors | state_errors)
        if state_errors:
            raise LedgerStateConflict(state_errors)
        shared = changes.pop("shared_with", None)
        for f, v in changes.items():
            setattr(portfolio, f, v)
        portfolio.save()
        if shared is not None:
            portfolio.shared_with.set(shared)
    return portfolio


def portfolio_delete(*, portfolio: Portfolio) -> None:
    """Delete an empty portfolio. One with a ledger is archived instead (``ValidationError``)."""
    with transaction.atomic():
        portfolio = Portfolio.objects.select_for_update().get(pk=portfolio.pk)
        if portfolio.transactions.exists():
            raise ValidationError(
                {"portfolio": "This portfolio has transactions; archive it instead of deleting its history."}
            )
        try:
            portfolio.delete()
        except ProtectedError as exc:  # pragma: no cover - nothing protects an empty portfolio today
            raise ValidationError({"portfolio": "Other records still refer to this portfolio."}) from exc


# --------------------------------------------------------------------------------------------
# Ledger: validation
# --------------------------------------------------------------------------------------------


def _decimal(value, field: str, errors: dict, *, default=ZERO, allow_none=False) -> Decimal | None:
    if value is None or value == "":
        return None if allow_none else default
    try:
        d = value if isinstance(value, Decimal) else Decimal(str(value).strip().replace(",", ""))
    except (InvalidOperation, ValueError):
        errors[field] = "Enter a number."
        return None if allow_none else default
    if not d.is_finite():
        errors[field] = "Enter a finite number."
        return None if allow_none else default
    return d


def fx_rate_lookup(*, currency: str, base: str, on: date) -> Decimal | None:
    """Value of one ``currency`` in ``base`` on ``on`` (last rate on or before), or None.

    Tries the direct pair, the inverse pair, then a cross through USD."""
    if currency == base:
        return ONE

    def last(b: str, q: str) -> Decimal | None:
        row = FxRate.objects.filter(base=b, quote=q, date__lte=on).order_by("-date").values_list("rate", flat=True)
        return row.first()

    direct = last(currency, base)
    if direct is not None:
        return direct
    inverse = last(base, currency)
    if inverse is not None:
        return ONE / inverse
    if "USD" not in (currency, base):
        a = fx_rate_lookup(currency=currency, base="USD", on=on)
        b = fx_rate_lookup(currency="USD", base=base, on=on)
        if a is not None and b is not None:
            return a * b
    return None


def _normalise_lots(raw, errors: dict) -> list[dict] | None:
    if raw in (None, "", []):
        return None
    if not isinstance(raw, list):
        errors["lots"] = 'Give a list of {"lot": id, "quantity": n}.'
        return None
    out = []
    for item in raw:
        if not isinstance(item, dict) or "lot" not in item or "quantity" not in item:
            errors["lots"] = 'Each lot needs "lot" (the id of the buy that opened it) and "quantity".'
            return None
        try:
            lot_id = int(item["lot"])
            qty = Decimal(str(item["quantity"]))
        except (TypeError, ValueError, InvalidOperation):
            errors["lots"] = "Lot ids are whole numbers and quantities are numbers."
            return None
        if qty <= 0:
            errors["lots"] = "Each lot quantity must be positive."
            return None
        out.append({"lot": lot_id, "quantity": str(qty)})
    return out


@dataclass
class CleanTxn:
    """A validated ledger row, ready to be written."""

    kind: str
    trade_date: date
    instrument: Instrument | None
    quantity: Decimal
    price: Decimal
    fees: Decimal
    amount: Decimal | None
    currency: str
    fx_rate: Decimal
    note: str
    lots: list | None
    acquired_on: date | None
    counter_currency: str = ""
    counter_amount: Decimal | None = None
    external_id: str = ""  # the custodian's transaction id (imports only; unique per portfolio)

    def as_fields(self) -> dict:
        return {f: getattr(self, f) for f in TRANSACTION_FIELDS}


def date_range_error(day: date, *, today: date, what: str = "date") -> str | None:
    """The message for a ledger date outside the firm-wide range (from ``analytics.EARLIEST_DATE``
    to ``today``, both inclusive), or None when it is inside."""
    if day < analytics.EARLIEST_DATE:
        return f"The {what} must be on or after {analytics.EARLIEST_DATE.isoformat()}."
    if day > today:
        return f"The {what} is in the future."
    return None


def transaction_clean(*, portfolio: Portfolio, data: dict, today: date | None = None, fx_lookup=None) -> CleanTxn:
    """Validate one ledger row for ``portfolio``; return it normalised or raise ``ValidationError``
    with one message per field. Looks up the FX rate when none is given and the currency is not
    the base currency (``fx_lookup(currency, base, on)``, default ``fx_rate_lookup``). Writes nothing."""
    errors: dict = {}
    today = today or timezone.localdate()
    kind = data.get("kind")
    if kind not in KIND_VALUES:
        errors["kind"] = f"Choose one of: {', '.join(Kind.values)}."
    trade_date = data.get("trade_date")
    if isinstance(trade_date, str):
        try:
            trade_date = date.fromisoformat(trade_date.strip())
        except ValueError:
            errors["trade_date"] = "Enter a date as YYYY-MM-DD."
            trade_date = None
    if trade_date is None and "trade_date" not in errors:
        errors["trade_date"] = "Enter the trade date."
    elif trade_date is not None and (message := date_range_error(trade_date, today=today, what="trade date")):
        errors["trade_date"] = message

    instrument = data.get("instrument")
    if instrument is not None and not isinstance(instrument, Instrument):
        try:
            instrument = Instrument.objects.get(pk=int(instrument))
        except (Instrument.DoesNotExist, TypeError, ValueError):
            errors["instrument"] = "Unknown instrument."
            instrument = None
    quantity = _decimal(data.get("quantity"), "quantity", errors)
    price = _decimal(data.get("price"), "price", errors)
    fees = _decimal(data.get("fees"), "fees", errors)
    amount = _decimal(data.get("amount"), "amount", errors, allow_none=True)
    fx_rate = _decimal(data.get("fx_rate"), "fx_rate", errors, allow_none=True)
    note = (data.get("note") or "").strip()
    if len(note) > 500:
        errors["note"] = "Keep the note under 500 characters."
    lots = _normalise_lots(data.get("lots"), errors)
    acquired_on = data.get("acquired_on") or None
    if isinstance(acquired_on, str):
        try:
            acquired_on = date.fromisoformat(acquired_on.strip())
        except ValueError:
            errors["acquired_on"] = "Enter a date as YYYY-MM-DD."
            acquired_on = None
    if acquired_on is not None and (message := date_range_error(acquired_on, today=today, what="acquisition date")):
        errors["acquired_on"] = message
        acquired_on = None

    for name, value, places in (
        ("quantity", quantity, 10),
        ("price", price, 6),
        ("fees", fees, 6),
        ("amount", amount, 6),
        ("fx_rate", fx_rate, 10),
    ):
        if value is not None and name not in errors and value.normalize().as_tuple().exponent < -places:
            errors[name] = f"Use at most {places} decimal places."
    if quantity < 0:
        errors["quantity"] = "The quantity cannot be negative."
    if price < 0:
        errors["price"] = "The price cannot be negative."
    if fees < 0:
        errors["fees"] = "Fees cannot be negative."
    if amount is not None and amount < 0:
        errors["amount"] = "The amount cannot be negative; the kind says which way the money goes."
    if fx_rate is not None and fx_rate <= 0:
        errors["fx_rate"] = "The FX rate must be positive."

    currency = (data.get("currency") or "").strip().upper()
    if kind in SECURITY_KINDS:
        if instrument is None and "instrument" not in errors:
            errors["instrument"] = f"A {kind.replace('_', ' ')} needs an instrument."
        if quantity <= 0 and "quantity" not in errors:
            errors["quantity"] = "The split ratio must be positive." if kind == Kind.SPLIT else "Enter the quantity."
        if kind in (Kind.BUY, Kind.SELL) and price <= 0 and "price" not in errors:
            errors["price"] = "Enter the price per unit."
        if kind in (Kind.SPLIT, Kind.TRANSFER_IN, Kind.TRANSFER_OUT) and fees:
            errors["fees"] = "Transfers and splits do not touch cash; record charges as a separate fee."
        if amount is not None:
            errors["amount"] = "Amount is for cash transactions; give quantity and price."
        if instrument is not None:
            if not currency:
                currency = instrument.currency
            elif currency != instrument.currency:
                errors["currency"] = f"{instrument} trades in {instrument.currency}, not {currency}."
    elif kind in CASH_KINDS:
        if instrument is not None and kind not in CASH_KINDS_WITH_INSTRUMENT:
            errors["instrument"] = f"A {kind} is not tied to an instrument."
        if amount is None and not (quantity and price):
            errors["amount"] = "Enter the amount."
        elif amount is not None and amount == 0:
            errors["amount"] = "The amount must be positive."
        if not currency:
            currency = instrument.currency if instrument is not None else portfolio.base_currency
    if currency and (len(currency) != 3 or not currency.isalpha()):
        errors["currency"] = "Enter a three-letter ISO currency code."
    if lots is not None:
        if kind not in (Kind.SELL, Kind.TRANSFER_OUT):
            errors["lots"] = "Only a sell or transfer out can name lots."
        elif sum((Decimal(x["quantity"]) for x in lots), ZERO) != quantity:
            errors["lots"] = "The lot quantities must add up to the quantity."
    if acquired_on is not None:
        if kind != Kind.TRANSFER_IN:
            errors["acquired_on"] = "Only a transfer in has an original acquisition date."
        elif trade_date is not None and acquired_on > trade_date:
            errors["acquired_on"] = "The acquisition date is after the transfer."

    if currency and currency == portfolio.base_currency:
        if fx_rate is not None and fx_rate != ONE and "fx_rate" not in errors:
            errors["fx_rate"] = f"{currency} is the base currency: the rate is 1."
        fx_rate = ONE
    elif currency and fx_rate is None and trade_date is not None and "currency" not in errors:
        fx_rate = (fx_lookup or fx_rate_lookup)(currency=currency, base=portfolio.base_currency, on=trade_date)
        if fx_rate is None:
            errors["fx_rate"] = (
                f"No {currency}/{portfolio.base_currency} rate is known on {trade_date}; enter the rate."
            )
    counter_currency, counter_amount = _clean_counter(data, kind=kind, currency=currency, errors=errors)
    if errors:
        raise ValidationError(errors)
    return CleanTxn(
        counter_currency=counter_currency,
        counter_amount=counter_amount,
        kind=kind,
        trade_date=trade_date,
        instrument=instrument,
        quantity=quantity,
        price=price,
        fees=fees,
        amount=amount,
        currency=currency,
        fx_rate=fx_rate,
        note=note,
        lots=lots,
        acquired_on=acquired_on,
    )


def _clean_counter(data: dict, *, kind, currency: str, errors: dict) -> tuple[str, Decimal | None]:
    """A conversion's bought currency and amount; a buy's or sell's settlement cash (optional)."""
    counter = (data.get("counter_currency") or "").strip().upper()
    counter_amount = _decimal(data.get("counter_amount"), "counter_amount", errors, allow_none=True)
    if counter and (len(counter) != 3 or not counter.isalpha()):
        errors["counter_currency"] = "Enter a three-letter ISO currency code."
        return "", None
    if counter_amount is not None and "counter_amount" not in errors:
        if counter_amount.normalize().as_tuple().exponent < -6:
            errors["counter_amount"] = "Use at most 6 decimal places."
        elif counter_amount <= 0:
            errors["counter_amount"] = "The amount must be positive."
    if kind == Kind.CONVERSION:
        if not counter:
            errors["counter_currency"] = "Say which currency the conversion buys."
        elif counter == currency:
            errors["counter_currency"] = f"A conversion sells {currency} for another currency."
        if counter_amount is None and "counter_amount" not in errors:
            errors["counter_amount"] = f"Enter how much {counter or 'of the other currency'} it buys."
    elif counter or counter_amount is not None:
        if kind not in (Kind.BUY, Kind.SELL):
            errors["counter_currency"] = "Only conversions, buys and sells name a second currency."
        elif not counter:
            errors["counter_currency"] = "Say which currency's cash the trade settles from."
        elif counter == currency:
            errors["counter_currency"] = f"The trade is in {currency} already; leave this empty."
        elif counter_amount is None and "counter_amount" not in errors:
            errors["counter_amount"] = f"Enter the {counter} amount the trade settles for."
    return counter, counter_amount


def fingerprint_of(*, kind, trade_date, instrument_id, quantity, price, fees, amount, currency, note="") -> str:
    """Hash of what makes two ledger rows "the same" for duplicate detection on import.

    Numbers are normalised (``10`` == ``10.000``); the FX rate is left out (it may be looked up).
    The note is in: two real, identical fills on one day are told apart by their notes."""

    def n(d) -> str:
        return "" if d is None else format(Decimal(d).normalize(), "f")

    key = "|".join(
        [
            kind,
            trade_date.isoformat(),
            str(instrument_id or ""),
            n(quantity),
            n(price),
            n(fees),
            n(amount),
            currency,
            note.strip(),
        ]
    )
    return hashlib.sha256(key.encode()).hexdigest()


def _fingerprint(clean: CleanTxn) -> str:
    return fingerprint_of(
        kind=clean.kind,
        trade_date=clean.trade_date,
        instrument_id=clean.instrument.pk if clean.instrument else None,
        quantity=clean.quantity,
        price=clean.price,
        fees=clean.fees,
        amount=clean.amount,
        currency=clean.currency,
        # a conversion's or a settlement's other side tells two rows apart (absent: the hash of before)
        note=clean.note + (f"|{clean.counter_currency}{clean.counter_amount}" if clean.counter_currency else ""),
    )


# --------------------------------------------------------------------------------------------
# Ledger: rebuilding the derived tables
# --------------------------------------------------------------------------------------------


def _ledger_error(exc: Exception, *, symbols: dict) -> ValidationError:
    """Turn a replay failure into field errors that say which row broke and why."""
    if isinstance(exc, analytics.InsufficientQuantity):
        sym = symbols.get(exc.instrument_id, exc.instrument_id)
        where = f" in lot {exc.lot_id}" if exc.lot_id is not None else ""
        msg = (
            f"Cannot take {exc.requested.normalize():f} {sym} on {exc.date.isoformat()}: "
            f"only {exc.held.normalize():f} held{where}."
        )
        field = "lots" if exc.lot_id is not None else "quantity"
        return ValidationError({field: msg})
    if isinstance(exc, analytics.UnknownLot):
        return ValidationError({"lots": str(exc)})
    return ValidationError({"non_field_errors": str(exc)})


def _closed_on(book: analytics.LotBook, opened: dict, ledger: list[analytics.Txn], method: str) -> dict:
    """Date each fully closed lot was closed: its last sale, or (after a transfer out) the first
    transfer-out date after which it is no longer open."""
    open_ids = {lot.lot_id for lot in book.open_lots}
    closed = {lot_id for lot_id in opened if lot_id not in open_ids}
    out: dict = {}
    last_sale: dict = {}
    for r in book.realised:
        last_sale[r.lot_id] = max(r.disposed, last_sale.get(r.lot_id, r.disposed))
    transfer_dates = defaultdict(set)
    for t in ledger:
        if t.kind == Kind.TRANSFER_OUT:
            transfer_dates[t.instrument_id].add(t.date)
    for lot_id in closed:
        iid = opened[lot_id]
        if not transfer_dates.get(iid):
            out[lot_id] = last_sale[lot_id]
    pending = closed - set(out)
    if pending:
        dates = sorted({d for lot_id in pending for d in transfer_dates[opened[lot_id]]} | set(last_sale.values()))
        for d in dates:
            still_open = {lot.lot_id for lot in analytics.build_lots(ledger, method=method, until=d).open_lots}
            for lot_id in list(pending):
                if lot_id not in still_open and d >= _acquired(ledger, lot_id):
                    out[lot_id] = d
                    pending.discard(lot_id)
            if not pending:
                break
    return out


def _acquired(ledger, lot_id) -> date:
    for t in ledger:
        if t.id == lot_id:
            return t.date
    raise KeyError(lot_id)


LOT_COLUMNS = (
    "portfolio_id",
    "instrument_id",
    "opened_by_id",
    "acquired_on",
    "original_quantity",
    "quantity",
    "currency",
    "cost_local",
    "cost_base",
    "closed_on",
)
HOLDING_COLUMNS = ("portfolio_id", "instrument_id", "quantity", "currency", "cost_local", "cost_base")
CASH_COLUMNS = ("portfolio_id", "currency", "amount")


def _replace_rows(model, portfolio_id: int, columns: tuple[str, ...], rows: list[tuple]) -> None:
    """Replace a portfolio's rows of a derived table: one DELETE and one COPY.

    The derived tables have no dependants and no model logic, so the ORM's per-object work (which
    was most of a rebuild's time at 5,000 rows) buys nothing here. Values are rounded to the
    columns' scale by PostgreSQL, and every check constraint still applies."""
    table = connection.ops.quote_name(model._meta.db_table)
    with connection.cursor() as cur:
        cur.execute(f"DELETE FROM {table} WHERE portfolio_id = %s", [portfolio_id])  # noqa: S608
        if rows:
            cols = ", ".join(connection.ops.quote_name(c) for c in columns)
            with cur.cursor.copy(f"COPY {table} ({cols}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)


def ledger_rebuild(*, portfolio: Portfolio, revalue_from: date | None = None) -> analytics.LotBook:
    """Replay the ledger of ``portfolio`` and rewrite its holdings, lots and cash balances; with
    ``revalue_from``, also its stored valuations from that day on (the earliest ledger date the
    write touched; ``valuation_services.valuations_after_ledger_write``).

    Must run inside ``transaction.atomic()`` with the portfolio row locked (the callers here do).
    Raises ``ValidationError`` when the ledger does not replay (selling more than held...)."""
    ledger = ledger_of(portfolio=portfolio)
    try:
        book = analytics.build_lots(ledger, method=portfolio.lot_method)
    except (analytics.InsufficientQuantity, analytics.UnknownLot) as exc:
        ids = {t.instrument_id for t in ledger if t.instrument_id}
        symbols = dict(Instrument.objects.filter(pk__in=ids).values_list("pk", "symbol"))
        raise _ledger_error(exc, symbols=symbols) from exc

    opened = {t.id: t.instrument_id for t in ledger if t.kind in (Kind.BUY, Kind.TRANSFER_IN)}
    open_by_id = {lot.lot_id: lot for lot in book.open_lots}
    closed_on = _closed_on(book, opened, ledger, portfolio.lot_method)
    pid = portfolio.pk
    lots = []
    for t in ledger:
        if t.id not in opened:
            continue
        lot = open_by_id.get(t.id)
        acquired = t.acquired_on if t.kind == Kind.TRANSFER_IN and t.acquired_on else t.date
        if lot is not None:
            lots.append(
                (
                    pid,
                    t.instrument_id,
                    t.id,
                    acquired,
                    t.quantity,
                    lot.quantity,
                    t.currency,
                    lot.cost_local,
                    lot.cost_base,
                    None,
                )
            )
        else:
            lots.append(
                (pid, t.instrument_id, t.id, acquired, t.quantity, ZERO, t.currency, ZERO, ZERO, closed_on[t.id])
            )
    per_instrument: dict = {}
    for lot in book.open_lots:
        q, cl, cb, ccy = per_instrument.get(lot.instrument_id, (ZERO, ZERO, ZERO, lot.currency))
        per_instrument[lot.instrument_id] = (q + lot.quantity, cl + lot.cost_local, cb + lot.cost_base, ccy)
    holdings = [(pid, iid, q, ccy, cl, cb) for iid, (q, cl, cb, ccy) in per_instrument.items() if q > 0]
    cash = [(pid, c, a) for c, a in sorted(book.cash.items()) if a]
    _check_negative_cash(portfolio=portfolio, cash=book.cash)
    _replace_rows(Lot, pid, LOT_COLUMNS, lots)
    _replace_rows(Holding, pid, HOLDING_COLUMNS, holdings)
    _replace_rows(CashBalance, pid, CASH_COLUMNS, cash)
    if revalue_from is not None:
        valuations_after_ledger_write(portfolio=portfolio, since=revalue_from, ledger=ledger)
    return book


def negative_cash_reason(currency: str, amount: Decimal) -> str:
    """Why a cash balance is shown in red (pages and API say the same)."""
    return (
        f"{currency} cash is overdrawn by {(-amount).normalize():f}: more {currency} was paid out than came in. "
        f"Record a deposit or a currency conversion into {currency}, or settle trades from another currency."
    )


def _check_negative_cash(*, portfolio: Portfolio, cash: dict) -> None:
    """Under the firm's "refuse" rule, a write that leaves a currency's cash below zero, and lower
    than it was, is refused (``ValidationError`` naming the amount); under "warn" it is kept and
    the balance is shown in red with ``negative_cash_reason``. Decision 0972."""
    if LedgerSettings.current().negative_cash != NegativeCash.REFUSE:
        return
    before = dict(CashBalance.objects.filter(portfolio=portfolio).values_list("currency", "amount"))
    for currency, amount in sorted(cash.items()):
        if amount < 0 and amount < before.get(currency, ZERO):
            raise ValidationError(
                {
                    "amount": f"Refused: {currency} cash would be {amount.normalize():f}. "
                    + negative_cash_reason(currency, amount)
                }
            )


def _lock(portfolio: Portfolio) -> Portfolio:
    locked = Portfolio.objects.select_for_update().get(pk=portfolio.pk)
    if locked.archived:
        raise ValidationError({"portfolio": "This portfolio is archived; restore it before changing its ledger."})
    return locked


def _check_lots_belong(clean: CleanTxn, portfolio: Portfolio, *, exclude_id=None) -> None:
    if not clean.lots:
        return
    ids = {x["lot"] for x in clean.lots}
    found = set(
        Transaction.objects.filter(
            portfolio=portfolio,
            pk__in=ids,
            instrument=clean.instrument,
            kind__in=(Kind.BUY, Kind.TRANSFER_IN),
        ).values_list("pk", flat=True)
    )
    missing = sorted(ids - found)
    if missing:
        raise ValidationError(
            {"lots": f"Lot(s) {', '.join(map(str, missing))} are not buys of {clean.instrument} in this portfolio."}
        )


# --------------------------------------------------------------------------------------------
# Ledger: writes
# --------------------------------------------------------------------------------------------


def transaction_record(*, portfolio: Portfolio, created_by=None, today: date | None = None, **data) -> Transaction:
    """Record one ledger row and rebuild the portfolio's holdings and lots. Atomic.

    ``data`` holds the fields of ``Transaction`` (``instrument`` as object or id). Raises
    ``ValidationError`` (field dict) for bad input or when the ledger would not replay (e.g.
    selling more than held); then nothing is written."""
    clean = transaction_clean(portfolio=portfolio, data=data, today=today)
    with transaction.atomic():
        portfolio = _lock(portfolio)
        _check_lots_belong(clean, portfolio)
        txn = Transaction.objects.create(
            portfolio=portfolio,
            created_by=_user_or_none(created_by),
            fingerprint=_fingerprint(clean),
            **clean.as_fields(),
        )
        ledger_rebuild(portfolio=portfolio, revalue_from=txn.trade_date)
        event_emit(
            type="portfolio.transaction.created",
            data=events.transaction_data(txn),
            resource=f"portfolio:{portfolio.pk}",
        )
    return txn


def transaction_update(*, txn: Transaction, today: date | None = None, **changes) -> Transaction:
    """Edit a ledger row (any past date) and rebuild holdings and lots. Atomic; on a
    ``ValidationError`` (including a later sell that would no longer be covered) nothing changes."""
    unknown = set(changes) - set(TRANSACTION_FIELDS)
    if unknown:
        raise ValidationError({f: "This field cannot be changed." for f in unknown})
    data = {f: getattr(txn, f) for f in TRANSACTION_FIELDS}
    if txn.kind in CASH_KINDS and "kind" in changes and changes["kind"] in SECURITY_KINDS:
        data["amount"] = None
    data.update(changes)
    if "currency" not in changes and "instrument" in changes:
        data["currency"] = ""
    if "fx_rate" not in changes and ({"currency", "trade_date", "instrument"} & set(changes)):
        data["fx_rate"] = None  # look the rate up again for the new date or currency
    clean = transaction_clean(portfolio=txn.portfolio, data=data, today=today)
    with transaction.atomic():
        portfolio = _lock(txn.portfolio)
        txn = Transaction.objects.select_for_update().get(pk=txn.pk, portfolio=portfolio)
        _check_lots_belong(clean, portfolio)
        earliest = txn.trade_date
        for f, v in clean.as_fields().items():
            setattr(txn, f, v)
        txn.fingerprint = _fingerprint(clean)
        txn.save()
        ledger_rebuild(portfolio=portfolio, revalue_from=min(earliest, txn.trade_date))
    return txn


def transaction_delete(*, txn: Transaction) -> None:
    """Delete a ledger row and rebuild. Atomic; refused (``ValidationError``) if a later sell
    would then sell more than held or name a lot that no longer exists."""
    with transaction.atomic():
        portfolio = _lock(txn.portfolio)
        day = Transaction.objects.filter(pk=txn.pk, portfolio=portfolio).values_list("trade_date", flat=True).first()
        Transaction.objects.filter(pk=txn.pk, portfolio=portfolio).delete()
        try:
            ledger_rebuild(portfolio=portfolio, revalue_from=day)
        except ValidationError as exc:
            raise ValidationError(
                {"non_field_errors": ["Deleting this transaction would break a later one: " + " ".join(exc.messages)]}
            ) from exc
        event_emit(
            type="portfolio.transaction.deleted",
            data=events.transaction_data(txn),
            resource=f"portfolio:{portfolio.pk}",
        )


TXN_COPY_COLUMNS = (
    "portfolio_id",
    "kind",
    "trade_date",
    "instrument_id",
    "quantity",
    "price",
    "fees",
    "amount",
    "currency",
    "fx_rate",
    "note",
    "lots",
    "acquired_on",
    "fingerprint",
    "created_by_id",
    "created_at",
    "updated_at",
    "counter_currency",
    "counter_amount",
    "external_id",
)


def transactions_bulk_record(*, portfolio: Portfolio, rows: list[CleanTxn], created_by=None) -> int:
    """Write many validated rows at once (the CSV import, demo data) and rebuild once.

    All or nothing: raises ``ValidationError`` (nothing written) when the ledger with the new rows
    does not replay. Rows go in with one COPY (the ORM's per-object work dominated large imports);
    every check constraint of the table still applies. Returns the number of rows written."""
    with transaction.atomic():
        portfolio = _lock(portfolio)
        for clean in rows:
            _check_lots_belong(clean, portfolio)
        user = _user_or_none(created_by)
        user_id = user.pk if user else None
        now = timezone.now()
        table = connection.ops.quote_name(Transaction._meta.db_table)
        cols = ", ".join(connection.ops.quote_name(c) for c in TXN_COPY_COLUMNS)
        with connection.cursor() as cur, cur.cursor.copy(f"COPY {table} ({cols}) FROM STDIN") as copy:
            for c in rows:
                copy.write_row(
                    (
                        portfolio.pk,
                        c.kind,
                        c.trade_date,
                        c.instrument.pk if c.instrument else None,
                        c.quantity,
                        c.price,
                        c.fees,
                        c.amount,
                        c.currency,
                        c.fx_rate,
                        c.note,
                        Jsonb(c.lots) if c.lots else None,
                        c.acquired_on,
                        _fingerprint(c),
                        user_id,
                        now,
                        now,
                        c.counter_currency,
                        c.counter_amount,
                        c.external_id,
                    )
                )
        ledger_rebuild(portfolio=portfolio)
        if rows:
            # A bulk import is revalued by a background job from its earliest row: the page says
            # "figures updating" until it is done (valuation_services).
            valuations_mark_stale(
                portfolio_ids=[portfolio.pk], since=min(c.trade_date for c in rows), bump_version=True
            )
    return len(rows)


def _user_or_none(user):
    # API keys act for the firm, not for a person: their rows have no creator.
    return user if getattr(user, "pk", None) else None
