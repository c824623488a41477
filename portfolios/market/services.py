"""Market data writes: one importer for instruments, daily prices and FX rates.

``prices_import`` is the only way files get in (the ``import_prices`` command, the operator admin
upload and the seed command all call it). What it guarantees:

- **All or nothing per file**: every row is parsed and checked first; if any row has an error, or
  conflicts with stored data without ``overwrite``, nothing is written and ``ImportRejected``
  carries the per-row report (row number as in the file, header = row 1, and the field).
- **Idempotent**: a row equal to what is stored counts as *unchanged*; re-importing a file reports
  ``0 new, N unchanged`` and writes nothing.
- **No silent overwrite**: a different value for a stored key (instrument + date, pair + date,
  instrument attributes) is a *conflict*; with ``overwrite=True`` it is replaced and the change is
  audited.
- **Fast**: a few queries per file whatever its size (bulk reads by key range, array inserts).
- After the transaction commits, ``prices_imported`` is sent (the alerts app evaluates rules then).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import TextIO, cast

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, connection, transaction
from django.dispatch import Signal
from django.utils import timezone

from tenants.services import audit_record  # the platform's audit log (public schema)

from .models import SHARED, AssetClass, FxRate, Instrument, Price

#: Sent on commit of an import that wrote something; kwargs: ``kind``, ``result``.
prices_imported = Signal()

KINDS = ("prices", "instruments", "fx")
COLUMNS = {
    "prices": (("symbol", "exchange", "date", "close"), ("currency",)),
    "instruments": (("symbol", "exchange", "name", "asset_class", "currency"), ("sector", "country")),
    "fx": (("base", "quote", "date", "rate"), ()),
}
PRICE_PLACES = Decimal("0.000001")
RATE_PLACES = Decimal("0.0000000001")
MAX_DIGITS = 20
BATCH = 5000


@dataclass(frozen=True)
class RowIssue:
    row: int
    field: str
    message: str

    def __str__(self) -> str:
        return f"row {self.row}, {self.field}: {self.message}"


@dataclass
class ImportResult:
    kind: str
    created: int = 0
    unchanged: int = 0
    updated: int = 0
    duplicates: int = 0
    errors: list[RowIssue] = field(default_factory=list)
    conflicts: list[RowIssue] = field(default_factory=list)
    instrument_ids: set[int] = field(default_factory=set)
    currencies: set[str] = field(default_factory=set)  # of the FX pairs written
    first_date: date | None = None
    last_date: date | None = None

    @property
    def ok(self) -> bool:
        return not self.errors and not self.conflicts

    def summary(self) -> str:
        text = f"{self.created} new, {self.unchanged} unchanged"
        if self.updated:
            text += f", {self.updated} overwritten"
        if self.duplicates:
            text += f", {self.duplicates} duplicate rows ignored"
        return text

    def as_dict(self) -> dict:
        return {
            "kind": self.kind,
            "created": self.created,
            "unchanged": self.unchanged,
            "updated": self.updated,
            "duplicates": self.duplicates,
            "errors": [issue.__dict__ for issue in self.errors],
            "conflicts": [issue.__dict__ for issue in self.conflicts],
        }


class ImportRejected(Exception):
    """The file was not imported (nothing written); ``result`` holds the per-row report."""

    def __init__(self, result: ImportResult, message: str | None = None):
        self.result = result
        if message is None:
            parts = []
            if result.errors:
                parts.append(f"{len(result.errors)} row error(s)")
            if result.conflicts:
                parts.append(f"{len(result.conflicts)} conflict(s) with stored values (use overwrite to replace)")
            message = "Nothing imported: " + ", ".join(parts) + "."
        super().__init__(message)


# --- parsing ---------------------------------------------------------------------------------------
class _RowError(Exception):
    def __init__(self, field_name: str, message: str):
        self.field = field_name
        self.message = message


def _text(row: Mapping, name: str, *, required: bool = True, max_length: int | None = None) -> str:
    value = (row.get(name) or "").strip()
    if required and not value:
        raise _RowError(name, "is required")
    if max_length is not None and len(value) > max_length:
        raise _RowError(name, f"is longer than {max_length} characters")
    return value


#: No close or rate is older than this (a mistyped year, not history: valuations would start there).
EARLIEST_MARKET_DATE = date(1900, 1, 1)


def _date(row: Mapping, name: str, *, latest: date | None = None, earliest: date | None = None) -> date:
    raw = _text(row, name)
    try:
        day = date.fromisoformat(raw)
    except ValueError:
        raise _RowError(name, f"“{raw}” is not a date in YYYY-MM-DD form") from None
    if latest is not None and day > latest:
        raise _RowError(name, f"{raw} is in the future")
    if earliest is not None and day < earliest:
        raise _RowError(name, f"{raw} is before {earliest.isoformat()}")
    return day


def _positive_decimal(row: Mapping, name: str, places: Decimal) -> Decimal:
    raw = _text(row, name)
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise _RowError(name, f"“{raw}” is not a number") from None
    if not value.is_finite() or value <= 0:
        raise _RowError(name, f"must be a positive number, got “{raw}”")
    quantized = value.quantize(places)
    if quantized != value:
        exponent = cast(int, places.as_tuple().exponent)  # places is finite: typeshed also allows NaN's "n"
        raise _RowError(name, f"has more than {-exponent} decimal places")
    if len(quantized.as_tuple().digits) > MAX_DIGITS:
        raise _RowError(name, "is too large")
    return quantized


def _currency(row: Mapping, name: str, *, required: bool = True) -> str:
    raw = _text(row, name, required=required)
    # ASCII letters only: "ÄÖÜ".isalpha() holds, and the table's constraint (^[A-Z]{3}$) refuses it.
    if raw and (len(raw) != 3 or not (raw.isascii() and raw.isalpha())):
        raise _RowError(name, f"“{raw}” is not a three-letter currency code")
    return raw.upper()


def _read_csv(file) -> tuple[list[str], Iterable[tuple[int, dict]]]:
    """Accept a path, bytes, a text or a binary file object; returns header and numbered rows."""
    stream: TextIO
    if isinstance(file, bytes):
        text = file.decode("utf-8-sig")
        stream = io.StringIO(text)
    elif isinstance(file, str):
        stream = open(file, encoding="utf-8-sig", newline="")  # noqa: SIM115 (closed by caller via list)
    else:
        content = file.read()
        if isinstance(content, bytes):
            try:
                content = content.decode("utf-8-sig")
            except UnicodeDecodeError as exc:
                raise ImportRejected(ImportResult(kind="?"), "The file is not UTF-8 text.") from exc
        stream = io.StringIO(content.lstrip("\ufeff"))
    try:
        reader = csv.DictReader(stream)
        header = [(name or "").strip().lower() for name in (reader.fieldnames or [])]
        reader.fieldnames = header
        rows = [(reader.line_num, row) for row in reader]
    finally:
        stream.close()
    return header, rows


# --- the importer ------------------------------------------------------------------------------------
def prices_import(
    *,
    file,
    kind: str = "prices",
    overwrite: bool = False,
    actor: str = "",
    source: str = "file",
    filename: str = "",
) -> ImportResult:
    """Import one CSV file of ``kind`` (prices | instruments | fx). See the module docstring.

    Raises ``ImportRejected`` (nothing written) on a bad header, any row error, or any conflict
    without ``overwrite``. Returns the counts on success.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}")
    header, rows = _read_csv(file)
    required, optional = COLUMNS[kind]
    missing = [name for name in required if name not in header]
    if missing:
        result = ImportResult(kind=kind)
        result.errors.append(RowIssue(1, missing[0], f"missing column(s): {', '.join(missing)}"))
        raise ImportRejected(result, f"The header lacks column(s): {', '.join(missing)}.")
    return prices_import_rows(rows=rows, kind=kind, overwrite=overwrite, actor=actor, source=source, filename=filename)


