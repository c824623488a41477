"""Security pages for people, on firm hosts and (for operators' two-factor) the public host:
two-factor set-up and verification, recovery codes, sign-out everywhere, the firm's audit log, and
the firm-side end of an operator's support session."""

from __future__ import annotations

import functools

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.views.decorators.http import require_POST
from django_otp import login as otp_login

from codex.security.middleware import HAS_DEVICE, two_factor_step
from codex.security.net import client_ip
from codex.security.ratelimit import rate_limit
from codex.security.support import support_session_close, support_session_open
from codex.tables import table_page
from tenants.services import audit_record

from . import services, twofactor
from .forms import AuditFilterForm, TwoFactorCodeForm
from .models import Role
from .selectors import audit_events_for_firm


def _tenant(request):
    return getattr(request, "tenant", None)


def _login_url(request) -> str:
    return "/admin/login/" if _tenant(request) is None else reverse("accounts:login")


def signed_in(view):
    """Like ``login_required``, on both hosts (the public host signs operators in at /admin/login/)."""

    @functools.wraps(view)
    def wrapped(request, *args, **kwargs):
        if not request.user.is_authenticated:
            return HttpResponseRedirect(f"{_login_url(request)}?{urlencode({'next': request.get_full_path()})}")
        if getattr(request.user, "is_support", False):
            raise PermissionDenied("Not available in a support session.")
        return view(request, *args, **kwargs)

    return wrapped


def _next_url(request) -> str:
    candidate = request.POST.get("next") or request.GET.get("next") or ""
    if candidate and url_has_allowed_host_and_scheme(candidate, allowed_hosts={request.get_host()}):
        return candidate
    return "/admin/" if _tenant(request) is None else reverse("home")


@signed_in
def security_overview(request):
    if _tenant(request) is None:
        return redirect("/admin/")
    context = {
        "has_2fa": twofactor.has_two_factor(request.user),
        "required": request.tenant.require_2fa,
        "verified": request.user.is_verified(),
    }
    return render(request, "accounts/security.html", context)


@signed_in
@rate_limit("two_factor")
def two_factor_setup(request):
    """Enrol a TOTP device: QR code (inline SVG) and manual key, then confirm with a code."""
    user = request.user
    if twofactor.has_two_factor(user) and not user.is_verified():
        return redirect(f"{reverse('security:2fa-verify')}?{urlencode({'next': _next_url(request)})}")
    device = twofactor.totp_pending_device(user=user)
    form = TwoFactorCodeForm(request.POST or None)
    if request.method == "POST" and device is not None and form.is_valid():
        try:
            codes = twofactor.totp_enrolment_confirm(
                user=user,
                device=device,
                token=form.cleaned_data["code"],
                tenant=_tenant(request),
                ip=client_ip(request),
            )
        except twofactor.TwoFactorError as exc:
            form.add_error("code", str(exc))
        else:
            otp_login(request, device)
            request.session[HAS_DEVICE] = True
            return render(
                request,
                "accounts/recovery_codes.html",
                {"codes": codes, "next": _next_url(request), "first_time": True},
            )
    if device is None or request.method == "GET":
        device = twofactor.totp_enrolment_start(user=user)
    context = {
        "form": form,
        "qr_svg": twofactor.totp_qr_svg(device),
        "manual_key": twofactor.totp_manual_key(device),
        "next": _next_url(request),
        "required": two_factor_step(request, user) == "setup",
    }
    return render(request, "accounts/two_factor_setup.html", context)


@signed_in
@rate_limit("two_factor")
def two_factor_verify(request):
    """The second step of signing in: a code from the app or a recovery code."""
    user = request.user
    if user.is_verified():
        return redirect(_next_url(request))
    if not twofactor.has_two_factor(user):
        return redirect(f"{reverse('security:2fa-setup')}?{urlencode({'next': _next_url(request)})}")
    form = TwoFactorCodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        device = twofactor.two_factor_verify(
            user=user, token=form.cleaned_data["code"], tenant=_tenant(request), ip=client_ip(request)
        )
        if device is None:
            form.add_error("code", "That code is not right.")
        else:
            otp_login(request, device)
            request.session.cycle_key()
            return redirect(_next_url(request))
    return render(request, "accounts/two_factor_verify.html", {"form": form, "next": _next_url(request)})


@signed_in
@require_POST
def recovery_codes_regenerate(request):
    if not request.user.is_verified():
        raise PermissionDenied("Verify with your second factor first.")
    codes = twofactor.recovery_codes_regenerate(user=request.user, tenant=_tenant(request), ip=client_ip(request))
    return render(request, "accounts/recovery_codes.html", {"codes": codes, "next": _next_url(request)})


@signed_in
@require_POST
def two_factor_disable(request):
    if not request.user.is_verified():
        raise PermissionDenied("Verify with your second factor first.")
    try:
        twofactor.two_factor_disable(user=request.user, tenant=_tenant(request), ip=client_ip(request))
    except twofactor.TwoFactorError as exc:
        messages.error(request, str(exc))
    else:
        request.session[HAS_DEVICE] = False
        messages.success(request, "Two-factor authentication is off.")
    return redirect("security:overview")


@signed_in
@require_POST
def sign_out_everywhere(request):
    ended = services.user_sign_out_everywhere(user=request.user)

    audit_record(
        action="auth.signed_out_everywhere",
        actor=request.user.email,
        tenant=_tenant(request),
        ip=client_ip(request),
        details={"sessions": ended},
    )
    logout(request)
    return redirect(_login_url(request))


AUDIT_SORTS = {"when": "created_at", "action": "action", "actor": "actor", "target": "target"}


@signed_in
def audit_log(request):
    """The firm's own audit events, for its owners."""
    if getattr(request.user, "role", None) != Role.OWNER:
        raise PermissionDenied("Only the firm's owners see the audit log.")
    filters = AuditFilterForm(request.GET)
    table = table_page(
        request,
        filters.filter(audit_events_for_firm(tenant=request.tenant)),
        sorts=AUDIT_SORTS,
        default="-when",
        per_page=50,
    )
    return render(
        request, "accounts/audit_log.html", {"page": table.page, "filters": filters, "table_sort": table.sort}
    )


def support_enter(request, token: str):
    """An operator's single-use link from the operator console opens a read-only support session."""
    try:
        support_session_open(request=request, token=token)
    except ValidationError as exc:
        return render(
            request, "accounts/message.html", {"title": "Support link", "body": " ".join(exc.messages)}, status=400
        )
    return redirect("home")


@require_POST
def support_end(request):
    support_session_close(request)
    port = f":{settings.CODEX_PUBLIC_PORT}" if settings.CODEX_PUBLIC_PORT else ""
    return redirect(f"{settings.CODEX_URL_SCHEME}://{settings.CODEX_BASE_DOMAIN}{port}/admin/")
