"""End-of-day prices, dividends and splits from Alpha Vantage (API key in ``ALPHAVANTAGE_API_KEY``).

``GET {url}?function=TIME_SERIES_DAILY_ADJUSTED&symbol=<symbol>&outputsize=compact|full&apikey=...``
answers JSON::

    {"Meta Data": {"2. Symbol": "IBM", ...},
     "Time Series (Daily)": {"2026-12-04": {"4. close": "190.55", "7. dividend amount": "0.0000",
                                           "8. split coefficient": "1.0", ...}, ...}}

Its failure modes differ from Stooq's: errors come as HTTP 200 with a JSON body ``{"Error Message":
...}`` (unknown symbol), ``{"Note": ...}`` or ``{"Information": ...}`` (call frequency or plan
limit). The close used is ``4. close`` (unadjusted, as stored prices are); a dividend amount or a
split coefficient other than 1 becomes a proposed corporate action. ``compact`` gives 100 days,
``full`` the whole history: the run asks for ``full`` only to fill a longer gap. Terms: free key
with a daily call limit; commercial use needs a premium plan (docs/market-data.md).
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation

from django.conf import settings

from .base import DayQuote, FetchResult, PriceProvider
from .http import FeedError, HttpClient, looks_like_html

SERIES = "Time Series (Daily)"
COMPACT_DAYS = 100


def vendor_symbol(instrument) -> str:
    suffix = {"XLON": ".LON", "XETR": ".DEX", "XTSE": ".TRT", "XAMS": ".AMS", "XPAR": ".PAR"}
    return instrument.symbol.upper() + suffix.get((instrument.exchange or "").upper(), "")


def parse(text: str, *, key: str) -> FetchResult:
    if not text.strip():
        return FetchResult(error="alphavantage: empty answer")
    try:
        data = json.loads(text)
    except ValueError:
        return FetchResult(error="alphavantage: answer is not JSON")
    if not isinstance(data, dict):
        return FetchResult(error="alphavantage: unexpected JSON")
    for message_key in ("Error Message", "Note", "Information"):
        if message_key in data:
            return FetchResult(error=f"alphavantage: {str(data[message_key])[:200]}")
    series = data.get(SERIES)
    if not isinstance(series, dict):
        return FetchResult(error="alphavantage: no daily series in the answer")
    result = FetchResult()
    for day_text, row in series.items():
        try:
            day = date.fromisoformat(day_text)
        except ValueError:
            return FetchResult(error=f"alphavantage: unreadable date “{day_text[:20]}”")
        if not isinstance(row, dict):
            return FetchResult(error=f"alphavantage: unreadable row for {day_text}")
        result.quotes.append(DayQuote(key=key, date=day, value=str(row.get("4. close", ""))))
        try:
            dividend = Decimal(str(row.get("7. dividend amount", "0")))
            split = Decimal(str(row.get("8. split coefficient", "1")))
        except InvalidOperation:
            continue  # the close is still checked on its own; a garbled action is not proposed
        if dividend.is_finite() and dividend > 0:
            result.actions.append(("dividend", day, dividend))
        if split.is_finite() and split > 0 and split != 1:
            result.actions.append(("split", day, split))
    return result


class AlphaVantageProvider(PriceProvider):
    name = "alphavantage"

    def __init__(self, *, client: HttpClient | None = None, api_key: str | None = None, url: str | None = None):
        options = settings.MARKET_FEEDS["alphavantage"]
        self.api_key = api_key if api_key is not None else options["api_key"]
        self.url = url or options["url"]
        self.client = client or HttpClient(
            name=self.name, timeout=options["timeout"], retries=options["retries"], min_interval=options["min_interval"]
        )

    @property
    def configured(self) -> bool:
        return bool(self.api_key)

    def fetch_prices(self, instrument, start: date, end: date) -> FetchResult:
        if not self.api_key:
            return FetchResult(error="alphavantage: ALPHAVANTAGE_API_KEY is not set")
        size = "compact" if end - start < timedelta(days=COMPACT_DAYS - 5) else "full"
        params = {
            "function": "TIME_SERIES_DAILY_ADJUSTED",
            "symbol": vendor_symbol(instrument),
            "outputsize": size,
            "apikey": self.api_key,
        }
        try:
            response = self.client.get(self.url, params)
        except FeedError as exc:
            return FetchResult(error=str(exc).replace(self.api_key, "***"))
        if looks_like_html(response):
            result = FetchResult(error="alphavantage: answered an HTML page, not JSON")
        else:
            result = parse(response.text, key=str(instrument.pk))
        self.client.note_rows(len(result.quotes), subject=str(instrument), error=result.error)
        result.quotes = [q for q in result.quotes if start <= q.date <= end]
        result.actions = [a for a in result.actions if start <= a[1] <= end]
        return result
