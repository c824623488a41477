"""Operator support access: a read-only, time-limited, audited session in a firm's web UI.

1. An operator (public-schema superuser who passed TOTP) gives a reason in the operator console;
   ``support_token_issue`` audits the request and returns a signed token valid for two minutes.
2. The firm's host exchanges the token (once: its nonce is consumed in the shared cache) for a
   support session (``support_session_open``): no firm user, a ``SupportPrincipal`` with viewer
   rights; ``SupportSessionMiddleware`` refuses every unsafe method and ends it after
   ``CODEX_SUPPORT_SESSION_SECONDS``. A banner shows on every page.
3. Start and end are audit events of the firm, so its owners see them on their audit page.
"""

from __future__ import annotations

import secrets
import time

from django.conf import settings
from django.core import signing
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django_tenants.utils import schema_context

from codex.audit import audit_record

from .net import client_ip

SUPPORT_SALT = "codex.support-session"
SUPPORT_SESSION_KEY = "codex_support"
MIN_REASON_LENGTH = 10


class SupportPrincipal:
    """The operator behind a support session: reads like a viewer, writes nothing."""

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False
    is_superuser = False
    is_support = True
    pk = None
    id = None
    role = "viewer"
    first_name = ""
    last_name = ""

    def __init__(self, info: dict):
        self.operator = info["operator"]
        self.reason = info["reason"]
        self.email = f"support:{self.operator}"

    is_manager = False
    can_write = False

    def is_verified(self) -> bool:
        return True

    def get_role_display(self) -> str:
        return "Support (read-only)"

    def get_full_name(self) -> str:
        return f"Codex support ({self.operator})"

    def get_username(self) -> str:
        return self.email

    def has_perm(self, perm, obj=None) -> bool:
        return False

    def has_perms(self, perms, obj=None) -> bool:
        return False

    def has_module_perms(self, app_label) -> bool:
        return False

    def __str__(self) -> str:
        return self.get_full_name()


def support_token_issue(*, operator, tenant, reason: str, ip: str | None = None) -> str:
    """Audit an operator's request to open ``tenant`` and return a single-use signed token.

    Raises ValidationError({"reason": ...}) without a reason of at least 10 characters, and
    PermissionError for anyone but an active superuser.
    """

    if not (operator.is_active and operator.is_superuser):
        raise PermissionError("Only operators (superusers) may open a support session.")
    reason = (reason or "").strip()
    if len(reason) < MIN_REASON_LENGTH:
        raise ValidationError({"reason": f"Say why you need access (at least {MIN_REASON_LENGTH} characters)."})
    if len(reason) > 500:
        raise ValidationError({"reason": "Use at most 500 characters."})
    nonce = secrets.token_urlsafe(16)
    audit_record(
        action="support.requested",
        actor=operator.email,
        tenant=tenant,
        target=tenant.slug,
        ip=ip,
        details={"reason": reason},
    )
    return signing.dumps(
        {"t": tenant.pk, "s": tenant.schema_name, "op": operator.email, "r": reason, "n": nonce}, salt=SUPPORT_SALT
    )


def support_session_open(*, request, token: str) -> dict:
    """Exchange a token on the firm's host for a support session. Raises ValidationError if the
    token is forged, expired, already used or made for another firm."""

    tenant = request.tenant
    try:
        data = signing.loads(token, salt=SUPPORT_SALT, max_age=settings.CODEX_SUPPORT_TOKEN_SECONDS)
    except signing.BadSignature as exc:  # includes SignatureExpired
        raise ValidationError("This support link is not valid or has expired.") from exc
    if data.get("t") != tenant.pk or data.get("s") != tenant.schema_name:
        raise ValidationError("This support link is for another firm.")
    with schema_context(settings.PUBLIC_SCHEMA_NAME):
        fresh = cache.add(f"support-nonce:{data['n']}", 1, settings.CODEX_SUPPORT_TOKEN_SECONDS * 2)
    if not fresh:
        raise ValidationError("This support link has already been used.")
    request.session.flush()  # no firm user's session survives into the support session
    expires = time.time() + settings.CODEX_SUPPORT_SESSION_SECONDS
    info = {"operator": data["op"], "reason": data["r"], "firm": tenant.schema_name, "expires": expires}
    request.session[SUPPORT_SESSION_KEY] = info
    # The cookie outlives the session by a little, so its end is seen (and audited) by the middleware.
    request.session.set_expiry(settings.CODEX_SUPPORT_SESSION_SECONDS + 300)
    audit_record(
        action="support.started",
        actor=data["op"],
        tenant=tenant,
        target=tenant.slug,
        ip=client_ip(request),
        details={"reason": data["r"], "minutes": settings.CODEX_SUPPORT_SESSION_SECONDS // 60, "read_only": True},
    )
    return info


def support_session_close(request, *, reason: str = "ended") -> None:

    info = request.session.get(SUPPORT_SESSION_KEY)
    request.session.flush()
    if info:
        audit_record(
            action="support.ended",
            actor=info["operator"],
            tenant=getattr(request, "tenant", None),
            target=getattr(getattr(request, "tenant", None), "slug", ""),
            ip=client_ip(request),
            details={"how": reason},
        )
