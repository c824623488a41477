"""Portfolios (firm schema): the portfolio, its ledger, and the holdings and lots derived from it.

``Transaction`` is the source of truth. ``Holding``, ``Lot`` and ``CashBalance`` are derived:
``portfolios.services`` rebuilds them for the affected portfolio inside the same database
transaction as every ledger write, with the portfolio row locked (see docs/portfolios.md).
"""

from __future__ import annotations

from typing import TypedDict

import pghistory
from django.conf import settings
from django.contrib.postgres.indexes import GinIndex, OpClass
from django.db import models
from django.db.models import Q
from django.db.models.functions import Upper

from .analytics import CASH_KINDS, SECURITY_KINDS

CURRENCY_RE = r"^[A-Z]{3}$"


class DecimalSize(TypedDict):
    """The precision of a ``DecimalField``, spelled once per kind of amount."""

    max_digits: int
    decimal_places: int


QTY: DecimalSize = {"max_digits": 28, "decimal_places": 10}
MONEY: DecimalSize = {"max_digits": 24, "decimal_places": 6}
COST: DecimalSize = {"max_digits": 30, "decimal_places": 10}


class LotMethod(models.TextChoices):
    FIFO = "fifo", "FIFO (first in, first out)"
    LIFO = "lifo", "LIFO (last in, first out)"
    HIFO = "hifo", "HIFO (highest cost first)"


# ``client_owner`` is derived (kept by the database, below): not part of the portfolio's history,
# and a change of it alone (the client handed to another owner) records no portfolio event.
@pghistory.track(
    pghistory.InsertEvent(),
    pghistory.UpdateEvent(condition=pghistory.AnyChange(exclude=["client_owner"])),
    pghistory.DeleteEvent(),
    exclude=["client_owner"],
)
class Portfolio(models.Model):
    name = models.CharField(max_length=200)
    # PROTECT: a client with portfolios cannot be deleted by accident; see decision 0100.
    client = models.ForeignKey(
        "crm.Contact", on_delete=models.PROTECT, null=True, blank=True, related_name="portfolios"
    )
    advisor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="advised_portfolios")
    base_currency = models.CharField(max_length=3, default="USD")
    benchmark = models.ForeignKey(
        "market.Instrument", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    lot_method = models.CharField(max_length=4, choices=LotMethod.choices, default=LotMethod.FIFO)
    shared_with = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="shared_portfolios")
    archived = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # The owner of ``client`` (``crm.Contact.owner``), a cache kept by PostgreSQL triggers
    # (migration 0011, decision 1300): set from the contact on every insert and on every write of
    # ``client`` or of this column, and rewritten when the contact's owner changes, by whatever
    # path (a form, the API, an import, a merge, a bulk ``update()``, a deleted user). An
    # advisor's book ("their clients' portfolios") is then an index lookup on the portfolio,
    # not a read of the advisor's contacts. Never written by the application.
    client_owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        editable=False,
        related_name="+",
        db_index=False,  # the composite index below leads with it
    )

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(base_currency__regex=CURRENCY_RE), name="portfolio_currency_iso"),
        ]
        indexes = [
            models.Index(fields=["advisor", "archived"], name="portfolio_advisor_idx"),
            models.Index(fields=["client_owner", "archived"], name="portfolio_client_owner_idx"),
            # the list's order (name, id) and its ``search`` on the name (any case)
            models.Index(fields=["name", "id"], name="portfolio_name_order_idx"),
            GinIndex(OpClass(Upper("name"), name="gin_trgm_ops"), name="portfolio_name_trgm"),
        ]

    def __str__(self) -> str:
        return self.name


