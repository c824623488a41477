"""The one HTTP door of the market-data providers: timeout, retries with back-off, a rate limit.

urllib3 (already pinned for webhooks) does the work: ``Retry`` re-sends on connection errors and on
429/5xx with exponential back-off (honouring ``Retry-After``); the rate limit is a minimum interval
between two calls of one provider in this process (providers run in one Celery task at a time, by
beat). Every failure becomes ``FeedError`` with a message an operator can act on.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import urllib3
from urllib3.exceptions import HTTPError, MaxRetryError, TimeoutError

MAX_BODY_BYTES = 20 * 1024 * 1024


class FeedError(Exception):
    """The provider could not deliver usable data (down, timeout, refused, garbage)."""


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

    def _wait_turn(self) -> None:
        with self._lock:
            delay = self._last_call + self.min_interval - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            self._last_call = time.monotonic()

    def get(self, url: str, params: dict | None = None) -> Response:
        self._wait_turn()
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
            raise FeedError(f"{self.name}: answer larger than {MAX_BODY_BYTES} bytes")
        if response.status != 200:
            raise FeedError(f"{self.name}: HTTP {response.status}")
        try:
            text = body.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise FeedError(f"{self.name}: answer is not UTF-8 text") from exc
        return Response(response.status, response.headers.get("Content-Type", ""), text)


def looks_like_html(response: Response) -> bool:
    head = response.text.lstrip()[:200].lower()
    return "html" in response.content_type.lower() or head.startswith(("<!doctype html", "<html"))
