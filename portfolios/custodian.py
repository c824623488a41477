"""Custodian files and reconciliation (docs/custodian.md).

- ``positions_import``: a custodian's positions file, read with the firm's saved column mapping for
  that custodian (or the shipped example), previewed with per-row errors, committed all or nothing.
  It replaces the custodian's snapshot of each (portfolio, day) it names: the same file twice
  changes nothing (reported ``unchanged``).
- ``transactions_import``: a custodian's transactions file through the ledger import (preview,
  per-row errors, all or nothing), its headers renamed by the saved mapping; rows carrying the
  custodian's transaction id are deduplicated by it, so the same file twice adds nothing.
- ``reconcile``: for a day, each portfolio's ledger positions and cash against the custodian's; a
  difference beyond the firm's tolerance is a break (instrument, ledger qty, custodian qty,
  difference, value). A break is resolved by booking the proposed adjusting transaction or by
  an explanation. Every import and run is audited.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone

from codex import imports as engine
from portfolios.market.models import Instrument, Price
from tenants.models import Tenant
from tenants.services import audit_record

from . import analytics, services
from .imports import FIELDS as LEDGER_FIELDS
from .imports import TransactionImport
from .ledger import TXN_VALUES, txn_from_tuple
from .models import (
    BreakStatus,
    CustodianAccount,
    CustodianImport,
    CustodianMapping,
    CustodianPosition,
    Kind,
    LedgerSettings,
    Portfolio,
    ReconciliationBreak,
    Transaction,
)

ZERO = Decimal(0)
POSITION_FIELDS = ("account", "date", "symbol", "exchange", "quantity", "currency", "asset_class")
POSITION_REQUIRED = ("account", "date", "quantity", "currency")
CASH_CLASSES = {"cash", "cash balance", "currency"}

#: The mapping shipped as an example: Interactive Brokers' Flex Query CSV ("Open Positions" and
#: "Trades" sections exported as CSV with their default column names).
SHIPPED: dict[tuple[str, str], dict[str, str]] = {
    ("interactive-brokers", "positions"): {
        "account": "ClientAccountID",
        "date": "ReportDate",
        "symbol": "Symbol",
        "exchange": "ListingExchange",
        "quantity": "Quantity",
        "currency": "CurrencyPrimary",
        "asset_class": "AssetClass",
    },
    ("interactive-brokers", "transactions"): {
        "external_id": "TradeID",
        "trade_date": "TradeDate",
        "kind": "Buy/Sell",
        "symbol": "Symbol",
        "exchange": "ListingExchange",
        "quantity": "Quantity",
        "price": "TradePrice",
        "fees": "IBCommission",
        "currency": "CurrencyPrimary",
        "note": "Description",
        "account": "ClientAccountID",
    },
}
IB_DATE_FORMAT = "%Y%m%d"


def mapping_for(*, custodian: str, kind: str) -> tuple[dict[str, str], str]:
    """The firm's saved mapping for ``custodian`` (columns, date format), else the shipped one."""
    saved = CustodianMapping.objects.filter(custodian=custodian, kind=kind).first()
    if saved is not None:
        return dict(saved.columns), saved.date_format
    if (custodian, kind) in SHIPPED:
        return dict(SHIPPED[(custodian, kind)]), IB_DATE_FORMAT
    raise ValidationError({"custodian": f"No {kind} column mapping is saved for “{custodian}”."})


def mapping_save(*, custodian: str, kind: str, columns: dict, date_format: str = "%Y-%m-%d") -> CustodianMapping:
    """Save (or replace) a custodian's column mapping. ``ValidationError`` names a bad field."""
    allowed = set(POSITION_FIELDS) if kind == "positions" else {f.name for f in LEDGER_FIELDS} | {"account"}
    unknown = sorted(set(columns) - allowed)
    if unknown:
        raise ValidationError({"columns": f"Unknown field(s): {', '.join(unknown)}."})
    if kind == "positions" and (missing := [f for f in POSITION_REQUIRED if not columns.get(f)]):
        raise ValidationError({"columns": f"Map the column(s) for: {', '.join(missing)}."})
    try:
        dt.date.today().strftime(date_format)  # noqa: DTZ011 - only checks the format string
    except ValueError as exc:
        raise ValidationError({"date_format": "Not a date format."}) from exc
    obj, _ = CustodianMapping.objects.update_or_create(
        custodian=custodian, kind=kind, defaults={"columns": columns, "date_format": date_format}
    )
    return obj


