"""Django's deploy checks for the security middlewares, where Codex installs subclasses of them.

Django's checks (``django.core.checks.security.base``) find ``SecurityMiddleware``,
``XFrameOptionsMiddleware`` and the CSP middleware by their dotted path in ``MIDDLEWARE``. With a
subclass installed (``codex.lean_middleware``, ``codex.security.middleware``) they would report
W001/W002 and then skip every check of the settings those middlewares read (HSTS, nosniff, SSL
redirect, Referrer-Policy, COOP, X_FRAME_OPTIONS, the CSP nonce). Here the same conditions run
for any subclass, with Django's own messages and ids; W001/W002 are silenced in settings and
replaced by ``codex.W001``/``codex.W002``, which fire when no such middleware (stock or subclass)
is installed at all.
"""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Tags, Warning, register
from django.core.checks.security import base
from django.middleware.clickjacking import XFrameOptionsMiddleware
from django.middleware.security import SecurityMiddleware
from django.utils.module_loading import import_string

SECURITY = "django.middleware.security.SecurityMiddleware"
XFRAME = "django.middleware.clickjacking.XFrameOptionsMiddleware"
CODEX_CSP = "codex.security.middleware.ContentSecurityPolicyMiddleware"

W001 = Warning(base.W001.msg, id="codex.W001")
W002 = Warning(base.W002.msg, id="codex.W002")


def _subclass_installed(stock_path: str, stock) -> bool:
    """A subclass of ``stock`` other than ``stock_path`` itself is in ``MIDDLEWARE`` (the stock
    path is Django's own checks' business)."""
    for path in settings.MIDDLEWARE:
        if path == stock_path:
            continue
        try:
            cls = import_string(path)
        except ImportError:
            continue  # Django reports a middleware that does not import when it loads the stack
        if isinstance(cls, type) and issubclass(cls, stock):
            return True
    return False


@register(Tags.security, deploy=True)
def check_security_middleware_subclass(app_configs, **kwargs):
    if _subclass_installed(SECURITY, SecurityMiddleware):
        found = []
        if not settings.SECURE_HSTS_SECONDS:
            found.append(base.W004)
        else:
            if settings.SECURE_HSTS_INCLUDE_SUBDOMAINS is not True:
                found.append(base.W005)
            if settings.SECURE_HSTS_PRELOAD is not True:
                found.append(base.W021)
        if settings.SECURE_CONTENT_TYPE_NOSNIFF is not True:
            found.append(base.W006)
        if settings.SECURE_SSL_REDIRECT is not True:
            found.append(base.W008)
        policy = settings.SECURE_REFERRER_POLICY
        if policy is None:
            found.append(base.W022)
        else:
            values = {v.strip() for v in policy.split(",")} if isinstance(policy, str) else set(policy)
            if not values <= base.REFERRER_POLICY_VALUES:
                found.append(base.E023)
        coop = settings.SECURE_CROSS_ORIGIN_OPENER_POLICY
        if coop is not None and coop not in base.CROSS_ORIGIN_OPENER_POLICY_VALUES:
            found.append(base.E024)
        return found
    if SECURITY not in settings.MIDDLEWARE:
        return [W001]
    return []


@register(Tags.security, deploy=True)
def check_xframe_middleware_subclass(app_configs, **kwargs):
    if _subclass_installed(XFRAME, XFrameOptionsMiddleware):
        return [] if settings.X_FRAME_OPTIONS == "DENY" else [base.W019]
    if XFRAME not in settings.MIDDLEWARE:
        return [W002]
    return []


@register(Tags.security)
def check_csp_middleware_subclass_nonce(app_configs, **kwargs):
    """Django's W027 (a policy with ``CSP.NONCE`` but no ``csp`` context processor) for Codex's CSP
    middleware, which is a layer of its own with Django's rules, not a subclass."""
    if (
        CODEX_CSP in settings.MIDDLEWARE
        and any(
            base._csp_policy_contains_nonce(getattr(settings, name, None))
            for name in ("SECURE_CSP", "SECURE_CSP_REPORT_ONLY")
        )
        and not base._csp_context_processor_configured()
    ):
        return [base.W027]
    return []
