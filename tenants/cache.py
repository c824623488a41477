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
round trip. Every read returns a fresh copy (``_fresh``: a model instance with its own ``__dict__``,
model state and related objects, lists and dicts copied), so a request that modifies its
``request.tenant`` cannot leak the change into the next request. A copy costs a few microseconds;
unpickling the firm, as this level did first, cost about 20-40 µs of every request.
``CODEX_TENANT_LOCAL_CACHE = False`` turns level 1 off (the benchmark's "before" settings).
docs/decisions/0700-two-level-tenant-cache.md.
"""

from __future__ import annotations

import copy
import datetime
import pickle
import threading
import time
import uuid
import weakref
from decimal import Decimal
from uuid import UUID

from django.conf import settings
from django.core.cache import caches
from django.core.signals import setting_changed
from django.db.models import Model

MISS = object()
GENERATION_KEY = "generation"
MAX_LOCAL_ENTRIES = 10_000
_IMMUTABLE = (str, int, float, bool, bytes, type(None))
_CONTAINERS = (list, dict, set)
# The exact types of most field values: an ``isinstance`` that fails against a tuple of types looks
# up the value's ``__class__`` for each of them (proxy support), ~2,000 instructions a field; a set
# lookup of the exact type answers first for these.
_LEAF_TYPES = frozenset({str, int, float, bool, bytes, type(None), datetime.datetime, datetime.date, Decimal, UUID})


def _fresh(value):
    """A copy of a cached value that shares nothing mutable with it.

    Model instances (firms, API keys with their firm) are copied field by field: their own
    ``__dict__`` and ``_state``, related objects of ``_state.fields_cache`` copied the same way, and
    list/dict/set values deep-copied; field values of other types (str, Decimal, datetime, UUID) are
    immutable. Anything else goes through a pickle round trip, as the level stored it before.
    """
    if type(value) in _LEAF_TYPES or isinstance(value, _IMMUTABLE):
        return value
    if isinstance(value, Model):
        cls = value.__class__
        new = cls.__new__(cls)
        data = value.__dict__.copy()
        # ``copy.copy(value._state)`` without the copy module's generic path: the state's own
        # ``__getstate__`` (a new dict, without ``peers``) on a new ``ModelState``.
        state_data = value._state.__getstate__()
        related = state_data.get("fields_cache")
        state_data["fields_cache"] = {k: _fresh(v) for k, v in related.items()} if related else {}
        state_cls = type(value._state)
        state = state_cls.__new__(state_cls)
        state.__dict__ = state_data
        data["_state"] = state
        for name, item in data.items():
            if type(item) not in _LEAF_TYPES and isinstance(item, _CONTAINERS):
                data[name] = copy.deepcopy(item)
        new.__dict__ = data
        return new
    return pickle.loads(pickle.dumps(value, pickle.HIGHEST_PROTOCOL))  # noqa: S301 (our own bytes)


def _template(value):
    """What ``_fresh`` reads of a model instance, read once: the copy of a cached entry then
    costs a dict copy and a ``ModelState`` instead of a walk over every field (docs/benchmarks.md,
    "Profile and fix"). None for anything else (``_fresh`` copies it)."""
    if not isinstance(value, Model):
        return None
    state_data = value._state.__getstate__()
    related = {}
    for name, item in (state_data.pop("fields_cache", None) or {}).items():
        if item is not None and (related_template := _template(item)) is None:
            return None  # a related value that is not a model instance: left to _fresh
        related[name] = related_template if item is not None else None
    data = value.__dict__.copy()
    del data["_state"]
    containers = tuple(
        name for name, item in data.items() if type(item) not in _LEAF_TYPES and isinstance(item, _CONTAINERS)
    )
    return (value.__class__, data, containers, type(value._state), state_data, related)


def _from_template(template):
    """A new instance from ``_template``'s reading: its own ``__dict__``, ``ModelState``,
    related instances and containers, as ``_fresh`` makes it."""
    cls, data, containers, state_cls, state_data, related = template
    new = cls.__new__(cls)
    copied = data.copy()
    for name in containers:
        copied[name] = copy.deepcopy(copied[name])
    state = state_cls.__new__(state_cls)
    fresh_state = state_data.copy()
    fresh_state["fields_cache"] = (
        {name: None if t is None else _from_template(t) for name, t in related.items()} if related else {}
    )
    state.__dict__ = fresh_state
    copied["_state"] = state
    new.__dict__ = copied
    return new


class TwoLevelCache:
    instances: weakref.WeakSet = weakref.WeakSet()

    def __init__(self, alias: str = "tenants"):
        self.alias = alias
        TwoLevelCache.instances.add(self)
        self._local: dict[str, tuple[float, object, tuple | None]] = {}
        self._lock = threading.Lock()
        self._generation: object = MISS
        self._checked_at = float("-inf")
        self._local_enabled: bool | None = None  # computed once; reset when the settings change
        self._check_seconds = 1.0

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
                return _fresh(item[1]) if item[2] is None else _from_template(item[2])
        value = self.shared.get(key, MISS)
        if local and value is not MISS:
            self._remember(key, value)
        return value

    def set(self, key: str, value, timeout: int) -> None:
        self.shared.set(key, value, timeout)
        if self.local_enabled():
            self._remember(key, value)

    def delete_many(self, keys: list[str]) -> None:
        """Forget ``keys`` everywhere: level 2 at once, every process's level 1 within the check interval."""
        if keys:
            self.shared.delete_many(keys)
        token = uuid.uuid4().hex
        self.shared.set(GENERATION_KEY, token, None)
        with self._lock:
            self._local.clear()
            self._generation = token
            self._checked_at = time.monotonic()

    def clear_local(self) -> None:
        with self._lock:
            self._local.clear()
            self._generation = MISS
            self._checked_at = float("-inf")

    def _sync(self) -> None:
        now = time.monotonic()
        if now - self._checked_at < self._check_seconds:
            return
        generation = self.shared.get(GENERATION_KEY)
        with self._lock:
            self._checked_at = now
            if generation != self._generation:
                self._local.clear()
                self._generation = generation

    def _remember(self, key: str, value) -> None:
        ttl = settings.CODEX_TENANT_LOCAL_CACHE_SECONDS
        kept = _fresh(value)  # the caller keeps its object; later changes to it stay out of the cache
        template = _template(kept)
        with self._lock:
            if len(self._local) >= MAX_LOCAL_ENTRIES:
                self._local.clear()
            self._local[key] = (time.monotonic() + ttl, kept, template)


tenant_cache = TwoLevelCache()


def _on_setting_changed(*, setting, **kwargs):
    if setting in {"CODEX_TENANT_LOCAL_CACHE", "CODEX_TENANT_CACHE_CHECK_SECONDS", "CACHES"}:
        for cache in list(TwoLevelCache.instances):
            cache.settings_changed()


setting_changed.connect(_on_setting_changed)
