"""Security-related responses shared by every host."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.http import HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils import timezone


def csrf_failure(request, reason: str = ""):
    """CSRF refusals: the API's JSON envelope under /api/, the site's 403 page elsewhere."""
    message = "CSRF check failed: send the CSRF token with a session, or use an API key or bearer token."
    if request.path.startswith("/api/"):
        return JsonResponse({"error": {"code": "csrf_failed", "message": message, "details": {}}}, status=403)
    return render(
        request,
        "403.html",
        {"reason": "Your form expired or came from another site. Reload and try again."},
        status=403,
    )


def security_txt(request):
    """RFC 9116 ``/.well-known/security.txt``: where to report a vulnerability (docs/security.md)."""

    contact = getattr(settings, "CODEX_SECURITY_CONTACT", "") or f"mailto:security@{settings.CODEX_BASE_DOMAIN}"
    expires = (timezone.now() + timedelta(days=180)).replace(microsecond=0).isoformat()
    body = (
        f"Contact: {contact}\n"
        f"Expires: {expires}\n"
        "Preferred-Languages: en\n"
        f"Canonical: {request.build_absolute_uri('/.well-known/security.txt')}\n"
    )
    return HttpResponse(body, content_type="text/plain; charset=utf-8")
