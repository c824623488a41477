"""Log-in help on the public site: "which firms am I a member of?", answered by e-mail only.

The page never says whether an address is known: every request gets the same answer, the lookup
and the e-mail happen in a background task (so the response time does not leak it either), and
requests are rate-limited per client IP and per address (the latter silently, so it leaks nothing).
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.mail import send_mail
from django.db import connection
from django_tenants.utils import schema_context

from codex.security.ratelimit import Decision, hit

from .links import firm_url
from .models import Tenant, TenantStatus

logger = logging.getLogger(__name__)

IP_RATE = getattr(settings, "CODEX_FIND_FIRM_IP_RATE", "10/h")
EMAIL_RATE = getattr(settings, "CODEX_FIND_FIRM_EMAIL_RATE", "3/h")
SCHEMAS_PER_QUERY = 200


def firms_for_email(email: str) -> list[Tenant]:
    """Firms (not closed) where ``email`` is an active user, in ⌈firms/200⌉ queries.

    Reads each firm's user table by its schema-qualified name (quoted by the database adapter), with
    the address as a bound parameter, so no firm's search_path is ever switched.
    """
    email = (email or "").strip().lower()
    if not email:
        return []
    with schema_context(settings.PUBLIC_SCHEMA_NAME):
        tenants = list(Tenant.objects.exclude(status=TenantStatus.CLOSED).exclude(schema_name="public"))
        existing = _existing_schemas()
    tenants = [t for t in tenants if t.schema_name in existing]
    found: set[int] = set()
    for start in range(0, len(tenants), SCHEMAS_PER_QUERY):
        chunk = tenants[start : start + SCHEMAS_PER_QUERY]
        parts, params = [], []
        for tenant in chunk:
            table = f"{connection.ops.quote_name(tenant.schema_name)}.accounts_user"
            parts.append(f"SELECT %s FROM {table} WHERE lower(email) = %s AND is_active")
            params += [tenant.pk, email]
        with connection.cursor() as cursor:
            cursor.execute(" UNION ALL ".join(parts), params)
            found.update(row[0] for row in cursor.fetchall())
    return [t for t in tenants if t.pk in found]


def _existing_schemas() -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT schema_name FROM information_schema.schemata")
        return {row[0] for row in cursor.fetchall()}


def find_firm_send(*, email: str) -> int:
    """E-mail ``email`` the sign-in addresses of its firms (nothing if none). Returns how many."""
    firms = firms_for_email(email)
    if not firms:
        logger.info("find-your-firm: no firm for a requested address")
        return 0
    lines = "\n".join(f"- {t.name}: {firm_url(t.slug, '/accounts/login/')}" for t in firms)
    send_mail(
        "Your Codex sign-in addresses",
        "Someone (hopefully you) asked which Codex firms this address belongs to.\n\n"
        f"Sign in to your firm at:\n{lines}\n\n"
        "If you did not ask, you can ignore this e-mail.",
        None,
        [email],
    )
    return len(firms)


def find_firm_request(*, email: str, ip: str | None) -> Decision:
    """Queue the e-mail unless this IP is over its rate (then a refusal with ``retry_after``).

    Over the per-address rate, nothing is sent but the answer is the same as when something is.
    """
    # function-level: tasks imports this module: cycle listed in the acyclic contract
    from .tasks import find_firm_email

    by_ip = hit(scope="find_firm_ip", ident=ip or "-", rate=IP_RATE)
    if not by_ip.allowed:
        return by_ip
    email = (email or "").strip().lower()
    if hit(scope="find_firm_email", ident=email, rate=EMAIL_RATE).allowed:
        find_firm_email.delay(email)
    return by_ip
