"""Pages of the web UI's own: dashboard, firm settings, theme switch, brand stylesheet, error pages."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.staticfiles import finders
from django.core.exceptions import PermissionDenied, RequestDataTooBig, ValidationError
from django.http import HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from codex.api.errors import api_error_response, request_too_large_response
from codex.templatetags.codex_ui import THEME_COOKIE, THEMES
from portfolios.models import LedgerSettings
from portfolios.services import ledger_settings_update
from tenants.firm_settings import brand_foreground, firm_settings_update

from .dashboard import dashboard_for
from .forms import FirmSettingsForm, LedgerSettingsForm

THEME_COOKIE_AGE = 365 * 24 * 3600


@login_required
def home(request):
    return render(request, "home.html", {"dashboard": dashboard_for(request=request)})


@login_required
def firm_settings(request):
    """Settings: the firm's own (owners and admins) and links to the person's profile and security.

    Two forms on one page: the firm's identity, and its ledger rules (negative cash, reconciliation
    tolerance; posted with ``form=ledger``). Members read the ledger rules."""
    form = ledger_form = None
    ledger = LedgerSettings.current()
    ledger_initial = {
        "negative_cash": ledger.negative_cash,
        "reconciliation_tolerance": Decimal(ledger.reconciliation_tolerance).normalize(),
    }
    posted_ledger = request.method == "POST" and request.POST.get("form") == "ledger"
    if request.user.is_manager:
        tenant = request.tenant
        initial = {"name": tenant.name, "brand_color": tenant.brand_color, "require_2fa": tenant.require_2fa}
        form = FirmSettingsForm(None if posted_ledger else (request.POST or None), initial=initial)
        ledger_form = LedgerSettingsForm(request.POST if posted_ledger else None, initial=ledger_initial)
        if posted_ledger and ledger_form.is_valid():
            try:
                ledger_settings_update(**ledger_form.cleaned_data, actor=request.user.email)
            except ValidationError as exc:
                for field, errors in exc.message_dict.items():
                    ledger_form.add_error(field if field in ledger_form.fields else None, errors)
            else:
                messages.success(request, "Ledger settings saved.")
                return redirect("settings")
        elif request.method == "POST" and not posted_ledger and form.is_valid():
            try:
                firm_settings_update(tenant=tenant, actor=request.user, **form.cleaned_data)
            except ValidationError as exc:
                for field, errors in exc.message_dict.items():
                    form.add_error(field if field in form.fields else None, errors)
            else:
                messages.success(request, "Firm settings saved.")
                return redirect("settings")
    elif request.method == "POST":
        raise PermissionDenied("Only the firm's owners and admins change its settings.")
    return render(request, "settings.html", {"form": form, "ledger_form": ledger_form, "ledger": ledger})


@require_GET
def favicon(request):
    """``/favicon.ico``: the icon the pages link (``static/favicon.svg``), for what asks this path by
    default (the operators' console, the portal, feed readers): never a 404 in the log."""
    # The source file (static/ ships with the code), so it answers before and without collectstatic.
    response = HttpResponse(Path(str(finders.find("favicon.svg"))).read_bytes(), content_type="image/svg+xml")
    response["Cache-Control"] = "public, max-age=86400"
    return response


@require_POST
def theme(request):
    """Remember the chosen colour theme in a cookie (works without JavaScript) and go back."""
    value = request.POST.get("theme", "")
    target = request.POST.get("next") or "/"
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=False):
        target = "/"
    response = HttpResponseRedirect(target)
    if value in THEMES:
        response.set_cookie(THEME_COOKIE, value, max_age=THEME_COOKIE_AGE, samesite="Lax", httponly=False)
    else:
        response.delete_cookie(THEME_COOKIE, samesite="Lax")
    return response


@require_GET
def brand_css(request):
    """The firm's brand colour as CSS custom properties (inline styles are blocked by the CSP).

    Served from the firm's host with no query (the firm is cached); the page links it with the colour
    in the query string, so it can be cached for a long time and changes show at once.
    """
    tenant = request.tenant
    color = tenant.brand_color or ""
    if not color:
        body = "/* no brand colour */\n"
    else:
        body = f":root {{ --brand: {color}; --brand-fg: {brand_foreground(color)}; }}\n"
    response = HttpResponse(body, content_type="text/css; charset=utf-8")
    response["Cache-Control"] = "public, max-age=86400"
    return response


def api_not_found(request, exception=None):

    return api_error_response(404, "not_found", "Not found.")


def answers_in_json(request) -> bool:
    """Errors under /api/, and every error on the API host (its URLconf has no web pages: the HTML
    error pages link to them and could not even be rendered there), use the JSON envelope."""
    return request.path.startswith("/api/") or getattr(request, "urlconf", None) == settings.CODEX_API_URLCONF


def handler404(request, exception=None):
    if answers_in_json(request):
        return api_not_found(request)
    return render(request, "404.html", status=404)


def handler500(request):
    if answers_in_json(request):
        return api_error_response(500, "server_error", "Something went wrong on our side; it has been logged.")
    return render(request, "500.html", status=500)


def handler403(request, exception=None):
    if answers_in_json(request):
        return api_error_response(403, "permission_denied", str(exception) or "Permission denied.")
    return render(request, "403.html", {"reason": str(exception or "")}, status=403)


def handler400(request, exception=None):
    if answers_in_json(request):
        if isinstance(exception, RequestDataTooBig):
            return request_too_large_response(settings.DATA_UPLOAD_MAX_MEMORY_SIZE)
        return api_error_response(400, "bad_request", "Bad request.")
    return render(request, "400.html", status=400)
