"""Team writes: invitations, roles, deactivation, signing out everywhere. All in the firm's schema."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.contrib.sessions.models import Session
from django.core import signing
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import send_mail
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from codex.db import current_schema
from codex.formatting import DATE_FORMATS, LOCALE_CHOICES
from tenants.registry import seat_checks_run
from tenants.services import api_keys_revoke_made_by, audit_record

from .models import MANAGER_ROLES, Invitation, Role, User

INVITATION_SALT = "codex.invitation"


def _require_manager(actor: User) -> None:
    if actor.role not in MANAGER_ROLES or not actor.is_active:
        raise PermissionDenied("Only the firm's owners and admins manage the team.")


def invitation_token(invitation: Invitation) -> str:
    # Bound to the firm's schema so a link of one firm is worthless at another.
    return signing.dumps({"i": invitation.pk, "s": current_schema()}, salt=INVITATION_SALT)


def invitation_from_token(token: str) -> Invitation:
    """The pending invitation behind a signed token, or ValidationError (expired, forged, used)."""
    try:
        data = signing.loads(token, salt=INVITATION_SALT, max_age=settings.CODEX_INVITATION_MAX_AGE)
    except signing.SignatureExpired as exc:
        raise ValidationError("This invitation has expired. Ask for a new one.") from exc
    except signing.BadSignature as exc:
        raise ValidationError("This invitation link is not valid.") from exc
    if data.get("s") != current_schema():
        raise ValidationError("This invitation link is not valid.")
    invitation = Invitation.objects.filter(pk=data.get("i")).first()
    if invitation is None or not invitation.is_pending:
        raise ValidationError("This invitation has already been used or withdrawn.")
    return invitation


def invitation_create(*, actor: User, email: str, role: str, tenant, accept_url_builder) -> Invitation:
    """Invite ``email`` with ``role`` and e-mail the signed link. Raises ValidationError by field."""
    _require_manager(actor)
    email = (email or "").strip().lower()
    try:
        validate_email(email)
    except ValidationError as exc:
        raise ValidationError({"email": "Enter a valid e-mail address."}) from exc
    if role not in Role.values or role == Role.CLIENT:
        # clients are invited from their record, bound to their contact (portal.services.client_invite)
        raise ValidationError({"role": "Choose a role."})
    if role == Role.OWNER and actor.role != Role.OWNER:
        raise ValidationError({"role": "Only an owner can invite another owner."})
    if User.objects.filter(email__iexact=email).exists():
        raise ValidationError({"email": "This person is already a member of the firm."})
    seat_checks_run(tenant=tenant)
    try:
        with transaction.atomic():
            invitation = Invitation.objects.create(email=email, role=role, invited_by=actor)
    except IntegrityError as exc:
        raise ValidationError({"email": "An invitation to this address is already pending."}) from exc
    link = accept_url_builder(invitation_token(invitation))
    transaction.on_commit(
        lambda: send_mail(
            f"You are invited to {tenant.name} on Codex",
            f"{actor} invited you to join {tenant.name} on Codex as {invitation.get_role_display()}.\n\n"
            f"Accept the invitation: {link}\n\nThe link expires in "
            f"{settings.CODEX_INVITATION_MAX_AGE // 86400} days.",
            None,
            [email],
        )
    )
    audit_record(action="team.invited", actor=actor.email, tenant=tenant, target=email, details={"role": role})
    return invitation


def invitation_revoke(*, actor: User, invitation: Invitation, tenant) -> Invitation:
    _require_manager(actor)
    if invitation.is_pending:
        invitation.revoked_at = timezone.now()
        invitation.save(update_fields=["revoked_at"])
        audit_record(action="team.invitation_revoked", actor=actor.email, tenant=tenant, target=invitation.email)
    return invitation


@transaction.atomic
def invitation_accept(*, token: str, first_name: str, last_name: str, password: str, tenant) -> User:
    """Create the invited user. Atomic: the invitation is consumed only if the user is created."""
    invitation = invitation_from_token(token)
    invitation = Invitation.objects.select_for_update().get(pk=invitation.pk)
    if not invitation.is_pending:
        raise ValidationError("This invitation has already been used or withdrawn.")
    user = User(
        email=invitation.email, first_name=first_name.strip(), last_name=last_name.strip(), role=invitation.role
    )
    try:
        validate_password(password, user)
    except ValidationError as exc:
        raise ValidationError({"password": exc.messages}) from exc
    user.set_password(password)
    user.save()
    invitation.accepted_at = timezone.now()
    invitation.save(update_fields=["accepted_at"])
    audit_record(action="team.joined", actor=user.email, tenant=tenant, target=user.email, details={"role": user.role})
    return user


def _owners_left_after(user: User) -> int:
    return User.objects.filter(role=Role.OWNER, is_active=True).exclude(pk=user.pk).count()


@transaction.atomic
def user_change_role(*, actor: User, user: User, role: str, tenant) -> User:
    _require_manager(actor)
    if role not in Role.values or Role.CLIENT in (role, user.role):
        # a client user is bound to a contact: never promoted to staff, never made one by a role change
        raise ValidationError({"role": "Choose a role."})
    if (role == Role.OWNER or user.role == Role.OWNER) and actor.role != Role.OWNER:
        raise PermissionDenied("Only an owner can grant or take away the owner role.")
    user = User.objects.select_for_update().get(pk=user.pk)
    if user.role == Role.OWNER and role != Role.OWNER and _owners_left_after(user) == 0:
        raise ValidationError({"role": "The firm must keep at least one active owner."})
    previous = user.role
    user.role = role
    user.save(update_fields=["role"])
    audit_record(
        action="team.role_changed",
        actor=actor.email,
        tenant=tenant,
        target=user.email,
        details={"from": previous, "to": role},
    )
    return user


def _end_sessions(user: User) -> int:
    ended = 0
    for session in Session.objects.filter(expire_date__gt=timezone.now()).iterator():
        if str(session.get_decoded().get("_auth_user_id")) == str(user.pk):
            session.delete()
            ended += 1
    return ended


@transaction.atomic
def user_sign_out_everywhere(*, user: User) -> int:
    """End every session and bearer token of ``user``. Returns the number of sessions ended."""
    User.objects.filter(pk=user.pk).update(auth_epoch=F("auth_epoch") + 1)
    user.refresh_from_db(fields=["auth_epoch"])
    return _end_sessions(user)


def user_tokens_revoke(*, user: User) -> None:
    """End every bearer token of ``user`` (their sessions are left alone). After a password change:
    Django ends the user's other sessions by the session hash and keeps the one that changed it."""
    User.objects.filter(pk=user.pk).update(auth_epoch=F("auth_epoch") + 1)
    user.refresh_from_db(fields=["auth_epoch"])


