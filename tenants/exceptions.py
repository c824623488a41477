class TenantSuspended(Exception):
    """The firm is suspended or closed: its data is kept but nobody may use it."""


class InvalidApiKey(Exception):
    """An API key that is malformed, unknown, expired or revoked."""
