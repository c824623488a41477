"""The live stream: a small ASGI app served by uvicorn beside gunicorn (decision 0940).

    uvicorn codex.live.server:app --host 0.0.0.0 --port 8001

``GET /live/stream?token=...`` answers ``text/event-stream``:

- the token (``codex.live.tokens``, minted by a session-authenticated page of the firm) names the
  firm's schema and the user; without a valid one the answer is ``401`` and nothing is streamed;
- the stream carries the user's channel and the firm's channel, nothing else;
- each event's ``id`` holds both channels' positions (``u=<stream id>;f=<stream id>``); on reconnect
  the browser sends it back as ``Last-Event-ID`` (or ``?last_event_id=`` for a new EventSource)
  and the events missed in between are replayed from the capped Redis streams;
- a comment line every ``LIVE_PING_SECONDS`` keeps proxies from closing an idle stream and finds
  clients that went away; the stream ends with an ``expired`` event when the token expires.

One Redis pub/sub connection per process carries the wake-ups of every open stream it serves
(``Hub``); entries are read with ``XRANGE`` on the shared pool. The database is never touched here.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import time
from collections import defaultdict
from typing import Any
from urllib.parse import parse_qs

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "codex.settings")
django.setup()  # settings and logging; no model is queried in this process

import redis.asyncio as aioredis  # noqa: E402
from django.conf import settings  # noqa: E402
from redis.asyncio.client import PubSub  # noqa: E402

from .publish import firm_channel, user_channel  # noqa: E402
from .tokens import BadStreamToken, StreamGrant, stream_token_verify  # noqa: E402

logger = logging.getLogger(__name__)

STREAM_PATH = "/live/stream"
HEALTH_PATH = "/live/health"
STREAM_ID = re.compile(r"^\d{1,20}-\d{1,20}$")
REPLAY_LIMIT = 500
HUB_CHANNEL = "codex:live:hub"  # the hub's connection always holds one subscription


def parse_last_event_id(value: str) -> dict[str, str]:
    """``u=1-0;f=2-0`` -> ``{"u": "1-0", "f": "2-0"}``; anything malformed is ignored."""
    positions = {}
    for part in (value or "").split(";"):
        name, _, position = part.partition("=")
        if name in ("u", "f") and STREAM_ID.match(position):
            positions[name] = position
    return positions


def format_event_id(positions: dict[str, str]) -> str:
    return f"u={positions['u']};f={positions['f']}"


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def sse(event: str, data: str, event_id: str | None = None) -> bytes:
    lines = [f"id: {event_id}"] if event_id else []
    lines.append(f"event: {event}")
    lines += [f"data: {line}" for line in data.splitlines() or [""]]
    return ("\n".join(lines) + "\n\n").encode()


class Hub:
    """One pub/sub connection per process; wakes the streams waiting on a channel."""

    def __init__(self, client: aioredis.Redis):
        self.client = client
        self.waiters: dict[str, set[asyncio.Event]] = defaultdict(set)
        self.pubsub: PubSub | None = None
        self.reader: asyncio.Task | None = None

    async def join(self, channels: list[str], wake: asyncio.Event) -> None:
        pubsub = self.pubsub
        if pubsub is None:
            pubsub = self.pubsub = self.client.pubsub()
            await pubsub.subscribe(HUB_CHANNEL)
            self.reader = asyncio.create_task(self._read(pubsub))
        new = [c for c in channels if not self.waiters.get(c)]
        for channel in channels:
            self.waiters[channel].add(wake)
        if new:
            await pubsub.subscribe(*new)

    async def leave(self, channels: list[str], wake: asyncio.Event) -> None:
        gone = []
        for channel in channels:
            self.waiters[channel].discard(wake)
            if not self.waiters[channel]:
                del self.waiters[channel]
                gone.append(channel)
        if gone and self.pubsub is not None:
            await self.pubsub.unsubscribe(*gone)

    async def _read(self, pubsub: PubSub) -> None:
        while True:
            try:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=5.0)
            except (aioredis.RedisError, OSError):
                logger.warning("live hub: Redis connection lost; streams keep their positions and catch up")
                await asyncio.sleep(1.0)
                for wakes in list(self.waiters.values()):
                    for wake in wakes:
                        wake.set()  # each stream re-reads its streams: nothing published meanwhile is lost
                continue
            if message is None:
                continue
            channel = _text(message["channel"])
            for wake in list(self.waiters.get(channel, ())):
                wake.set()

    async def close(self) -> None:
        if self.reader is not None:
            self.reader.cancel()
        if self.pubsub is not None:
            await self.pubsub.aclose()
        await self.client.aclose()


_hub: Hub | None = None


def hub() -> Hub:
    global _hub
    if _hub is None:
        _hub = Hub(aioredis.Redis.from_url(settings.LIVE_REDIS_URL))
    return _hub


async def _respond(send, status: int, body: dict) -> None:
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"cache-control", b"no-store"),
                (b"access-control-allow-origin", b"*"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


async def _latest(client: aioredis.Redis, key: str) -> str:
    last = await client.xrevrange(key, count=1)
    return _text(last[0][0]) if last else "0-0"


async def stream(grant: StreamGrant, last_event_id: str, receive, send) -> None:
    h = hub()
    client = h.client
    keys = {"u": user_channel(grant.schema, grant.user_id), "f": firm_channel(grant.schema)}
    wake = asyncio.Event()
    await h.join(list(keys.values()), wake)
    try:
        # positions are taken after subscribing: whatever is published from now on wakes us
        positions = parse_last_event_id(last_event_id)
        replay = bool(positions)
        for name, key in keys.items():
            if name not in positions:
                positions[name] = await _latest(client, key)
        gone = asyncio.Event()

        async def watch_disconnect() -> None:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    gone.set()
                    wake.set()
                    return

        watcher = asyncio.create_task(watch_disconnect())
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"text/event-stream; charset=utf-8"),
                    (b"cache-control", b"no-store"),
                    (b"x-accel-buffering", b"no"),
                    (b"access-control-allow-origin", b"*"),
                ],
            }
        )
        hello = json.dumps({"expires_in": int(grant.expires_at - time.time())})
        await send(
            {
                "type": "http.response.body",
                "body": b"retry: 3000\n\n" + sse("ready", hello, format_event_id(positions)),
                "more_body": True,
            }
        )
        if replay:
            wake.set()
        try:
            while not gone.is_set():
                remaining = grant.expires_at - time.time()
                if remaining <= 0:
                    await send({"type": "http.response.body", "body": sse("expired", "{}"), "more_body": True})
                    break
                try:
                    await asyncio.wait_for(wake.wait(), timeout=min(settings.LIVE_PING_SECONDS, remaining))
                except TimeoutError:
                    await send({"type": "http.response.body", "body": b": ping\n\n", "more_body": True})
                    continue
                wake.clear()
                if gone.is_set():
                    break
                chunks = []
                for name, key in keys.items():
                    entries = await client.xrange(key, min=f"({positions[name]}", count=REPLAY_LIMIT) or []
                    for entry_id, fields in entries:
                        positions[name] = _text(entry_id)
                        fields = fields or {}
                        event, data = _text(fields.get(b"event", b"message")), _text(fields.get(b"data", b"{}"))
                        chunks.append(sse(event, data, format_event_id(positions)))
                    if len(entries) == REPLAY_LIMIT:
                        wake.set()  # more than one batch waiting: go round again
                if chunks:
                    await send({"type": "http.response.body", "body": b"".join(chunks), "more_body": True})
        finally:
            watcher.cancel()
        if not gone.is_set():
            await send({"type": "http.response.body", "body": b"", "more_body": False})
    finally:
        await h.leave(list(keys.values()), wake)


async def app(scope, receive, send) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                global _hub
                if _hub is not None:
                    await _hub.close()
                    _hub = None
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    path = scope["path"]
    if path == HEALTH_PATH:
        try:
            await hub().client.ping()
        except (aioredis.RedisError, OSError):
            await _respond(send, 503, {"status": "redis unavailable"})
            return
        await _respond(send, 200, {"status": "ok"})
        return
    if path != STREAM_PATH:
        await _respond(send, 404, {"error": {"code": "not_found", "message": "Not found."}})
        return
    if scope["method"] != "GET":
        await _respond(send, 405, {"error": {"code": "method_not_allowed", "message": "Use GET."}})
        return
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    headers = dict(scope["headers"])
    last_event_id = headers.get(b"last-event-id", b"").decode("latin-1") or query.get("last_event_id", [""])[0]
    try:
        grant = stream_token_verify(query.get("token", [""])[0])
    except BadStreamToken as exc:
        await _respond(
            send,
            401,
            {"error": {"code": "not_authenticated", "message": f"A valid stream token is required ({exc})."}},
        )
        return
    await stream(grant, last_event_id, receive, send)