def account_link_save(
    *, custodian: str, account: str, portfolio: Portfolio, link: CustodianAccount | None = None, actor: str = ""
) -> CustodianAccount:
    """Link a custodian's account number to a portfolio (or change a link). Files then book that
    account's rows into that portfolio. ``ValidationError`` naming ``account`` when the custodian's
    account is already linked elsewhere in the firm."""
    account = account.strip()
    if not account:
        raise ValidationError({"account": "Give the account number."})
    taken = CustodianAccount.objects.filter(custodian=custodian, account=account)
    if link is not None:
        taken = taken.exclude(pk=link.pk)
    if taken.exists():
        raise ValidationError({"account": f"{custodian} account {account} is already linked to a portfolio."})
    with transaction.atomic():
        link = link or CustodianAccount()
        link.custodian, link.account, link.portfolio = custodian, account, portfolio
        link.save()
        audit_record(
            action="custodian.account_linked",
            actor=actor or "system",
            tenant=_firm(),
            target=f"{custodian} {account}",
            details={"portfolio": portfolio.pk},
        )
    return link


def _firm():
    """The firm whose schema is active (for the audit log's tenant column)."""
    tenant = getattr(connection, "tenant", None)
    return tenant if isinstance(tenant, Tenant) else None


# --- positions -------------------------------------------------------------------------------------------
@dataclass
class PositionsPreview:
    rows: int = 0
    errors: list[dict] = field(default_factory=list)
    snapshots: dict = field(default_factory=dict)  # (portfolio_id, as_of) -> {(instrument_id|None, ccy): qty}
    created: int = 0
    replaced: int = 0
    unchanged: int = 0

    @property
    def ok(self) -> bool:
        return not self.errors

    def as_dict(self) -> dict:
        return {
            "rows": self.rows,
            "snapshots": len(self.snapshots),
            "created": self.created,
            "replaced": self.replaced,
            "unchanged": self.unchanged,
            "errors": self.errors,
        }


def _parse_day(raw: str, fmt: str) -> dt.date:
    for candidate in (fmt, "%Y-%m-%d"):
        try:
            return dt.datetime.strptime(raw.strip(), candidate).date()  # noqa: DTZ007 - a calendar date
        except ValueError:
            continue
    raise ValueError(raw)


