"""How many of a limited resource a firm has: a registry of counters (docs/architecture.md).

billing sets limits on rows other apps own (contacts, portfolios) but imports none of them: each
app registers a counter for its resource in its ``AppConfig.ready``
(``register_resource_counter("contacts", ...)``), and billing asks it here. Seats (the firm's users
and pending invitations) are counted by billing itself from tenants, below it.
"""

from __future__ import annotations

from collections.abc import Callable

from tenants.accounts.models import Invitation, Role, User

#: The resources a plan limits, by the plan's field.
RESOURCE_LIMIT_FIELDS = {
    "seats": "max_seats",
    "portfolios": "max_portfolios",
    "contacts": "max_contacts",
    "api_calls": "max_api_calls_month",
}

_counters: dict[str, Callable[[], int]] = {}


def register_resource_counter(resource: str, counter: Callable[[], int]) -> None:
    """``counter()`` counts ``resource`` in the active firm schema."""
    if resource not in RESOURCE_LIMIT_FIELDS:
        raise ValueError(f"unknown resource {resource!r}")
    _counters[resource] = counter


def seats_count() -> int:
    return (
        # Client users (the client portal) are the firm's customers, not seats.
        User.objects.filter(is_active=True).exclude(role=Role.CLIENT).count()
        + Invitation.objects.filter(accepted_at__isnull=True, revoked_at__isnull=True).exclude(role=Role.CLIENT).count()
    )


def resource_count(resource: str) -> int | None:
    """Current count of a resource in the active firm schema; None if no app counts it."""
    if resource == "seats":
        return seats_count()
    if resource not in RESOURCE_LIMIT_FIELDS:
        raise ValueError(f"unknown resource {resource!r}")
    counter = _counters.get(resource)
    return None if counter is None else counter()
