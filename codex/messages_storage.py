"""Django's message storage (cookie, then session), set up only when a request uses messages.

``FallbackStorage`` builds its cookie storage (with a cookie signer) and its session storage on
every request, although most requests (API calls, health checks, JSON) never add or read a
message. This one builds them on first use: the same storage, the same cookies, no cost until a
message is added or read (``MESSAGE_STORAGE`` in settings; docs/benchmarks.md, "Profile and fix").
"""

from __future__ import annotations

from django.contrib.messages.storage.base import BaseStorage
from django.contrib.messages.storage.fallback import FallbackStorage
from django.utils.functional import cached_property


class LazyFallbackStorage(FallbackStorage):
    def __init__(self, request, *args, **kwargs):
        BaseStorage.__init__(self, request, *args, **kwargs)
        self._storage_arguments = ((request, *args), kwargs)
        self._used_storages = set()

    @cached_property
    def storages(self):
        args, kwargs = self._storage_arguments
        return [storage_class(*args, **kwargs) for storage_class in self.storage_classes]
