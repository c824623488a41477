"""Host routing: which firm (schema) and which URLconf serve a request.

- the base domain (and www): the public site and the operators' admin, public schema;
- ``api.<base domain>``: the API, firm resolved from the ``X-API-Key`` header before authentication;
- a firm's host (``<slug>.<base>`` or a custom domain): that firm's schema and URLconf;
- anything else: 404, before any view runs.

Unlike django-tenants' stock middleware this makes no query for a warm host (see
``tenants.selectors.tenant_for_host``).
"""

from __future__ import annotations

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, InterfaceError, OperationalError, connection, connections
from django.http import HttpResponseNotFound, JsonResponse
from django.http.request import split_domain_port
from django.shortcuts import render

from codex.observability import service_unavailable

from .exceptions import InvalidApiKey
from .models import TenantStatus
from .registry import blocked_page_context
from .selectors import api_key_resolve, tenant_for_host

API_PREFIX = "/api/"
ALWAYS_OPEN_PATHS = ("/health", "/ready", "/static/")


def error_envelope(status: int, code: str, message: str, details: dict | None = None) -> JsonResponse:
    return JsonResponse({"error": {"code": code, "message": message, "details": details or {}}}, status=status)


# Host header -> its domain, lower-cased, port and trailing dot removed ("" when malformed).
# ``split_domain_port`` runs a long regular expression; the few hosts a worker serves are
# remembered instead. Bounded: a client sending random hosts empties it, never grows it.
_DOMAINS: dict[str, str] = {}
_DOMAINS_MAX = 1024


def _request_host(request) -> str:
    raw = request.META.get("HTTP_X_FORWARDED_HOST") if settings.USE_X_FORWARDED_HOST else None
    raw = raw or request.META.get("HTTP_HOST") or request.META.get("SERVER_NAME", "")
    domain = _DOMAINS.get(raw)
    if domain is None:
        domain = split_domain_port(raw)[0].lower()
        if len(_DOMAINS) >= _DOMAINS_MAX:
            _DOMAINS.clear()
        _DOMAINS[raw] = domain
    return domain


def _in_schema(tenant, chunks):
    previous = connection.tenant
    if tenant is None:
        connection.set_schema_to_public()
    else:
        connection.set_tenant(tenant)
    try:
        yield from chunks
    finally:
        connection.set_tenant(previous)


class TenantRoutingMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        # Whatever this request does to the connection's schema, the next user of the connection
        # (the next request, or a test around the test client) finds it as it was.
        conn = connections[DEFAULT_DB_ALIAS]  # the proxy ``connection`` looks it up on every use
        previous = conn.tenant
        try:
            response = self._route(request, conn)
            if getattr(response, "streaming", False):
                # A streaming body (CSV exports) is generated after this middleware has returned,
                # when the connection is back in ``previous``: run the generator in the schema the
                # request was served in, or it would read whichever schema the connection has then
                # (another firm's: found by the security isolation matrix).
                response.streaming_content = _in_schema(getattr(request, "tenant", None), response.streaming_content)
            return response
        finally:
            if conn.tenant is not previous:
                conn.set_tenant(previous)

    def _route(self, request, conn):
        if conn.schema_name != settings.PUBLIC_SCHEMA_NAME:
            conn.set_schema_to_public()
        host = _request_host(request)
        request.api_key = None
        # ``request.tenant`` is set only when a firm serves the request: django-tenants' admin
        # templates take its absence to mean the public schema.

        if host in settings.CODEX_PUBLIC_HOSTS:
            request.urlconf = settings.PUBLIC_SCHEMA_URLCONF
            return self.get_response(request)

        if host == settings.CODEX_API_HOST:
            request.urlconf = settings.CODEX_API_URLCONF
            if request.path.startswith((*ALWAYS_OPEN_PATHS, "/api/v1/schema/", "/api/v1/docs/")):
                return self.get_response(request)
            raw = request.META.get("HTTP_X_API_KEY", "")
            if not raw:
                return error_envelope(401, "not_authenticated", "Send your API key in the X-API-Key header.")
            try:
                key = api_key_resolve(raw)
            except InvalidApiKey as exc:
                return error_envelope(401, "authentication_failed", str(exc))
            except (OperationalError, InterfaceError) as exc:  # before any view: decision 0933
                return service_unavailable(request, exc)
            request.api_key = key
            tenant = key.tenant
        else:
            try:
                tenant = tenant_for_host(host)
            except (OperationalError, InterfaceError) as exc:  # before any view: decision 0933
                return service_unavailable(request, exc)
            if tenant is None:
                if request.path.startswith(API_PREFIX):
                    return error_envelope(404, "not_found", "No firm is served at this address.")
                return HttpResponseNotFound(render(request, "404_host.html", {"host": host}).content)
            request.urlconf = settings.ROOT_URLCONF

        request.tenant = tenant
        conn.set_tenant(tenant)
        return self.get_response(request)


# A suspended firm can still sign in and see what it owes (billing page, invoices): paying is how it
# gets back in. A closed firm reopens only through the operators.
SUSPENDED_OPEN_UI_PATHS = (
    "/accounts/login/",
    "/accounts/logout/",
    "/accounts/password/",
    "/accounts/security/",
    "/billing/",
)


class TenantStatusMiddleware:
    """Suspended and closed firms: a clear page in the UI, 403 ``tenant_suspended`` in the API."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        tenant = getattr(request, "tenant", None)
        if tenant is not None and tenant.is_blocked and not request.path.startswith(ALWAYS_OPEN_PATHS):
            if request.path.startswith(API_PREFIX) and not request.path.startswith(
                ("/api/v1/schema/", "/api/v1/docs/")
            ):
                return error_envelope(
                    403,
                    "tenant_suspended",
                    f"This firm's account is {tenant.status}. Its data is kept; contact support.",
                    {"status": tenant.status},
                )
            if not request.path.startswith(API_PREFIX):
                if tenant.status == TenantStatus.SUSPENDED and request.path.startswith(SUSPENDED_OPEN_UI_PATHS):
                    return self.get_response(request)
                return render(request, "tenants/suspended.html", blocked_page_context_for(request, tenant), status=403)
        return self.get_response(request)


def blocked_page_context_for(request, tenant) -> dict:
    """What a suspended or closed firm's page says. The operator's reason and any unpaid invoice
    (billing, through ``tenants.registry``) are for the firm's signed-in people only: a visitor who
    merely knows the address learns the status and how to sign in, nothing more."""
    context: dict = {"tenant": tenant, "support_email": settings.CODEX_SUPPORT_EMAIL}
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        context["signed_in"] = True
        if tenant.status == TenantStatus.SUSPENDED:
            context["reason"] = tenant.suspension_reason
            context.update(blocked_page_context(tenant=tenant))
    return context
