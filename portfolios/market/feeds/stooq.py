"""End-of-day prices from Stooq (stooq.com): keyless CSV, one request per instrument.

``GET {url}?s=<symbol>.<market>&d1=YYYYMMDD&d2=YYYYMMDD&i=d`` answers::

    Date,Open,High,Low,Close,Volume
    2026-12-04,189.7,191.2,188.9,190.55,51234000

Failure modes met in the wild and handled: the body ``No data`` (unknown symbol or no trading in
the range), ``Exceeded the daily hits limit`` (rate limit, with HTTP 200), an HTML page (a
maintenance or consent page), an empty body. Stooq publishes no currency: the instrument's is
assumed, so only listings whose market suffix is mapped below are fetched. Terms: free for
personal, non-commercial use; docs/market-data.md says what that means for a production firm.
"""

from __future__ import annotations

import csv
import io
from datetime import date

from django.conf import settings

from .base import DayQuote, FetchResult, PriceProvider
from .http import FeedError, HttpClient, looks_like_html

#: Exchange (MIC or common name) -> Stooq market suffix.
MARKETS = {
    "XNAS": "us",
    "XNYS": "us",
    "ARCX": "us",
    "XASE": "us",
    "NASDAQ": "us",
    "NYSE": "us",
    "XETR": "de",
    "XFRA": "de",
    "XLON": "uk",
    "LSE": "uk",
    "XTKS": "jp",
    "XHKG": "hk",
    "XHUN": "hu",
    "XWAR": "pl",
}


def stooq_symbol(instrument) -> str | None:
    market = MARKETS.get((instrument.exchange or "").upper())
    return f"{instrument.symbol.lower()}.{market}" if market else None


def parse(text: str, *, key: str) -> FetchResult:
    body = text.strip()
    if not body:
        return FetchResult(error="stooq: empty answer")
    lowered = body.lower()
    if lowered.startswith("no data"):
        return FetchResult(error="stooq: no data for this symbol and range")
    if "exceeded the daily hits limit" in lowered:
        return FetchResult(error="stooq: daily request limit reached; the next run fills the gap")
    reader = csv.reader(io.StringIO(body))
    header = [name.strip().lower() for name in next(reader, [])]
    if "date" not in header or "close" not in header:
        return FetchResult(error=f"stooq: unexpected answer (first line “{body.splitlines()[0][:60]}”)")
    at_date, at_close = header.index("date"), header.index("close")
    result = FetchResult()
    for line in reader:
        if not line:
            continue
        try:
            day = date.fromisoformat(line[at_date].strip())
            value = line[at_close]
        except (ValueError, IndexError):
            return FetchResult(error=f"stooq: unreadable row “{','.join(line)[:60]}”")
        result.quotes.append(DayQuote(key=key, date=day, value=value))
    return result


class StooqProvider(PriceProvider):
    name = "stooq"

    def __init__(self, *, client: HttpClient | None = None, url: str | None = None):
        options = settings.MARKET_FEEDS["stooq"]
        self.url = url or options["url"]
        self.client = client or HttpClient(
            name=self.name, timeout=options["timeout"], retries=options["retries"], min_interval=options["min_interval"]
        )

    def fetch_prices(self, instrument, start: date, end: date) -> FetchResult:
        symbol = stooq_symbol(instrument)
        if symbol is None:
            return FetchResult(error=f"stooq: no market mapped for exchange “{instrument.exchange}”")
        params = {"s": symbol, "d1": start.strftime("%Y%m%d"), "d2": end.strftime("%Y%m%d"), "i": "d"}
        try:
            response = self.client.get(self.url, params)
        except FeedError as exc:
            return FetchResult(error=str(exc))
        if looks_like_html(response):
            result = FetchResult(error="stooq: answered an HTML page, not CSV")
        else:
            result = parse(response.text, key=str(instrument.pk))
        self.client.note_rows(len(result.quotes), subject=str(instrument), error=result.error)
        result.quotes = [q for q in result.quotes if start <= q.date <= end]
        return result
