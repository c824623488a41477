"""One function per service; each returns a ``Result`` and never raises for the failure it checks.

Only the failures a check is about are caught (database, Redis, broker, file system errors): a bug
in a check still raises.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from amqp.exceptions import ChannelError
from django.conf import settings
from django.core.cache import cache
from django.core.files.storage import FileSystemStorage, default_storage
from django.db import DatabaseError, connection
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerError
from redis.exceptions import RedisError

from .models import State

WORKER_HEARTBEAT_KEY = "codex:status:worker-heartbeat"
BEAT_LAST_RUN_KEY = "codex:status:beat-last-run"
CHECK_TASK = "codex.status.record_checks"


@dataclass(frozen=True)
class Result:
    service: str
    label: str
    state: str
    latency_ms: int
    detail: str = ""


def _timed(service: str, label: str, check: Callable[[], tuple[str, str]]) -> Result:
    started = time.monotonic()
    try:
        state, detail = check()
    except (DatabaseError, RedisError, BrokerError, OSError, TimeoutError) as exc:
        state, detail = State.DOWN, f"{type(exc).__name__}: {exc}"
    return Result(service, label, str(state), int((time.monotonic() - started) * 1000), detail[:300])


def _database() -> tuple[str, str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return State.OK, ""


def _migrations() -> tuple[str, str]:
    from codex.health import readiness

    ok, checks = readiness()
    return (State.OK if ok else State.DOWN), "" if ok else checks.get("migrations", "")


def _redis() -> tuple[str, str]:
    if not settings.REDIS_URL:
        return State.OK, "no REDIS_URL: in-process cache (development)"
    import redis

    client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
    try:
        client.ping()
    finally:
        client.close()
    return State.OK, ""


def _broker() -> tuple[str, str]:
    from codex.celery import app

    if app.conf.task_always_eager:
        return State.OK, "tasks run in the web process (eager mode, development)"
    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=2)
    return State.OK, ""


def _age(key: str) -> float | None:
    value = cache.get(key)
    return None if value is None else time.time() - float(value)


def _workers() -> tuple[str, str]:
    from codex.celery import app

    if app.conf.task_always_eager:
        return State.OK, "tasks run in the web process (eager mode, development)"
    age = _age(WORKER_HEARTBEAT_KEY)
    if age is not None and age < settings.STATUS_STALE_SECONDS:
        return State.OK, f"heartbeat {age:.0f} s ago"
    # No recent heartbeat: beat may be down while workers are fine. Ask them directly.
    replies = app.control.ping(timeout=1.0)
    if replies:
        return State.OK, f"{len(replies)} worker(s) answered ping; no heartbeat for {age or 0:.0f} s"
    return State.DOWN, "no worker answered ping" + (f"; last heartbeat {age:.0f} s ago" if age is not None else "")


def _queues() -> tuple[str, str]:
    from codex.celery import app

    if app.conf.task_always_eager:
        return State.OK, "no queue (eager mode, development)"
    with app.connection_for_read() as conn:
        depths = queue_depths(conn, sorted(app.amqp.queues))
    worst = max(depths.values(), default=0)
    detail = ", ".join(f"{name}: {n}" for name, n in depths.items())
    return (State.DEGRADED if worst > settings.STATUS_QUEUE_DEPTH_WARN else State.OK), detail


def queue_depths(conn, queues: list[str]) -> dict[str, int]:
    """Messages waiting in each queue, through kombu's public ``queue_declare(passive=True)``.

    A queue nobody declared yet (Redis: no list until a message arrives) answers 404: empty."""
    channel = conn.default_channel
    depths = {}
    for name in queues:
        try:
            depths[name] = channel.queue_declare(queue=name, passive=True).message_count
        except ChannelError as exc:
            if str(exc.reply_code) != "404":
                raise
            depths[name] = 0
    return depths


def _beat() -> tuple[str, str]:
    from codex.celery import app

    if app.conf.task_always_eager:
        return State.OK, "no scheduler (eager mode, development)"
    age = _age(BEAT_LAST_RUN_KEY)
    if age is None:
        return State.DOWN, "beat never sent the status check"
    if age > settings.STATUS_STALE_SECONDS:
        return State.DOWN, f"last run {age:.0f} s ago"
    return State.OK, f"last run {age:.0f} s ago"


def _storage() -> tuple[str, str]:
    if not isinstance(default_storage, FileSystemStorage):
        return State.OK, f"object storage ({type(default_storage).__name__})"
    path = Path(default_storage.location)
    while not path.exists() and path != path.parent:
        path = path.parent
    usage = shutil.disk_usage(path)
    free_pct = usage.free / usage.total * 100
    detail = f"{usage.free / 2**30:.1f} GiB free of {usage.total / 2**30:.1f} GiB ({free_pct:.0f} %)"
    if usage.free < settings.STATUS_DISK_MIN_FREE_BYTES or free_pct < settings.STATUS_DISK_MIN_FREE_PERCENT:
        return State.DEGRADED, detail
    return State.OK, detail


CHECKS: list[tuple[str, str, Callable[[], tuple[str, str]]]] = [
    ("database", "Database", _database),
    ("migrations", "Database schema", _migrations),
    ("redis", "Cache and rate limits (Redis)", _redis),
    ("broker", "Job queue (broker)", _broker),
    ("workers", "Background workers", _workers),
    ("queues", "Queue depth", _queues),
    ("beat", "Scheduler (beat)", _beat),
    ("storage", "Upload storage", _storage),
]
LABELS = {service: label for service, label, _check in CHECKS}


def register(service: str, label: str, check: Callable[[], tuple[str, str]]) -> None:
    """Add a domain's check (a function returning ``(state, detail)``) to the platform status.

    The kernel imports no domain app: a domain registers its check from its ``AppConfig.ready``
    (e.g. ``portfolios.market``'s feed health). Registering a service twice replaces it."""
    CHECKS[:] = [entry for entry in CHECKS if entry[0] != service]
    CHECKS.append((service, label, check))
    LABELS[service] = label


def run_all() -> list[Result]:
    return [_timed(service, label, check) for service, label, check in CHECKS]


def mark_worker_alive() -> None:
    cache.set(WORKER_HEARTBEAT_KEY, time.time(), timeout=24 * 3600)


def mark_beat_ran() -> None:
    cache.set(BEAT_LAST_RUN_KEY, time.time(), timeout=24 * 3600)


def now():
    return timezone.now()
