"""Public pages of the base domain that show what billing sells: the landing page, pricing and the
sign-up that starts a trial of the plan chosen there."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.utils.csp import CSP
from django.views.decorators.cache import never_cache
from django.views.decorators.csp import csp_override

from billing.models import Feature
from billing.selectors import plans_public
from codex import formatting as fmt
from codex.security.net import client_ip
from codex.security.ratelimit import hit, hit_refund, too_many_requests
from tenants import links
from tenants.accounts.handoff import signup_handoff_issue
from tenants.forms import SignupForm
from tenants.services import tenant_provision


def landing(request):
    return render(request, "public/landing.html", {"plans": plans_public()})


def pricing(request):
    """The plans operators sell (billing.Plan, public ones), with their limits and features."""
    plans = plans_public()
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


def _firm_hosts_source() -> str:
    port = f":{settings.CODEX_PUBLIC_PORT}" if settings.CODEX_PUBLIC_PORT else ""
    return f"{settings.CODEX_URL_SCHEME}://*.{settings.CODEX_BASE_DOMAIN}{port}"


# The sign-up form posts here and is redirected to the new firm's own host: browsers apply the
# CSP's form-action to that redirect, so this page allows the firms' hosts as form targets.
_SIGNUP_CSP: dict[str, Any] = {**settings.SECURE_CSP, "form-action": [CSP.SELF, _firm_hosts_source()]}


def _plan_choices(plans) -> list[tuple[str, str]]:
    return [(p.code, f"{p.name}: {fmt.money(p.price_month, p.currency)} a month") for p in plans]


@never_cache
@csp_override(_SIGNUP_CSP)
def signup(request):
    """Self-serve sign-up (docs/decisions/1230): every field checked at once; only sign-ups that
    succeed count toward ``CODEX_FORM_RATES["signup"]`` per IP (any submission counts toward the
    looser ``signup_attempt``); the plan chosen on the pricing page (``?plan=``) gets the trial; the
    new owner lands signed in on their firm's host through a single-use link."""
    plans = plans_public()
    ident = f"public|{client_ip(request) or '-'}"
    if request.method == "POST":
        attempt = hit(scope="signup_attempt", ident=ident, rate=settings.CODEX_FORM_RATES["signup_attempt"])
        if not attempt.allowed:
            return too_many_requests(request, attempt.retry_after)
        form = SignupForm(request.POST, plans=_plan_choices(plans))
    else:
        chosen = request.GET.get("plan", "")
        known = {p.code for p in plans}
        initial = chosen if chosen in known else settings.CODEX_SIGNUP_PLAN
        form = SignupForm(initial={"plan": initial}, plans=_plan_choices(plans))
    if request.method == "POST" and form.is_valid():
        rate = settings.CODEX_FORM_RATES["signup"]
        decision = hit(scope="signup", ident=ident, rate=rate)
        if not decision.allowed:
            return too_many_requests(request, decision.retry_after)
        try:
            tenant = tenant_provision(
                name=form.cleaned_data["name"],
                slug=form.cleaned_data["slug"],
                owner_email=form.cleaned_data["owner_email"],
                owner_password=form.cleaned_data["owner_password"],
                plan_code=form.cleaned_data["plan"],
                ip=client_ip(request),
            )
        except ValidationError as exc:
            # refused (e.g. the address was taken a moment ago): not a sign-up, so not counted
            hit_refund(scope="signup", ident=ident, rate=rate)
            for field, errors in exc.message_dict.items():
                form.add_error(field if field in form.fields else None, errors)
        else:
            token = signup_handoff_issue(
                tenant=tenant, owner_email=form.cleaned_data["owner_email"], ip=client_ip(request)
            )
            return redirect(links.firm_url(tenant.slug, f"/accounts/welcome/{token}/"))
    context = {"form": form, "base_domain": settings.CODEX_BASE_DOMAIN, "trial_days": settings.CODEX_TRIAL_DAYS}
    return render(request, "public/signup.html", context)
