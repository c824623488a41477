"""The cheaper request-path building blocks are the objects Django would have built (decision 0704)."""

from __future__ import annotations

import copy
import pickle

import pytest
from django.conf import settings
from django.contrib.auth.middleware import AuthenticationMiddleware as DjangoAuthenticationMiddleware
from django.utils.functional import SimpleLazyObject, empty

from codex.security.middleware import AuthenticationMiddleware, lazy_object


def test_lazy_object_is_a_simple_lazy_object_in_the_same_state():
    calls = []

    def make():
        calls.append(1)
        return [1, 2]

    ours, django = lazy_object(make), SimpleLazyObject(make)
    assert type(ours) is SimpleLazyObject
    assert object.__getattribute__(ours, "__dict__") == object.__getattribute__(django, "__dict__")
    assert ours._wrapped is empty and calls == []
    assert ours == [1, 2] and len(ours) == 2 and calls == [1]
    assert ours._wrapped == [1, 2]
    assert copy.deepcopy(lazy_object(make)) == [1, 2]
    assert pickle.loads(pickle.dumps(lazy_object(dict))) == {}  # noqa: S301 (our own bytes)
    assert repr(lazy_object(make)).startswith("<SimpleLazyObject:")


def test_the_stack_uses_the_subclasses_and_django_still_recognises_them():
    assert "codex.security.middleware.AuthenticationMiddleware" in settings.MIDDLEWARE
    assert "codex.security.middleware.OTPMiddleware" in settings.MIDDLEWARE
    assert issubclass(AuthenticationMiddleware, DjangoAuthenticationMiddleware)
    # The admin's own check (admin.E408: Django's AuthenticationMiddleware must be installed)
    # accepts the subclass.
    from django.contrib.admin.checks import check_dependencies

    assert [e.id for e in check_dependencies() if e.id == "admin.E408"] == []


@pytest.mark.django_db
def test_anonymous_and_signed_in_users_resolve_through_the_stack(anon_client, owner_client, owner):
    assert anon_client.get("/accounts/login/").wsgi_request.user.is_authenticated is False
    response = owner_client.get("/accounts/security/")
    assert response.status_code == 200
    user = response.wsgi_request.user
    assert user.is_authenticated and user.pk == owner.pk
    assert user.is_verified() is False  # django-otp's accessor installed on the lazy user


def test_has_header_agrees_with_the_mapping():
    from django.http import HttpResponse, JsonResponse, StreamingHttpResponse

    from codex.security.middleware import has_header

    for response in (HttpResponse("x"), JsonResponse({}), StreamingHttpResponse(iter([b"x"]))):
        response.headers["Content-Disposition"] = "attachment; filename=a.csv"
        for name in ("Content-Disposition", "Permissions-Policy", "Content-Type", "X-Absent"):
            assert has_header(response, name.lower()) is (name in response.headers), (type(response), name)
        del response.headers["content-disposition"]
        assert has_header(response, "content-disposition") is False


def test_settings_snapshot_follows_changed_settings():
    from django.test import override_settings

    from codex.settings_snapshot import SettingsSnapshot

    snapshot = SettingsSnapshot("CODEX_API_HOST", CODEX_NOT_A_SETTING="fallback")
    assert snapshot().codex_api_host == settings.CODEX_API_HOST
    assert snapshot().codex_not_a_setting == "fallback"
    with override_settings(CODEX_API_HOST="api.elsewhere.test", CODEX_NOT_A_SETTING="set"):
        assert snapshot().codex_api_host == "api.elsewhere.test"
        assert snapshot().codex_not_a_setting == "set"
    assert snapshot().codex_api_host == settings.CODEX_API_HOST


def test_cors_is_enabled_by_the_url_pattern_and_follows_it():
    from django.test import RequestFactory, override_settings

    from codex.security.middleware import CorsMiddleware

    middleware = CorsMiddleware(lambda request: None)
    rf = RequestFactory()
    assert middleware.is_enabled(rf.get("/api/v1/portfolios/")) is True
    assert middleware.is_enabled(rf.get("/clients/")) is False
    with override_settings(CORS_URLS_REGEX=r"^/clients/"):
        assert middleware.is_enabled(rf.get("/clients/")) is True
        assert middleware.is_enabled(rf.get("/api/v1/portfolios/")) is False
