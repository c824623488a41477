"""The authentication backend: Django's ModelBackend behind the sign-in throttle."""

from __future__ import annotations

from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import PermissionDenied

from .net import client_ip
from .ratelimit import _firm, login_failed, login_reset, login_wait


class ThrottledModelBackend(ModelBackend):
    """Refuses to check a password while the account or the client IP must wait.

    A refusal raises PermissionDenied (Django then reports a failed sign-in and tries no other
    backend) and leaves the wait on ``request.codex_login_wait`` for the form or API to show.
    Failures are counted per account (per firm) and per IP; a success clears the account's count.
    """

    def authenticate(self, request, username=None, password=None, **kwargs):
        email = (username or kwargs.get("email") or "").strip().lower()
        firm = _firm(request)
        ip = client_ip(request)
        if request is not None and email:
            wait = login_wait(firm=firm, email=email, ip=ip)
            if wait:
                request.codex_login_wait = wait
                raise PermissionDenied(f"Too many failed sign-ins. Try again in {wait} seconds.")
        user = super().authenticate(request, username=email or username, password=password, **kwargs)
        if email:
            if user is None:
                login_failed(firm=firm, email=email, ip=ip)
            else:
                login_reset(firm=firm, email=email)
        return user
