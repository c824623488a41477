"""Writes of outbound webhooks: endpoints, fan-out of outbox events, signed delivery attempts.

Guarantees:
- An event is offered to an endpoint at most once (``webhook_delivery_once``); a delivery is sent
  until the receiver answers 2xx, a retry window closes (24 h by default) or the endpoint is
  disabled. Receivers may see an event twice (at-least-once: a worker can die after sending and
  before recording); the ``webhook-id`` header is the same every time, so they dedupe on it.
- No attempt is made while another attempt of the same delivery is in flight (claim), and none
  earlier than its backoff allows (``next_attempt_at``), however many tasks ask.
- Order is not guaranteed, not even per resource (a retry overtakes nothing it waits behind).
"""

from __future__ import annotations

import base64
import json
import logging
import secrets
import uuid
from datetime import datetime, timedelta

import urllib3
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from django_tenants.utils import schema_context
from standardwebhooks.webhooks import Webhook

from billing.entitlements import check_feature
from codex.db import current_schema
from codex.delivery import ledger
from codex.notifications.models import NotificationKind
from codex.notifications.services import notification_send
from codex.outbox.catalogue import SUBSCRIBABLE
from codex.outbox.models import OutboxEvent
from codex.security.outbound import UnsafeUrl, parse, post_bounded, resolve
from tenants.accounts.models import MANAGER_ROLES, Role, User
from tenants.models import Tenant

from .backoff import gives_up, retry_delay
from .models import DeliveryStatus, WebhookAttempt, WebhookDelivery, WebhookEndpoint

logger = logging.getLogger(__name__)

CLAIM = timedelta(seconds=60)  # longer than one attempt can take (timeout + bookkeeping)
LOG_BODY_CHARS = 2048


def secret_new() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def url_check(url: str) -> None:
    """``ValidationError`` on ``url`` unless it may be called (HTTPS and a public address in
    production; settings WEBHOOKS_REQUIRE_HTTPS / WEBHOOKS_ALLOW_PRIVATE_ADDRESSES). Where private
    addresses are allowed (development) the host is not resolved at save time, only when sending."""
    try:
        if settings.WEBHOOKS_ALLOW_PRIVATE_ADDRESSES:
            parse(url, require_https=settings.WEBHOOKS_REQUIRE_HTTPS)
        else:
            resolve(url, require_https=settings.WEBHOOKS_REQUIRE_HTTPS, allow_private=False)
    except UnsafeUrl as exc:
        raise ValidationError({"url": [str(exc)]}) from exc


def _types_check(event_types: list[str]) -> list[str]:
    if not event_types:
        raise ValidationError({"event_types": ["Choose at least one event type."]})
    unknown = sorted(set(event_types) - set(SUBSCRIBABLE))
    if unknown:
        raise ValidationError({"event_types": [f"Unknown event type: {', '.join(unknown)}."]})
    return sorted(set(event_types))


def endpoint_create(
    *, tenant, url: str, event_types: list[str], description: str = "", enabled: bool = True, actor: str
) -> WebhookEndpoint:
    """Create an endpoint with a fresh secret. Raises PlanLimitExceeded (no webhooks in the plan)
    or ValidationError (url, event_types)."""
    check_feature(tenant=tenant, feature="webhooks")
    types = _types_check(event_types)
    url_check(url)
    endpoint = WebhookEndpoint(url=url, description=description, event_types=types, enabled=enabled, created_by=actor)
    endpoint.secret = secret_new()  # sealed by the model's property
    endpoint.save()
    return endpoint


def endpoint_update(*, tenant, endpoint: WebhookEndpoint, **changes) -> WebhookEndpoint:
    """Change url, description, event_types or enabled. Enabling again clears the failure count."""
    check_feature(tenant=tenant, feature="webhooks")
    allowed = {"url", "description", "event_types", "enabled"}
    if set(changes) - allowed:
        raise ValueError(f"cannot change {sorted(set(changes) - allowed)}")
    if "event_types" in changes:
        changes["event_types"] = _types_check(changes["event_types"])
    if "url" in changes:
        url_check(changes["url"])
    with transaction.atomic():
        endpoint = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
        if changes.get("enabled") and not endpoint.enabled:
            endpoint.consecutive_failures = 0
            endpoint.failing_since = None
            endpoint.disabled_reason = ""
        for name, value in changes.items():
            setattr(endpoint, name, value)
        endpoint.save()
    return endpoint


