"""Two-level cache of the per-request lookups: host -> firm, API key prefix -> key and firm.

Level 2 is the ``tenants`` cache: Redis, shared by every process (always: development and tests
run an embedded one, production refuses to start without ``REDIS_URL``). Every request would still
pay one Redis round trip per lookup, which measured as half of the time of a small request on a
2-core machine (docs/benchmarks.md, "Profile and fix"). So level 1, in front of it, is a small
dict in process memory:

- an entry lives ``CODEX_TENANT_LOCAL_CACHE_SECONDS`` (default 30 s) at most;
- every invalidation deletes the level-2 entries and writes a new *generation* token to level 2, and
  clears level 1 of the process that made the change at once;
- every process reads the generation token at most every ``CODEX_TENANT_CACHE_CHECK_SECONDS``
  (default 1 s, at most 2 s in production) and drops its level-1 entries when the token changed.

So a change (firm suspended, domain moved, API key revoked) is seen at once by the process that made
it and within one second by every other process, and a warm request makes no query and no Redis
round trip. Every read returns a new instance, built by Django's public ``Model.from_db`` from the
field values kept at ``set`` (with the firm of an API key rebuilt the same way and lists and dicts
copied), so a request that modifies its ``request.tenant`` cannot leak the change into the next
request. It costs about 7 µs for a firm; unpickling it costs about 20 µs (a value that is not a
plain model instance is still kept pickled).
``CODEX_TENANT_LOCAL_CACHE = False`` turns level 1 off (the benchmark's "before" settings).
docs/decisions/0700-two-level-tenant-cache.md.

Redis unreachable (decision 0933): a lookup is a miss, so the caller reads the database (the
source of truth) and nothing is kept; a process that cannot check the generation token empties its
level 1, so no process serves an entry whose invalidation it could not hear about. Invalidating
(``delete_many``) keeps the keys and deletes them at the process's next contact with Redis, so a
Redis that comes back with its data does not serve a stale firm, domain or API key.
"""

from __future__ import annotations

import copy
import logging
import pickle
import threading
import time
import uuid
import weakref
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import caches
from django.core.signals import setting_changed
from django.db import DEFAULT_DB_ALIAS, router
from django.db.models import ForeignObject, Model
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)
MISS = object()
GENERATION_KEY = "generation"
MAX_LOCAL_ENTRIES = 10_000
_CONTAINERS = (list, dict, set)


@dataclass(frozen=True, slots=True)
class _Row:
    """A cached model instance as the public ``Model.from_db`` takes it back: its model, database,
    field values, and the forward relations loaded with it (``select_related``), the same way."""

    model: type[Model]
    db: str
    attnames: tuple[str, ...]
    values: tuple
    copy_values: bool  # a value is a list, dict or set: each read gets its own copy
    related: tuple[tuple[ForeignObject, _Row | None], ...]


def _row(instance: Model) -> _Row | None:
    """The ``_Row`` of ``instance``, or None when ``from_db`` could not give it back as it is (an
    attribute that is not a field, such as an annotation, or a related value that is not a model)."""
    meta = instance._meta
    deferred = instance.get_deferred_fields()
    fields = [f for f in meta.concrete_fields if f.attname not in deferred]
    attnames = tuple(f.attname for f in fields)
    related: list[tuple[ForeignObject, _Row | None]] = []
    for f in fields:
        if isinstance(f, ForeignObject) and f.is_cached(instance):
            value = getattr(instance, f.name)
            related_row = None if value is None else _row(value)
            if value is not None and related_row is None:
                return None
            related.append((f, related_row))
    if set(vars(instance)) - set(attnames) - {"_state"}:
        return None
    values = tuple(getattr(instance, name) for name in attnames)
    copy_values = any(isinstance(value, _CONTAINERS) for value in values)
    return _Row(
        model=type(instance),
        db=router.db_for_read(type(instance), instance=instance) or DEFAULT_DB_ALIAS,
        attnames=attnames,
        values=copy.deepcopy(values) if copy_values else values,  # later changes stay out
        copy_values=copy_values,
        related=tuple(related),
    )


def _build(row: _Row) -> Model:
    values = copy.deepcopy(row.values) if row.copy_values else row.values
    instance = row.model.from_db(row.db, row.attnames, values)
    for field, related in row.related:
        # as the queryset's select_related fills it (the foreign key value came with the row)
        field.set_cached_value(instance, None if related is None else _build(related))
    return instance


def _entry(value) -> _Row | bytes:
    """What level 1 keeps of ``value``: a ``_Row`` for a model instance, else its pickle."""
    if isinstance(value, Model) and (row := _row(value)) is not None:
        return row
    return pickle.dumps(value, pickle.HIGHEST_PROTOCOL)


def _fresh(entry: _Row | bytes):
    """A new object from a level-1 entry, sharing nothing mutable with the entry or earlier reads."""
    if isinstance(entry, _Row):
        return _build(entry)
    return pickle.loads(entry)  # noqa: S301 (our own bytes)


