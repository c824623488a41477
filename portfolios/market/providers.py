"""Where daily closes come from. A live feed plugs in as another ``PriceProvider``.

A provider only *fetches*; storing goes through ``services.prices_import_rows`` so a feed gets the
same idempotency, conflict reporting and all-or-nothing behaviour as a file. ``FileProvider`` (a
CSV in the documented prices format) is the only provider wired; tests never touch the network.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from .models import Instrument
from .services import ImportResult, _read_csv, prices_import_rows


class ProviderError(Exception):
    """The provider could not deliver (unreadable source, feed down)."""


@dataclass(frozen=True)
class Quote:
    symbol: str
    exchange: str
    date: date
    close: Decimal
    currency: str = ""


class PriceProvider(abc.ABC):
    """Fetch daily closes for ``instruments`` between ``start`` and ``end`` (both inclusive)."""

    name = "provider"

    @abc.abstractmethod
    def fetch(self, instruments: Sequence[Instrument], start: date, end: date) -> Iterable[Quote]:
        """Yield one ``Quote`` per instrument and trading day found; unknown days are simply absent."""


class FileProvider(PriceProvider):
    """Reads a CSV in the prices format (``symbol,exchange,date,close[,currency]``)."""

    name = "file"

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def fetch(self, instruments: Sequence[Instrument], start: date, end: date) -> Iterator[Quote]:
        wanted = {(i.symbol.upper(), i.exchange.upper()) for i in instruments}
        _header, rows = _read_csv(str(self.path))
        for number, row in rows:
            key = ((row.get("symbol") or "").strip().upper(), (row.get("exchange") or "").strip().upper())
            if key not in wanted:
                continue
            try:
                day = date.fromisoformat((row.get("date") or "").strip())
                close = Decimal((row.get("close") or "").strip())
            except (ValueError, InvalidOperation) as exc:
                raise ProviderError(f"{self.path.name} row {number}: unreadable date or close") from exc
            if start <= day <= end:
                yield Quote(
                    symbol=key[0],
                    exchange=key[1],
                    date=day,
                    close=close,
                    currency=(row.get("currency") or "").strip().upper(),
                )


def provider_default() -> PriceProvider:
    """The provider named by ``CODEX_PRICE_PROVIDER`` (a dotted path), built with its options."""
    path = getattr(settings, "CODEX_PRICE_PROVIDER", "portfolios.market.providers.FileProvider")
    options = getattr(settings, "CODEX_PRICE_PROVIDER_OPTIONS", {})
    try:
        return import_string(path)(**options)
    except TypeError as exc:
        raise ImproperlyConfigured(
            f"CODEX_PRICE_PROVIDER_OPTIONS do not fit {path} ({exc}); FileProvider needs {{'path': ...}}."
        ) from exc


def prices_refresh(
    *, provider: PriceProvider, instruments: Sequence[Instrument], start: date, end: date, overwrite: bool = False
) -> ImportResult:
    """Fetch from ``provider`` and store through the importer (same guarantees as a file import)."""
    rows = (
        (
            number,
            {
                "symbol": quote.symbol,
                "exchange": quote.exchange,
                "date": quote.date.isoformat(),
                "close": str(quote.close),
                "currency": quote.currency,
            },
        )
        for number, quote in enumerate(provider.fetch(instruments, start, end), start=1)
    )
    return prices_import_rows(rows=rows, kind="prices", overwrite=overwrite, source=provider.name)
