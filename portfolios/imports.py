"""CSV import of ledger transactions, on the shared engine ``codex.imports``.

The engine reads the file, maps columns, parses cells and reports per-row errors; this module
adds what is specific to a ledger (docs/portfolios.md, "Importing transactions"):

- each row goes through ``services.transaction_clean`` (the same rules as the form and the API),
  with instruments resolved by symbol (and exchange) and FX rates looked up from memory, so a
  file of 50,000 rows costs a handful of queries;
- duplicates are found by the row's fingerprint (``services.fingerprint_of``), against the
  portfolio's ledger (skipped) and within the file (an error: give the two real fills notes);
- the whole ledger, old rows and new, is replayed before anything is written, so a sell of more
  than is held is reported on its row in the preview;
- commit re-runs all of it inside one transaction with the portfolio locked, and writes every
  row or none.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from functools import partial

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.http import Http404
from django.utils import timezone

from codex import imports as engine
from codex.notifications.models import NotificationKind
from codex.notifications.services import notification_send
from codex.outbox.services import event_emit
from codex.stale_jobs import StaleNotice, silence, stale_jobs_sweep
from portfolios.market.models import Instrument

from . import analytics, services
from .ledger import TXN_VALUES, txn_from_row
from .models import Kind, LedgerImport, LedgerImportStatus, Portfolio, Transaction
from .selectors import fx_series, gc_paused

logger = logging.getLogger(__name__)

# The CSV format's columns and the ledger field each one exports (one list for import and export).
CSV_COLUMNS = {
    "date": "trade_date",
    "kind": "kind",
    "symbol": "instrument__symbol",
    "exchange": "instrument__exchange",
    "quantity": "quantity",
    "price": "price",
    "fees": "fees",
    "amount": "amount",
    "currency": "currency",
    "fx_rate": "fx_rate",
    "acquired_on": "acquired_on",
    "note": "note",
    "counter_currency": "counter_currency",
    "counter_amount": "counter_amount",
    "transaction_id": "external_id",
}
COLUMNS = list(CSV_COLUMNS)

KIND_ALIASES = {
    "buy": Kind.BUY,
    "bought": Kind.BUY,
    "purchase": Kind.BUY,
    "sell": Kind.SELL,
    "sold": Kind.SELL,
    "sale": Kind.SELL,
    "div": Kind.DIVIDEND,
    "dividend": Kind.DIVIDEND,
    "interest": Kind.INTEREST,
    "fee": Kind.FEE,
    "fees": Kind.FEE,
    "tax": Kind.TAX,
    "withholding tax": Kind.TAX,
    "deposit": Kind.DEPOSIT,
    "withdrawal": Kind.WITHDRAWAL,
    "withdraw": Kind.WITHDRAWAL,
    "split": Kind.SPLIT,
    "conversion": Kind.CONVERSION,
    "fx": Kind.CONVERSION,
    "currency conversion": Kind.CONVERSION,
    "transfer in": Kind.TRANSFER_IN,
    "transfer_in": Kind.TRANSFER_IN,
    "transfer out": Kind.TRANSFER_OUT,
    "transfer_out": Kind.TRANSFER_OUT,
}


def parse_kind(value: str) -> str:
    kind = KIND_ALIASES.get(value.strip().lower().replace("-", " "))
    if kind is None:
        raise ValidationError(f"“{value}” is not a transaction kind ({', '.join(Kind.values)}).")
    return kind


def parse_currency(value: str) -> str:
    code = value.strip().upper()
    if len(code) != 3 or not code.isalpha():
        raise ValidationError(f"“{value}” is not a three-letter currency code.")
    return code


FIELDS = [
    engine.ImportField(
        "trade_date", "date", required=True, aliases=("trade date", "trade_date"), parse=engine.parse_date
    ),
    engine.ImportField("kind", "kind", required=True, aliases=("type", "action"), parse=parse_kind),
    engine.ImportField("symbol", "symbol", aliases=("ticker", "instrument")),
    engine.ImportField("exchange", "exchange", aliases=("market", "mic")),
    engine.ImportField("quantity", "quantity", aliases=("qty", "units", "shares", "ratio"), parse=engine.parse_decimal),
    engine.ImportField("price", "price", aliases=("unit price",), parse=engine.parse_decimal),
    engine.ImportField("fees", "fees", aliases=("fee", "commission"), parse=engine.parse_decimal),
    engine.ImportField("amount", "amount", aliases=("value", "cash"), parse=engine.parse_decimal),
    engine.ImportField("currency", "currency", aliases=("ccy",), parse=parse_currency),
    engine.ImportField("fx_rate", "fx_rate", aliases=("fx", "fx rate", "exchange rate"), parse=engine.parse_decimal),
    engine.ImportField("acquired_on", "acquired_on", aliases=("acquired",), parse=engine.parse_date),
    engine.ImportField("note", "note", aliases=("notes", "memo", "description"), parse=engine.parse_max_length(500)),
    engine.ImportField(
        "counter_currency", "other currency", aliases=("counter currency", "settlement currency"), parse=parse_currency
    ),
    engine.ImportField(
        "counter_amount", "other amount", aliases=("counter amount", "settlement amount"), parse=engine.parse_decimal
    ),
    engine.ImportField(
        "external_id",
        "transaction id",
        aliases=("transaction id", "trade id", "reference", "custodian id"),
        parse=engine.parse_max_length(64),
    ),
]


EXTERNAL_KEY = "ext:"  # duplicate key of a row carrying the custodian's transaction id


class _FxCache:
    """FX rates of the import's currencies, loaded once (one query) and read from memory."""

    def __init__(self, base: str, currencies: set[str], end: date):
        self.base = base
        self.series = fx_series(currencies, base=base, since=None, end=end) if currencies - {base} else {}

    def __call__(self, *, currency: str, base: str, on: date):
        if currency == base:
            return analytics.ONE
        return analytics.price_on(self.series.get(currency, ()), on)