def positions_preview(*, custodian: str, upload=None, parsed: engine.ParsedFile | None = None) -> PositionsPreview:
    """Read and check a positions file (an ``upload``, or a file ``parsed`` already, e.g. kept
    between a page's preview and its commit); writes nothing. ``engine.ImportFileError`` for an
    unreadable file or an unknown layout (a mapped column missing from the header)."""
    columns, date_format = mapping_for(custodian=custodian, kind="positions")
    parsed = parsed if parsed is not None else engine.read_csv(upload)
    index = {h.strip(): i for i, h in enumerate(parsed.headers)}
    missing = [columns[f] for f in POSITION_REQUIRED if columns.get(f) not in index]
    if missing:
        raise engine.ImportFileError(
            f"Unknown layout for {custodian}: the header lacks {', '.join(missing)}. Check the column mapping."
        )
    accounts = dict(CustodianAccount.objects.filter(custodian=custodian).values_list("account", "portfolio_id"))
    instruments: dict[tuple[str, str], list[Instrument]] = defaultdict(list)
    for inst in Instrument.objects.all():
        instruments[(inst.symbol.upper(), inst.exchange.upper())].append(inst)
        instruments[(inst.symbol.upper(), "*")].append(inst)
    result = PositionsPreview()
    seen: dict[tuple, int] = {}

    def cell(row, name):
        column = columns.get(name)
        if not column or column not in index or index[column] >= len(row):
            return ""
        return row[index[column]].strip()

    for number, row in enumerate(parsed.rows, start=2):
        result.rows += 1

        def error(field_name, message, number=number):
            result.errors.append({"row": number, "field": field_name, "message": message})

        account = cell(row, "account")
        portfolio_id = accounts.get(account)
        if portfolio_id is None:
            error("account", f"Account “{account}” is not linked to a portfolio for {custodian}.")
            continue
        try:
            as_of = _parse_day(cell(row, "date"), date_format)
        except ValueError:
            error("date", f"“{cell(row, 'date')}” is not a date ({date_format}).")
            continue
        try:
            quantity = Decimal(cell(row, "quantity").replace(",", ""))
        except InvalidOperation:
            error("quantity", f"“{cell(row, 'quantity')}” is not a number.")
            continue
        currency = cell(row, "currency").upper()
        if len(currency) != 3 or not currency.isalpha():
            error("currency", f"“{currency}” is not a currency code.")
            continue
        symbol = cell(row, "symbol")
        is_cash = cell(row, "asset_class").lower() in CASH_CLASSES or not symbol
        if is_cash:
            key: tuple = (None, currency)
        else:
            exchange = cell(row, "exchange").upper()
            matches = instruments.get((symbol.upper(), exchange or "*"), [])
            if not matches and exchange:
                matches = instruments.get((symbol.upper(), "*"), [])
            if len(matches) != 1:
                what = "is unknown" if not matches else "is listed on several exchanges; map the exchange column"
                error("symbol", f"{symbol} {what}.")
                continue
            instrument = matches[0]
            if quantity < 0:
                error("quantity", "A negative position (a short) is not allowed.")
                continue
            if instrument.currency != currency:
                error("currency", f"{symbol} trades in {instrument.currency}, the file says {currency}.")
                continue
            key = (instrument.pk, currency)
        line = (portfolio_id, as_of, key)
        if line in seen:
            error("symbol", f"Duplicate of row {seen[line]} (same account, day and position).")
            continue
        seen[line] = number
        result.snapshots.setdefault((portfolio_id, as_of), {})[key] = quantity
    return result


def positions_import(
    *, custodian: str, upload=None, parsed: engine.ParsedFile | None = None, actor: str = "", filename: str = ""
) -> PositionsPreview:
    """Commit a positions file: all or nothing (``engine.ImportRejected`` with the row errors).
    Each (portfolio, day) named is replaced by the file's lines; equal snapshots are left alone.
    Recorded in the import history and audited."""
    result = positions_preview(custodian=custodian, upload=upload, parsed=parsed)
    if not result.ok:
        raise engine.ImportRejected([engine.RowError(e["row"], e["field"], e["message"]) for e in result.errors])
    with transaction.atomic():
        keys = list(result.snapshots)
        stored: dict = defaultdict(dict)
        if keys:
            for pid, as_of, iid, ccy, qty in CustodianPosition.objects.filter(
                portfolio_id__in={k[0] for k in keys}, as_of__in={k[1] for k in keys}, custodian=custodian
            ).values_list("portfolio_id", "as_of", "instrument_id", "currency", "quantity"):
                stored[(pid, as_of)][(iid, ccy)] = qty
        new_rows = []
        for (pid, as_of), lines in result.snapshots.items():
            old = stored.get((pid, as_of))
            if old == lines:
                result.unchanged += 1
                continue
            if old is not None:
                CustodianPosition.objects.filter(portfolio_id=pid, as_of=as_of, custodian=custodian).delete()
                result.replaced += 1
            else:
                result.created += 1
            new_rows += [
                CustodianPosition(
                    portfolio_id=pid, custodian=custodian, as_of=as_of, instrument_id=iid, currency=ccy, quantity=q
                )
                for (iid, ccy), q in lines.items()
            ]
        CustodianPosition.objects.bulk_create(new_rows, batch_size=5000)
        CustodianImport.objects.create(
            custodian=custodian,
            kind=CustodianImport.Kind.POSITIONS,
            filename=(filename or getattr(upload, "name", "") or "")[:200],
            rows=result.rows,
            created=result.created + result.replaced,
            skipped=result.unchanged,
            portfolios=len({pid for pid, _day in result.snapshots}),
            actor=(actor or "system")[:254],
        )
        audit_record(
            action="custodian.positions_imported",
            actor=actor or "system",
            tenant=_firm(),
            target=custodian,
            details=result.as_dict() | {"errors": []},
        )
    return result


