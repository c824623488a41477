"""Session bookkeeping at sign-in: the clocks of the idle and absolute timeouts, and whether the
user has a second factor (so the two-factor gate needs no query per request)."""

from __future__ import annotations

import time

from django.contrib.auth.signals import user_logged_in
from django.dispatch import receiver
from django_otp import devices_for_user

from .middleware import AUTH_AT, HAS_DEVICE, SEEN_AT


@receiver(user_logged_in, dispatch_uid="codex-security-session-clock")
def _start_session_clock(sender, request, user, **kwargs) -> None:
    if request is None or not hasattr(request, "session"):
        return

    now = time.time()
    request.session[AUTH_AT] = now
    request.session[SEEN_AT] = now
    request.session[HAS_DEVICE] = any(True for _ in devices_for_user(user, confirmed=True))