def endpoint_delete(*, endpoint: WebhookEndpoint) -> None:
    endpoint.delete()


def endpoint_rotate_secret(*, endpoint: WebhookEndpoint, grace: timedelta | None = None) -> WebhookEndpoint:
    """A new signing secret; the old one keeps signing too (two signatures) for ``grace``
    (WEBHOOKS_ROTATION_GRACE_HOURS by default), so receivers can switch without losing events."""
    grace = grace if grace is not None else timedelta(hours=settings.WEBHOOKS_ROTATION_GRACE_HOURS)
    with transaction.atomic():
        endpoint = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
        endpoint.previous_secret = endpoint.secret
        endpoint.previous_secret_expires_at = timezone.now() + grace
        endpoint.secret = secret_new()
        endpoint.save(
            update_fields=["sealed_secret", "sealed_previous_secret", "previous_secret_expires_at", "updated_at"]
        )
    return endpoint


def endpoint_send_test(*, tenant, endpoint: WebhookEndpoint) -> WebhookDelivery:
    """Queue a ``webhook.test`` event for this endpoint only. A disabled endpoint is refused
    (ValidationError on ``enabled``): enable it first."""
    check_feature(tenant=tenant, feature="webhooks")
    if not endpoint.enabled:
        raise ValidationError({"enabled": ["Enable the endpoint before sending a test event."]})
    with transaction.atomic():
        event = OutboxEvent.objects.create(
            type="webhook.test",
            data={"endpoint_id": endpoint.pk, "message": "This is a test event from Codex."},
            resource=f"webhook_endpoint:{endpoint.pk}",
            relayed_at=timezone.now(),  # not offered to the other endpoints
        )
        delivery = WebhookDelivery.objects.create(
            endpoint=endpoint, event=event, next_attempt_at=timezone.now(), **_queued_mark()
        )
        transaction.on_commit(lambda: _enqueue(delivery.pk, task_id=delivery.task_id), robust=True)
    return delivery


def delivery_replay(*, delivery: WebhookDelivery) -> WebhookDelivery:
    """Send a delivery again now, whatever its state (same ``webhook-id``). If it fails, retries
    follow the delivery's window, counted from its creation: an old delivery fails at once."""
    mark = _queued_mark()
    with transaction.atomic():
        WebhookDelivery.objects.filter(pk=delivery.pk).update(
            status=DeliveryStatus.PENDING, next_attempt_at=timezone.now(), claimed_until=None, finished_at=None, **mark
        )
        transaction.on_commit(lambda: _enqueue(delivery.pk, task_id=mark["task_id"]), robust=True)
    delivery.refresh_from_db()
    return delivery


def _queued_mark() -> dict:
    """The columns that record a task queued for a delivery; written in the transaction that
    decides to queue it, the task itself is published after the commit under that id."""
    return {"task_id": str(uuid.uuid4()), "queued_at": timezone.now()}


def _enqueue(delivery_id: int, *, task_id: str, countdown: float | None = None) -> None:
    """Queued after commit, robustly: with the broker away the delivery stays pending, its task
    never reaches the delivery ledger, and ``webhooks.deliver_due`` (beat) sends it (decision 0933)."""
    from .tasks import webhook_deliver

    webhook_deliver.apply_async(args=[delivery_id], countdown=countdown, task_id=task_id)


def events_fan_out(event: OutboxEvent) -> None:
    """Outbox subscriber: one delivery per enabled endpoint that subscribed to the event's type.

    Idempotent (unique delivery per endpoint and event). Runs in the firm's schema, inside the
    relay's transaction; the delivery tasks are queued after its commit."""
    endpoints = list(
        WebhookEndpoint.objects.filter(enabled=True, event_types__contains=[event.type]).values_list("pk", flat=True)
    )
    if not endpoints:
        return
    if not _plan_allows(_current_firm()):
        logger.info("webhooks: event %s not sent, the firm's plan has no webhooks", event.uid)
        return
    now = timezone.now()
    new = [WebhookDelivery(endpoint_id=pk, event=event, next_attempt_at=now, **_queued_mark()) for pk in endpoints]
    WebhookDelivery.objects.bulk_create(new, ignore_conflicts=True)
    # Only the rows this call created carry its task ids (a conflicting row keeps its own task).
    queued = list(
        WebhookDelivery.objects.filter(event=event, task_id__in=[d.task_id for d in new]).values_list("pk", "task_id")
    )
    if queued:
        transaction.on_commit(lambda: _enqueue_all(queued), robust=True)