@dataclass
class TransactionImport:
    """One import into one portfolio: build it, ``preview()`` it, then ``commit()`` it."""

    portfolio: Portfolio
    parsed: engine.ParsedFile
    mapping: dict[str, str]
    created_by: object = None
    today: date | None = None

    def __post_init__(self):
        self.today = self.today or timezone.localdate()
        self._instruments = None
        self._fx = None
        self._ledger_keys: dict[str, int] | None = None
        self._clean_by_row: dict[int, services.CleanTxn] = {}

    @classmethod
    def from_upload(cls, *, portfolio, upload, created_by=None, today=None) -> TransactionImport:
        parsed = engine.read_csv(upload)
        return cls.from_parsed(
            portfolio=portfolio, headers=parsed.headers, rows=parsed.rows, created_by=created_by, today=today
        )

    @classmethod
    def from_parsed(cls, *, portfolio, headers, rows, created_by=None, today=None) -> TransactionImport:
        parsed = engine.ParsedFile(headers=list(headers), rows=[list(r) for r in rows], encoding="utf-8", delimiter=",")
        spec = engine.ImportSpec(kind="transactions", fields=FIELDS, create=lambda values: 0)
        mapping = engine.auto_map(parsed.headers, spec)
        errors = engine.validate_mapping(parsed.headers, mapping, spec)
        if errors:
            raise engine.ImportFileError(" ".join(errors.values()))
        return cls(portfolio=portfolio, parsed=parsed, mapping=mapping, created_by=created_by, today=today)

    # -- the spec's callables -------------------------------------------------------------------

    def _instrument(self, symbol: str, exchange: str):
        if self._instruments is None:
            self._instruments = {}
            for inst in Instrument.objects.all():
                self._instruments[(inst.symbol.upper(), inst.exchange.upper())] = inst
                self._instruments.setdefault((inst.symbol.upper(), None), []).append(inst)
        if exchange:
            return self._instruments.get((symbol.upper(), exchange.upper()))
        matches = self._instruments.get((symbol.upper(), None), [])
        if len(matches) > 1:
            raise ValidationError(f"{symbol} trades on several exchanges; add an exchange column.")
        return matches[0] if matches else None

    def _fx_lookup(self):
        if self._fx is None:
            index = {h: i for i, h in enumerate(self.parsed.headers)}
            col = next((h for h, t in self.mapping.items() if t == "currency"), None)
            currencies = set()
            if col is not None:
                currencies = {r[index[col]].strip().upper() for r in self.parsed.rows if index[col] < len(r)}
            currencies |= {i.currency for i in Instrument.objects.only("currency")}
            self._fx = _FxCache(self.portfolio.base_currency, {c for c in currencies if len(c) == 3}, self.today)
        return self._fx

    def _validate(self, values: dict) -> dict[str, str]:
        data = {k: v for k, v in values.items() if k not in ("symbol", "exchange", "external_id")}
        symbol = values.get("symbol")
        if symbol:
            try:
                inst = self._instrument(symbol, values.get("exchange", ""))
            except ValidationError as exc:
                return {"symbol": " ".join(exc.messages)}
            if inst is None:
                return {"symbol": f"Unknown instrument “{symbol}”."}
            data["instrument"] = inst
        elif values.get("kind") in analytics.SECURITY_KINDS:
            return {"symbol": "Give the instrument's symbol."}
        try:
            clean = services.transaction_clean(
                portfolio=self.portfolio, data=data, today=self.today, fx_lookup=self._fx_lookup()
            )
        except ValidationError as exc:
            return {("symbol" if f == "instrument" else f): " ".join(m) for f, m in exc.message_dict.items()}
        external_id = (values.get("external_id") or "").strip()
        if external_id:
            # a custodian's id is the row's identity: the same id again is the same transaction
            clean.external_id = external_id
            values["fingerprint"] = EXTERNAL_KEY + external_id
        else:
            values["fingerprint"] = services.validation._fingerprint(clean)
        values["__clean__"] = clean
        return {}

    def _find_existing(self, keys) -> dict:
        """``{key: transaction id}`` of the keys already in the portfolio's ledger. The ledger's
        keys are read once, in one query (the engine asks per 1,000 keys: as ``IN`` lists of 1,000
        hashes, a 5,000-row file cost five statements of 5-15 ms of planning each), then answered
        from memory; the preview reads the whole ledger for its replay anyway."""
        if self._ledger_keys is None:
            self._ledger_keys = {}
            for fingerprint, external_id, txn_id in Transaction.objects.filter(portfolio=self.portfolio).values_list(
                "fingerprint", "external_id", "id"
            ):
                if fingerprint:
                    self._ledger_keys.setdefault(fingerprint, txn_id)
                if external_id:
                    self._ledger_keys[EXTERNAL_KEY + external_id] = txn_id
        return {k: self._ledger_keys[k] for k in keys if k in self._ledger_keys}

    def _create(self, values_list: list[dict]) -> int:
        rows = [v["__clean__"] for v in values_list]
        return services.transactions_bulk_record(portfolio=self.portfolio, rows=rows, created_by=self.created_by)

    def spec(self) -> engine.ImportSpec:
        return engine.ImportSpec(
            kind="transactions",
            fields=FIELDS,
            create=self._create,
            key_field="fingerprint",
            find_existing=self._find_existing,
            validate=self._validate,
            normalise_key=lambda v: v,
        )

    # -- the ledger check -------------------------------------------------------------------------

    def _replay_errors(self, result: engine.Preview) -> list[engine.RowError]:
        """Replay the ledger with the new rows; a failure is reported on the row that caused it."""
        new = [(r.row, r.values["__clean__"]) for r in result.rows if r.action == "create"]
        if not new:
            return []
        rows = Transaction.objects.filter(portfolio=self.portfolio).order_by("trade_date", "id").values(*TXN_VALUES)
        ledger = [txn_from_row(r) for r in rows]
        for number, c in new:
            ledger.append(
                analytics.Txn(
                    id=("row", number),
                    date=c.trade_date,
                    kind=c.kind,
                    currency=c.currency,
                    instrument_id=c.instrument.pk if c.instrument else None,
                    quantity=c.quantity,
                    price=c.price,
                    fees=c.fees,
                    fx_rate=c.fx_rate,
                    amount=c.amount,
                    lots=tuple((int(x["lot"]), Decimal(x["quantity"])) for x in c.lots) if c.lots else None,
                    acquired_on=c.acquired_on,
                    counter_currency=c.counter_currency or None,
                    counter_amount=c.counter_amount,
                )
            )
        try:
            analytics.build_lots(ledger, method=self.portfolio.lot_method)
        except (analytics.InsufficientQuantity, analytics.UnknownLot) as exc:
            message = str(exc)
            number = new[-1][0]
            if isinstance(exc, analytics.InsufficientQuantity):
                held = f"{exc.held.normalize():f}"
                message = f"Cannot take {exc.requested.normalize():f} on {exc.date.isoformat()}: only {held} held."
                candidates = [
                    n
                    for n, c in new
                    if c.instrument
                    and c.instrument.pk == exc.instrument_id
                    and c.trade_date <= exc.date
                    and c.kind in (Kind.SELL, Kind.TRANSFER_OUT, Kind.SPLIT)
                ]
                number = next(
                    (
                        n
                        for n, c in new
                        if c.instrument
                        and c.instrument.pk == exc.instrument_id
                        and c.trade_date == exc.date
                        and c.kind in (Kind.SELL, Kind.TRANSFER_OUT)
                    ),
                    candidates[0] if candidates else number,
                )
            return [engine.RowError(number, "quantity", message)]
        return []

    def preview(self) -> engine.Preview:
        """Every row validated, duplicates marked ``skip``, the ledger replayed. Writes nothing."""
        # A 5,000-row file holds some 40,000 tracked objects (rows, values, clean rows, the replayed
        # ledger) that form no reference cycle: without the pause the collector walked them again
        # and again while they were built, a third of the preview's CPU (decision 1330).
        self._ledger_keys = None  # the ledger as it is now
        with gc_paused():
            return self._preview()

    def _preview(self) -> engine.Preview:
        result = engine.preview(
            self.spec(), self.parsed.headers, self.parsed.rows, self.mapping, duplicates=engine.DuplicateMode.SKIP
        )
        if result.ok:
            extra = self._replay_errors(result)
            if extra:
                by_row = {r.row: r for r in result.rows}
                for e in extra:
                    row = by_row[e.row]
                    row.errors.append(e)
                    row.action = "error"
                    result.counts["create"] -= 1
                    result.counts["error"] += 1
                result.errors.extend(extra)
        return result

    def commit(self) -> engine.ImportReport:
        """Write every new row or none. Rows already in the ledger are skipped. Raises
        ``engine.ImportRejected`` with the row errors (nothing is written)."""

        def before_write(result: engine.Preview) -> None:
            # Lock the portfolio before writing. The ledger replay of the preview is not repeated
            # here: ``transactions_bulk_record`` replays the ledger anyway, and refuses if it no
            # longer fits (the ledger may have changed since the preview).
            Portfolio.objects.select_for_update().get(pk=self.portfolio.pk)
            event_emit(
                type="import.completed",
                data={
                    "id": None,
                    "kind": "transactions",
                    "portfolio_id": self.portfolio.pk,
                    "rows": result.counts["create"],
                },
                resource=f"portfolio:{self.portfolio.pk}",
            )
            # In the import's transaction: a rolled-back import tells nobody.
            notification_send(
                recipients=[self.created_by],
                kind=NotificationKind.IMPORT,
                title=f"Import of transactions into {self.portfolio.name} finished",
                body=f"{result.counts['create']} transactions",
                url=f"/portfolios/{self.portfolio.pk}/",
            )

        self._ledger_keys = None  # read again inside the commit's transaction
        try:
            return engine.commit(
                self.spec(),
                self.parsed.headers,
                self.parsed.rows,
                self.mapping,
                duplicates=engine.DuplicateMode.SKIP,
                before_write=before_write,
            )
        except ValidationError as exc:
            # Rolled back. Find the row to blame, with the ledger as it is now.
            errors = self.preview().errors
            if errors:
                raise engine.ImportRejected(errors) from exc
            raise