def firm_tokens_revoke() -> int:
    """End every bearer token of every user of the current firm's schema, e.g. when the firm starts
    requiring two-factor sign-in: a token issued on a password alone must not outlive that.
    Returns the number of users."""
    return User.objects.update(auth_epoch=F("auth_epoch") + 1)


@transaction.atomic
def user_deactivate(*, actor: User, user: User, tenant) -> User:
    """Deactivate a member: they can no longer sign in, and their sessions, bearer tokens and the
    API keys they made end now (atomic; reactivating does not bring the keys back)."""
    _require_manager(actor)
    if user.pk == actor.pk:
        raise ValidationError("You cannot deactivate yourself.")
    if user.role == Role.OWNER and actor.role != Role.OWNER:
        raise PermissionDenied("Only an owner can deactivate an owner.")
    if user.role == Role.OWNER and _owners_left_after(user) == 0:
        raise ValidationError("The firm must keep at least one active owner.")
    User.objects.filter(pk=user.pk).update(is_active=False)
    user.refresh_from_db()
    user_sign_out_everywhere(user=user)
    # Their API keys die with them (decision 0506): a key must not outlive its maker's access.
    api_keys_revoke_made_by(tenant=tenant, email=user.email, actor=actor.email)
    audit_record(action="team.deactivated", actor=actor.email, tenant=tenant, target=user.email)
    return user


@transaction.atomic
def user_reactivate(*, actor: User, user: User, tenant) -> User:
    _require_manager(actor)
    seat_checks_run(tenant=tenant)
    User.objects.filter(pk=user.pk).update(is_active=True)
    user.refresh_from_db()
    audit_record(action="team.reactivated", actor=actor.email, tenant=tenant, target=user.email)
    return user


def _active_superusers_left_after(user: User) -> int:
    return User.objects.filter(is_active=True, is_superuser=True).exclude(pk=user.pk).count()


@transaction.atomic
def operator_deactivate(*, actor: User, operator: User) -> User:
    """Deactivate an operator (public schema): no more sign-in, sessions and tokens end now.

    Operators are deactivated, never deleted: the audit trail and firms' histories name them, and a
    delete from the public schema cannot reach the firms' tables that refer to users. Raises
    ``ValidationError`` for oneself or the last active superuser; then nothing changes."""
    if operator.pk == actor.pk:
        raise ValidationError("You cannot deactivate yourself.")
    if operator.is_superuser and _active_superusers_left_after(operator) == 0:
        raise ValidationError("The console must keep at least one active superuser.")
    User.objects.filter(pk=operator.pk).update(is_active=False)
    operator.refresh_from_db()
    user_sign_out_everywhere(user=operator)
    audit_record(action="operator.deactivated", actor=actor.email, target=operator.email)
    return operator


@transaction.atomic
def operator_reactivate(*, actor: User, operator: User) -> User:
    User.objects.filter(pk=operator.pk).update(is_active=True)
    operator.refresh_from_db()
    audit_record(action="operator.reactivated", actor=actor.email, target=operator.email)
    return operator


PROFILE_NAME_MAX = 150


def user_profile_update(*, user: User, first_name: str, last_name: str, locale: str, date_format: str) -> User:
    """Set the person's own display name and display preferences (their own row only).

    The name is what owner and advisor columns show instead of the e-mail address. Raises
    ``ValidationError`` naming the field for an unknown locale or date style or a name too long;
    nothing is written then."""
    first_name, last_name = first_name.strip(), last_name.strip()
    errors = {}
    if len(first_name) > PROFILE_NAME_MAX:
        errors["first_name"] = f"Use at most {PROFILE_NAME_MAX} characters."
    if len(last_name) > PROFILE_NAME_MAX:
        errors["last_name"] = f"Use at most {PROFILE_NAME_MAX} characters."
    if locale not in {code for code, _ in LOCALE_CHOICES}:
        errors["locale"] = "Choose one of the listed languages."
    if date_format not in DATE_FORMATS:
        errors["date_format"] = "Choose one of the listed date styles."
    if errors:
        raise ValidationError(errors)
    user.first_name, user.last_name, user.locale, user.date_format = first_name, last_name, locale, date_format
    user.save(update_fields=["first_name", "last_name", "locale", "date_format"])
    return user


def user_table_columns_set(*, user: User, table: str, columns: list[str]) -> User:
    """Remember the columns ``user`` chose for ``table`` (already checked against the table's own)."""
    with transaction.atomic():
        row = User.objects.select_for_update().get(pk=user.pk)
        chosen = dict(row.table_columns or {})
        chosen[table] = list(columns)
        row.table_columns = chosen
        row.save(update_fields=["table_columns"])
    user.table_columns = chosen
    return user
