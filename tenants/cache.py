"""Two-level cache of the per-request lookups: host -> firm, API key prefix -> key and firm.

Level 2 is the ``tenants`` cache: Redis when ``REDIS_URL`` is set (shared by every process), else
process memory. With Redis, every request would still pay one Redis round trip per lookup, which
measured as half of the time of a small request on a 2-core machine (docs/benchmarks.md, "Profile and
fix"). So level 1, in front of it, is a small dict in process memory:

- an entry lives ``CODEX_TENANT_LOCAL_CACHE_SECONDS`` (default 30 s) at most;
- every invalidation deletes the level-2 entries and writes a new *generation* token to level 2, and
  clears level 1 of the process that made the change at once;
- every process reads the generation token at most every ``CODEX_TENANT_CACHE_CHECK_SECONDS``
  (default 1 s) and drops its level-1 entries when the token changed.

So a change (firm suspended, domain moved, API key revoked) is seen at once by the process that made
it and within one second by every other process, and a warm request makes no query and no Redis
round trip. Values are kept pickled, so a request that modifies its ``request.tenant`` cannot leak
the change into the next request. When level 2 is itself process memory (no Redis: development and
tests), level 1 is skipped because it would only duplicate it; ``CODEX_TENANT_LOCAL_CACHE = True``
forces it on (tests of this module). docs/decisions/0700-two-level-tenant-cache.md.
"""

from __future__ import annotations

import pickle
import threading
import time
import uuid

from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.locmem import LocMemCache

MISS = object()
GENERATION_KEY = "generation"
MAX_LOCAL_ENTRIES = 10_000


class TwoLevelCache:
    def __init__(self, alias: str = "tenants"):
        self.alias = alias
        self._local: dict[str, tuple[float, bytes]] = {}
        self._lock = threading.Lock()
        self._generation: object = MISS
        self._checked_at = float("-inf")

    @property
    def shared(self):
        return caches[self.alias]

    def local_enabled(self) -> bool:
        forced = getattr(settings, "CODEX_TENANT_LOCAL_CACHE", None)
        if forced is not None:
            return bool(forced)
        return not isinstance(self.shared, LocMemCache)

    def get(self, key: str):
        """The cached value, or ``MISS``."""
        local = self.local_enabled()
        if local:
            self._sync()
            item = self._local.get(key)
            if item is not None and item[0] > time.monotonic():
                return pickle.loads(item[1])  # noqa: S301 (our own bytes, never from outside)
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
        if now - self._checked_at < getattr(settings, "CODEX_TENANT_CACHE_CHECK_SECONDS", 1.0):
            return
        generation = self.shared.get(GENERATION_KEY)
        with self._lock:
            self._checked_at = now
            if generation != self._generation:
                self._local.clear()
                self._generation = generation

    def _remember(self, key: str, value) -> None:
        ttl = getattr(settings, "CODEX_TENANT_LOCAL_CACHE_SECONDS", 30)
        data = pickle.dumps(value, pickle.HIGHEST_PROTOCOL)
        with self._lock:
            if len(self._local) >= MAX_LOCAL_ENTRIES:
                self._local.clear()
            self._local[key] = (time.monotonic() + ttl, data)


tenant_cache = TwoLevelCache()