def ledger_import_queue(*, portfolio: Portfolio, headers: list[str], rows: list[list[str]], actor) -> LedgerImport:
    """Keep a previewed file's rows and queue their commit as a background job (decision 1001):
    ``portfolios.tasks.ledger_import_job`` runs ``ledger_import_finish`` once this commits. The
    caller checked write access to ``portfolio``. Returns the job (``importing``)."""
    from .tasks import ledger_import_job  # tasks call back into this module

    with transaction.atomic():
        job = LedgerImport.objects.create(
            portfolio=portfolio,
            headers=list(headers),
            rows=[list(r) for r in rows],
            report={"queued_rows": len(rows)},
            created_by=actor,
            heartbeat_at=timezone.now(),
        )
        transaction.on_commit(partial(ledger_import_job.delay, import_id=job.pk, actor_id=actor.pk))
    return job


def ledger_import_finish(*, import_id: int, actor_id: int) -> dict:
    """The background half of ``ledger_import_queue``: commit every new row or none
    (``TransactionImport.commit``; the portfolio's valuations are then rebuilt by their own job,
    "figures updating" on its page meanwhile). A refusal (a row that no longer fits the ledger,
    the member's rights gone) ends the job ``refused`` with the reason and writes nothing;
    either way the member who started it is notified. A job no longer importing (an earlier
    delivery ran it) is left alone. Database errors propagate: the task retries."""
    # A sign of life before the commit's transaction (decision 1220): the sweep leaves this job alone.
    if not LedgerImport.objects.filter(pk=import_id, status=LedgerImportStatus.IMPORTING).update(
        heartbeat_at=timezone.now()
    ):
        return {"import": import_id, "skipped": True}
    # One transaction with the job's row locked: the rows and the job's end commit together, and the
    # sweep (``skip_locked``) never touches a job whose commit is running.
    with transaction.atomic():
        job = (
            LedgerImport.objects.select_for_update(of=("self",))
            .select_related("portfolio")
            .filter(pk=import_id)
            .first()
        )
        if job is None or job.status != LedgerImportStatus.IMPORTING:
            return {"import": import_id, "skipped": True}
        return _ledger_import_run(job, actor_id)