def prices_import_rows(
    *,
    rows: Iterable[tuple[int, Mapping]],
    kind: str,
    overwrite: bool = False,
    actor: str = "",
    source: str = "file",
    filename: str = "",
    owner: str = SHARED,
) -> ImportResult:
    """The importer behind ``prices_import`` for rows that are already split (seed, providers).

    ``rows`` is ``(row_number, {column: text})``. Same guarantees as ``prices_import``. ``owner``
    picks whose instruments the rows name: the shared ones (default) or one firm's own.
    """
    importer = {"prices": _import_prices, "instruments": _import_instruments, "fx": _import_fx}[kind]
    result = ImportResult(kind=kind)
    with transaction.atomic():
        importer(list(rows), result, overwrite=overwrite, source=source, owner=owner)
        if not result.ok:
            raise ImportRejected(result)
        if result.updated:
            _audit_overwrite(result=result, actor=actor, filename=filename)
        if result.created or result.updated:
            # robust: the import is committed whatever a listener does; a failing listener is logged.
            transaction.on_commit(
                lambda: prices_imported.send(sender=ImportResult, kind=kind, result=result), robust=True
            )
    return result


def _audit_overwrite(*, result: ImportResult, actor: str, filename: str) -> None:
    audit_record(
        action=f"market.{result.kind}_overwritten",
        actor=actor or "system",
        target=filename[:254],
        details={"updated": result.updated, "created": result.created, "unchanged": result.unchanged},
    )


