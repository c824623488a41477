class TenantSuspended(Exception):
    """The firm is suspended or closed: its data is kept but nobody may use it."""


class InvalidApiKey(Exception):
    """An API key that is malformed, unknown, expired or revoked."""


class LimitReached(Exception):
    """A limit an app above tenants sets (billing's plan limits) refuses one more seat or record.
    ``str(exc)`` is a sentence for the UI; billing's ``PlanLimitExceeded`` is one."""
