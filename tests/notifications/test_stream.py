"""The live stream (codex.live.server under uvicorn, as `make run` and production serve it): auth
by a signed token, two firms connected at once never see each other's events, Last-Event-ID replay,
the end of a token's life."""

from __future__ import annotations

import http.client
import json
import queue
import socket
import threading
import time

import pytest
import uvicorn

from codex.live.publish import live_publish
from codex.live.tokens import stream_token_for
from codex.notifications.services import notification_send

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def stream_server():
    from codex.live.server import app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "the stream server did not start"
        time.sleep(0.05)
    yield port
    server.should_exit = True
    thread.join(timeout=10)


class Stream:
    """An EventSource-like reader: parsed events go into a queue from a thread of its own."""

    def __init__(self, port: int, query: str, last_event_id: str | None = None):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        headers = {"Accept": "text/event-stream"}
        if last_event_id:
            headers["Last-Event-ID"] = last_event_id
        self.conn.request("GET", f"/live/stream?{query}", headers=headers)
        self.response = self.conn.getresponse()
        self.status = self.response.status
        self.events: queue.Queue = queue.Queue()
        if self.status == 200:
            threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        event: dict = {}
        try:
            while line := self.response.readline():
                line = line.decode().rstrip("\n")
                if not line:
                    if "event" in event:
                        self.events.put(event)
                    event = {}
                elif not line.startswith(":"):
                    name, _, value = line.partition(": ")
                    event[name] = value
        except (OSError, ValueError, AttributeError, http.client.HTTPException):  # closed by the test
            pass
        self.events.put({"event": "closed"})

    def next(self, timeout: float = 10.0) -> dict:
        return self.events.get(timeout=timeout)

    def next_of(self, name: str, timeout: float = 10.0) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            event = self.next(max(0.01, deadline - time.monotonic()))
            if event["event"] == name:
                return event

    def nothing_within(self, seconds: float) -> bool:
        try:
            event = self.events.get(timeout=seconds)
        except queue.Empty:
            return True
        raise AssertionError(f"unexpected event {event}")

    def close(self) -> None:
        # Shut the socket down first, as a browser closing the page does: the reader thread is
        # blocked in readline() holding the response's buffer lock, so a bare close() waited for the
        # server's next ping (LIVE_PING_SECONDS, 15 s) to free it, and the server saw the client
        # leave only then. Shut down, the read returns at once and the server sees the disconnect.
        if self.conn.sock is not None:
            self.conn.sock.shutdown(socket.SHUT_RDWR)
        self.conn.close()


def token_query(schema: str, user_id: int) -> str:
    return f"token={stream_token_for(schema=schema, user_id=user_id)}"


def test_the_stream_needs_a_valid_token(stream_server, firm, owner, settings):
    assert Stream(stream_server, "").status == 401
    assert Stream(stream_server, "token=not-a-token").status == 401
    good = stream_token_for(schema=firm.schema_name, user_id=owner.pk)
    payload, rest = good.split(":", 1)
    forged = payload[:-2] + ("AA" if payload[-2:] != "AA" else "BB") + ":" + rest
    assert Stream(stream_server, f"token={forged}").status == 401
    settings.LIVE_TOKEN_MAX_AGE = 1
    time.sleep(2.1)
    expired = Stream(stream_server, f"token={good}")
    assert expired.status == 401
    assert "expired" in json.loads(expired.response.read())["error"]["message"]


def test_two_firms_connected_at_once_each_get_only_their_own_events(
    stream_server, firm, other_firm, owner, outsider, django_capture_on_commit_callbacks
):
    acme = Stream(stream_server, token_query(firm.schema_name, owner.pk))
    globex = Stream(stream_server, token_query(other_firm.schema_name, outsider.pk))
    assert (acme.status, globex.status) == (200, 200)
    acme.next_of("ready")
    globex.next_of("ready")
    # the real path: a notice written in acme's schema, pushed after the commit
    with django_capture_on_commit_callbacks(execute=True):
        notification_send(recipients=[owner], kind="import", title="ACME ONLY import finished")
    got = acme.next_of("notification")
    assert json.loads(got["data"])["title"] == "ACME ONLY import finished"
    # user ids of two firms may be equal: the channel is per firm and user, never per id alone
    live_publish(
        schema=firm.schema_name, event="notification", data={"title": "to acme user id"}, user_ids=[outsider.pk]
    )
    live_publish(schema=firm.schema_name, event="figures", data={"portfolio_id": 1})
    assert acme.next_of("figures")["data"] == '{"portfolio_id":1}'
    assert globex.nothing_within(1.5)
    # globex's own event reaches globex (its stream was alive all along), not acme
    live_publish(schema=other_firm.schema_name, event="notification", data={"title": "GLOBEX"}, user_ids=[outsider.pk])
    assert json.loads(globex.next_of("notification")["data"]) == {"title": "GLOBEX"}
    if outsider.pk != owner.pk:
        acme_extra = acme.next(2)  # the event sent to acme's user with outsider's id, if that is a member
        assert "GLOBEX" not in acme_extra.get("data", "")
    assert acme.nothing_within(1.0)
    acme.close()
    globex.close()


def test_reconnecting_with_last_event_id_replays_what_was_missed(stream_server, firm, owner):
    first = Stream(stream_server, token_query(firm.schema_name, owner.pk))
    first.next_of("ready")
    live_publish(schema=firm.schema_name, event="notification", data={"n": 1}, user_ids=[owner.pk])
    seen = first.next_of("notification")
    first.close()
    live_publish(schema=firm.schema_name, event="notification", data={"n": 2}, user_ids=[owner.pk])
    live_publish(schema=firm.schema_name, event="figures", data={"portfolio_id": 7})
    again = Stream(stream_server, token_query(firm.schema_name, owner.pk), last_event_id=seen["id"])
    again.next_of("ready")
    replayed = [again.next(), again.next()]
    assert sorted((e["event"], e["data"]) for e in replayed) == [
        ("figures", '{"portfolio_id":7}'),
        ("notification", '{"n":2}'),
    ]
    assert again.nothing_within(1.0)
    again.close()
    # a new EventSource passes the id in the query instead of the header
    query = token_query(firm.schema_name, owner.pk) + "&last_event_id=" + seen["id"]
    by_query = Stream(stream_server, query)
    by_query.next_of("ready")
    assert {by_query.next()["event"], by_query.next()["event"]} == {"notification", "figures"}
    by_query.close()


def test_the_stream_ends_when_its_token_expires(stream_server, firm, owner, settings):
    settings.LIVE_TOKEN_MAX_AGE = 2
    stream = Stream(stream_server, token_query(firm.schema_name, owner.pk))
    stream.next_of("ready")
    assert stream.next_of("expired", timeout=6)["event"] == "expired"
    assert stream.next(5)["event"] == "closed"
