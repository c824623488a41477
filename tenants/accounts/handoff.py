"""Signing a new firm's owner in on the firm's host right after sign-up (docs/decisions/1231).

Sign-up runs on the base domain; sessions are per host, so the new owner has no session on their
firm's host. ``signup_handoff_issue`` returns a token signed with Django's ``signing`` (its own
salt), naming the firm and the owner, with a nonce. The firm's host redeems it once
(``signup_handoff_redeem``: the nonce is consumed in the shared cache) within
``CODEX_SIGNUP_HANDOFF_SECONDS``; a forged, expired, replayed or other firm's token is refused, and
the person signs in with their password as usual. Issue and redemption are audit events of the firm.
"""

from __future__ import annotations

import secrets

from django.conf import settings
from django.core import signing
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django_tenants.utils import schema_context

from tenants.services import audit_record

from .models import Role, User

SIGNUP_HANDOFF_SALT = "codex.signup-handoff"


def signup_handoff_issue(*, tenant, owner_email: str, ip: str | None = None) -> str:
    """A single-use token that signs ``owner_email`` (the firm's owner) in on ``tenant``'s host."""
    nonce = secrets.token_urlsafe(16)
    audit_record(action="auth.signup_handoff_issued", actor=owner_email, tenant=tenant, target=tenant.slug, ip=ip)
    return signing.dumps(
        {"t": tenant.pk, "s": tenant.schema_name, "e": owner_email.strip().lower(), "n": nonce},
        salt=SIGNUP_HANDOFF_SALT,
    )


def signup_handoff_redeem(*, tenant, token: str, ip: str | None = None) -> User:
    """The owner the token names, once. Raises ValidationError if the token is forged, expired,
    already used, made for another firm, or its owner is gone or deactivated. Call it with the
    firm's schema active (the firm's host)."""
    try:
        data = signing.loads(token, salt=SIGNUP_HANDOFF_SALT, max_age=settings.CODEX_SIGNUP_HANDOFF_SECONDS)
    except signing.SignatureExpired as exc:
        raise ValidationError("This sign-in link has expired.") from exc
    except signing.BadSignature as exc:
        raise ValidationError("This sign-in link is not valid.") from exc
    if data.get("t") != tenant.pk or data.get("s") != tenant.schema_name:
        raise ValidationError("This sign-in link is for another firm.")
    with schema_context(settings.PUBLIC_SCHEMA_NAME):
        fresh = cache.add(f"signup-handoff-nonce:{data['n']}", 1, settings.CODEX_SIGNUP_HANDOFF_SECONDS * 2)
    if not fresh:
        raise ValidationError("This sign-in link has already been used.")
    user = User.objects.filter(email=data["e"], role=Role.OWNER, is_active=True).first()
    if user is None:
        raise ValidationError("This sign-in link is not valid.")
    audit_record(action="auth.signup_handoff_redeemed", actor=user.email, tenant=tenant, target=tenant.slug, ip=ip)
    return user