def _enqueue_all(queued: list[tuple[int, str]]) -> None:
    for pk, task_id in queued:
        _enqueue(pk, task_id=task_id)


def _current_firm() -> Tenant:
    # A task's connection may carry django-tenants' FakeTenant (schema only): look the firm up.
    schema = current_schema()
    with schema_context(settings.PUBLIC_SCHEMA_NAME):
        return Tenant.objects.get(schema_name=schema)


def _plan_allows(tenant) -> bool:
    from billing.entitlements import PlanLimitExceeded

    try:
        check_feature(tenant=tenant, feature="webhooks")
    except PlanLimitExceeded:
        return False
    return True


def signature_headers(*, endpoint: WebhookEndpoint, msg_id: str, body: str, now: datetime) -> dict[str, str]:
    """Standard Webhooks headers; during a rotation's grace period, signed with both secrets."""
    signatures = [Webhook(endpoint.secret).sign(msg_id=msg_id, timestamp=now, data=body)]
    if endpoint.previous_secret and endpoint.previous_secret_expires_at and endpoint.previous_secret_expires_at > now:
        signatures.append(Webhook(endpoint.previous_secret).sign(msg_id=msg_id, timestamp=now, data=body))
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": " ".join(signatures),
    }


def _claim(delivery_id: int, now: datetime) -> bool:
    """Take a due delivery for one attempt (one conditional UPDATE: two tasks never both win).
    The worker's take clears the queued-task mark: from here on the attempt, not a queued task,
    answers for the delivery; if the worker dies, the claim runs out and the sweep queues it."""
    return bool(
        WebhookDelivery.objects.filter(pk=delivery_id, status=DeliveryStatus.PENDING, next_attempt_at__lte=now)
        .filter(Q(claimed_until=None) | Q(claimed_until__lt=now))
        .update(claimed_until=now + CLAIM, task_id="", queued_at=None)
    )


def delivery_attempt(*, delivery_id: int) -> str:
    """Make one attempt of a due delivery and record it; returns the outcome
    ("skipped", "succeeded", "retry", "failed"). Safe to call any number of times at once."""
    now = timezone.now()
    if not _claim(delivery_id, now):
        return "skipped"
    delivery = WebhookDelivery.objects.select_related("endpoint", "event").get(pk=delivery_id)
    endpoint, event = delivery.endpoint, delivery.event
    if not endpoint.enabled:
        _finish(delivery, DeliveryStatus.FAILED, error="The endpoint is disabled.", now=now)
        return "failed"
    body = json.dumps(event.envelope(), separators=(",", ":"), default=str)
    headers = {
        "content-type": "application/json",
        "user-agent": "Codex-Webhooks/1.0",
        **signature_headers(endpoint=endpoint, msg_id=event.message_id, body=body, now=now),
    }
    status_code, error, response_body, latency = None, "", "", 0
    try:
        target = resolve(
            endpoint.url,
            require_https=settings.WEBHOOKS_REQUIRE_HTTPS,
            allow_private=settings.WEBHOOKS_ALLOW_PRIVATE_ADDRESSES,
        )
        answer = post_bounded(
            target,
            body=body.encode(),
            headers=headers,
            timeout=settings.WEBHOOKS_TIMEOUT_SECONDS,
            max_body=settings.WEBHOOKS_MAX_RESPONSE_BYTES,
        )
    except UnsafeUrl as exc:
        error = f"Refused: {exc}"
    except (urllib3.exceptions.HTTPError, TimeoutError, OSError) as exc:
        error = f"{type(exc).__name__}: {exc}"[:300]
        latency = int((timezone.now() - now).total_seconds() * 1000)
    else:
        status_code, latency = answer.status, answer.elapsed_ms
        response_body = answer.body[:LOG_BODY_CHARS].decode("utf-8", "replace")
        if not 200 <= answer.status < 300:
            error = f"HTTP {answer.status}" + (" (redirects are not followed)" if 300 <= answer.status < 400 else "")
    ok = status_code is not None and 200 <= status_code < 300
    _record(
        delivery,
        now=now,
        headers=headers,
        status_code=status_code,
        latency=latency,
        error=error,
        body=response_body,
        ok=ok,
    )
    return delivery.status if delivery.status != DeliveryStatus.PENDING else "retry"