class PortfolioTally(models.Model):
    """How many portfolios the firm has (one row, ``id`` 1; no row means none), kept by three
    statement-level triggers on the portfolios table (after insert, delete and truncate; migration
    ``0011_portfolio_tally``), in the same transaction as the rows they count, whatever code path
    wrote them. The whole firm's list reads it instead of counting the table on every request
    (docs/decisions/1320). Plain PL/pgSQL in the firm's schema, not django-pgtrigger: pgtrigger's
    install replaces a function in ``public``, and firms migrated in parallel collided on it
    ("tuple concurrently updated")."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    portfolios = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(id=1), name="portfolio_tally_one_row"),
            models.CheckConstraint(condition=Q(portfolios__gte=0), name="portfolio_tally_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.portfolios} portfolios"


class Kind(models.TextChoices):
    BUY = "buy", "Buy"
    SELL = "sell", "Sell"
    DIVIDEND = "dividend", "Dividend"
    INTEREST = "interest", "Interest"
    FEE = "fee", "Fee"
    TAX = "tax", "Tax"
    DEPOSIT = "deposit", "Deposit"
    WITHDRAWAL = "withdrawal", "Withdrawal"
    SPLIT = "split", "Split"
    TRANSFER_IN = "transfer_in", "Transfer in"
    TRANSFER_OUT = "transfer_out", "Transfer out"
    CONVERSION = "conversion", "Currency conversion"


@pghistory.track(pghistory.InsertEvent(), pghistory.UpdateEvent(), pghistory.DeleteEvent(), exclude=[])
class Transaction(models.Model):
    """One ledger row. Field meanings are those of ``analytics.Txn`` (docs/analytics.md)."""

    portfolio = models.ForeignKey(Portfolio, on_delete=models.CASCADE, related_name="transactions")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    trade_date = models.DateField()
    # PROTECT in Django and a deferred FK in PostgreSQL: an instrument in a ledger cannot vanish.
    instrument = models.ForeignKey(
        "market.Instrument", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    quantity = models.DecimalField(**QTY, default=0, help_text="Units; for a split, the ratio (2 = 2-for-1).")
    price = models.DecimalField(**MONEY, default=0, help_text="Per unit, in the transaction currency.")
    fees = models.DecimalField(**MONEY, default=0)
    amount = models.DecimalField(**MONEY, null=True, blank=True, help_text="Gross cash amount of a cash kind.")
    currency = models.CharField(max_length=3)
    fx_rate = models.DecimalField(max_digits=24, decimal_places=10, default=1, help_text="1 currency = x base.")
    note = models.CharField(max_length=500, blank=True, default="")
    lots = models.JSONField(
        null=True, blank=True, help_text='Specific lots of a sell: [{"lot": <transaction id>, "quantity": "10"}].'
    )
    acquired_on = models.DateField(null=True, blank=True, help_text="Original acquisition date of a transfer in.")
    counter_currency = models.CharField(
        max_length=3,
        blank=True,
        default="",
        db_default="",  # the ledger import's COPY names only the columns it fills
        help_text="Conversion: the currency bought. Buy/sell: the cash it settles from, if not its own currency.",
    )
    counter_amount = models.DecimalField(
        **MONEY, null=True, blank=True, help_text="Amount of the counter currency bought, paid or received."
    )
    fingerprint = models.CharField(max_length=64, db_index=True, editable=False)
    external_id = models.CharField(
        max_length=64,
        blank=True,
        default="",
        db_default="",
        editable=False,
        help_text="The custodian's transaction id of an imported row (unique per portfolio).",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["trade_date", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gte=0), name="txn_quantity_not_negative"),
            models.CheckConstraint(condition=Q(price__gte=0), name="txn_price_not_negative"),
            models.CheckConstraint(condition=Q(fees__gte=0), name="txn_fees_not_negative"),
            models.CheckConstraint(condition=Q(amount__isnull=True) | Q(amount__gte=0), name="txn_amount_not_negative"),
            models.CheckConstraint(condition=Q(fx_rate__gt=0), name="txn_fx_rate_positive"),
            models.CheckConstraint(condition=Q(currency__regex=CURRENCY_RE), name="txn_currency_iso"),
            models.CheckConstraint(
                condition=Q(counter_currency="") | Q(counter_currency__regex=CURRENCY_RE), name="txn_counter_iso"
            ),
            # the same custodian transaction imported twice is one ledger row
            models.UniqueConstraint(
                fields=["portfolio", "external_id"], condition=~Q(external_id=""), name="txn_external_id_once"
            ),
            models.CheckConstraint(
                condition=~Q(kind="conversion") | (~Q(counter_currency="") & Q(counter_amount__gt=0)),
                name="txn_conversion_has_counter",
            ),
            models.CheckConstraint(condition=Q(kind__in=[k.value for k in Kind]), name="txn_kind_valid"),
            models.CheckConstraint(
                condition=Q(kind__in=sorted(CASH_KINDS))
                | Q(kind__in=sorted(SECURITY_KINDS), instrument__isnull=False, quantity__gt=0),
                name="txn_security_needs_instrument",
            ),
        ]
        indexes = [models.Index(fields=["portfolio", "trade_date", "id"], name="txn_portfolio_date_idx")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.trade_date}"

    @property
    def is_security(self) -> bool:
        return self.kind in SECURITY_KINDS


# The ledger fields a user writes, in the order the API shows them: the services' record and
# update, the API's serializers and the page's form are built on (or checked against) this list.
TRANSACTION_FIELDS = (
    "kind",
    "trade_date",
    "instrument",
    "quantity",
    "price",
    "fees",
    "amount",
    "currency",
    "fx_rate",
    "note",
    "lots",
    "acquired_on",
    "counter_currency",
    "counter_amount",
)


class Holding(models.Model):
    """Derived: units held per instrument, with the remaining cost basis of the open lots."""

    portfolio = models.ForeignKey(Portfolio, on_delete=models.CASCADE, related_name="holdings")
    instrument = models.ForeignKey("market.Instrument", on_delete=models.PROTECT, related_name="+")
    quantity = models.DecimalField(**QTY)
    currency = models.CharField(max_length=3)
    cost_local = models.DecimalField(**COST)
    cost_base = models.DecimalField(**COST)

    class Meta:
        ordering = ["portfolio", "instrument"]
        constraints = [
            models.UniqueConstraint(fields=["portfolio", "instrument"], name="holding_one_per_instrument"),
            models.CheckConstraint(condition=Q(quantity__gt=0), name="holding_quantity_positive"),
            models.CheckConstraint(condition=Q(cost_local__gte=0, cost_base__gte=0), name="holding_cost_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.quantity.normalize():f} of instrument {self.instrument_id}"


class Lot(models.Model):
    """Derived: a tax lot opened by a buy or transfer in; ``quantity`` is what is still open."""

    portfolio = models.ForeignKey(Portfolio, on_delete=models.CASCADE, related_name="lots")
    instrument = models.ForeignKey("market.Instrument", on_delete=models.PROTECT, related_name="+")
    opened_by = models.OneToOneField(Transaction, on_delete=models.CASCADE, related_name="lot")
    acquired_on = models.DateField()
    original_quantity = models.DecimalField(**QTY)
    quantity = models.DecimalField(**QTY, help_text="Open units (after splits); 0 when closed.")
    currency = models.CharField(max_length=3)
    cost_local = models.DecimalField(**COST, help_text="Remaining cost of the open units.")
    cost_base = models.DecimalField(**COST)
    closed_on = models.DateField(null=True, blank=True)

    class Meta:
        ordering = ["portfolio", "instrument", "acquired_on", "opened_by"]
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gte=0), name="lot_quantity_not_negative"),
            models.CheckConstraint(condition=Q(original_quantity__gt=0), name="lot_original_positive"),
            models.CheckConstraint(condition=Q(cost_local__gte=0, cost_base__gte=0), name="lot_cost_not_negative"),
            models.CheckConstraint(
                condition=Q(quantity=0, closed_on__isnull=False) | Q(quantity__gt=0, closed_on__isnull=True),
                name="lot_closed_iff_empty",
            ),
        ]
        indexes = [models.Index(fields=["portfolio", "instrument"], name="lot_portfolio_instrument_idx")]

    def __str__(self) -> str:
        return f"Lot {self.opened_by_id} ({self.acquired_on})"

    @property
    def is_open(self) -> bool:
        return self.quantity > 0


class CashBalance(models.Model):
    """Derived: cash per currency implied by the ledger (may be negative: an overdraft)."""

    portfolio = models.ForeignKey(Portfolio, on_delete=models.CASCADE, related_name="cash_balances")
    currency = models.CharField(max_length=3)
    amount = models.DecimalField(**COST)

    class Meta:
        ordering = ["portfolio", "currency"]
        constraints = [
            models.UniqueConstraint(fields=["portfolio", "currency"], name="cash_one_per_currency"),
        ]

    def __str__(self) -> str:
        return f"{self.currency} {self.amount}"


# --------------------------------------------------------------------------------------------
# Stored valuations: a cache of the pure analytics' output (docs/analytics.md, "Stored valuations")
# --------------------------------------------------------------------------------------------

# Exact: a figure computed in the 28-digit Decimal context fits whole (up to 20 integer digits,
# and 40 decimals for figures down to 1e-12), so what is read back equals what was computed and
# returns from the store are those of the in-memory series. PostgreSQL stores no trailing zeros.
FIGURE: DecimalSize = {"max_digits": 60, "decimal_places": 40}


class Valuation(models.Model):
    """One portfolio's close of one calendar day, in its base currency (derived, never edited).

    ``value`` is V_t (positions and cash after the day's transactions); ``net_flows`` is F_t
    (deposits, withdrawals, transfers at market value; money in positive); ``twr_index`` is the
    growth of 1 under daily linking since inception (flat while there is no capital). Income,
    fees, taxes, deposits, withdrawals and realised gains are the day's amounts at each
    transaction's FX rate, so any period's totals are sums over its days."""

    portfolio = models.ForeignKey(Portfolio, on_delete=models.CASCADE, related_name="valuations")
    date = models.DateField()
    value = models.DecimalField(**FIGURE)
    net_flows = models.DecimalField(**FIGURE)
    cash = models.DecimalField(**FIGURE, help_text="Cash of every currency, in base at the day's rates.")
    dividends = models.DecimalField(**FIGURE)
    interest = models.DecimalField(**FIGURE)
    fees = models.DecimalField(**FIGURE)
    taxes = models.DecimalField(**FIGURE)
    deposits = models.DecimalField(**FIGURE)
    withdrawals = models.DecimalField(**FIGURE)
    realised_short = models.DecimalField(**FIGURE)
    realised_long = models.DecimalField(**FIGURE)
    twr_index = models.DecimalField(**FIGURE)
    market_day = models.BooleanField(help_text="Any close or FX rate was observed on this day.")

    class Meta:
        ordering = ["portfolio", "date"]
        constraints = [
            models.UniqueConstraint(fields=["portfolio", "date"], name="valuation_one_per_day"),
            models.CheckConstraint(condition=Q(twr_index__gt=0), name="valuation_index_positive"),
        ]
        indexes = [
            # The days with an external flow: all a since-inception MWR needs (a few rows in thousands).
            models.Index(fields=["portfolio", "date"], condition=~Q(net_flows=0), name="valuation_flow_days"),
            # One day of many portfolios (an advisor's book on the dashboard): the day's rows, not
            # every row of every portfolio in the book (docs/decisions/1000).
            models.Index(fields=["date", "portfolio"], name="valuation_day_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.date}: {self.value}"

    @property
    def income(self):
        return self.dividends + self.interest


class ValuationCurrency(models.Model):
    """The same close split by currency: securities and cash in that currency, and its rate."""

    portfolio = models.ForeignKey(Portfolio, on_delete=models.CASCADE, related_name="+")
    date = models.DateField()
    currency = models.CharField(max_length=3)
    securities_local = models.DecimalField(**FIGURE)
    cash_local = models.DecimalField(**FIGURE)
    fx_rate = models.DecimalField(**FIGURE, help_text="1 unit = x base on this day.")
    value_base = models.DecimalField(**FIGURE)

    class Meta:
        ordering = ["portfolio", "date", "currency"]
        constraints = [
            models.UniqueConstraint(fields=["portfolio", "date", "currency"], name="valuation_ccy_one_per_day"),
            models.CheckConstraint(condition=Q(currency__regex=CURRENCY_RE), name="valuation_ccy_iso"),
        ]

    def __str__(self) -> str:
        return f"{self.date} {self.currency}"


class FirmValuation(models.Model):
    """The firm's close of one calendar day per base currency: the sum of the ``Valuation`` rows
    of that day of every portfolio that is not archived and has that base currency (derived,
    never edited; docs/decisions/0920).

    Maintained by ``portfolios.valuation_services`` in the same transaction as the portfolio
    rows it sums: each replacement of a portfolio's days adds the difference (new minus old) to
    these rows, so it costs what the portfolio's own write costs, whatever the firm's size.
    Archiving or restoring a portfolio takes its whole stored series out or puts it back.
    ``valuations_verify`` compares every row with the sum computed from ``Valuation``."""

    date = models.DateField()
    currency = models.CharField(max_length=3, help_text="The base currency of the portfolios summed.")
    value = models.DecimalField(**FIGURE)
    net_flows = models.DecimalField(**FIGURE)
    cash = models.DecimalField(**FIGURE)
    portfolios = models.IntegerField(help_text="Portfolios with a stored close on this day.")

    class Meta:
        ordering = ["date", "currency"]
        constraints = [
            models.UniqueConstraint(fields=["date", "currency"], name="firm_valuation_one_per_day"),
            models.CheckConstraint(condition=Q(currency__regex=CURRENCY_RE), name="firm_valuation_ccy_iso"),
        ]

    def __str__(self) -> str:
        return f"{self.date} {self.currency}: {self.value}"


class PortfolioFigures(models.Model):
    """A portfolio's headline figures as of its last stored close: value, year-to-date and
    since-inception time-weighted returns (derived, never edited; docs/decisions/1000).

    Written by ``portfolios.valuation_services`` in the same transaction as the ``Valuation``
    rows they are computed from, by the same function that computes them from the store for any
    day (``selectors.summaries``), so the dashboard's performance panel is one aggregate over
    one row per portfolio. ``valuations_verify`` recomputes them from the stored days.
    The returns are the figures shown (``PeriodReturn.value``: annualised beyond a year), as
    fractions; None where there is nothing to measure yet."""

    portfolio = models.OneToOneField(Portfolio, on_delete=models.CASCADE, primary_key=True, related_name="figures")
    as_of = models.DateField(help_text="The day of the figures: the portfolio's last stored close.")
    value = models.DecimalField(**FIGURE)
    ytd = models.DecimalField(**FIGURE, null=True, blank=True)
    since_inception = models.DecimalField(**FIGURE, null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["-value", "portfolio"], name="portfolio_figures_value_idx")]

    def __str__(self) -> str:
        return f"{self.portfolio_id} on {self.as_of}: {self.value}"


class LedgerImportStatus(models.TextChoices):
    IMPORTING = "importing", "Importing"
    DONE = "done", "Imported"
    REFUSED = "refused", "Not imported"


class LedgerImport(models.Model):
    """A CSV of transactions previewed on the import page whose commit runs as a background job
    (decision 1001): the rows wait here, not in the request; the page shows the status."""

    portfolio = models.ForeignKey(Portfolio, on_delete=models.CASCADE, related_name="ledger_imports")
    status = models.CharField(max_length=10, choices=LedgerImportStatus.choices, default=LedgerImportStatus.IMPORTING)
    headers = models.JSONField(default=list)
    rows = models.JSONField(default=list, help_text="Emptied when the job ends: the ledger holds them then.")
    report = models.JSONField(default=dict, blank=True, help_text="created and skipped, or the error.")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # The last sign of life of the background commit: set when it is queued and each time a worker
    # takes it up. An ``importing`` job silent longer than IMPORT_JOB_STALE_SECONDS is swept to
    # ``refused`` with the reason (portfolios.imports.ledger_imports_sweep, decision 1220).
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=[s.value for s in LedgerImportStatus]), name="ledger_import_status"
            )
        ]

    def __str__(self) -> str:
        return f"import into {self.portfolio_id}: {self.status}"


class ValuationStatus(models.TextChoices):
    CURRENT = "current", "Current"
    UPDATING = "updating", "Figures updating"
    FAILED = "failed", "Update failed"


class ValuationState(models.Model):
    """Where a portfolio's stored valuations stand (one row per portfolio).

    ``ledger_version`` is bumped by every ledger write in its own transaction; ``valued_version``
    is the ledger version the stored rows were computed from. ``stale_from`` is the earliest day
    whose stored rows wait for a background rebuild (prices, FX, bulk import): while it is set
    the page says "figures updating" and shows the previous figures. A failed rebuild keeps the
    previous rows and records ``error``."""

    portfolio = models.OneToOneField(Portfolio, on_delete=models.CASCADE, related_name="valuation_state")
    ledger_version = models.PositiveBigIntegerField(default=0)
    valued_version = models.PositiveBigIntegerField(default=0)
    valued_through = models.DateField(null=True, blank=True)
    stale_from = models.DateField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=ValuationStatus.choices, default=ValuationStatus.CURRENT)
    error = models.TextField(blank=True, default="")
    # The instruments and currencies of the ledger the rows were computed from: a day is a
    # market day when any of them has a close or rate, so a change of this set changes every
    # day's flag and the next recomputation starts at inception.
    inputs = models.JSONField(default=dict, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(status__in=[s.value for s in ValuationStatus]), name="valuation_status"),
            models.CheckConstraint(
                condition=Q(valued_version__lte=models.F("ledger_version")), name="valuation_version_not_ahead"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.portfolio_id}: {self.status}"

    @property
    def updating(self) -> bool:
        return self.status == ValuationStatus.UPDATING or self.stale_from is not None


class NegativeCash(models.TextChoices):
    WARN = "warn", "Allow it and show a warning"
    REFUSE = "refuse", "Refuse the transaction"


class LedgerSettings(models.Model):
    """The firm's ledger rules (one row per firm schema): what a write that overdraws cash does."""

    singleton = models.BooleanField(default=True, unique=True, editable=False)
    negative_cash = models.CharField(max_length=8, choices=NegativeCash.choices, default=NegativeCash.WARN)
    reconciliation_tolerance = models.DecimalField(
        **QTY, default=0, help_text="Differences up to this many units (or cash) are not breaks."
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.CheckConstraint(condition=Q(singleton=True), name="ledger_settings_singleton")]

    def __str__(self) -> str:
        return f"negative cash: {self.negative_cash}"

    @classmethod
    def current(cls) -> LedgerSettings:
        return cls.objects.first() or cls()


# --------------------------------------------------------------------------------------------
# Custodian files and reconciliation (issue 24; portfolios/custodian.py, docs/custodian.md)
# --------------------------------------------------------------------------------------------


class CustodianMapping(models.Model):
    """A custodian's column names, saved per firm: ``columns`` maps our field to the file's header
    (positions: account, date, symbol, exchange, quantity, currency, cash; transactions: the ledger
    import's fields and ``external_id``)."""

    class FileKind(models.TextChoices):
        POSITIONS = "positions", "Positions"
        TRANSACTIONS = "transactions", "Transactions"

    custodian = models.CharField(max_length=64)
    kind = models.CharField(max_length=12, choices=FileKind.choices)
    columns = models.JSONField(default=dict)
    date_format = models.CharField(max_length=16, default="%Y-%m-%d")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["custodian", "kind"]
        constraints = [models.UniqueConstraint(fields=["custodian", "kind"], name="custodian_mapping_once")]

    def __str__(self) -> str:
        return f"{self.custodian} {self.kind}"


class CustodianAccount(models.Model):
    """Which portfolio a custodian's account number is."""

    custodian = models.CharField(max_length=64)
    account = models.CharField(max_length=64)
    portfolio = models.ForeignKey(Portfolio, on_delete=models.CASCADE, related_name="custodian_accounts")

    class Meta:
        ordering = ["custodian", "account"]
        constraints = [models.UniqueConstraint(fields=["custodian", "account"], name="custodian_account_once")]

    def __str__(self) -> str:
        return f"{self.custodian} {self.account}"


class CustodianPosition(models.Model):
    """One line of a custodian's positions file: units of an instrument, or cash of a currency
    (``instrument`` empty), held in a portfolio's account at the close of ``as_of``."""

    portfolio = models.ForeignKey(Portfolio, on_delete=models.CASCADE, related_name="custodian_positions")
    custodian = models.CharField(max_length=64)
    as_of = models.DateField()
    instrument = models.ForeignKey(
        "market.Instrument", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    currency = models.CharField(max_length=3)
    quantity = models.DecimalField(**QTY, help_text="Units, or the cash amount for a cash line.")
    imported_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["portfolio", "as_of", "instrument"]
        constraints = [
            models.UniqueConstraint(
                fields=["portfolio", "as_of", "instrument"],
                condition=Q(instrument__isnull=False),
                name="custodian_position_once",
            ),
            models.UniqueConstraint(
                fields=["portfolio", "as_of", "currency"],
                condition=Q(instrument__isnull=True),
                name="custodian_cash_once",
            ),
            models.CheckConstraint(condition=Q(currency__regex=CURRENCY_RE), name="custodian_position_ccy"),
        ]
        indexes = [models.Index(fields=["as_of", "portfolio"], name="custodian_position_day_idx")]

    def __str__(self) -> str:
        return f"{self.portfolio_id} {self.as_of} {self.instrument_id or self.currency}: {self.quantity}"


class CustodianImport(models.Model):
    """One committed custodian file: the firm's import history (who, when, which file, what it did)."""

    class Kind(models.TextChoices):
        POSITIONS = "positions", "Positions"
        TRANSACTIONS = "transactions", "Transactions"

    custodian = models.CharField(max_length=64)
    kind = models.CharField(max_length=12, choices=Kind.choices)
    filename = models.CharField(max_length=200, blank=True, default="")
    rows = models.PositiveIntegerField(default=0)
    created = models.PositiveIntegerField(default=0, help_text="Transactions added, or snapshots created/replaced.")
    skipped = models.PositiveIntegerField(default=0, help_text="Duplicates skipped, or snapshots unchanged.")
    portfolios = models.PositiveIntegerField(default=0)
    actor = models.CharField(max_length=254, blank=True, default="")
    imported_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-imported_at", "-id"]

    def __str__(self) -> str:
        return f"{self.custodian} {self.kind} {self.imported_at:%Y-%m-%d %H:%M}"


class BreakStatus(models.TextChoices):
    OPEN = "open", "Open"
    ADJUSTED = "adjusted", "Resolved by an adjusting transaction"
    EXPLAINED = "explained", "Explained"


class ReconciliationBreak(models.Model):
    """A difference between the ledger and the custodian for one position or cash line on a day."""

    portfolio = models.ForeignKey(Portfolio, on_delete=models.CASCADE, related_name="breaks")
    as_of = models.DateField()
    instrument = models.ForeignKey(
        "market.Instrument", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    currency = models.CharField(max_length=3)
    ledger_quantity = models.DecimalField(**QTY)
    custodian_quantity = models.DecimalField(**QTY)
    difference = models.DecimalField(**QTY, help_text="Custodian minus ledger.")
    value = models.DecimalField(**MONEY, null=True, blank=True, help_text="Difference at the day's price, local.")
    status = models.CharField(max_length=10, choices=BreakStatus.choices, default=BreakStatus.OPEN)
    note = models.CharField(max_length=500, blank=True, default="")
    adjustment = models.ForeignKey(Transaction, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    resolved_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-as_of", "portfolio", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["portfolio", "as_of", "instrument", "currency"],
                nulls_distinct=False,
                name="break_once_per_line",
            ),
            models.CheckConstraint(condition=~Q(status="explained") | ~Q(note=""), name="break_explained_has_note"),
        ]
        indexes = [models.Index(fields=["status", "portfolio"], name="break_status_idx")]

    def __str__(self) -> str:
        return f"{self.as_of} {self.instrument_id or self.currency}: {self.difference}"


class CorporateActionDecision(models.Model):
    """A firm's answer to a corporate action the feed proposed for one portfolio: accepted (the
    ledger row it booked) or dismissed. Until then the action is pending (decision 0973)."""

    class Decision(models.TextChoices):
        ACCEPTED = "accepted", "Accepted"
        DISMISSED = "dismissed", "Dismissed"

    action = models.ForeignKey("market.CorporateAction", on_delete=models.CASCADE, related_name="+")
    portfolio = models.ForeignKey(Portfolio, on_delete=models.CASCADE, related_name="+")
    decision = models.CharField(max_length=10, choices=Decision.choices)
    transaction = models.ForeignKey(Transaction, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    decided_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["action", "portfolio"], name="corporate_action_decided_once")]

    def __str__(self) -> str:
        return f"{self.action_id} {self.portfolio_id}: {self.decision}"
