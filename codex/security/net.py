"""Where a request comes from, as far as we can trust it."""

from __future__ import annotations

from django.conf import settings


def client_ip(request) -> str | None:
    """The client's IP address.

    ``REMOTE_ADDR`` unless ``CODEX_TRUSTED_PROXY_COUNT`` proxies we run append to
    ``X-Forwarded-For``; then the address the outermost of them saw. Addresses further left are
    written by the client and never trusted.
    """
    if request is None:
        return None
    proxies = settings.CODEX_TRUSTED_PROXY_COUNT
    if proxies > 0:
        forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
        if len(forwarded) >= proxies:
            return forwarded[-proxies]
    return request.META.get("REMOTE_ADDR") or None
