"""FX: the European Central Bank's euro foreign exchange reference rates (no key).

About 30 currencies against the euro, published around 16:00 CET on TARGET business days. Three
files: today's, the last 90 days, and the whole history since 1999; the run asks for the
smallest one that covers the gap since the last stored rate. Format (``Cube`` elements)::

    <Cube><Cube time="2026-12-04"><Cube currency="USD" rate="1.0921"/>...</Cube></Cube>

Stored as ``EUR/<currency>`` rates (one euro buys ``rate`` units). Terms: free of charge, the
source must be quoted; the rates are for information only (docs/market-data.md).
"""

from __future__ import annotations

from datetime import date, timedelta
from xml.etree.ElementTree import ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring
from django.conf import settings

from .base import DayQuote, FetchResult, FxProvider
from .http import FeedError, HttpClient, looks_like_html

NS = "{http://www.ecb.int/vocabulary/2002-08-01/eurofxref}"
DAILY, HIST_90D, HIST = "eurofxref-daily.xml", "eurofxref-hist-90d.xml", "eurofxref-hist.xml"


def parse(text: str) -> dict[str, FetchResult]:
    """Rates per currency from an ECB reference-rates XML file. ``FeedError`` when unusable."""
    if not text.strip():
        raise FeedError("ecb: empty answer")
    try:
        root = fromstring(text)
    except (ParseError, DefusedXmlException) as exc:
        raise FeedError(f"ecb: not the reference-rates XML ({exc})") from exc
    days = root.findall(f"./{NS}Cube/{NS}Cube[@time]")
    if not days:
        raise FeedError("ecb: the XML holds no dated rates")
    out: dict[str, FetchResult] = {}
    for day in days:
        try:
            when = date.fromisoformat(day.get("time", ""))
        except ValueError as exc:
            raise FeedError(f"ecb: unreadable date {day.get('time')!r}") from exc
        for cube in day.findall(f"{NS}Cube"):
            currency = (cube.get("currency") or "").upper()
            out.setdefault(currency, FetchResult()).quotes.append(
                DayQuote(key=currency, date=when, value=cube.get("rate") or "", currency=currency)
            )
    return out


class EcbProvider(FxProvider):
    name = "ecb"
    base = "EUR"

    def __init__(self, *, client: HttpClient | None = None, base_url: str | None = None):
        options = settings.MARKET_FEEDS["ecb"]
        self.base_url = (base_url or options["url"]).rstrip("/")
        self.client = client or HttpClient(
            name=self.name, timeout=options["timeout"], retries=options["retries"], min_interval=options["min_interval"]
        )

    def file_for(self, start: date, end: date) -> str:
        span = (end - start).days
        if span <= 0:
            return DAILY
        return HIST_90D if end - timedelta(days=89) <= start else HIST

    def fetch_rates(self, start: date, end: date) -> dict[str, FetchResult]:
        response = self.client.get(f"{self.base_url}/{self.file_for(start, end)}")
        try:
            if looks_like_html(response):
                raise FeedError("ecb: answered an HTML page, not the XML file")
            rates = parse(response.text)
        except FeedError as exc:
            self.client.note_rows(0, subject=f"{self.base}/*", error=str(exc))
            raise
        self.client.note_rows(sum(len(r.quotes) for r in rates.values()), subject=f"{self.base}/*")
        for result in rates.values():
            result.quotes = [q for q in result.quotes if start <= q.date <= end]
        return rates