def _fmt(value: Decimal) -> str:
    """100.000000 -> "100", 1.250000 -> "1.25": how people wrote it."""
    return format(value.normalize(), "f")


def _instrument_key(symbol: str, exchange: str) -> tuple[str, str]:
    return symbol.upper(), exchange.upper()


def _instruments_by_key(owner: str = SHARED) -> dict[tuple[str, str], tuple[int, str]]:
    return {
        _instrument_key(symbol, exchange): (pk, currency)
        for pk, symbol, exchange, currency in Instrument.all_objects.filter(owner=owner).values_list(
            "pk", "symbol", "exchange", "currency"
        )
    }


def _track_date(result: ImportResult, day: date) -> None:
    if result.first_date is None or day < result.first_date:
        result.first_date = day
    if result.last_date is None or day > result.last_date:
        result.last_date = day


def _bulk_insert(model, objects: list, *, what: str) -> None:
    try:
        with transaction.atomic():
            model.objects.bulk_create(objects, batch_size=BATCH)
    except IntegrityError as exc:
        # Only a concurrent import of the same keys can get here: the keys were checked above.
        raise ImportRejected(
            ImportResult(kind=what), "Another import wrote the same rows at the same time; run it again."
        ) from exc


ARRAY_BATCH = 50_000


def _array_insert(model, fields: list[str], casts: list[str], rows: list[tuple], *, upsert_on=(), update=()) -> None:
    """``INSERT ... SELECT FROM unnest(arrays)``: one statement per 50,000 rows.

    Measured: building 100,000 model instances for ``bulk_create`` took longer than the database
    work itself, so prices and FX rates (flat rows, no signals, no defaults beyond what is passed)
    go in as parallel arrays. ``upsert_on`` + ``update`` turn it into an explicit overwrite.
    """
    if not rows:
        return
    quote = connection.ops.quote_name
    meta = model._meta
    columns = [meta.get_field(name).column for name in fields]
    sql = (
        f"INSERT INTO {quote(meta.db_table)} ({', '.join(quote(c) for c in columns)}) "
        f"SELECT * FROM unnest({', '.join(f'%s::{cast}[]' for cast in casts)})"
    )
    if upsert_on:
        targets = ", ".join(quote(meta.get_field(name).column) for name in upsert_on)
        sets = ", ".join(
            f"{quote(meta.get_field(n).column)} = EXCLUDED.{quote(meta.get_field(n).column)}" for n in update
        )
        sql += f" ON CONFLICT ({targets}) DO UPDATE SET {sets}"
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            for start in range(0, len(rows), ARRAY_BATCH):
                cursor.execute(sql, [list(column) for column in zip(*rows[start : start + ARRAY_BATCH], strict=True)])
    except IntegrityError as exc:
        # Only a concurrent import of the same keys can get here: the keys were checked above.
        raise ImportRejected(
            ImportResult(kind=meta.model_name), "Another import wrote the same rows at the same time; run it again."
        ) from exc


