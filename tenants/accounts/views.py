"""Firm-host pages for people: sign in/out, passwords, the team, invitations, API keys."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Q
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.views.decorators.http import require_POST

from codex.confirm import confirmation_required
from codex.idempotent_forms import form_succeeded, idempotent_form
from codex.security.net import client_ip
from codex.security.ratelimit import _firm, login_reset, rate_limit
from codex.tables import table_page
from tenants import links
from tenants.exceptions import LimitReached
from tenants.forms import ApiKeyForm
from tenants.models import ApiKey
from tenants.selectors import api_keys_made_by
from tenants.services import api_key_create, api_key_revoke, audit_record

from . import security_views, services, twofactor
from .forms import AcceptInvitationForm, EmailAuthenticationForm, InviteForm, ProfileForm, RoleForm
from .handoff import signup_handoff_redeem
from .models import Invitation, Role, User

LOGIN_BACKEND = "codex.security.auth.ThrottledModelBackend"


@method_decorator(rate_limit("login"), name="dispatch")
class LoginView(auth_views.LoginView):
    """Password first; a user with two-factor (or whose firm requires it) is then sent by
    ``TwoFactorMiddleware`` to the verify or set-up page before any other page opens."""

    template_name = "accounts/login.html"
    authentication_form = EmailAuthenticationForm
    redirect_authenticated_user = True

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["session_expired"] = self.request.GET.get("expired") == "1"
        return context


@method_decorator(rate_limit("password_reset"), name="dispatch")
class PasswordResetView(auth_views.PasswordResetView):
    def form_valid(self, form):

        # The link's scheme, host and port come from configuration, not from the request's Host
        # header (a client chooses that one); Django's documented hook for the e-mail's context.
        self.extra_email_context = {
            "protocol": settings.CODEX_URL_SCHEME,
            "domain": links.firm_authority(self.request.tenant.slug),
        }

        audit_record(
            action="auth.password_reset_requested",
            actor=form.cleaned_data["email"],
            tenant=getattr(self.request, "tenant", None),
            ip=client_ip(self.request),
        )
        return super().form_valid(form)


@method_decorator(rate_limit("password_reset"), name="dispatch")
class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    def form_valid(self, form):
        response = super().form_valid(form)

        user = form.user
        # A reset ends every other session and token, and lifts any sign-in throttle on the account.
        services.user_sign_out_everywhere(user=user)
        login_reset(firm=_firm(self.request), email=user.email)
        audit_record(
            action="auth.password_reset",
            actor=user.email,
            tenant=getattr(self.request, "tenant", None),
            ip=client_ip(self.request),
        )
        return response


class PasswordChangeView(auth_views.PasswordChangeView):
    def form_valid(self, form):
        response = super().form_valid(form)

        # Bearer tokens issued with the old password end too (as sessions elsewhere do).
        services.user_tokens_revoke(user=form.user)

        audit_record(
            action="auth.password_changed",
            actor=self.request.user.email,
            tenant=getattr(self.request, "tenant", None),
            ip=client_ip(self.request),
        )
        return response


def _manager_required(request) -> None:
    if not request.user.is_manager:
        raise PermissionDenied("Only the firm's owners and admins manage the team.")


def _apply_errors(form, exc: ValidationError) -> None:
    if hasattr(exc, "error_dict"):
        for field, errs in exc.message_dict.items():
            form.add_error(field if field in form.fields else None, errs)
    else:
        form.add_error(None, exc.messages)


@login_required
@rate_limit("invitation")
@idempotent_form
def team(request):
    _manager_required(request)
    form = InviteForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.invitation_create(
                actor=request.user,
                email=form.cleaned_data["email"],
                role=form.cleaned_data["role"],
                tenant=request.tenant,
                accept_url_builder=lambda token: links.firm_page_url(
                    request.tenant.slug, "accounts:accept-invitation", args=[token]
                ),
            )
        except ValidationError as exc:
            _apply_errors(form, exc)
        except LimitReached as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"Invitation sent to {form.cleaned_data['email']}.")
            return redirect("accounts:team")
    members = User.objects.all()
    query = request.GET.get("q", "").strip()
    if query:
        members = members.filter(
            Q(email__icontains=query) | Q(first_name__icontains=query) | Q(last_name__icontains=query)
        )
    role_filter = request.GET.get("role", "")
    if role_filter in Role.values:
        members = members.filter(role=role_filter)
    table = table_page(
        request,
        members,
        sorts={"name": ("last_name", "first_name"), "email": "email", "role": "role", "status": "-is_active"},
        default="email",
    )
    context = {
        "form": form,
        "table": table,
        "members": table.rows,
        "filtered": bool(query or role_filter),
        "invitations": Invitation.objects.filter(accepted_at__isnull=True, revoked_at__isnull=True),
        "roles": Role.choices,
    }
    return render(request, "accounts/team.html", context)


@login_required
@require_POST
def change_role(request, pk: int):
    _manager_required(request)
    member = get_object_or_404(User, pk=pk)
    form = RoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose a valid role.")
        return redirect("accounts:team")
    try:
        services.user_change_role(
            actor=request.user, user=member, role=form.cleaned_data["role"], tenant=request.tenant
        )
    except (ValidationError, PermissionDenied) as exc:
        messages.error(request, " ".join(getattr(exc, "messages", [str(exc)])))
    else:
        messages.success(request, f"{member.email} is now {Role(form.cleaned_data['role']).label}.")
    return redirect("accounts:team")


@login_required
@require_POST
def deactivate(request, pk: int):
    _manager_required(request)
    member = get_object_or_404(User, pk=pk)
    keys = api_keys_made_by(tenant=request.tenant, email=member.email)
    keys_note = (
        " The API keys they made are revoked at once (reactivating does not restore them): "
        + ", ".join(f"{key.name} ({key.prefix}, {key.scope})" for key in keys)
        + "."
        if keys
        else " They made no API key that still works."
    )
    if confirm := confirmation_required(
        request,
        title=f"Deactivate {member.email}?",
        message="They are signed out everywhere at once and cannot sign in until reactivated. "
        "Their clients, portfolios and history stay." + keys_note,
        label="Deactivate",
        cancel_url=reverse("accounts:team"),
    ):
        return confirm
    try:
        services.user_deactivate(actor=request.user, user=member, tenant=request.tenant)
    except (ValidationError, PermissionDenied) as exc:
        messages.error(request, " ".join(getattr(exc, "messages", [str(exc)])))
    else:
        revoked = f" {len(keys)} API key(s) they made were revoked." if keys else ""
        messages.success(request, f"{member.email} was deactivated and signed out everywhere.{revoked}")
    return redirect("accounts:team")


@login_required
@require_POST
def reactivate(request, pk: int):
    _manager_required(request)
    member = get_object_or_404(User, pk=pk)
    try:
        services.user_reactivate(actor=request.user, user=member, tenant=request.tenant)
    except (ValidationError, PermissionDenied, LimitReached) as exc:
        messages.error(request, " ".join(getattr(exc, "messages", [str(exc)])))
    else:
        messages.success(request, f"{member.email} can sign in again.")
    return redirect("accounts:team")


@login_required
@require_POST
def revoke_invitation(request, pk: int):
    _manager_required(request)
    invitation = get_object_or_404(Invitation, pk=pk)
    if confirm := confirmation_required(
        request,
        title=f"Withdraw the invitation to {invitation.email}?",
        message="The link in their e-mail stops working. You can invite them again later.",
        label="Withdraw invitation",
        cancel_url=reverse("accounts:team"),
    ):
        return confirm
    services.invitation_revoke(actor=request.user, invitation=invitation, tenant=request.tenant)
    messages.success(request, f"Invitation to {invitation.email} withdrawn.")
    return redirect("accounts:team")


@rate_limit("invitation_accept")
def accept_invitation(request, token: str):
    try:
        invitation = services.invitation_from_token(token)
    except ValidationError as exc:
        return render(request, "accounts/invitation_invalid.html", {"reason": " ".join(exc.messages)}, status=400)
    if invitation.role == Role.CLIENT:
        # a client's invitation binds them to their contact: it is accepted in the client portal
        return redirect("portal:accept-invitation", token=token)
    form = AcceptInvitationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            user = services.invitation_accept(
                token=token,
                first_name=form.cleaned_data["first_name"],
                last_name=form.cleaned_data["last_name"],
                password=form.cleaned_data["password"],
                tenant=request.tenant,
            )
        except ValidationError as exc:
            _apply_errors(form, exc)
        else:
            login(request, user, backend=LOGIN_BACKEND)
            messages.success(request, f"Welcome to {request.tenant.name}.")
            return redirect("home")
    return render(request, "accounts/accept_invitation.html", {"form": form, "invitation": invitation})


def signup_welcome(request, token: str):
    """The new owner's single-use link from sign-up: signs them in on their firm's host once
    (tenants.accounts.handoff); a used or expired link sends them to the sign-in page."""
    try:
        user = signup_handoff_redeem(tenant=request.tenant, token=token, ip=client_ip(request))
    except ValidationError as exc:
        body = " ".join(exc.messages) + " Sign in with your e-mail address and password."
        return render(request, "accounts/message.html", {"title": "Sign-in link", "body": body}, status=400)
    login(request, user, backend=LOGIN_BACKEND)
    messages.success(request, f"Welcome to Codex. {request.tenant.name} is ready.")
    return redirect("home")


@login_required
def profile(request):
    """The person's own page: the name colleagues see, language and date style."""
    user = request.user
    initial = {f: getattr(user, f) for f in ("first_name", "last_name", "locale", "date_format")}
    form = ProfileForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            services.user_profile_update(user=user, **form.cleaned_data)
        except ValidationError as exc:
            _apply_errors(form, exc)
        else:
            messages.success(request, "Your profile is saved.")
            return redirect("accounts:profile")
    examples = {
        "example_amount": Decimal("2105512"),
        "example_return": Decimal("0.0648"),
        "example_day": timezone.now(),
    }
    return render(request, "accounts/profile.html", {"form": form, **examples})