def _record(delivery, *, now, headers, status_code, latency, error, body, ok) -> None:
    with transaction.atomic():
        attempts = delivery.attempts + 1
        WebhookAttempt.objects.create(
            delivery=delivery,
            number=attempts,
            started_at=now,
            request_headers={k: v for k, v in headers.items() if k != "webhook-signature"},
            status_code=status_code,
            latency_ms=latency,
            error=error,
            response_body=body,
        )
        delivery.attempts = attempts
        delivery.last_status_code = status_code
        delivery.last_latency_ms = latency
        delivery.last_error = error
        if ok:
            _finish(delivery, DeliveryStatus.SUCCEEDED, error="", now=now, save_attempts=True)
            WebhookEndpoint.objects.filter(pk=delivery.endpoint_id).exclude(consecutive_failures=0).update(
                consecutive_failures=0, failing_since=None
            )
            return
        delay = retry_delay(
            attempts, base=settings.WEBHOOKS_RETRY_BASE_SECONDS, cap=settings.WEBHOOKS_RETRY_MAX_DELAY_SECONDS
        )
        elapsed = (now - delivery.created_at).total_seconds()
        if gives_up(elapsed=elapsed, delay=delay, window=settings.WEBHOOKS_RETRY_WINDOW_SECONDS):
            _finish(delivery, DeliveryStatus.FAILED, error=error, now=now, save_attempts=True)
        else:
            delivery.next_attempt_at = now + timedelta(seconds=delay)
            delivery.claimed_until = None
            # A longer wait is left to beat's deliver_due sweep (every minute): a countdown beyond
            # the broker's visibility timeout would be handed out again while it waits.
            countdown = delay <= settings.WEBHOOKS_COUNTDOWN_MAX_SECONDS
            mark = _queued_mark() if countdown else {"task_id": "", "queued_at": None}
            delivery.task_id, delivery.queued_at = mark["task_id"], mark["queued_at"]
            delivery.save(
                update_fields=[
                    "attempts",
                    "last_status_code",
                    "last_latency_ms",
                    "last_error",
                    "next_attempt_at",
                    "claimed_until",
                    "task_id",
                    "queued_at",
                ]
            )
            if countdown:
                task_id = delivery.task_id
                transaction.on_commit(lambda: _enqueue(delivery.pk, task_id=task_id, countdown=delay), robust=True)
        _endpoint_failed(delivery.endpoint_id, now)


def _finish(delivery, status, *, error: str, now, save_attempts: bool = False) -> None:
    delivery.status = status
    delivery.finished_at = now
    delivery.claimed_until = None
    delivery.next_attempt_at = None
    delivery.task_id, delivery.queued_at = "", None
    delivery.last_error = error
    fields = ["status", "finished_at", "claimed_until", "next_attempt_at", "last_error", "task_id", "queued_at"]
    if save_attempts:
        fields += ["attempts", "last_status_code", "last_latency_ms"]
    delivery.save(update_fields=fields)


