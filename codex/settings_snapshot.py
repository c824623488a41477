"""Settings read on every request, read once.

An attribute of Django's lazy ``settings`` costs about 3,000 instructions a read (``LazyObject``'s
Python-level ``__getattribute__``); the request path reads a few dozen of them. A snapshot copies
the names it is given on first use and is read again after any of them changes
(``setting_changed``: ``override_settings`` and pytest-django's ``settings`` fixture). Decision 0704.

    ROUTING = SettingsSnapshot("CODEX_API_HOST", "ROOT_URLCONF")
    ROUTING().codex_api_host
"""

from __future__ import annotations

from django.conf import settings
from django.core.signals import setting_changed

_snapshots: list[SettingsSnapshot] = []


class SettingsSnapshot:
    def __init__(self, *names: str, **defaults):
        self._names = frozenset(names) | frozenset(defaults)
        self._defaults = defaults
        self._loaded = False
        _snapshots.append(self)

    def __call__(self) -> SettingsSnapshot:
        return self if self._loaded else self._load()

    def _load(self) -> SettingsSnapshot:
        for name in self._names:
            args = (name, self._defaults[name]) if name in self._defaults else (name,)
            setattr(self, name.lower(), getattr(settings, *args))
        self._loaded = True
        return self

    def forget(self, setting: str) -> None:
        if setting in self._names:
            self._loaded = False


def _on_setting_changed(*, setting, **kwargs):
    for snapshot in _snapshots:
        snapshot.forget(setting)


setting_changed.connect(_on_setting_changed)