def sign_out_everywhere(request):
    return security_views.sign_out_everywhere(request)


@login_required
@idempotent_form
def api_keys(request):
    _manager_required(request)
    form = ApiKeyForm(request.POST or None)
    new_key = None
    if request.method == "POST" and form.is_valid():
        try:
            key, new_key = api_key_create(tenant=request.tenant, created_by=request.user.email, **form.cleaned_data)
        except ValidationError as exc:
            _apply_errors(form, exc)
        else:
            messages.success(request, f"API key “{key.name}” created. Copy it now: it is shown only once.")
            form = ApiKeyForm()
            form_succeeded(request)  # a resubmission is shown this page again, not a second key
    table = table_page(
        request,
        ApiKey.objects.filter(tenant=request.tenant),
        sorts={"name": "name", "created": "created_at", "last_used": "last_used_at", "scope": "scope"},
        default="-created",
        per_page=25,
    )
    return render(
        request,
        "accounts/api_keys.html",
        {"form": form, "table": table, "keys": table.rows, "new_key": new_key},
    )


@login_required
@require_POST
def api_key_revoke_view(request, pk: int):
    _manager_required(request)
    key = get_object_or_404(ApiKey.objects.select_related("tenant"), pk=pk, tenant=request.tenant)
    if confirm := confirmation_required(
        request,
        title=f"Revoke the API key “{key.name}”?",
        message="Every frontend or integration using it gets 401 from the next request on. This cannot be undone.",
        label="Revoke key",
        cancel_url=reverse("accounts:api-keys"),
    ):
        return confirm
    api_key_revoke(key=key, actor=request.user.email)
    messages.success(request, f"API key “{key.name}” revoked.")
    return redirect("accounts:api-keys")


@login_required
@require_POST
def two_factor_reset(request, pk: int):

    _manager_required(request)
    member = get_object_or_404(User, pk=pk)
    try:
        twofactor.two_factor_reset(actor=request.user, user=member, tenant=request.tenant, ip=client_ip(request))
    except PermissionDenied as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Two-factor of {member.email} was reset; they were signed out everywhere.")
    return redirect("accounts:team")
