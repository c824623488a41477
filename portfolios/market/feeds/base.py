"""What every market-data provider returns, and the checks a quote passes before it is stored.

A provider parses its vendor's answer into ``DayQuote`` rows (one instrument or currency, one
day) or raises ``FeedError`` for the whole answer (timeout, HTML, empty body, an error message
from the vendor). ``checked_quotes`` then drops, day by day, what must not be stored: a close or
rate that is not a positive finite number, a currency that does not exist or is not the
instrument's, a day in the future, and a jump beyond ``max_jump`` (x or 1/x) from the previous
accepted value. Each drop is a ``Rejection`` in the run's report; the other days are stored.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from functools import cache

from babel.numbers import list_currencies

from .http import CallRecord, FeedError, HttpClient

__all__ = ["DayQuote", "FeedError", "FetchResult", "FxProvider", "PriceProvider", "Rejection", "checked_quotes"]


@dataclass(frozen=True)
class DayQuote:
    key: str  # the instrument's id (as text) or the quoted currency
    date: date
    value: str  # as the vendor wrote it: checked and converted by ``checked_quotes``
    currency: str = ""


@dataclass(frozen=True)
class Rejection:
    date: str
    reason: str


@dataclass
class FetchResult:
    """One key's answer: quotes to check, or the reason there are none."""

    quotes: list[DayQuote] = field(default_factory=list)
    error: str = ""
    # Corporate actions the vendor reported (kind "split"/"dividend", date, value), for the firms to accept.
    actions: list[tuple[str, date, Decimal]] = field(default_factory=list)


class CallsRecorded:
    """Providers that call a vendor over HTTP keep their ``HttpClient`` as ``client``; the run
    collects its call records (decision 1030)."""

    name = "provider"

    def drain_calls(self) -> list[CallRecord]:
        """The calls made since the last drain (none for a provider that reads no network)."""
        client = getattr(self, "client", None)
        return client.drain() if isinstance(client, HttpClient) else []


class PriceProvider(CallsRecorded, abc.ABC):
    name = "provider"

    @abc.abstractmethod
    def fetch_prices(self, instrument, start: date, end: date) -> FetchResult:
        """Daily closes of one instrument between ``start`` and ``end`` (inclusive). Never raises
        for a vendor failure: the error goes into the result, the other instruments carry on."""


class FxProvider(CallsRecorded, abc.ABC):
    name = "fx"
    base = "EUR"

    @abc.abstractmethod
    def fetch_rates(self, start: date, end: date) -> dict[str, FetchResult]:
        """Rates of one ``base`` unit in each quoted currency, per currency. Raises ``FeedError``
        when the answer as a whole is unusable."""


@cache
def known_currencies() -> frozenset[str]:
    return frozenset(list_currencies())


def _decimal(raw: str) -> Decimal | None:
    try:
        value = Decimal(raw.strip())
    except (InvalidOperation, AttributeError):
        return None
    return value if value.is_finite() else None


def checked_quotes(
    quotes: Iterable[DayQuote],
    *,
    expected_currency: str,
    previous: Decimal | None,
    today: date,
    max_jump: Decimal,
    places: Decimal,
) -> tuple[list[tuple[date, Decimal]], list[Rejection]]:
    """Accepted ``(date, value)`` in date order, and what was refused and why. Pure."""
    accepted: list[tuple[date, Decimal]] = []
    rejected: list[Rejection] = []
    seen: dict[date, Decimal] = {}
    last = previous
    for quote in sorted(quotes, key=lambda q: q.date):
        day = quote.date.isoformat()
        value = _decimal(quote.value)
        if value is None:
            rejected.append(Rejection(day, f"“{quote.value[:40]}” is not a number"))
            continue
        if value <= 0:
            rejected.append(Rejection(day, f"value {quote.value} is not positive"))
            continue
        currency = quote.currency.upper()
        if currency and currency not in known_currencies():
            rejected.append(Rejection(day, f"unknown currency {currency}"))
            continue
        if currency and expected_currency and currency != expected_currency:
            rejected.append(Rejection(day, f"quoted in {currency}, the instrument trades in {expected_currency}"))
            continue
        if quote.date > today:
            rejected.append(Rejection(day, "date is in the future"))
            continue
        if quote.date in seen:
            if seen[quote.date] != value:
                rejected.append(Rejection(day, "two different values for the same day"))
                accepted = [(d, v) for d, v in accepted if d != quote.date]
            continue
        if last is not None and (value > last * max_jump or value * max_jump < last):
            rejected.append(Rejection(day, f"{value} jumps more than {max_jump}x from {last}; held for review"))
            continue
        quantized = value.quantize(places)
        seen[quote.date] = quantized
        accepted.append((quote.date, quantized))
        last = quantized
    return accepted, rejected


def as_sequence(items: Sequence | None) -> list:
    return list(items or [])
