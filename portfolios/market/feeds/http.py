"""The one HTTP door of the market-data providers: timeout, retries with back-off, a rate limit.

urllib3 (already pinned for webhooks) does the work: ``Retry`` re-sends on connection errors and on
429/5xx with exponential back-off (honouring ``Retry-After``); the rate limit is a minimum interval
between two calls of one provider in this process (providers run in one Celery task at a time, by
beat). Every failure becomes ``FeedError`` with a message an operator can act on.

Every call, answered or not, leaves a ``CallRecord`` in ``HttpClient.call_log``: the URL with any
key or token parameter masked, when, the HTTP status (0 when nothing answered), the latency, the
error; the provider adds how many rows it read from the answer. The feed run stores the records as
``ProviderCall`` rows with who started it (decision 1030).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlencode

import urllib3
from django.utils import timezone
from urllib3.exceptions import HTTPError, MaxRetryError, TimeoutError

MAX_BODY_BYTES = 20 * 1024 * 1024
#: Query parameters whose value is a credential: masked in every recorded URL.
SECRET_PARAMS = frozenset({"apikey", "api_key", "key", "token", "access_key", "secret", "password"})
MASK = "***"


class FeedError(Exception):
    """The provider could not deliver usable data (down, timeout, refused, garbage). ``status`` is
    the HTTP status when the provider answered with one that is not 200."""

    def __init__(self, message: str, *, status: int = 0):
        super().__init__(message)
        self.status = status


def redacted_url(url: str, params: dict | None = None) -> str:
    """``url`` with ``params`` as its query string, the value of every credential parameter masked."""
    if not params:
        return url
    shown = {k: (MASK if str(k).lower() in SECRET_PARAMS else v) for k, v in params.items()}
    return f"{url}?{urlencode(shown, safe='*')}"


def _masked(text: str, params: dict | None) -> str:
    """``text`` (an error that may quote the URL) without the value of any credential parameter."""
    for key, value in (params or {}).items():
        if str(key).lower() in SECRET_PARAMS and value:
            text = text.replace(str(value), MASK)
    return text


@dataclass
class CallRecord:
    """One call to a provider: what was asked, when, how it went, and (noted by the provider after
    parsing) what it was about and how many rows the answer held."""

    url: str
    started_at: datetime
    status: int = 0  # the HTTP status; 0 when nothing answered (timeout, unreachable)
    latency_ms: int = 0
    error: str = ""
    rows: int = 0
    subject: str = ""  # the instrument or currency asked about; "" for a whole file


@dataclass(frozen=True)
class Response:
    status: int
    content_type: str
    text: str


class HttpClient:
    def __init__(self, *, name: str, timeout: float, retries: int, min_interval: float, backoff: float = 1.0):
        self.name = name
        self.timeout = urllib3.Timeout(connect=min(timeout, 5.0), read=timeout)
        self.retry = urllib3.Retry(
            total=retries,
            backoff_factor=backoff,
            status_forcelist=(429, 500, 502, 503, 504),
            allowed_methods=frozenset({"GET"}),
            respect_retry_after_header=True,
            raise_on_status=False,
        )
        self.min_interval = min_interval
        self._pool = urllib3.PoolManager(headers={"User-Agent": "Codex market data (+docs/market-data.md)"})
        self._lock = threading.Lock()
        self._last_call = 0.0
        self.call_log: list[CallRecord] = []

    def drain(self) -> list[CallRecord]:
        """The calls recorded since the last drain (the feed run stores them)."""
        calls, self.call_log = self.call_log, []
        return calls

    def note_rows(self, rows: int, *, subject: str = "", error: str = "") -> None:
        """The provider's reading of the last answer: rows got, what it was about, why it was unusable."""
        if self.call_log:
            last = self.call_log[-1]
            last.rows, last.subject = rows, subject or last.subject
            last.error = last.error or error[:500]

    def _wait_turn(self) -> None:
        with self._lock:
            delay = self._last_call + self.min_interval - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            self._last_call = time.monotonic()

    def get(self, url: str, params: dict | None = None) -> Response:
        """One GET, recorded in ``call_log`` whatever happens. ``FeedError`` for any failure."""
        self._wait_turn()
        record = CallRecord(url=redacted_url(url, params), started_at=timezone.now())
        self.call_log.append(record)
        started = time.monotonic()
        try:
            response = self.request(url, params)
        except FeedError as exc:
            record.status, record.error = exc.status, _masked(str(exc), params)[:500]
            raise
        finally:
            record.latency_ms = int((time.monotonic() - started) * 1000)
        record.status = response.status
        return response

    def request(self, url: str, params: dict | None) -> Response:
        """The network part of ``get``: a 200 answer as text, or ``FeedError``."""
        try:
            response = self._pool.request(
                "GET", url, fields=params, timeout=self.timeout, retries=self.retry, preload_content=False
            )
            body = response.read(MAX_BODY_BYTES + 1)
            response.release_conn()
        except TimeoutError as exc:
            raise FeedError(f"{self.name}: no answer within {self.timeout.read_timeout} s") from exc
        except MaxRetryError as exc:
            raise FeedError(f"{self.name}: unreachable after retries ({exc.reason})") from exc
        except HTTPError as exc:
            raise FeedError(f"{self.name}: HTTP error ({exc})") from exc
        if len(body) > MAX_BODY_BYTES:
            raise FeedError(f"{self.name}: answer larger than {MAX_BODY_BYTES} bytes", status=response.status)
        if response.status != 200:
            raise FeedError(f"{self.name}: HTTP {response.status}", status=response.status)
        try:
            text = body.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise FeedError(f"{self.name}: answer is not UTF-8 text", status=response.status) from exc
        return Response(response.status, response.headers.get("Content-Type", ""), text)


def looks_like_html(response: Response) -> bool:
    head = response.text.lstrip()[:200].lower()
    return "html" in response.content_type.lower() or head.startswith(("<!doctype html", "<html"))
