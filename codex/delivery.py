"""Delivery ledger: a task sent through Redis is remembered until it has finished.

Why: kombu's Redis transport takes a message with ``BRPOP`` and only then records it in its
``unacked`` hash. A worker killed between the two (SIGKILL, node lost, OOM) loses the message for
good: it is in no queue and in no unacked set, so no visibility timeout ever brings it back
(celery/kombu#305, celery/celery#7950). The worker-kill drill hit that window about once in ten
runs (one task in 200 never ran).

How: every message published to a Redis broker is written to a ledger (a hash of task id to the
message, and a sorted set of task id to when it was sent) before it is published. The worker
removes the entry when the task has finished (success or final failure; a retry publishes a new
message under the same id, which refreshes the entry). ``redeliver_lost`` (Celery beat, every
minute) looks at entries older than a grace period, and re-publishes the ones whose message is
neither waiting in its queue nor held in the unacked hash: exactly the messages the window lost.
A task may therefore run twice (as with any redelivery); every task's effect is idempotent
(decision 0601).

Brokers that acknowledge on the server (RabbitMQ) do not need it: the ledger is on only for a
``redis://`` / ``rediss://`` broker, and never in eager mode.
"""

from __future__ import annotations

import json
import logging
import time

from celery.signals import before_task_publish, task_postrun, task_rejected, task_revoked, task_unknown
from django.conf import settings
from kombu.transport.redis import Channel as RedisChannel

logger = logging.getLogger(__name__)

LEDGER_KEY = "codex:delivery:ledger"  # hash: task id -> the message as JSON
SENT_KEY = "codex:delivery:sent"  # sorted set: task id -> when it was (re)sent, epoch seconds
FINISHED_STATES = frozenset({"SUCCESS", "FAILURE", "REJECTED", "IGNORED", "REVOKED"})


def transport_option(name: str):
    """One of kombu's documented Redis transport options (``unacked_key``, ``sep``,
    ``priority_steps``): the value set in ``CELERY_BROKER_TRANSPORT_OPTIONS``, else the transport's
    own default, so the sweep looks where the broker really keeps its messages."""
    options = getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", None) or {}
    return options.get(name, getattr(RedisChannel, name))


def priority_queue_names(queue: str) -> list[str]:
    """The Redis lists of one queue: the queue itself (priority 0) and one per priority step."""
    sep = transport_option("sep")
    return [queue] + [f"{queue}{sep}{step}" for step in transport_option("priority_steps") if step]


class Ledger:
    def __init__(self, client, broker_url: str):
        self.client = client
        self.broker_url = broker_url

    # --- the sender and the worker --------------------------------------------------------------
    def record(self, *, task_id: str, message: dict, sent_at: float | None = None) -> None:
        when = time.time() if sent_at is None else sent_at
        pipe = self.client.pipeline(transaction=False)
        # No ``default=``: a message JSON cannot hold fails here as it will in the publish that
        # follows (the caller sees the error), instead of leaving a mangled copy to re-send.
        pipe.hset(LEDGER_KEY, task_id, json.dumps(message))
        pipe.zadd(SENT_KEY, {task_id: when})
        pipe.execute()

    def finish(self, task_id: str) -> None:
        pipe = self.client.pipeline(transaction=False)
        pipe.hdel(LEDGER_KEY, task_id)
        pipe.zrem(SENT_KEY, task_id)
        pipe.execute()

    def pending(self, task_ids: list[str] | None = None) -> int:
        """Entries not finished yet: all of them, or those of ``task_ids``."""
        if task_ids is None:
            return self.client.zcard(SENT_KEY)
        return sum(1 for raw in self.client.hmget(LEDGER_KEY, task_ids) if raw is not None) if task_ids else 0

    def unfinished(self, task_ids: list[str]) -> set[str]:
        """Which of ``task_ids`` are still in the ledger: queued, held by a worker or running."""
        if not task_ids:
            return set()
        raws = self.client.hmget(LEDGER_KEY, task_ids)
        return {task_id for task_id, raw in zip(task_ids, raws, strict=True) if raw is not None}

    # --- the sweep -----------------------------------------------------------------------------
    def _ids_in_broker(self, queues: set[str], wanted: set[str], *, chunk: int = 500) -> set[str]:
        """Which of ``wanted`` (task ids) wait in ``queues`` or are held unacked by some worker.

        The unacked hash holds at most what the workers prefetched. A queue may hold a backlog: it
        is read from its oldest end (kombu pushes on the left and pops on the right), ``chunk``
        messages at a time, and no further once every wanted id was seen; the wanted ids are the
        oldest entries of the ledger, so after an outage the sweep reads about as many messages
        as it looks for, not the whole backlog every minute."""
        found: set[str] = set()

        def add(raw) -> None:
            try:
                payload = json.loads(raw)
                if isinstance(payload, list):  # unacked: [message, exchange, routing key]
                    payload = payload[0]
                task_id = payload["headers"]["id"]
            except (ValueError, KeyError, IndexError, TypeError):
                logger.warning("delivery ledger: a broker message without a task id was skipped")
                return
            if task_id in wanted:
                found.add(task_id)

        for _tag, raw in self.client.hscan_iter(transport_option("unacked_key"), count=500):
            add(raw)
        for queue in queues:
            for name in priority_queue_names(queue):
                stop = -1
                while len(found) < len(wanted):
                    raws = self.client.lrange(name, stop - chunk + 1, stop)
                    for raw in reversed(raws):
                        add(raw)
                    if len(raws) < chunk:
                        break
                    stop -= chunk
        return found

    def redeliver_lost(self, *, grace: float, app, limit: int = 1000, chunk: int = 500) -> list[str]:
        """Re-publish ledger entries older than ``grace`` seconds whose message the broker lost.

        Returns the task ids re-published. Checking the broker after reading the candidates and
        reading each entry again just before publishing keeps a task that finished meanwhile
        from being sent again; the rare duplicate left (a message taken by a worker in the very
        instant of the check) is harmless, as every task's effect is idempotent.
        """
        cutoff = time.time() - grace
        candidates = [tid.decode() for tid in self.client.zrangebyscore(SENT_KEY, 0, cutoff, start=0, num=limit)]
        if not candidates:
            return []
        messages = {}
        for task_id, raw in zip(candidates, self.client.hmget(LEDGER_KEY, candidates), strict=True):
            if raw is None:  # finished between the two reads, or a half-written entry
                self.client.zrem(SENT_KEY, task_id)
                continue
            messages[task_id] = json.loads(raw)
        if not messages:
            return []
        present = self._ids_in_broker({m["routing_key"] for m in messages.values()}, set(messages), chunk=chunk)
        resent: list[str] = []
        lost = [task_id for task_id in messages if task_id not in present]
        if not lost:
            # Still queued or running: look again after another grace period.
            self.client.zadd(SENT_KEY, {task_id: time.time() for task_id in messages}, xx=True)
            return []
        with app.connection_for_write(self.broker_url) as conn:
            producer = conn.Producer()
            for task_id in lost:
                if not self.client.hexists(LEDGER_KEY, task_id):
                    continue  # it finished after all
                message = messages[task_id]
                producer.publish(
                    message["body"],
                    exchange=message["exchange"],
                    routing_key=message["routing_key"],
                    headers=message["headers"],
                    serializer="json",
                    **message["properties"],
                )
                self.client.zadd(SENT_KEY, {task_id: time.time()}, xx=True)
                resent.append(task_id)
        still_there = [task_id for task_id in messages if task_id in present]
        if still_there:
            self.client.zadd(SENT_KEY, {task_id: time.time() for task_id in still_there}, xx=True)
        if resent:
            logger.warning(
                "delivery ledger: %d task(s) lost by the broker were sent again",
                len(resent),
                extra={"task_ids": resent[:20]},
            )
        return resent


