"""Public pages of the base domain that show what billing sells: the landing page and pricing."""

from __future__ import annotations

from django.conf import settings
from django.shortcuts import render

from billing.models import Feature
from billing.selectors import plans_public


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