def _import_prices(rows, result: ImportResult, *, overwrite: bool, source: str, owner: str = SHARED) -> None:
    instruments = _instruments_by_key(owner)
    today = timezone.localdate()
    parsed: dict[tuple[int, date], tuple[int, Decimal]] = {}
    for number, row in rows:
        try:
            key = _instrument_key(_text(row, "symbol", max_length=32), _text(row, "exchange", required=False))
            if key not in instruments:
                exchange = f" on {key[1]}" if key[1] else " (no exchange)"
                raise _RowError("symbol", f"unknown instrument {key[0]}{exchange}; import it first")
            instrument_id, currency = instruments[key]
            day = _date(row, "date", latest=today, earliest=EARLIEST_MARKET_DATE)
            close = _positive_decimal(row, "close", PRICE_PLACES)
            row_currency = _currency(row, "currency", required=False)
            if row_currency and row_currency != currency:
                raise _RowError("currency", f"{row_currency} differs from the instrument's currency {currency}")
        except _RowError as exc:
            result.errors.append(RowIssue(number, exc.field, exc.message))
            continue
        previous = parsed.get((instrument_id, day))
        if previous is not None:
            if previous[1] != close:
                result.errors.append(
                    RowIssue(
                        number, "close", f"row {previous[0]} gives {_fmt(previous[1])} for the same instrument and date"
                    )
                )
            else:
                result.duplicates += 1
            continue
        parsed[(instrument_id, day)] = (number, close)
    if result.errors or not parsed:
        return

    ids = {instrument_id for instrument_id, _ in parsed}
    days = [day for _, day in parsed]
    stored = {
        (instrument_id, day): close
        for instrument_id, day, close in Price.objects.filter(
            instrument_id__in=ids, date__gte=min(days), date__lte=max(days)
        ).values_list("instrument_id", "date", "close")
    }
    new, changed = [], []
    for (instrument_id, day), (number, close) in parsed.items():
        old = stored.get((instrument_id, day))
        if old is None:
            new.append((instrument_id, day, close, source))
        elif old == close:
            result.unchanged += 1
            continue
        elif overwrite:
            changed.append((instrument_id, day, close, source))
        else:
            result.conflicts.append(
                RowIssue(number, "close", f"stored close is {_fmt(old)}, the file says {_fmt(close)}")
            )
            continue
        result.instrument_ids.add(instrument_id)
        _track_date(result, day)
    if result.conflicts:
        return
    fields, casts = ["instrument", "date", "close", "source"], ["bigint", "date", "numeric", "text"]
    _array_insert(Price, fields, casts, new)
    _array_insert(Price, fields, casts, changed, upsert_on=("instrument", "date"), update=("close", "source"))
    result.created, result.updated = len(new), len(changed)


INSTRUMENT_FIELDS = ("name", "asset_class", "currency", "sector", "country")


def _import_instruments(rows, result: ImportResult, *, overwrite: bool, source: str, owner: str = SHARED) -> None:
    parsed: dict[tuple[str, str], tuple[int, dict]] = {}
    asset_classes = set(AssetClass.values)
    for number, row in rows:
        try:
            symbol = _text(row, "symbol", max_length=32)
            exchange = _text(row, "exchange", required=False, max_length=16)
            values = {
                "name": _text(row, "name", max_length=200),
                "asset_class": _text(row, "asset_class").lower(),
                "currency": _currency(row, "currency"),
                "sector": _text(row, "sector", required=False, max_length=64),
                "country": _text(row, "country", required=False).upper(),
            }
            if values["asset_class"] not in asset_classes:
                raise _RowError(
                    "asset_class", f"“{values['asset_class']}” is not one of {', '.join(AssetClass.values)}"
                )
            if values["country"] and (
                len(values["country"]) != 2 or not (values["country"].isascii() and values["country"].isalpha())
            ):
                raise _RowError("country", f"“{values['country']}” is not a two-letter ISO country code")
        except _RowError as exc:
            result.errors.append(RowIssue(number, exc.field, exc.message))
            continue
        key = _instrument_key(symbol, exchange)
        previous = parsed.get(key)
        if previous is not None:
            if previous[1] != values:
                result.errors.append(
                    RowIssue(number, "symbol", f"row {previous[0]} describes the same instrument differently")
                )
            else:
                result.duplicates += 1
            continue
        parsed[key] = (number, {"symbol": symbol, "exchange": exchange, **values})
    if result.errors:
        return

    stored = {_instrument_key(i.symbol, i.exchange): i for i in Instrument.all_objects.filter(owner=owner)}
    new, changed = [], []
    for key, (number, values) in parsed.items():
        current = stored.get(key)
        if current is None:
            new.append(Instrument(**values, owner=owner))
            continue
        differences = [name for name in INSTRUMENT_FIELDS if getattr(current, name) != values[name]]
        if not differences:
            result.unchanged += 1
        elif overwrite:
            if current.currency != values["currency"]:
                result.instrument_ids.add(current.pk)  # every valuation of a holder changes
            for name in INSTRUMENT_FIELDS:
                setattr(current, name, values[name])
            changed.append(current)
        else:
            first = differences[0]
            result.conflicts.append(
                RowIssue(number, first, f"stored value is “{getattr(current, first)}”, the file says “{values[first]}”")
            )
    if result.conflicts:
        return
    _bulk_insert(Instrument, new, what="instruments")
    if changed:
        Instrument.objects.bulk_update(changed, INSTRUMENT_FIELDS, batch_size=BATCH)
    result.created, result.updated = len(new), len(changed)


