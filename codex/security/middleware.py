"""Security middleware: session lifetimes, two-factor gate, read-only support sessions, headers."""

from __future__ import annotations

import time

from django.conf import settings
from django.contrib.auth import SESSION_KEY, logout
from django.http import HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.utils.http import url_has_allowed_host_and_scheme, urlencode

from codex.audit import audit_record

from .net import client_ip
from .support import SUPPORT_SESSION_KEY, SupportPrincipal, support_session_close

AUTH_AT = "_codex_auth_at"
SEEN_AT = "_codex_seen_at"
HAS_DEVICE = "_codex_has_2fa"
SEEN_RESOLUTION = 60  # seconds between writes of the idle clock, so a page view rarely saves the session
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
TWO_FACTOR_PATHS = ("/accounts/security/2fa/",)
ALWAYS_OPEN = ("/static/", "/health", "/ready", "/accounts/logout/", "/admin/logout/", *TWO_FACTOR_PATHS)
GATE_EXEMPT = ("/api/", *ALWAYS_OPEN)


def _is_public_host(request) -> bool:
    return getattr(request, "tenant", None) is None


def _has_session(request) -> bool:
    """Whether the request came with a session: no cookie, no signed-in user, no support session.

    Reads the session key only (no session load), so a request without a session cookie (API
    clients, health checks, a first visit) skips the session-based checks below at no cost.
    """
    session = getattr(request, "session", None)
    return session is not None and session.session_key is not None


def two_factor_step(request, user) -> str | None:
    """What stands between this signed-in user and the app: ``"verify"``, ``"setup"`` or None.

    Operators (public schema) must always pass TOTP when ``CODEX_OPERATOR_REQUIRE_2FA``; a firm's
    users must once they have a device, or when their firm requires two-factor.
    """
    if not getattr(user, "is_authenticated", False) or getattr(user, "is_support", False):
        return None
    if user.is_verified():
        return None
    has_device = request.session.get(HAS_DEVICE)
    if has_device is None:
        from django_otp import devices_for_user

        has_device = any(True for _ in devices_for_user(user, confirmed=True))
        request.session[HAS_DEVICE] = has_device
    if has_device:
        return "verify"
    if _is_public_host(request):
        return "setup" if settings.CODEX_OPERATOR_REQUIRE_2FA else None
    return "setup" if request.tenant.require_2fa else None


class SessionTimeoutMiddleware:
    """End a signed-in session after ``CODEX_SESSION_IDLE_SECONDS`` without a request (sliding) or
    ``CODEX_SESSION_ABSOLUTE_SECONDS`` after sign-in, whichever comes first."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        session = getattr(request, "session", None)
        if _has_session(request) and session.get(SESSION_KEY):
            now = time.time()
            auth_at = session.get(AUTH_AT)
            seen_at = session.get(SEEN_AT)
            if auth_at is None or seen_at is None:
                session[AUTH_AT] = auth_at = auth_at or now
                session[SEEN_AT] = seen_at = now
            idle = now - seen_at > settings.CODEX_SESSION_IDLE_SECONDS
            too_old = now - auth_at > settings.CODEX_SESSION_ABSOLUTE_SECONDS
            if idle or too_old:
                logout(request)  # flushes the session and its cookie's key
                request.codex_session_expired = "idle" if idle else "absolute"
                page = getattr(request, "tenant", None) is not None and not request.path.startswith("/api/")
                if page and request.method == "GET":
                    query = urlencode({"expired": "1", "next": request.get_full_path()})
                    return HttpResponseRedirect(f"/accounts/login/?{query}")
            elif now - seen_at > SEEN_RESOLUTION:
                session[SEEN_AT] = now
        return self.get_response(request)


class SupportSessionMiddleware:
    """An operator's read-only support session on a firm's host.

    The session carries no firm user: ``request.user`` becomes a ``SupportPrincipal`` (viewer rights,
    no writes), every unsafe method is refused with 403 except ending the session, and the session
    ends by itself after ``CODEX_SUPPORT_SESSION_SECONDS``.
    """

    END_PATH = "/accounts/support/end/"

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        info = request.session.get(SUPPORT_SESSION_KEY) if _has_session(request) else None
        if info:
            tenant = getattr(request, "tenant", None)
            if tenant is None or info.get("firm") != tenant.schema_name or info["expires"] <= time.time():
                support_session_close(request, reason="expired")
                return self.get_response(request)
            request.user = SupportPrincipal(info)
            request.support_session = info
            if request.method not in SAFE_METHODS and request.path != self.END_PATH:
                message = "This is a read-only support session: changes are not allowed."
                if request.path.startswith("/api/"):
                    return JsonResponse(
                        {"error": {"code": "support_read_only", "message": message, "details": {}}}, status=403
                    )
                return render(request, "403.html", {"reason": message}, status=403)
        return self.get_response(request)


class TwoFactorMiddleware:
    """Send a signed-in user who still owes a second factor to the verify or set-up page.

    Pages only: the API's session authentication refuses such a session by itself
    (``tenants.authentication.CsrfSessionAuthentication``); API keys and bearer tokens are
    separate credentials. On the public host only the operator console is gated.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        path = request.path
        # Without a session there is nobody signed in to gate (pages authenticate by session only).
        gated = _has_session(request) and not path.startswith(GATE_EXEMPT)
        if gated and _is_public_host(request):
            gated = path.startswith("/admin/")
        if gated:
            step = two_factor_step(request, request.user)
            if step is not None:
                target = f"/accounts/security/2fa/{step}/"
                next_url = request.get_full_path()
                if not url_has_allowed_host_and_scheme(next_url, allowed_hosts={request.get_host()}):
                    next_url = "/"
                return HttpResponseRedirect(f"{target}?{urlencode({'next': next_url})}")
        return self.get_response(request)


class PermissionsPolicyMiddleware:
    """``Permissions-Policy``: no page of ours uses the camera, microphone, location, payment..."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        response.headers.setdefault("Permissions-Policy", settings.CODEX_PERMISSIONS_POLICY)
        return response


class ExportAuditMiddleware:
    """Audit every download of the firm's data (``Content-Disposition: attachment``: CSV exports of
    clients, companies, deals, transactions, holdings...), pages and API alike, whoever wrote the
    export view: who, what (path, query, file name), when, from where."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        tenant = getattr(request, "tenant", None)
        if tenant is None or not 200 <= response.status_code < 300 or "Content-Disposition" not in response.headers:
            return response
        disposition = response.headers["Content-Disposition"]
        if disposition.startswith("attachment"):
            user = getattr(request, "user", None)
            actor = getattr(user, "email", "") or str(user or "")
            filename = disposition.partition("filename=")[2].strip('"')
            audit_record(
                action="data.exported",
                actor=actor,
                tenant=tenant,
                target=request.path[:254],
                ip=client_ip(request),
                details={"file": filename[:200], "query": request.META.get("QUERY_STRING", "")[:500]},
            )
        return response