def _ledger_import_run(job: LedgerImport, actor_id: int) -> dict:
    from codex.notifications.models import NotificationKind
    from codex.notifications.services import notification_send
    from tenants.accounts.models import User

    from .access import portfolio_for_user

    import_id = job.pk
    actor = User.objects.filter(pk=actor_id, is_active=True).first()
    url = f"/portfolios/{job.portfolio_id}/"
    try:
        if actor is None:
            raise PermissionDenied("The member who started this import can no longer sign in.")
        portfolio = portfolio_for_user(actor, job.portfolio_id, write=True)
        report = TransactionImport.from_parsed(
            portfolio=portfolio, headers=job.headers, rows=job.rows, created_by=actor
        ).commit()
    except engine.ImportRejected as exc:
        status, message = LedgerImportStatus.REFUSED, f"{exc} Upload the file again to see the rows."
        result: dict[str, object] = {
            "error": message,
            "rows": [f"row {e.row}, {e.field}: {e.message}" for e in exc.errors[:20]],
        }
    except (ValidationError, PermissionDenied, Http404, engine.ImportFileError) as exc:
        status, message = LedgerImportStatus.REFUSED, " ".join(getattr(exc, "messages", None) or [str(exc)])
        result = {"error": message}
    else:
        status = LedgerImportStatus.DONE
        message = f"{report.created} transaction(s) imported, {report.skipped} duplicate(s) skipped."
        result = {"created": report.created, "skipped": report.skipped}
    LedgerImport.objects.filter(pk=import_id, status=LedgerImportStatus.IMPORTING).update(
        status=status, report=result, rows=[], finished_at=timezone.now()
    )
    if actor is not None:
        done = status == LedgerImportStatus.DONE
        notification_send(
            recipients=[actor],
            kind=NotificationKind.IMPORT,
            title=f"Import into {job.portfolio.name} {'finished' if done else 'not done'}",
            body=message[:500],
            url=url,
            source=f"ledger-import:{import_id}",
        )
    return {"import": import_id, "status": status, **result}


