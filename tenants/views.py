"""Public-site pages on the base domain: landing, pricing, sign-up, log-in help and status."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.csp import CSP
from django.views.decorators.cache import never_cache
from django.views.decorators.csp import csp_override

from billing.models import Feature, Plan

from .forms import FindFirmForm, SignupForm
from .services import firm_host, tenant_provision


def firm_url(slug: str, path: str = "/") -> str:
    port = f":{settings.CODEX_PUBLIC_PORT}" if settings.CODEX_PUBLIC_PORT else ""
    return f"{settings.CODEX_URL_SCHEME}://{firm_host(slug)}{port}{path}"


def _public_plans() -> list[Plan]:
    try:
        from billing.selectors import plans_public
    except ImportError:
        return list(Plan.objects.filter(is_public=True))
    return plans_public()


def landing(request):
    return render(request, "public/landing.html", {"plans": _public_plans()})


def pricing(request):
    """The plans operators sell (billing.Plan, public ones), with their limits and features."""
    plans = _public_plans()
    features = [(f.value, f.label) for f in Feature]
    rows = [
        {
            "plan": plan,
            "features": [(label, plan.has_feature(value)) for value, label in features],
        }
        for plan in plans
    ]
    return render(
        request,
        "public/pricing.html",
        {"rows": rows, "trial_days": settings.CODEX_TRIAL_DAYS, "signup_plan": settings.CODEX_SIGNUP_PLAN},
    )


@never_cache
def status(request):
    """Public status: the database as /ready sees it now, the other services as beat last recorded
    them (codex/status). States only: details, latency and addresses are for operators."""
    from codex.health import readiness
    from codex.status.selectors import status_public

    ok, checks = readiness()
    services = status_public(live=checks)
    degraded = any(state in ("down", "degraded") for _label, state in services)
    context = {"ok": ok, "degraded": degraded, "services": services, "checked_at": timezone.now()}
    response = render(request, "public/status.html", context)
    response.status_code = 200 if ok else 503
    return response


def find_firm(request):
    """Log-in help: e-mails the firms an address belongs to; the answer never says whether any."""
    from codex.find_firm import find_firm_request

    form = FindFirmForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        decision = find_firm_request(email=form.cleaned_data["email"], ip=_client_ip(request))
        if not decision.allowed:
            from codex.security.ratelimit import too_many_requests

            return too_many_requests(request, decision.retry_after)
        return render(request, "public/find_firm_sent.html", {"email": form.cleaned_data["email"]})
    return render(request, "public/find_firm.html", {"form": form})


def _client_ip(request) -> str | None:
    from codex.security.net import client_ip

    return client_ip(request)


def _firm_hosts_source() -> str:
    port = f":{settings.CODEX_PUBLIC_PORT}" if settings.CODEX_PUBLIC_PORT else ""
    return f"{settings.CODEX_URL_SCHEME}://*.{settings.CODEX_BASE_DOMAIN}{port}"


# The sign-up form posts here and is redirected to the new firm's own host: browsers apply the
# CSP's form-action to that redirect, so this page allows the firms' hosts as form targets.
@csp_override({**settings.SECURE_CSP, "form-action": [CSP.SELF, _firm_hosts_source()]})
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
