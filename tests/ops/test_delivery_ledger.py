"""Delivery ledger (codex/delivery.py): a message the Redis broker lost is sent again, once.

Against a private redis-server. The loss is made the way a SIGKILL makes it: the message is taken
off its queue (kombu's BRPOP) and never recorded in the unacked hash.
"""

from __future__ import annotations

import base64
import json
import time

import pytest
from celery.signals import task_postrun
from django.conf import settings

from codex import delivery
from codex.celery import app
from codex.delivery import LEDGER_KEY, SENT_KEY, Ledger, transport_option
from codex.jobs import drill_write

QUEUE = "ledger-test"
# These tests publish to a real Redis on purpose, while the test settings keep Celery eager.
pytestmark = pytest.mark.filterwarnings("ignore::celery.exceptions.AlwaysEagerIgnored")


@pytest.fixture
def broker(private_redis):
    client, url = private_redis
    book = Ledger(client, url)
    delivery.set_ledger(book)
    yield book, url
    delivery.set_ledger(None)


def send(url: str, key: str, schema: str = "firm_acme") -> str:
    with app.connection_for_write(url) as conn:
        result = app.send_task(
            "codex.drill_write",
            kwargs={"key": key},
            queue=QUEUE,
            connection=conn,
            headers={"_schema_name": schema},
            ignore_result=True,
        )
    return result.id


def queued(client) -> list[dict]:
    return [json.loads(raw) for raw in client.lrange(QUEUE, 0, -1)]


def take(client) -> dict:
    """What a worker's BRPOP does: the oldest message leaves the queue."""
    return json.loads(client.rpop(QUEUE))


def age(client, task_id: str, seconds: float) -> None:
    client.zadd(SENT_KEY, {task_id: time.time() - seconds}, xx=True)


def test_every_sent_task_is_in_the_ledger_until_it_finishes(broker):
    book, url = broker
    task_id = send(url, "k1")
    entry = json.loads(book.client.hget(LEDGER_KEY, task_id))
    assert entry["routing_key"] == QUEUE
    assert entry["headers"]["id"] == task_id
    assert entry["headers"]["_schema_name"] == "firm_acme"
    assert book.pending([task_id]) == 1

    task = drill_write
    # A retry keeps the entry (the retry's own message refreshes it) ...
    task_postrun.send(sender=task, task_id=task_id, task=task, args=(), kwargs={}, retval=None, state="RETRY")
    assert book.pending([task_id]) == 1
    # ... success (or final failure) removes it.
    task_postrun.send(sender=task, task_id=task_id, task=task, args=(), kwargs={}, retval=None, state="SUCCESS")
    assert book.pending([task_id]) == 0
    assert book.client.zscore(SENT_KEY, task_id) is None


def test_a_message_the_broker_lost_is_sent_again_with_its_firm(broker):
    book, url = broker
    lost_id = send(url, "lost", schema="firm_zenith")
    waiting_id = send(url, "waiting")
    taken = take(book.client)  # the worker died right after BRPOP: in no queue, not unacked
    assert taken["headers"]["id"] == lost_id
    age(book.client, lost_id, 120)
    age(book.client, waiting_id, 120)

    resent = book.redeliver_lost(grace=60, app=app)

    assert resent == [lost_id]
    messages = {m["headers"]["id"]: m for m in queued(book.client)}
    assert set(messages) == {lost_id, waiting_id}  # the waiting one was not sent twice
    again = messages[lost_id]
    assert again["headers"]["task"] == "codex.drill_write"
    assert again["headers"]["_schema_name"] == "firm_zenith"  # runs in the firm it was sent for
    assert json.loads(base64.b64decode(again["body"]))[1] == {"key": "lost"}
    # A second sweep finds it queued: nothing more is sent.
    age(book.client, lost_id, 120)
    assert book.redeliver_lost(grace=60, app=app) == []
    assert len(queued(book.client)) == 2


