"""API authentication: API keys, firm-bound bearer tokens, session + CSRF. Deny by default."""

from __future__ import annotations

from django.http import QueryDict
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.exceptions import InvalidToken, TokenError
from rest_framework_simplejwt.tokens import AccessToken

from codex.db import current_schema
from codex.history import history_context

from .accounts.models import Role
from .exceptions import InvalidApiKey
from .models import ApiScope
from .selectors import api_key_resolve
from .services import api_key_touch


class ApiKeyPrincipal:
    """The caller behind an API key: firm-wide, read-only or read-write by the key's scope."""

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False
    is_superuser = False
    pk = None
    id = None

    def __init__(self, key):
        self.api_key = key
        self.role = Role.ADMIN if key.scope == ApiScope.WRITE else Role.VIEWER
        self.email = f"api-key:{key.prefix}"

    @property
    def is_manager(self) -> bool:
        return False

    @property
    def can_write(self) -> bool:
        return self.api_key.scope == ApiScope.WRITE

    def __str__(self) -> str:
        return f"API key {self.api_key.name} ({self.api_key.prefix})"


class ApiKeyAuthentication(authentication.BaseAuthentication):
    header = "HTTP_X_API_KEY"

    def authenticate(self, request):
        django_request = request._request
        key = getattr(django_request, "api_key", None)  # resolved by the API host's middleware
        if key is None:
            raw = request.META.get(self.header)
            if not raw:
                return None
            try:
                key = api_key_resolve(raw)
            except InvalidApiKey as exc:
                raise exceptions.AuthenticationFailed(str(exc)) from exc
        tenant = getattr(django_request, "tenant", None)
        if tenant is None or key.tenant_id != tenant.pk:
            raise exceptions.AuthenticationFailed("This API key belongs to another firm.")
        api_key_touch(key=key)
        history_context(api_key=key.prefix)  # who, in the change history of what this request writes
        return ApiKeyPrincipal(key), key

    def authenticate_header(self, request):
        return "X-API-Key"


class FirmBearerAuthentication(JWTAuthentication):
    """Short-lived user tokens that carry the firm's schema and the user's auth epoch."""

    def get_validated_token(self, raw_token):
        try:
            token = AccessToken(raw_token)
        except TokenError as exc:
            raise InvalidToken({"detail": str(exc)}) from exc
        if token.get("firm") != current_schema():
            raise exceptions.AuthenticationFailed("This token belongs to another firm.")
        return token

    def get_user(self, validated_token):
        user = super().get_user(validated_token)
        if validated_token.get("epoch") != user.auth_epoch:
            raise exceptions.AuthenticationFailed("This token has been revoked.")
        if user.role == Role.CLIENT:
            # Client users reach the portal's operations only, by session + CSRF (docs/decisions/0960).
            raise exceptions.AuthenticationFailed("Client users sign in to the client portal.")
        return user


def token_for_user(user) -> AccessToken:
    token = AccessToken.for_user(user)
    token["firm"] = current_schema()
    token["epoch"] = user.auth_epoch
    return token


class CsrfSessionAuthentication(authentication.SessionAuthentication):
    """The web UI's own JavaScript: session cookie plus CSRF token (DRF's standard behaviour).

    A session that still owes its second factor authenticates nobody here: the password alone
    does not open the API either.
    """

    def authenticate(self, request):
        result = super().authenticate(request)
        if result is None:
            return None
        # function-level: security.middleware is point 1's module under rework; imports the authentication chain
        from codex.security.middleware import two_factor_step

        if two_factor_step(request._request, result[0]) is not None:
            return None
        return result

    def enforce_csrf(self, request):
        # The API reads JSON bodies only, so the token comes in the X-CSRFToken header. Django's
        # check would first look for a form field in the body: reading a body the API does not
        # parse (multipart, form) would answer 415 before the CSRF refusal (403).
        return super().enforce_csrf(_WithoutFormBody(request))


class _WithoutFormBody:
    """A request whose ``POST`` is empty: Django's CSRF check then reads the header only."""

    def __init__(self, request):
        self._request = request

    def __getattr__(self, name):
        return getattr(self._request, name)

    @property
    def POST(self):  # noqa: N802 (Django's name)
        return QueryDict()


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "tenants.authentication.ApiKeyAuthentication"
    name = "ApiKeyAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "header", "name": "X-API-Key"}


class FirmBearerScheme(OpenApiAuthenticationExtension):
    target_class = "tenants.authentication.FirmBearerAuthentication"
    name = "BearerAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}


class SessionScheme(OpenApiAuthenticationExtension):
    target_class = "tenants.authentication.CsrfSessionAuthentication"
    name = "SessionAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "cookie", "name": "sessionid"}
