"""Client users reach the client portal and nothing else (docs/decisions/0960).

Deny by default: a signed-in client user (session) gets 404 on every path but the portal's own
(``/portal/``, ``/api/v1/portal/``), signing out, changing the password, their two-factor set-up,
the firm's brand sheet and static files. ``/`` sends them to the portal. Bearer tokens of client
users are refused by ``codex.api.authentication``; API keys are firm-wide and never a client.
"""

from __future__ import annotations

from django.http import Http404, HttpResponseRedirect, JsonResponse

from tenants.accounts.models import Role

ALLOWED_PREFIXES = (
    "/portal/",
    "/api/v1/portal/",
    "/accounts/logout/",
    "/accounts/login/",
    "/accounts/password/change/",
    "/accounts/security/",
    "/static/",
    "/brand.css",
    "/theme/",
    "/health",
    "/ready",
)


class ClientConfinementMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if user is not None and getattr(user, "role", None) == Role.CLIENT and user.is_authenticated:
            path = request.path_info
            if path == "/":
                return HttpResponseRedirect("/portal/")
            if not path.startswith(ALLOWED_PREFIXES):
                if path.startswith("/api/"):
                    return JsonResponse(
                        {"error": {"code": "not_found", "message": "Not found.", "details": {}}}, status=404
                    )
                # The firm's 404 page (handler404): staff pages do not exist for a client user.
                raise Http404("Not found.")
        return self.get_response(request)
