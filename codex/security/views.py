"""Security-related responses shared by every host."""

from __future__ import annotations

from django.http import JsonResponse
from django.shortcuts import render


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
