"""Helpers for security tests: TOTP codes, verified operator sessions."""

from __future__ import annotations

from django.conf import settings
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.oath import totp
from django_tenants.utils import schema_context

from tenants.accounts.models import SealedTOTPDevice


def totp_now(device: SealedTOTPDevice, *, offset: int = 0) -> str:
    code = totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits, drift=offset)
    return f"{code:0{device.digits}d}"


def verified_login(client, user, *, schema: str | None = None) -> SealedTOTPDevice:
    """Sign ``user`` in on ``client`` with a confirmed TOTP device, as if the code had been entered."""
    schema = schema or settings.PUBLIC_SCHEMA_NAME
    with schema_context(schema):
        device = SealedTOTPDevice.objects.create(user=user, name="test", confirmed=True)
        client.force_login(user)
        session = client.session
        session[DEVICE_ID_SESSION_KEY] = device.persistent_id
        session.save()
    return device
