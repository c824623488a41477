"""Public-site pages on the base domain: landing, pricing, sign-up, log-in help and status."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.csp import CSP
from django.views.decorators.cache import never_cache
from django.views.decorators.csp import csp_override

from codex import health
from codex.security.net import client_ip
from codex.security.ratelimit import too_many_requests
from codex.status.selectors import status_public

from . import links
from .find_firm import find_firm_request
from .forms import FindFirmForm, SignupForm
from .services import tenant_provision

firm_url = links.firm_url


@never_cache
def status(request):
    """Public status: the database as /ready sees it now, the other services as beat last recorded
    them (codex/status). States only: details, latency and addresses are for operators."""
    ok, checks = health.readiness()
    services = status_public(live=checks)
    degraded = any(state in ("down", "degraded") for _label, state in services)
    context = {"ok": ok, "degraded": degraded, "services": services, "checked_at": timezone.now()}
    response = render(request, "public/status.html", context)
    response.status_code = 200 if ok else 503
    return response


def find_firm(request):
    """Log-in help: e-mails the firms an address belongs to; the answer never says whether any."""

    form = FindFirmForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        decision = find_firm_request(email=form.cleaned_data["email"], ip=_client_ip(request))
        if not decision.allowed:
            return too_many_requests(request, decision.retry_after)
        return render(request, "public/find_firm_sent.html", {"email": form.cleaned_data["email"]})
    return render(request, "public/find_firm.html", {"form": form})


def _client_ip(request) -> str | None:

    return client_ip(request)


def _firm_hosts_source() -> str:
    port = f":{settings.CODEX_PUBLIC_PORT}" if settings.CODEX_PUBLIC_PORT else ""
    return f"{settings.CODEX_URL_SCHEME}://*.{settings.CODEX_BASE_DOMAIN}{port}"


# The sign-up form posts here and is redirected to the new firm's own host: browsers apply the
# CSP's form-action to that redirect, so this page allows the firms' hosts as form targets.
_SIGNUP_CSP: dict[str, Any] = {**settings.SECURE_CSP, "form-action": [CSP.SELF, _firm_hosts_source()]}


@csp_override(_SIGNUP_CSP)
def signup(request):
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            tenant = tenant_provision(
                name=form.cleaned_data["name"],
                slug=form.cleaned_data["slug"],
                owner_email=form.cleaned_data["owner_email"],
                owner_password=form.cleaned_data["owner_password"],
                plan_code=settings.CODEX_SIGNUP_PLAN,
                ip=request.META.get("REMOTE_ADDR"),
            )
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                form.add_error(field if field in form.fields else None, errors)
        else:
            return redirect(firm_url(tenant.slug, "/accounts/login/?welcome=1"))
    return render(request, "public/signup.html", {"form": form, "base_domain": settings.CODEX_BASE_DOMAIN})
