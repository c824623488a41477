"""Links to a firm's own pages, the same whichever host, URLconf or ``Host`` header served the request.

A request on the API host (``api.<base domain>``) is routed by the API URLconf, which has no web
pages: ``reverse("crm:...")`` there raised ``NoReverseMatch`` (issue 27). Paths are therefore
reversed in the firm URLconf (``settings.ROOT_URLCONF``) explicitly, and absolute links are built
from configuration (``CODEX_URL_SCHEME``, the firm's host under ``CODEX_BASE_DOMAIN``,
``CODEX_PUBLIC_PORT``), never from the request: a client chooses its ``Host`` header, and an
e-mailed link must not point where the client said.
"""

from __future__ import annotations

from django.conf import settings
from django.urls import reverse


def firm_host(slug: str) -> str:
    return f"{slug}.{settings.CODEX_BASE_DOMAIN}"


def firm_authority(slug: str) -> str:
    """``<slug>.<base domain>[:port]`` as configured (the port only where one is configured)."""
    port = f":{settings.CODEX_PUBLIC_PORT}" if settings.CODEX_PUBLIC_PORT else ""
    return f"{firm_host(slug)}{port}"


def firm_origin(slug: str) -> str:
    """``scheme://<slug>.<base domain>[:port]`` as configured."""
    return f"{settings.CODEX_URL_SCHEME}://{firm_authority(slug)}"


def firm_path(viewname: str, *, args=None, kwargs=None) -> str:
    """The path of a firm page (``crm:contact-detail``...), reversed in the firm URLconf."""
    return reverse(viewname, urlconf=settings.ROOT_URLCONF, args=args, kwargs=kwargs)


def firm_url(slug: str, path: str = "/") -> str:
    """An absolute link to ``path`` on the firm's host, from configuration."""
    return f"{firm_origin(slug)}{path}"


def firm_page_url(slug: str, viewname: str, *, args=None, kwargs=None) -> str:
    """An absolute link to a named firm page: what e-mails carry."""
    return firm_url(slug, firm_path(viewname, args=args, kwargs=kwargs))