def ledger_imports_sweep(*, now=None) -> list[int]:
    """Celery beat, per firm (decision 1220): an ``importing`` transactions import whose background
    commit gave no sign of life for ``IMPORT_JOB_STALE_SECONDS`` (its worker died for good, its
    retries ran out, or it failed on an unexpected error) ends ``refused`` with the reason, which
    the import page shows; the member who started it is notified and operators get an error log
    line. Nothing was written by it: the rows and the job's end commit in one transaction that
    holds the job's row lock, so the sweep leaves a running commit alone, and a late delivery of
    the task finds the job ended and does nothing. Returns the ids swept. Idempotent. The kernel
    is ``codex.stale_jobs`` (decision 1352)."""

    def end(job: LedgerImport, reason: str, at) -> None:
        LedgerImport.objects.filter(pk=job.pk).update(
            status=LedgerImportStatus.REFUSED, report={"error": reason, "swept": True}, rows=[], finished_at=at
        )

    return stale_jobs_sweep(
        active=LedgerImport.objects.filter(status=LedgerImportStatus.IMPORTING)
        .select_related("portfolio", "created_by")
        .defer("rows"),
        what="ledger import",
        reason=lambda job, seen: f"The import stopped: {silence(seen)}. Nothing was imported; upload the file again.",
        end=end,
        log=logger,
        notice=lambda job: StaleNotice(
            kind=NotificationKind.IMPORT,
            title=f"Import into {job.portfolio.name} not done",
            url=f"/portfolios/{job.portfolio_id}/import/",
            source=f"ledger-import:{job.pk}",
        ),
        log_extra=lambda job: {"ledger_import_id": job.pk, "portfolio_id": job.portfolio_id},
        now=now,
    )