class TwoLevelCache:
    instances: weakref.WeakSet = weakref.WeakSet()

    def __init__(self, alias: str = "tenants"):
        self.alias = alias
        TwoLevelCache.instances.add(self)
        self._local: dict[str, tuple[float, _Row | bytes]] = {}
        self._lock = threading.Lock()
        self._generation: object = MISS
        self._checked_at = float("-inf")
        self._local_enabled: bool | None = None  # computed once; reset when the settings change
        self._check_seconds = 1.0
        self._undelivered: set[str] = set()  # invalidations Redis missed while unreachable

    @property
    def shared(self):
        return caches[self.alias]

    def local_enabled(self) -> bool:
        enabled = self._local_enabled
        if enabled is None:
            enabled = bool(getattr(settings, "CODEX_TENANT_LOCAL_CACHE", True))
            self._check_seconds = settings.CODEX_TENANT_CACHE_CHECK_SECONDS
            self._local_enabled = enabled
        return enabled

    def settings_changed(self) -> None:
        self._local_enabled = None
        self.clear_local()

    def get(self, key: str):
        """The cached value (a fresh copy of it), or ``MISS``."""
        local = self.local_enabled()
        if local:
            self._sync()
            item = self._local.get(key)
            if item is not None and item[0] > time.monotonic():
                return _fresh(item[1])
        try:
            if self._undelivered:
                self._deliver_invalidations()
            value = self.shared.get(key, MISS)
        except RedisError as exc:
            _outage(exc)
            return MISS
        if local and value is not MISS:
            self._remember(key, value)
        return value

    def set(self, key: str, value, timeout: int) -> None:
        try:
            self.shared.set(key, value, timeout)
        except RedisError as exc:
            _outage(exc)  # nothing cached: the next request reads the database again
            return
        if self.local_enabled():
            self._remember(key, value)

    def delete_many(self, keys: list[str]) -> None:
        """Forget ``keys`` everywhere: level 2 at once, every process's level 1 within the check interval.

        With Redis away the keys are kept and deleted at this process's first contact with Redis
        again (``_sync``), before any of its lookups use Redis: a Redis that comes back with its
        data does not serve this change's stale entries (lost only if the process dies first)."""
        token = uuid.uuid4().hex
        try:
            if keys:
                self.shared.delete_many(keys)
            self.shared.set(GENERATION_KEY, token, None)
        except RedisError as exc:
            _outage(exc)
            with self._lock:
                self._undelivered.update(keys)
                self._local.clear()
                self._generation = MISS
                self._checked_at = float("-inf")
            return
        with self._lock:
            self._local.clear()
            self._generation = token
            self._checked_at = time.monotonic()

    def _deliver_invalidations(self) -> None:
        with self._lock:
            keys = list(self._undelivered)
        if keys:
            self.shared.delete_many(keys)
        self.shared.set(GENERATION_KEY, uuid.uuid4().hex, None)
        with self._lock:
            self._undelivered.difference_update(keys)

    def clear_local(self) -> None:
        with self._lock:
            self._local.clear()
            self._generation = MISS
            self._checked_at = float("-inf")

    def _sync(self) -> None:
        now = time.monotonic()
        if now - self._checked_at < self._check_seconds:
            return
        try:
            if self._undelivered:
                self._deliver_invalidations()
            generation = self.shared.get(GENERATION_KEY)
        except RedisError as exc:
            _outage(exc)
            self.clear_local()  # invalidations cannot be heard: trust no entry
            return
        with self._lock:
            self._checked_at = now
            if generation != self._generation:
                self._local.clear()
                self._generation = generation

    def _remember(self, key: str, value) -> None:
        ttl = settings.CODEX_TENANT_LOCAL_CACHE_SECONDS
        entry = _entry(value)  # the caller keeps its object; later changes to it stay out of the cache
        with self._lock:
            if len(self._local) >= MAX_LOCAL_ENTRIES:
                self._local.clear()
            self._local[key] = (time.monotonic() + ttl, entry)


_outage_logged_at = float("-inf")


def _outage(exc: Exception) -> None:
    """Log a Redis outage at most once every 10 s per process (not once per request)."""
    global _outage_logged_at
    now = time.monotonic()
    if now - _outage_logged_at >= 10:
        _outage_logged_at = now
        logger.warning("tenant cache: Redis unavailable, reading the database (%s)", exc)


tenant_cache = TwoLevelCache()


def _on_setting_changed(*, setting, **kwargs):
    if setting in {"CODEX_TENANT_LOCAL_CACHE", "CODEX_TENANT_CACHE_CHECK_SECONDS", "CACHES"}:
        for cache in list(TwoLevelCache.instances):
            cache.settings_changed()


setting_changed.connect(_on_setting_changed)
