"""The start and end of each request in the web workers: Django's housekeeping, without its overhead.

Django connects four receivers to the request signals: ``reset_queries`` and
``close_old_connections`` to ``request_started``, ``close_old_connections`` and ``close_caches`` to
``request_finished``. Each walks the aliases of ``DATABASES`` or ``CACHES`` and looks every alias up
twice in an ``asgiref.Local`` (``all(initialized_only=True)``): counted with callgrind
(``bench/instructions.py``) the four cost 118,000 instructions of a request through the whole stack
(878,000 in all), most of it lookups (decision 0704, sixth pass). ``install()``, called by
``codex.wsgi`` for the web workers, puts in their place:

- ``request_started``: for each database connection this worker has opened (one lookup), Django's
  ``reset_queries`` step (``queries_log.clear()``) then its ``close_old_connections`` step
  (``close_if_unusable_or_obsolete()``), as Django's two receivers run them in that order;
- ``request_finished``: the same ``close_if_unusable_or_obsolete()`` for each opened connection;
- Django's ``close_caches`` only when a configured cache backend has a ``close()`` of its own
  (memcached's): for Redis, the database and local memory it is ``BaseCache.close``, which does
  nothing.

A change of ``DATABASES`` or ``CACHES`` (``override_settings``) is followed. The test suite keeps
Django's receivers: Django's test client disconnects ``close_old_connections`` around each request
so that a test's transaction is not closed, and only knows Django's own function.
"""

from __future__ import annotations

from django.conf import settings
from django.core.cache import close_caches
from django.core.cache.backends.base import BaseCache
from django.core.signals import request_finished, request_started, setting_changed
from django.db import close_old_connections, connections, reset_queries
from django.utils.module_loading import import_string

_db_aliases: tuple[str, ...] = ()


def cache_closing_needed(caches_setting: dict) -> bool:
    """Whether any configured cache backend does something when it is closed."""
    return any(import_string(conf["BACKEND"]).close is not BaseCache.close for conf in caches_setting.values())


def opened_connections() -> list:
    """``connections.all(initialized_only=True)`` with one ``Local`` lookup per alias, not two."""
    local = connections._connections
    return [conn for alias in _db_aliases if (conn := getattr(local, alias, None)) is not None]


def on_request_started(**kwargs) -> None:
    for conn in opened_connections():
        conn.queries_log.clear()
        conn.close_if_unusable_or_obsolete()


def on_request_finished(**kwargs) -> None:
    for conn in opened_connections():
        conn.close_if_unusable_or_obsolete()


def _apply_caches() -> None:
    if cache_closing_needed(settings.CACHES):
        request_finished.connect(close_caches)  # Django's own receiver, as Django connects it
    else:
        request_finished.disconnect(close_caches)


def _apply_databases() -> None:
    global _db_aliases
    _db_aliases = tuple(settings.DATABASES)


def _on_setting_changed(*, setting, **kwargs) -> None:
    if setting == "CACHES":
        _apply_caches()
    elif setting == "DATABASES":
        _apply_databases()


def install() -> None:
    _apply_databases()
    _apply_caches()
    request_started.disconnect(reset_queries)
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    request_started.connect(on_request_started)
    request_finished.connect(on_request_finished)
    setting_changed.connect(_on_setting_changed, dispatch_uid="codex.lifecycle")


def uninstall() -> None:
    """Django's receivers back (tests)."""
    request_started.disconnect(on_request_started)
    request_finished.disconnect(on_request_finished)
    setting_changed.disconnect(dispatch_uid="codex.lifecycle")
    request_started.connect(reset_queries)
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)
    request_finished.connect(close_caches)