def export_transactions(portfolio: Portfolio):
    """CSV lines of the ledger, in the import format (a round trip imports as all duplicates)."""
    rows = (
        Transaction.objects.filter(portfolio=portfolio)
        .order_by("trade_date", "id")
        .values_list(*CSV_COLUMNS.values())
        .iterator(chunk_size=2000)
    )

    def fmt(v):
        if isinstance(v, Decimal):
            return f"{v.normalize():f}"
        if isinstance(v, date):
            return v.isoformat()
        return v

    return engine.write_csv(([fmt(v) for v in row] for row in rows), COLUMNS)


def export_holdings(snapshot: analytics.HoldingsSnapshot, infos: dict):
    """CSV lines of a holdings snapshot (one row per position, then cash per currency)."""
    headers = [
        "date",
        "symbol",
        "name",
        "currency",
        "quantity",
        "price",
        "fx_rate",
        "market_value_local",
        f"market_value_{snapshot.base_currency}",
        "cost_local",
        f"cost_{snapshot.base_currency}",
        f"unrealised_gain_{snapshot.base_currency}",
    ]

    def q(x):
        return f"{x.quantize(Decimal('0.01')):f}"

    def rows():
        for h in sorted(snapshot.holdings, key=lambda h: -h.market_value_base):
            info = infos.get(h.instrument_id)
            yield [
                snapshot.date.isoformat(),
                info.symbol if info else h.instrument_id,
                info.name if info else "",
                h.currency,
                f"{h.quantity.normalize():f}",
                f"{h.price.normalize():f}",
                f"{h.fx_rate.normalize():f}",
                q(h.market_value_local),
                q(h.market_value_base),
                q(h.cost_local),
                q(h.cost_base),
                q(h.unrealised_gain_base),
            ]
        for c, amount in snapshot.cash.items():
            yield [
                snapshot.date.isoformat(),
                "CASH",
                f"Cash {c}",
                c,
                "",
                "",
                "",
                q(amount),
                q(snapshot.cash_base[c]),
                "",
                "",
                "",
            ]

    return engine.write_csv(rows(), headers)
