"""Publishing live events (sync: web requests and Celery tasks).

Each event is appended to a capped Redis stream (``XADD ... MAXLEN ~``), one per user and one per
firm, and the stream's key is PUBLISHed so every stream server holding a subscriber wakes up and
reads the new entries. The stream is the replay buffer behind ``Last-Event-ID``: a page that lost
its connection for a moment gets what it missed; one away longer than the buffer reloads its state
by polling. Any number of web nodes and stream servers share one Redis.

Publishing is best effort by design: the database row (a notification) is the record, the push is
a hint. A Redis failure is logged and the page's poll picks the row up.
"""

from __future__ import annotations

import json
import logging
from functools import cache

import redis
from django.conf import settings

logger = logging.getLogger(__name__)


def user_channel(schema: str, user_id: int) -> str:
    return f"codex:live:{schema}:user:{int(user_id)}"


def firm_channel(schema: str) -> str:
    return f"codex:live:{schema}:firm"


@cache
def _client() -> redis.Redis:
    return redis.Redis.from_url(settings.LIVE_REDIS_URL)


def live_publish(*, schema: str, event: str, data: dict, user_ids=None) -> int:
    """Push ``event`` with ``data`` to each user in ``user_ids`` of the firm ``schema``, or to every
    open page of the firm when ``user_ids`` is None. Call it after the commit (``on_commit``) of
    what it announces. Returns the number of streams written (0 if Redis refused)."""
    keys = [firm_channel(schema)] if user_ids is None else [user_channel(schema, uid) for uid in user_ids]
    if not keys:
        return 0
    body = json.dumps(data, separators=(",", ":"), default=str)
    pipe = _client().pipeline(transaction=False)
    for key in keys:
        pipe.xadd(key, {"event": event, "data": body}, maxlen=settings.LIVE_STREAM_MAXLEN, approximate=True)
        pipe.expire(key, settings.LIVE_STREAM_TTL_SECONDS)
        pipe.publish(key, b"")
    try:
        pipe.execute()
    except redis.RedisError:
        logger.warning("live event %s for %s not pushed (Redis); pages will see it on their next poll", event, schema)
        return 0
    return len(keys)
