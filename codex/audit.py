"""The audit log as the kernel writes to it: one function, implemented by the app settings name.

The audit log's table (``tenants.AuditEvent``, public schema) belongs to ``tenants``, which sits
above the kernel; the kernel's own audited acts (support sessions, data downloads) reach it through
``settings.CODEX_AUDIT_RECORDER``, the dotted path of a function taking these keyword arguments,
the way ``AUTH_USER_MODEL`` names the user model. A path that does not import fails at the first
audited act with Django's ``ImproperlyConfigured``, not silently."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string


def _recorder() -> Callable[..., object]:
    try:
        return import_string(settings.CODEX_AUDIT_RECORDER)  # a dictionary look-up once imported
    except ImportError as exc:
        raise ImproperlyConfigured(f"CODEX_AUDIT_RECORDER: {exc}") from exc


def audit_record(
    *,
    action: str,
    actor: str = "",
    tenant: object = None,
    target: str = "",
    ip: str | None = None,
    details: dict | None = None,
) -> None:
    """Append one audit event (written in the public schema whatever schema is active)."""
    _recorder()(action=action, actor=actor, tenant=tenant, target=target, ip=ip, details=details)