def _ledger_layout(parsed: engine.ParsedFile, custodian: str) -> tuple[list[str], list[list[str]], dict[str, str]]:
    """The file's headers renamed to the ledger import's fields by the saved mapping (unmapped
    columns ignored), its dates rewritten as ISO dates, and the mapping's columns."""
    columns, date_format = mapping_for(custodian=custodian, kind="transactions")
    rename = {source: target for target, source in columns.items()}
    missing = [
        source
        for target, source in columns.items()
        if target in ("trade_date", "kind") and source not in parsed.headers
    ]
    if missing:
        raise engine.ImportFileError(f"Unknown layout for {custodian}: the header lacks {', '.join(missing)}.")
    headers = [rename.get(h.strip(), f"ignored: {h}") for h in parsed.headers]
    rows = parsed.rows
    if "trade_date" in headers and date_format != "%Y-%m-%d":
        at = headers.index("trade_date")
        rows = [list(r) for r in rows]
        for r in rows:
            try:
                r[at] = _parse_day(r[at], date_format).isoformat()
            except (ValueError, IndexError):
                pass  # left as it is: the ledger import reports the row's date
    return headers, rows, columns


def transactions_import(
    *, portfolio: Portfolio, custodian: str, upload=None, parsed: engine.ParsedFile | None = None, created_by=None
) -> TransactionImport:
    """A custodian's transactions file as a ledger import (call ``preview()`` or ``commit()``): the
    headers are renamed by the saved mapping, so the ledger import's rules, per-row errors and
    all-or-nothing commit apply; the custodian's transaction id deduplicates."""
    parsed = parsed if parsed is not None else engine.read_csv(upload)
    headers, rows, _columns = _ledger_layout(parsed, custodian)
    return TransactionImport.from_parsed(portfolio=portfolio, headers=headers, rows=rows, created_by=created_by)


def transactions_commit(*, job: TransactionImport, custodian_name: str, actor: str = "", filename: str = ""):
    """Commit a custodian transactions import (all or nothing), record it in the history, audit it."""
    with transaction.atomic():
        report = job.commit()
        CustodianImport.objects.create(
            custodian=custodian_name,
            kind=CustodianImport.Kind.TRANSACTIONS,
            filename=filename[:200],
            rows=len(job.parsed.rows),
            created=report.created,
            skipped=report.skipped,
            portfolios=1,
            actor=(actor or "system")[:254],
        )
        audit_record(
            action="custodian.transactions_imported",
            actor=actor or "system",
            tenant=_firm(),
            target=custodian_name,
            details={"portfolio": job.portfolio.pk, "created": report.created, "duplicates": report.skipped},
        )
    return report


# --- transactions routed by account ------------------------------------------------------------------
_ROW_REFERENCE = re.compile(r"\brow (\d+)")


@dataclass
class RoutedPreview:
    """What committing a file routed by account would do: counts over every portfolio, per-row
    errors numbered as in the file, and per portfolio how many rows are new."""

    rows: int = 0
    new: int = 0
    duplicates: int = 0
    errors: list[engine.RowError] = field(default_factory=list)
    portfolios: list[tuple[Portfolio, int]] = field(default_factory=list)  # (portfolio, new rows)

    @property
    def ok(self) -> bool:
        return not self.errors

    def as_dict(self) -> dict:
        return {
            "counts": {"new": self.new, "duplicates": self.duplicates, "errors": len(self.errors)},
            "portfolios": [{"portfolio": p.pk, "new": n} for p, n in self.portfolios],
            "errors": [{"row": e.row, "field": e.field, "message": e.message} for e in self.errors],
        }


