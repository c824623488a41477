"""An endpoint's delivery log on its page: sorted, filtered and paged on the server (issue 25 point
2), query count flat, never reachable from another firm."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from codex.outbox.models import OutboxEvent
from webhooks import services
from webhooks.models import DeliveryStatus, WebhookDelivery

pytestmark = pytest.mark.django_db


@pytest.fixture
def log(firm, receiver):
    endpoint = services.endpoint_create(tenant=firm, url=receiver.url, event_types=["contact.created"], actor="test")

    def deliver(n: int, *, status: str = DeliveryStatus.SUCCEEDED, type: str = "contact.created") -> None:
        event = OutboxEvent.objects.create(type=type, data={"n": n})
        WebhookDelivery.objects.create(
            endpoint=endpoint, event=event, status=status, attempts=n, last_error=f"deliv-{n:02d}"
        )

    return endpoint, deliver


def order_of(html: str, markers: list[str]) -> list[str]:
    assert all(m in html for m in markers), [m for m in markers if m not in html]
    return sorted(markers, key=html.index)


def test_sorts_by_attempts_both_ways_and_pages(owner_client, log):
    endpoint, deliver = log
    for n in range(12):
        deliver(n)
    url = f"/settings/webhooks/{endpoint.pk}/"
    up = owner_client.get(url + "?sort=attempts&per_page=10").content.decode()
    assert order_of(up, ["deliv-00", "deliv-01", "deliv-09"]) == ["deliv-00", "deliv-01", "deliv-09"]
    assert "deliv-10" not in up
    down = owner_client.get(url + "?sort=-attempts&per_page=10").content.decode()
    assert order_of(down, ["deliv-11", "deliv-10", "deliv-02"]) == ["deliv-11", "deliv-10", "deliv-02"]
    second = owner_client.get(url + "?sort=attempts&per_page=10&page=2").content.decode()
    assert order_of(second, ["deliv-10", "deliv-11"]) == ["deliv-10", "deliv-11"] and "deliv-00" not in second


def test_filters_by_status_and_event_and_names_a_bad_value(owner_client, log):
    endpoint, deliver = log
    deliver(1, status=DeliveryStatus.FAILED)
    deliver(2)
    deliver(3, type="invoice.paid")
    url = f"/settings/webhooks/{endpoint.pk}/"
    failed = owner_client.get(url + "?status=failed").content.decode()
    assert "deliv-01" in failed and "deliv-02" not in failed
    won = owner_client.get(url + "?event_type=invoice.paid").content.decode()
    assert "deliv-03" in won and "deliv-02" not in won
    bad = owner_client.get(url + "?status=exploded").content.decode()
    assert 'id="filter_status_error"' in bad and "deliv-02" in bad


def test_query_count_does_not_grow_with_rows(owner_client, log):
    endpoint, deliver = log
    deliver(0)
    url = f"/settings/webhooks/{endpoint.pk}/?sort=-next"
    owner_client.get(url)
    with CaptureQueriesContext(connection) as few:
        owner_client.get(url)
    for n in range(1, 10):
        deliver(n)
    with CaptureQueriesContext(connection) as many:
        assert "deliv-09" in owner_client.get(url).content.decode()
    assert len(many) == len(few)


def test_another_firm_cannot_reach_the_delivery_log(owner_client, outsider_client, log):
    endpoint, deliver = log
    deliver(1)
    assert "deliv-01" in owner_client.get(f"/settings/webhooks/{endpoint.pk}/?sort=status").content.decode()
    response = outsider_client.get(f"/settings/webhooks/{endpoint.pk}/?sort=status")
    assert response.status_code == 404 and b"deliv-01" not in response.content
