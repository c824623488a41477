"""The firm's own settings, edited by its owners and admins on the Settings page.

The Tenant row belongs to the tenants app; this module is the one writer of the three fields a
firm may change itself (name, brand colour, two-factor requirement). Operators change the rest in
the operator console.
"""

from __future__ import annotations

import re

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django_tenants.utils import schema_context

from .accounts.services import firm_tokens_revoke
from .models import Tenant
from .services import audit_record

BRAND_COLOR_RE = re.compile(r"^#[0-9a-f]{6}$")


def brand_color_normalise(value: str) -> str:
    """``#rrggbb`` in lower case, or "" for none; ValidationError({"brand_color": ...}) otherwise."""
    value = (value or "").strip().lower()
    if not value:
        return ""
    if not value.startswith("#"):
        value = f"#{value}"
    if len(value) == 4:  # #abc -> #aabbcc
        value = "#" + "".join(c * 2 for c in value[1:])
    if not BRAND_COLOR_RE.match(value):
        raise ValidationError({"brand_color": "Use a colour like #1d4ed8 (a # and six hex digits), or leave empty."})
    return value


def _relative_luminance(hex_color: str) -> float:
    def channel(c: int) -> float:
        s = c / 255
        return s / 12.92 if s <= 0.03928 else ((s + 0.055) / 1.055) ** 2.4

    r, g, b = (int(hex_color[i : i + 2], 16) for i in (1, 3, 5))
    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)


def contrast_ratio(a: str, b: str) -> float:
    la, lb = sorted((_relative_luminance(a), _relative_luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def brand_foreground(brand: str) -> str:
    """Black or white, whichever reads better on ``brand`` (always at least 4.5:1, WCAG AA)."""
    return "#ffffff" if contrast_ratio(brand, "#ffffff") >= contrast_ratio(brand, "#000000") else "#000000"


def firm_settings_update(*, tenant: Tenant, actor, name: str, brand_color: str, require_2fa: bool) -> Tenant:
    """Change the firm's name, brand colour and two-factor requirement. Atomic and audited.

    Turning "require two-factor" on ends every bearer token of the firm's users.
    Only owners and admins (PermissionDenied otherwise). Raises ValidationError by field for a blank
    or too long name or a malformed colour. The host cache is refreshed by the Tenant save signal.
    """
    if not getattr(actor, "is_manager", False):
        raise PermissionDenied("Only the firm's owners and admins change its settings.")
    errors = {}
    name = (name or "").strip()
    if not name:
        errors["name"] = "Enter the firm's name."
    elif len(name) > 200:
        errors["name"] = "Use at most 200 characters."
    try:
        brand_color = brand_color_normalise(brand_color)
    except ValidationError as exc:
        errors.update({k: v[0] for k, v in exc.message_dict.items()})
    if errors:
        raise ValidationError(errors)
    with schema_context(settings.PUBLIC_SCHEMA_NAME), transaction.atomic():
        row = Tenant.objects.select_for_update().get(pk=tenant.pk)
        changes = {
            field: [getattr(row, field), value]
            for field, value in (("name", name), ("brand_color", brand_color), ("require_2fa", bool(require_2fa)))
            if getattr(row, field) != value
        }
        if not changes:
            return row
        for field, (_old, new) in changes.items():
            setattr(row, field, new)
        row.save(update_fields=list(changes))
        if changes.get("require_2fa", [None, False])[1]:
            # Bearer tokens were issued on a password alone: they end now, as deactivation ends
            # a person's (sessions are sent to two-factor set-up by the middleware).
            with schema_context(row.schema_name):
                firm_tokens_revoke()
        audit_record(
            action="tenant.settings_changed",
            actor=getattr(actor, "email", ""),
            tenant=row,
            target=row.slug,
            details={k: {"from": v[0], "to": v[1]} for k, v in changes.items()},
        )
    return row