def _import_fx(rows, result: ImportResult, *, overwrite: bool, source: str, owner: str = SHARED) -> None:
    today = timezone.localdate()
    parsed: dict[tuple[str, str, date], tuple[int, Decimal]] = {}
    for number, row in rows:
        try:
            base = _currency(row, "base")
            quote = _currency(row, "quote")
            if base == quote:
                raise _RowError("quote", "must differ from base")
            day = _date(row, "date", latest=today, earliest=EARLIEST_MARKET_DATE)
            rate = _positive_decimal(row, "rate", RATE_PLACES)
        except _RowError as exc:
            result.errors.append(RowIssue(number, exc.field, exc.message))
            continue
        key = (base, quote, day)
        previous = parsed.get(key)
        if previous is not None:
            if previous[1] != rate:
                result.errors.append(
                    RowIssue(number, "rate", f"row {previous[0]} gives {_fmt(previous[1])} for the same pair and date")
                )
            else:
                result.duplicates += 1
            continue
        parsed[key] = (number, rate)
    if result.errors or not parsed:
        return

    days = [day for _, _, day in parsed]
    pairs = {(base, quote) for base, quote, _ in parsed}
    stored = {
        (base, quote, day): rate
        for base, quote, day, rate in FxRate.objects.filter(
            base__in={p[0] for p in pairs}, quote__in={p[1] for p in pairs}, date__gte=min(days), date__lte=max(days)
        ).values_list("base", "quote", "date", "rate")
    }
    new, changed = [], []
    for (base, quote, day), (number, rate) in parsed.items():
        old = stored.get((base, quote, day))
        obj = (base, quote, day, rate, source)
        if old is None:
            new.append(obj)
        elif old == rate:
            result.unchanged += 1
            continue
        elif overwrite:
            changed.append(obj)
        else:
            result.conflicts.append(RowIssue(number, "rate", f"stored rate is {_fmt(old)}, the file says {_fmt(rate)}"))
            continue
        result.currencies.update((base, quote))
        _track_date(result, day)
    if result.conflicts:
        return
    fields, casts = ["base", "quote", "date", "rate", "source"], ["text", "text", "date", "numeric", "text"]
    _array_insert(FxRate, fields, casts, new)
    _array_insert(FxRate, fields, casts, changed, upsert_on=("base", "quote", "date"), update=("rate", "source"))
    result.created, result.updated = len(new), len(changed)


# --- The firm's own instruments (decision 0970) --------------------------------------------------------
FIRM_INSTRUMENT_FIELDS = ("symbol", "exchange", "name", "asset_class", "currency", "sector", "country")


class SymbolTaken(ValidationError):
    """The firm already has an instrument with this symbol and exchange: a conflict with the stored
    state (409 in the API naming ``symbol``; the field's error on pages)."""


class SharedInstrumentReadOnly(PermissionDenied):
    """A firm tried to change a shared market instrument or its prices."""

    def __init__(self) -> None:
        super().__init__("Shared market instruments and their prices are maintained by the platform, not by a firm.")


def _firm_instrument_values(data: Mapping) -> dict:
    errors: dict[str, str] = {}
    values: dict[str, str] = {}
    for name in FIRM_INSTRUMENT_FIELDS:
        try:
            if name == "currency":
                values[name] = _currency(data, name)
            elif name in ("symbol", "name", "asset_class"):
                values[name] = _text(data, name, max_length={"symbol": 32, "name": 200, "asset_class": 16}[name])
            else:
                limit = {"exchange": 16, "sector": 64, "country": 2}[name]
                values[name] = _text(data, name, required=False, max_length=limit)
        except _RowError as exc:
            errors[exc.field] = exc.message
    if values.get("asset_class") and values["asset_class"].lower() not in AssetClass.values:
        errors["asset_class"] = f"must be one of {', '.join(AssetClass.values)}"
    if values.get("country") and not (
        len(values["country"]) == 2 and values["country"].isascii() and values["country"].isalpha()
    ):
        errors["country"] = "must be a two-letter ISO country code"
    if errors:
        raise ValidationError(errors)
    values["asset_class"] = values["asset_class"].lower()
    values["country"] = values["country"].upper()
    return values