@dataclass
class RoutedImport:
    """A custodian transactions file whose account column says, row by row, which portfolio the
    row belongs to (through the firm's ``CustodianAccount`` links). One ledger import per
    portfolio; ``preview()`` writes nothing, ``commit()`` writes every row of every portfolio or
    none. Row numbers in errors are the file's."""

    custodian: str
    jobs: list[tuple[TransactionImport, list[int]]]  # each portfolio's import and its rows' numbers in the file
    account_errors: list[engine.RowError]
    rows: int

    def _in_file(self, numbers: list[int], error: engine.RowError) -> engine.RowError:
        def renumber(match: re.Match) -> str:
            index = int(match.group(1)) - 2
            return f"row {numbers[index]}" if 0 <= index < len(numbers) else match.group(0)

        row = numbers[error.row - 2] if 0 <= error.row - 2 < len(numbers) else error.row
        return engine.RowError(row, error.field, _ROW_REFERENCE.sub(renumber, error.message))

    def preview(self) -> RoutedPreview:
        result = RoutedPreview(rows=self.rows, errors=list(self.account_errors))
        for job, numbers in self.jobs:
            preview = job.preview()
            result.new += preview.counts["create"]
            result.duplicates += preview.counts["skip"]
            result.errors += [self._in_file(numbers, e) for e in preview.errors]
            result.portfolios.append((job.portfolio, preview.counts["create"]))
        result.errors.sort(key=lambda e: e.row)
        return result

    def commit(self, *, actor: str = "", filename: str = "") -> RoutedPreview:
        """Every row into its portfolio, or nothing (``engine.ImportRejected`` with the file's row
        numbers). Atomic over all portfolios; recorded in the import history and audited."""
        result = self.preview()
        if not result.ok:
            raise engine.ImportRejected(result.errors)
        with transaction.atomic():
            created = skipped = 0
            for job, numbers in self.jobs:
                try:
                    report = job.commit()
                except engine.ImportRejected as exc:  # the ledger changed since the preview
                    raise engine.ImportRejected([self._in_file(numbers, e) for e in exc.errors]) from exc
                created += report.created
                skipped += report.skipped
            result.new, result.duplicates = created, skipped
            CustodianImport.objects.create(
                custodian=self.custodian,
                kind=CustodianImport.Kind.TRANSACTIONS,
                filename=filename[:200],
                rows=self.rows,
                created=created,
                skipped=skipped,
                portfolios=len(self.jobs),
                actor=(actor or "system")[:254],
            )
            audit_record(
                action="custodian.transactions_imported",
                actor=actor or "system",
                tenant=_firm(),
                target=self.custodian,
                details={
                    "portfolios": [job.portfolio.pk for job, _numbers in self.jobs],
                    "created": created,
                    "duplicates": skipped,
                    "by_account": True,
                },
            )
        return result


def transactions_import_by_account(
    *, custodian: str, upload=None, parsed: engine.ParsedFile | None = None, created_by=None
) -> RoutedImport:
    """A custodian transactions file routed row by row by its account column (mapped as
    ``account``) to the portfolio linked to that account. An account not linked is an error on its
    row. ``engine.ImportFileError`` when the mapping has no account column or the file lacks it."""
    parsed = parsed if parsed is not None else engine.read_csv(upload)
    headers, rows, columns = _ledger_layout(parsed, custodian)
    if "account" not in headers:
        column = columns.get("account")
        raise engine.ImportFileError(
            f"The file has no account column{f' ({column})' if column else ''} for {custodian}: "
            "map the account column, or import the file into one portfolio."
        )
    at = headers.index("account")
    accounts = dict(CustodianAccount.objects.filter(custodian=custodian).values_list("account", "portfolio_id"))
    groups: dict[int, tuple[list[list[str]], list[int]]] = {}
    errors = []
    for number, row in enumerate(rows, start=2):
        account = row[at].strip() if at < len(row) else ""
        portfolio_id = accounts.get(account)
        if portfolio_id is None:
            what = f"Account “{account}” is not linked to a portfolio" if account else "The account is empty"
            errors.append(engine.RowError(number, "account", f"{what} for {custodian}."))
            continue
        group = groups.setdefault(portfolio_id, ([], []))
        group[0].append(row)
        group[1].append(number)
    portfolios = Portfolio.objects.in_bulk(list(groups))
    jobs = [
        (
            TransactionImport.from_parsed(
                portfolio=portfolios[pid], headers=headers, rows=group_rows, created_by=created_by
            ),
            numbers,
        )
        for pid, (group_rows, numbers) in sorted(groups.items(), key=lambda item: portfolios[item[0]].name)
    ]
    return RoutedImport(custodian=custodian, jobs=jobs, account_errors=errors, rows=len(rows))


