"""Public-site pages on the base domain: log-in help and status (landing, pricing and sign-up are the
site's: codex.site.public_pages)."""

from __future__ import annotations

from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.cache import never_cache

from codex import health
from codex.security.net import client_ip
from codex.security.ratelimit import too_many_requests
from codex.status.selectors import status_public

from . import links
from .find_firm import find_firm_request
from .forms import FindFirmForm

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