_ledger: Ledger | None = None
_resolved = False


def set_ledger(ledger: Ledger | None) -> None:
    """Use ``ledger`` (tests); ``None`` goes back to the one the settings describe."""
    global _ledger, _resolved
    _ledger, _resolved = ledger, ledger is not None


def ledger() -> Ledger | None:
    """The ledger of the configured broker, or None when the broker does not need one."""
    global _ledger, _resolved
    if not _resolved:
        # function-level: the Celery app imports task modules: cycle listed in the acyclic contract
        from .celery import app

        url = app.conf.broker_url or ""
        if settings.DELIVERY_LEDGER and url.startswith(("redis://", "rediss://")) and not app.conf.task_always_eager:
            import redis  # function-level: optional: only with a Redis broker

            _ledger = Ledger(redis.Redis.from_url(url), url)
        _resolved = True
    return _ledger


@before_task_publish.connect(dispatch_uid="codex.delivery.record")
def _record_on_publish(sender=None, body=None, exchange=None, routing_key=None, headers=None, properties=None, **_):
    book = ledger()
    if book is None or not headers or "id" not in headers:
        return
    book.record(
        task_id=headers["id"],
        message={
            "task": sender,
            "body": body,
            "exchange": exchange or "",
            "routing_key": routing_key,
            "headers": headers,
            "properties": {
                k: v for k, v in (properties or {}).items() if k in ("correlation_id", "reply_to", "priority")
            },
        },
    )


def _finish(task_id) -> None:
    book = ledger()
    if book is not None and task_id:
        book.finish(task_id)


@task_revoked.connect(dispatch_uid="codex.delivery.revoked")
def _finish_on_revoked(sender=None, request=None, **_):
    """A revoked or expired task never runs: the worker acked its message; nothing to re-send."""
    _finish(getattr(request, "id", None))


@task_unknown.connect(dispatch_uid="codex.delivery.unknown")
def _finish_on_unknown(sender=None, id=None, **_):  # noqa: A002 (the signal's argument name)
    """A message for a task this worker does not know was dropped: re-sending it would loop."""
    _finish(id)


@task_rejected.connect(dispatch_uid="codex.delivery.rejected")
def _finish_on_rejected(sender=None, message=None, **_):
    """A message the worker could not accept (bad content type, not decodable) was dropped."""
    _finish((getattr(message, "headers", None) or {}).get("id"))


@task_postrun.connect(dispatch_uid="codex.delivery.finish")
def _finish_on_postrun(sender=None, task_id=None, task=None, state=None, **_):
    if task is not None and task.request.is_eager:
        return
    if state not in FINISHED_STATES:
        return  # RETRY: the retry's own message refreshed the entry
    _finish(task_id)