def firm_instrument_create(*, owner: str, data: Mapping, actor: str = "") -> Instrument:
    """A firm's own instrument (private fund, local bond, property...), visible only to ``owner``.

    ``ValidationError`` names the field (a symbol + exchange the firm already uses included)."""
    if not owner or owner in (SHARED, settings.PUBLIC_SCHEMA_NAME):
        raise ValidationError({"owner": "A firm instrument needs its firm."})
    values = _firm_instrument_values({k: str(v if v is not None else "") for k, v in data.items()})
    with transaction.atomic():
        clash = Instrument.all_objects.filter(
            owner=owner, symbol__iexact=values["symbol"], exchange__iexact=values["exchange"]
        ).exists()
        if clash:
            raise SymbolTaken({"symbol": "Your firm already has an instrument with this symbol and exchange."})
        instrument = Instrument.all_objects.create(**values, owner=owner)
        audit_record(
            action="market.firm_instrument_created",
            actor=actor,
            target=str(instrument),
            details={"owner": owner, "id": instrument.pk},
        )
    return instrument


def firm_instrument_update(*, instrument: Instrument, owner: str, data: Mapping, actor: str = "") -> Instrument:
    """Change a firm's own instrument. A shared instrument raises ``SharedInstrumentReadOnly``;
    the currency cannot change once prices exist (every stored price is in it)."""
    if instrument.owner != owner or owner == SHARED:
        raise SharedInstrumentReadOnly()
    merged = {name: getattr(instrument, name) for name in FIRM_INSTRUMENT_FIELDS}
    merged.update({k: str(v if v is not None else "") for k, v in data.items() if k in FIRM_INSTRUMENT_FIELDS})
    values = _firm_instrument_values(merged)
    with transaction.atomic():
        locked = Instrument.all_objects.select_for_update().get(pk=instrument.pk)
        if values["currency"] != locked.currency and Price.objects.filter(instrument=locked).exists():
            raise ValidationError({"currency": "The instrument has prices in its currency; it cannot change."})
        clash = (
            Instrument.all_objects.filter(
                owner=owner, symbol__iexact=values["symbol"], exchange__iexact=values["exchange"]
            )
            .exclude(pk=locked.pk)
            .exists()
        )
        if clash:
            raise SymbolTaken({"symbol": "Your firm already has an instrument with this symbol and exchange."})
        for name, value in values.items():
            setattr(locked, name, value)
        if "is_active" in data:
            locked.is_active = bool(data["is_active"])
        locked.save()
    return locked


def manual_price_set(
    *, instrument: Instrument, owner: str, day: date, close: Decimal | str, actor: str = "", overwrite: bool = False
) -> ImportResult:
    """One manual price (a valuation) of a firm's own instrument, through the importer: the same
    checks, the same valuation refresh. A different stored price is a conflict unless ``overwrite``."""
    if instrument.owner != owner or owner == SHARED:
        raise SharedInstrumentReadOnly()
    row = {"symbol": instrument.symbol, "exchange": instrument.exchange, "date": str(day), "close": str(close)}
    try:
        return prices_import_rows(
            rows=[(1, row)], kind="prices", overwrite=overwrite, actor=actor, source="manual", owner=owner
        )
    except ImportRejected as exc:
        issues = exc.result.errors + exc.result.conflicts
        raise ValidationError({issue.field: issue.message for issue in issues}) from exc


def manual_prices_import(
    *, file, owner: str, actor: str = "", overwrite: bool = False, filename: str = ""
) -> ImportResult:
    """A CSV of manual prices (``symbol,exchange,date,close``) for the firm's own instruments only:
    a row naming a shared instrument is an unknown instrument. All or nothing, idempotent."""
    if not owner or owner == SHARED:
        raise SharedInstrumentReadOnly()
    header, rows = _read_csv(file)
    missing = [name for name in COLUMNS["prices"][0] if name not in header]
    if missing:
        result = ImportResult(kind="prices")
        result.errors.append(RowIssue(1, missing[0], f"missing column(s): {', '.join(missing)}"))
        raise ImportRejected(result, f"The header lacks column(s): {', '.join(missing)}.")
    result = prices_import_rows(
        rows=rows, kind="prices", overwrite=overwrite, actor=actor, source="manual", owner=owner, filename=filename
    )
    audit_record(
        action="market.manual_prices_imported",
        actor=actor,
        target=filename[:254],
        details={"owner": owner, **result.as_dict()},
    )
    return result
