"""Two-factor writes and checks (TOTP + recovery codes), on django-otp devices.

Devices live next to their user: operators' in the public schema, a firm's staff's in the firm's
schema. Recovery codes are django-otp static tokens, but only an HMAC of each code (keyed with the
secret key) is stored, so a copy of the database does not yield usable codes; codes are shown once.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

import segno
from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django_otp import devices_for_user
from django_otp.plugins.otp_static.models import StaticDevice

from tenants.services import audit_record

from .models import MANAGER_ROLES, Role, SealedTOTPDevice
from .services import user_sign_out_everywhere

RECOVERY_CODE_COUNT = 10
_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I


class TwoFactorError(ValueError):
    pass


def _code_digest(code: str) -> str:
    normalised = code.strip().upper().replace("-", "").replace(" ", "")
    digest = hmac.new(settings.SECRET_KEY.encode(), f"codex-recovery:{normalised}".encode(), hashlib.sha256)
    return digest.hexdigest()[:16]  # otp_static's token column holds 16 characters


def _new_code() -> str:
    raw = "".join(secrets.choice(_ALPHABET) for _ in range(10))  # 50 bits
    return f"{raw[:5]}-{raw[5:]}"


def has_two_factor(user) -> bool:
    return any(True for _ in devices_for_user(user, confirmed=True))


def totp_enrolment_start(*, user) -> SealedTOTPDevice:
    """A fresh unconfirmed TOTP device (earlier unconfirmed ones are discarded)."""
    with transaction.atomic():
        SealedTOTPDevice.objects.filter(user=user, confirmed=False).delete()
        return SealedTOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=False)


def totp_pending_device(*, user) -> SealedTOTPDevice | None:
    return SealedTOTPDevice.objects.filter(user=user, confirmed=False).order_by("-pk").first()


def totp_qr_svg(device: SealedTOTPDevice) -> str:
    """The provisioning URI as an inline SVG QR code (server-side, no script, no external image)."""
    return segno.make(device.config_url, error="m").svg_inline(scale=4, dark="#000", light="#fff", omitsize=False)


def totp_manual_key(device: SealedTOTPDevice) -> str:

    b32 = base64.b32encode(device.bin_key).decode().rstrip("=")
    return " ".join(b32[i : i + 4] for i in range(0, len(b32), 4))


@transaction.atomic
def totp_enrolment_confirm(*, user, device: SealedTOTPDevice, token: str, tenant=None, ip=None) -> list[str]:
    """Confirm the device with a current code; returns the recovery codes (shown once).

    Raises TwoFactorError if the code is wrong. Other devices of the user are replaced.
    """
    if device.user_id != user.pk or device.confirmed:
        raise TwoFactorError("Start the set-up again.")
    if not device.verify_token((token or "").strip().replace(" ", "")):
        raise TwoFactorError("That code is not right. Check your device's clock and try the current code.")
    SealedTOTPDevice.objects.filter(user=user, confirmed=True).exclude(pk=device.pk).delete()
    device.confirmed = True
    device.save(update_fields=["confirmed"])
    codes = recovery_codes_regenerate(user=user, tenant=tenant, ip=ip, audit=False)
    audit_record(action="2fa.enabled", actor=user.email, tenant=tenant, target=user.email, ip=ip)
    return codes


@transaction.atomic
def recovery_codes_regenerate(*, user, tenant=None, ip=None, audit: bool = True) -> list[str]:
    """Replace the user's recovery codes; returns the new ones (shown once, stored as HMACs)."""
    device, _ = StaticDevice.objects.get_or_create(user=user, name="Recovery codes", defaults={"confirmed": True})
    device.token_set.all().delete()
    codes = [_new_code() for _ in range(RECOVERY_CODE_COUNT)]
    for code in codes:
        device.token_set.create(token=_code_digest(code))
    if audit:
        audit_record(action="2fa.recovery_codes_regenerated", actor=user.email, tenant=tenant, ip=ip)
    return codes


def two_factor_verify(*, user, token: str, tenant=None, ip=None):
    """The device that accepts ``token`` (a TOTP code or a recovery code, each recovery code once),
    or None. Success and failure are audited; django-otp throttles each device after failures."""
    token = (token or "").strip()
    verified = None
    digits = token.replace(" ", "")
    if digits.isdigit():
        for device in SealedTOTPDevice.objects.filter(user=user, confirmed=True):
            with transaction.atomic():
                locked = SealedTOTPDevice.objects.select_for_update().get(pk=device.pk)
                if locked.verify_is_allowed()[0] and locked.verify_token(digits):
                    verified = locked
                    break
    else:
        for device in StaticDevice.objects.filter(user=user, confirmed=True):
            with transaction.atomic():
                locked = StaticDevice.objects.select_for_update().get(pk=device.pk)
                if locked.verify_is_allowed()[0] and locked.verify_token(_code_digest(token)):
                    verified = locked
                    break
    audit_record(
        action="2fa.verified" if verified else "2fa.failed",
        actor=user.email,
        tenant=tenant,
        ip=ip,
        details={"method": "recovery_code" if isinstance(verified, StaticDevice) else "totp"} if verified else {},
    )
    return verified


@transaction.atomic
def two_factor_disable(*, user, tenant=None, ip=None) -> None:
    """Remove every device of the user. Refused where two-factor is required."""
    if tenant is None and settings.CODEX_OPERATOR_REQUIRE_2FA:
        raise TwoFactorError("Operators must keep two-factor authentication.")
    if tenant is not None and tenant.require_2fa:
        raise TwoFactorError("Your firm requires two-factor authentication.")
    SealedTOTPDevice.objects.filter(user=user).delete()
    StaticDevice.objects.filter(user=user).delete()
    audit_record(action="2fa.disabled", actor=user.email, tenant=tenant, target=user.email, ip=ip)


@transaction.atomic
def two_factor_reset(*, actor, user, tenant, ip=None) -> None:
    """A firm manager removes a member's devices (lost phone and recovery codes). Owners' devices
    only by another owner. The member sets up a new device at their next sign-in if the firm
    requires two-factor. Their sessions end, so a thief's session holding the old device ends too."""

    if getattr(actor, "role", None) not in MANAGER_ROLES or not getattr(actor, "pk", None):
        raise PermissionDenied("Only the firm's owners and admins reset a member's two-factor.")
    if user.role == Role.OWNER and actor.role != Role.OWNER:
        raise PermissionDenied("Only an owner can reset an owner's two-factor.")
    if user.pk == actor.pk:
        raise PermissionDenied("Use your own security page to change your two-factor.")
    SealedTOTPDevice.objects.filter(user=user).delete()
    StaticDevice.objects.filter(user=user).delete()
    user_sign_out_everywhere(user=user)
    audit_record(action="2fa.reset", actor=actor.email, tenant=tenant, target=user.email, ip=ip)
