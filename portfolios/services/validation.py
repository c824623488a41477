"""Ledger: one row validated and normalised before any write (one message per field), the FX rate
looked up, the import fingerprint."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.utils import timezone

from portfolios.market.models import FxRate, Instrument

from .. import analytics
from ..analytics import CASH_KINDS, SECURITY_KINDS
from ..ledger import TXN_VALUES, ledger_of, txn_from_row, txn_from_tuple  # noqa: F401 (their home was here)
from ..models import (
    TRANSACTION_FIELDS,
    Kind,
    Portfolio,
)
from .common import CASH_KINDS_WITH_INSTRUMENT, KIND_VALUES, ONE, ZERO


def _optional_decimal(value: object, field: str, errors: dict[str, str]) -> Decimal | None:
    """``value`` as a finite Decimal, or None when it is blank or (with its error in ``errors``) not one."""
    if value is None or value == "":
        return None
    try:
        d = value if isinstance(value, Decimal) else Decimal(str(value).strip().replace(",", ""))
    except (InvalidOperation, ValueError):
        errors[field] = "Enter a number."
        return None
    if not d.is_finite():
        errors[field] = "Enter a finite number."
        return None
    return d


def _decimal(value: object, field: str, errors: dict[str, str]) -> Decimal:
    """As ``_optional_decimal``, with zero for a blank value or one in error."""
    d = _optional_decimal(value, field, errors)
    return ZERO if d is None else d


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
    errors: dict[str, str] = {}
    today = today or timezone.localdate()
    kind = data.get("kind")
    if not isinstance(kind, str) or kind not in KIND_VALUES:
        errors["kind"] = f"Choose one of: {', '.join(Kind.values)}."
        kind = ""
    raw_date = data.get("trade_date")
    trade_date: date | None = None
    if isinstance(raw_date, str):
        try:
            trade_date = date.fromisoformat(raw_date.strip())
        except ValueError:
            errors["trade_date"] = "Enter a date as YYYY-MM-DD."
    elif isinstance(raw_date, date):
        trade_date = raw_date
    elif raw_date is not None:
        errors["trade_date"] = "Enter a date as YYYY-MM-DD."
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
    amount = _optional_decimal(data.get("amount"), "amount", errors)
    fx_rate = _optional_decimal(data.get("fx_rate"), "fx_rate", errors)
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
        if value is None or name in errors:
            continue
        exponent = value.normalize().as_tuple().exponent  # an int: the value is finite
        if isinstance(exponent, int) and exponent < -places:
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
    if trade_date is None or fx_rate is None:  # each is set, or its field has an error, above
        raise RuntimeError("transaction_clean left the trade date or the FX rate unset without an error")
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
    counter_amount = _optional_decimal(data.get("counter_amount"), "counter_amount", errors)
    if counter and (len(counter) != 3 or not counter.isalpha()):
        errors["counter_currency"] = "Enter a three-letter ISO currency code."
        return "", None
    if counter_amount is not None and "counter_amount" not in errors:
        exponent = counter_amount.normalize().as_tuple().exponent  # an int: the value is finite
        if isinstance(exponent, int) and exponent < -6:
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