def _endpoint_failed(endpoint_id: int, now: datetime) -> None:
    """Count a failed attempt; disable the endpoint after WEBHOOKS_DISABLE_AFTER_FAILURES failures
    in a row spanning at least WEBHOOKS_DISABLE_AFTER_SECONDS, and tell the firm's owners."""
    endpoint = WebhookEndpoint.objects.select_for_update().get(pk=endpoint_id)
    endpoint.consecutive_failures = F("consecutive_failures") + 1
    if endpoint.failing_since is None:
        endpoint.failing_since = now
    endpoint.save(update_fields=["consecutive_failures", "failing_since"])
    endpoint.refresh_from_db(fields=["consecutive_failures"])
    failing_for = (now - endpoint.failing_since).total_seconds()
    if (
        endpoint.enabled
        and endpoint.consecutive_failures >= settings.WEBHOOKS_DISABLE_AFTER_FAILURES
        and failing_for >= settings.WEBHOOKS_DISABLE_AFTER_SECONDS
    ):
        endpoint.enabled = False
        endpoint.disabled_reason = f"Disabled after {endpoint.consecutive_failures} failed attempts in a row."
        endpoint.save(update_fields=["enabled", "disabled_reason"])
        transaction.on_commit(lambda: _mail_owners_disabled(endpoint))
        notification_send(
            recipients=User.objects.filter(role__in=list(MANAGER_ROLES), is_active=True).values_list("pk", flat=True),
            kind=NotificationKind.WEBHOOK,
            title="A webhook endpoint was disabled",
            body=f"{endpoint.url}: {endpoint.disabled_reason}",
            url=f"/settings/webhooks/{endpoint.pk}/",
            source=f"webhook-disabled:{endpoint.pk}:{endpoint.failing_since:%Y%m%d%H%M%S}",
        )


def _mail_owners_disabled(endpoint: WebhookEndpoint) -> None:
    recipients = list(User.objects.filter(role=Role.OWNER, is_active=True).values_list("email", flat=True))
    if not recipients:
        return
    send_mail(
        subject="Codex: a webhook endpoint was disabled",
        message=(
            f"The webhook endpoint {endpoint.url} failed {endpoint.consecutive_failures} times in a row "
            "and was disabled. Fix the receiver, then enable it again under Settings > Webhooks; "
            "failed deliveries can be replayed from its delivery log."
        ),
        from_email=None,
        recipient_list=recipients,
    )


def deliveries_enqueue_due(*, grace: timedelta | None = None, scan: int = 5000) -> int:
    """Queue the due deliveries that have no task: those a long backoff left to this sweep, and
    those whose task is known lost. Per firm, by beat, every minute; returns how many were queued.

    A delivery whose task waits in the broker (however long the backlog) is never queued again:
    its ``task_id`` is still in the delivery ledger (``codex.delivery``: every task sent to a Redis
    broker stays there until it has finished). A task counts as lost when the ledger no longer
    holds it (the publish failed, the broker lost its data) ``grace`` seconds after it was queued
    (WEBHOOKS_SWEEP_GRACE_SECONDS: the publish follows the commit). Without a ledger (RabbitMQ
    acknowledges on the server) a task counts as lost after WEBHOOKS_QUEUED_LOST_SECONDS.
    A delivery whose attempt's claim ran out (the worker died) has no task and is queued too.
    Concurrent sweeps skip each other's rows; the claim keeps a duplicate task a no-op anyway."""
    grace = grace if grace is not None else timedelta(seconds=settings.WEBHOOKS_SWEEP_GRACE_SECONDS)
    now = timezone.now()
    book = ledger()
    queued_before = now - grace if book is not None else now - timedelta(seconds=settings.WEBHOOKS_QUEUED_LOST_SECONDS)
    with transaction.atomic():
        rows = list(
            WebhookDelivery.objects.select_for_update(skip_locked=True)
            .filter(status=DeliveryStatus.PENDING, next_attempt_at__lte=now)
            .filter(Q(claimed_until=None) | Q(claimed_until__lt=now))
            .filter(Q(queued_at=None) | Q(queued_at__lt=queued_before))
            .order_by("next_attempt_at")
            .values_list("pk", "task_id", "queued_at")[:scan]
        )
        waiting = book.unfinished([task_id for _pk, task_id, at in rows if at is not None]) if book else set()
        lost = [
            WebhookDelivery(pk=pk, **_queued_mark())
            for pk, task_id, _at in rows
            if not (task_id and task_id in waiting)  # else its task waits behind a backlog or runs
        ]
        WebhookDelivery.objects.bulk_update(lost, ["task_id", "queued_at"])
        queued = [(d.pk, d.task_id) for d in lost]
        transaction.on_commit(lambda: _enqueue_all(queued), robust=True)
    if queued:
        logger.info("webhooks: %d due deliveries without a task were queued", len(queued))
    return len(queued)