def test_nothing_is_sent_again_before_the_grace_period(broker):
    book, url = broker
    send(url, "young")
    take(book.client)
    assert book.redeliver_lost(grace=60, app=app) == []
    assert queued(book.client) == []


def test_a_message_held_unacked_by_a_live_worker_is_not_sent_again(broker):
    book, url = broker
    task_id = send(url, "running")
    message = take(book.client)
    book.client.hset(transport_option("unacked_key"), "tag-1", json.dumps([message, "", QUEUE]))  # kombu's record
    age(book.client, task_id, 120)
    assert book.redeliver_lost(grace=60, app=app) == []
    assert queued(book.client) == []
    assert book.pending([task_id]) == 1  # still watched: if that worker dies, the visibility timeout acts


def test_a_task_that_finished_meanwhile_is_not_sent_again(broker):
    book, url = broker
    task_id = send(url, "done")
    take(book.client)
    age(book.client, task_id, 120)
    book.finish(task_id)
    assert book.redeliver_lost(grace=60, app=app) == []
    assert queued(book.client) == []


def test_the_ledger_is_off_for_eager_tasks_and_the_sweep_is_scheduled():
    delivery.set_ledger(None)
    # The unit tests run tasks eagerly (decision 0800): nothing is published, nothing to remember,
    # although the broker is Redis as everywhere.
    assert app.conf.task_always_eager and app.conf.broker_url.startswith("redis://")
    assert delivery.ledger() is None
    schedule = settings.CELERY_BEAT_SCHEDULE["delivery-redeliver-lost"]
    assert schedule["task"] == "codex.redeliver_lost"
    assert schedule["schedule"] <= 60


def test_revoked_unknown_and_rejected_messages_leave_the_ledger(broker):
    """The worker acks these without running them: re-sending them every minute would loop."""
    from types import SimpleNamespace

    from celery.signals import task_rejected, task_revoked, task_unknown

    book, url = broker
    revoked, unknown, rejected = send(url, "revoked"), send(url, "unknown"), send(url, "rejected")
    task_revoked.send(
        sender=drill_write, request=SimpleNamespace(id=revoked), terminated=False, signum=None, expired=True
    )
    task_unknown.send(sender=None, message=None, exc=KeyError("x"), name="codex.gone", id=unknown)
    task_rejected.send(sender=None, message=SimpleNamespace(headers={"id": rejected}), exc=None)
    assert book.pending([revoked, unknown, rejected]) == 0


def test_a_message_json_cannot_hold_is_not_recorded_and_the_caller_sees_the_error(broker):
    from kombu.exceptions import EncodeError

    book, url = broker
    with pytest.raises(EncodeError), app.connection_for_write(url) as conn:
        app.send_task("codex.drill_write", kwargs={"key": object()}, queue=QUEUE, connection=conn, ignore_result=True)
    assert book.pending() == 0
    assert queued(book.client) == []


def test_a_backlog_is_read_from_its_oldest_end_and_only_the_lost_message_is_sent_again(broker):
    book, url = broker
    ids = [send(url, f"k{i}") for i in range(7)]  # k0 is the oldest: the next one a worker takes
    # A worker took k0 and died before recording it; k1..k6 still wait.
    assert take(book.client)["headers"]["id"] == ids[0]
    for task_id in ids:
        age(book.client, task_id, 120)
    resent = book.redeliver_lost(grace=60, app=app, chunk=2)  # the queue is read 2 messages at a time
    assert resent == [ids[0]]
    assert sorted(m["headers"]["id"] for m in queued(book.client)) == sorted(ids)


def test_an_index_entry_without_its_message_is_dropped(broker):
    """A task that finished between the sweep's two reads (or a half-written entry)."""
    book, _url = broker
    book.client.zadd(SENT_KEY, {"gone": time.time() - 120})
    assert book.redeliver_lost(grace=60, app=app) == []
    assert book.pending() == 0
