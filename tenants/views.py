"""Public-site pages on the base domain: landing and self-serve sign-up."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render

from billing.models import Plan

from .forms import SignupForm
from .services import firm_host, tenant_provision


def firm_url(slug: str, path: str = "/") -> str:
    port = f":{settings.CODEX_PUBLIC_PORT}" if settings.CODEX_PUBLIC_PORT else ""
    return f"{settings.CODEX_URL_SCHEME}://{firm_host(slug)}{port}{path}"


def landing(request):
    return render(request, "public/landing.html", {"plans": Plan.objects.filter(is_public=True)})


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
