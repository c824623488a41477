"""``PortfolioData``: everything the analytics need about one portfolio (its ledger, prices, FX)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import cached_property

from .ledger import InstrumentInfo, PriceSeries, Txn, _txn_date
from .lots import LotBook, build_lots


@dataclass(frozen=True)
class PortfolioData:
    """Everything the analytics need about one portfolio.

    ``prices`` maps instrument id to its daily closes in the instrument's currency, sorted by
    date, one row per date, *unadjusted* for splits (the ledger's split rows adjust the
    quantities). ``fx`` maps currency to ``(date, value of one unit in base currency)``, sorted.
    Transactions may come in any order; same-day rows keep the order given (sort by
    ``(date, id)`` in the selector).
    """

    base_currency: str
    txns: Sequence[Txn]
    instruments: Mapping[object, InstrumentInfo] = field(default_factory=dict)
    prices: Mapping[object, PriceSeries] = field(default_factory=dict)
    fx: Mapping[str, PriceSeries] = field(default_factory=dict)
    lot_method: str = "fifo"

    @cached_property
    def sorted_txns(self) -> list[Txn]:
        return sorted(self.txns, key=_txn_date)

    @cached_property
    def inception(self) -> date | None:
        return self.sorted_txns[0].date if self.txns else None

    @cached_property
    def lot_book(self) -> LotBook:
        return build_lots(self.sorted_txns, method=self.lot_method)

    def currency_of(self, instrument_id: object) -> str:
        info = self.instruments.get(instrument_id)
        if info is not None:
            return info.currency
        return self._trade_currency.get(instrument_id, self.base_currency)

    @cached_property
    def _trade_currency(self) -> dict[object, str]:
        out: dict[object, str] = {}
        for t in self.sorted_txns:
            if t.instrument_id is not None:
                out.setdefault(t.instrument_id, t.currency)
        return out