# --- reconciliation ---------------------------------------------------------------------------------------
@dataclass
class RunResult:
    as_of: dt.date
    portfolios: int = 0
    lines: int = 0
    breaks: int = 0
    closed: int = 0


def _closes_on(instrument_ids, as_of: dt.date) -> dict[int, Decimal]:
    rows = (
        Price.objects.filter(instrument_id__in=list(instrument_ids), date__lte=as_of)
        .order_by("instrument_id", "-date")
        .distinct("instrument_id")
        .values_list("instrument_id", "close")
    )
    return dict(rows)


def reconcile(*, as_of: dt.date, tolerance: Decimal | None = None, actor: str = "") -> RunResult:
    """Compare every portfolio that has custodian positions on ``as_of`` with its ledger on that day.

    Idempotent: a second run updates the same break rows (one per portfolio, day and line); a line
    now within tolerance closes its open break; resolved breaks are kept as they are. Atomic.
    Queries: a handful whatever the number of portfolios (positions, ledgers, prices, breaks)."""
    if tolerance is None:
        tolerance = LedgerSettings.current().reconciliation_tolerance
    result = RunResult(as_of=as_of)
    custodian: dict[int, dict] = defaultdict(dict)
    for pid, iid, ccy, qty in CustodianPosition.objects.filter(as_of=as_of).values_list(
        "portfolio_id", "instrument_id", "currency", "quantity"
    ):
        key = (iid, ccy)
        custodian[pid][key] = custodian[pid].get(key, ZERO) + qty
    if not custodian:
        return result
    ledgers: dict[int, list] = defaultdict(list)
    for row in (
        Transaction.objects.filter(portfolio_id__in=list(custodian), trade_date__lte=as_of)
        .order_by("portfolio_id", "trade_date", "id")
        .values_list("portfolio_id", *TXN_VALUES)
    ):
        ledgers[row[0]].append(txn_from_tuple(row[1:]))
    methods = dict(Portfolio.objects.filter(pk__in=list(custodian)).values_list("pk", "lot_method"))
    currency_of: dict[object, str] = dict(Instrument.objects.values_list("pk", "currency"))
    differences = []
    for pid, lines in custodian.items():
        book = analytics.build_lots(ledgers.get(pid, []), method=methods.get(pid, "fifo"))
        ledger_lines: dict = defaultdict(lambda: ZERO)
        for lot in book.open_lots:
            ledger_lines[(lot.instrument_id, currency_of.get(lot.instrument_id, lot.currency))] += lot.quantity
        for ccy, amount in book.cash.items():
            if amount:
                ledger_lines[(None, ccy)] += amount
        result.portfolios += 1
        for key in set(lines) | set(ledger_lines):
            result.lines += 1
            ledger_qty, custodian_qty = ledger_lines.get(key, ZERO), lines.get(key, ZERO)
            differences.append((pid, key, ledger_qty, custodian_qty))
    closes = _closes_on({k[0] for _, k, _, _ in differences if k[0]}, as_of)
    with transaction.atomic():
        existing = {
            (b.portfolio_id, b.instrument_id, b.currency): b
            for b in ReconciliationBreak.objects.filter(as_of=as_of, portfolio_id__in=list(custodian))
        }
        new, changed, closed = [], [], []
        for pid, (iid, ccy), ledger_qty, custodian_qty in differences:
            diff = custodian_qty - ledger_qty
            old = existing.get((pid, iid, ccy))
            if abs(diff) <= tolerance:
                if old is not None and old.status == BreakStatus.OPEN:
                    closed.append(old.pk)
                continue
            value = diff * closes[iid] if iid and iid in closes else (diff if iid is None else None)
            if old is None:
                new.append(
                    ReconciliationBreak(
                        portfolio_id=pid, as_of=as_of, instrument_id=iid, currency=ccy, ledger_quantity=ledger_qty,
                        custodian_quantity=custodian_qty, difference=diff, value=value,
                    )
                )  # fmt: skip
            elif old.status == BreakStatus.OPEN and (old.ledger_quantity, old.custodian_quantity) != (
                ledger_qty,
                custodian_qty,
            ):
                old.ledger_quantity, old.custodian_quantity, old.difference, old.value = (
                    ledger_qty, custodian_qty, diff, value,
                )  # fmt: skip
                changed.append(old)
        ReconciliationBreak.objects.bulk_create(new, batch_size=5000)
        ReconciliationBreak.objects.bulk_update(
            changed, ["ledger_quantity", "custodian_quantity", "difference", "value"], batch_size=5000
        )
        ReconciliationBreak.objects.filter(pk__in=closed).delete()
        result.breaks = (
            len(new)
            + len(changed)
            + sum(
                1 for b in existing.values() if b.status == BreakStatus.OPEN and b.pk not in closed and b not in changed
            )
        )
        result.closed = len(closed)
        audit_record(
            action="custodian.reconciled",
            actor=actor or "system",
            tenant=_firm(),
            target=as_of.isoformat(),
            details={"portfolios": result.portfolios, "lines": result.lines, "breaks": result.breaks},
        )
    return result


def proposed_adjustment(brk: ReconciliationBreak) -> dict:
    """The ledger row that makes the ledger agree with the custodian on that line."""
    diff = brk.difference
    if brk.instrument_id is None:
        kind = Kind.DEPOSIT if diff > 0 else Kind.WITHDRAWAL
        return {"kind": kind, "trade_date": brk.as_of, "amount": abs(diff), "currency": brk.currency}
    kind = Kind.TRANSFER_IN if diff > 0 else Kind.TRANSFER_OUT
    price = abs(brk.value / diff) if brk.value is not None and diff else ZERO
    row = {"kind": kind, "trade_date": brk.as_of, "instrument": brk.instrument_id, "quantity": abs(diff)}
    if kind == Kind.TRANSFER_IN:
        row["price"] = price.quantize(Decimal("0.000001"))
    return row


def break_resolve(*, brk: ReconciliationBreak, action: str, note: str = "", user=None) -> ReconciliationBreak:
    """Resolve an open break: ``adjust`` books the proposed transaction (the ledger's rules apply;
    a refusal is a ``ValidationError``), ``explain`` records ``note`` (required). Atomic, audited."""
    note = (note or "").strip()
    if brk.status != BreakStatus.OPEN:
        raise ValidationError({"status": "This break is already resolved."})
    if action not in ("adjust", "explain"):
        raise ValidationError({"action": "Choose adjust or explain."})
    if action == "explain" and not note:
        raise ValidationError({"note": "Say why the difference is expected."})
    with transaction.atomic():
        locked = ReconciliationBreak.objects.select_for_update().get(pk=brk.pk)
        if locked.status != BreakStatus.OPEN:
            raise ValidationError({"status": "This break is already resolved."})
        if action == "adjust":
            row = proposed_adjustment(locked)
            locked.adjustment = services.transaction_record(
                portfolio=locked.portfolio,
                created_by=user,
                note=(note or f"Reconciliation adjustment {locked.as_of}")[:500],
                **row,
            )
            locked.status = BreakStatus.ADJUSTED
        else:
            locked.status = BreakStatus.EXPLAINED
        locked.note = note[:500]
        locked.resolved_by = user if getattr(user, "pk", None) else None
        locked.resolved_at = timezone.now()
        locked.save()
        audit_record(
            action=f"custodian.break_{locked.status}",
            actor=getattr(user, "email", "") or "system",
            tenant=_firm(),
            target=f"break {locked.pk}",
            details={"portfolio": locked.portfolio_id, "difference": str(locked.difference), "note": note[:200]},
        )
    return locked


def open_break_count(*, portfolios) -> int:
    return ReconciliationBreak.objects.filter(status=BreakStatus.OPEN, portfolio__in=portfolios).count()
