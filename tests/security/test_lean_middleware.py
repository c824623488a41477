"""codex.lean_middleware behaves as Django's Security, Common and XFrameOptions middlewares, and
the deploy checks still see the settings they read (decision 0704, fifth pass)."""

from __future__ import annotations

import re

import pytest
from django.conf import settings
from django.core.exceptions import DisallowedHost, PermissionDenied
from django.http import HttpResponse, HttpResponseNotFound, JsonResponse, StreamingHttpResponse
from django.middleware.clickjacking import XFrameOptionsMiddleware as DjangoXFrame
from django.middleware.common import CommonMiddleware as DjangoCommon
from django.middleware.security import SecurityMiddleware as DjangoSecurity
from django.test import RequestFactory, override_settings
from django.views.decorators.clickjacking import xframe_options_exempt

from codex import lean_middleware as lean
from codex.security import checks

PAIRS = [
    (DjangoSecurity, lean.SecurityMiddleware),
    (DjangoCommon, lean.CommonMiddleware),
    (DjangoXFrame, lean.XFrameOptionsMiddleware),
]

SECURITY_SETTINGS = {
    "SECURE_HSTS_SECONDS": 31536000,
    "SECURE_HSTS_INCLUDE_SUBDOMAINS": True,
    "SECURE_HSTS_PRELOAD": True,
    "SECURE_CONTENT_TYPE_NOSNIFF": True,
    "SECURE_REFERRER_POLICY": "same-origin, strict-origin",
    "SECURE_CROSS_ORIGIN_OPENER_POLICY": "same-origin",
    "SECURE_SSL_REDIRECT": False,
    "SECURE_PROXY_SSL_HEADER": ("HTTP_X_FORWARDED_PROTO", "https"),
    "ALLOWED_HOSTS": [".example.com"],
}


def _exempt():
    response = HttpResponse("framed")
    response.xframe_options_exempt = True
    return response


def _preset():
    response = HttpResponse("preset")
    for name, value in (
        ("X-Frame-Options", "SAMEORIGIN"),
        ("Referrer-Policy", "no-referrer"),
        ("X-Content-Type-Options", "other"),
        ("Cross-Origin-Opener-Policy", "unsafe-none"),
        ("Strict-Transport-Security", "max-age=1"),
        ("Content-Length", "99"),
    ):
        response[name] = value
    return response


def _responses():
    """Factories: each run gets a new response (a middleware changes the one it is given)."""
    return {
        "plain": lambda: HttpResponse("hello"),
        "json": lambda: JsonResponse({"a": 1}),
        "streaming": lambda: StreamingHttpResponse(iter([b"x"])),
        "exempt": _exempt,
        "preset": _preset,
        "not found": lambda: HttpResponseNotFound("nope"),
    }


def _run(cls, request, make_response):
    return cls(lambda req: make_response())(request)


def _outcome(cls, request, make_response):
    try:
        response = _run(cls, request, make_response)
    except (DisallowedHost, PermissionDenied) as exc:
        return (type(exc), str(exc))
    return (response.status_code, response.get("Location"), list(response.headers._store.items()))


REQUESTS = {
    "http": {},
    "https via proxy": {"HTTP_X_FORWARDED_PROTO": "https"},
}


@pytest.mark.parametrize(("stock", "ours"), PAIRS, ids=lambda c: c.__module__)
@pytest.mark.parametrize("scheme", sorted(REQUESTS))
@pytest.mark.parametrize("path", ["/ok/", "/no-slash", "/admin"])
def test_headers_status_and_redirects_are_djangos(stock, ours, scheme, path):
    with override_settings(**SECURITY_SETTINGS, ROOT_URLCONF="codex.site.urls_public", APPEND_SLASH=True):
        lean._VALID_HOSTS.clear()
        for name, make in _responses().items():
            request = RequestFactory().get(path, HTTP_HOST="acme.example.com", **REQUESTS[scheme])
            ours_outcome = _outcome(ours, request, make)
            request = RequestFactory().get(path, HTTP_HOST="acme.example.com", **REQUESTS[scheme])
            assert ours_outcome == _outcome(stock, request, make), name


def test_the_security_headers_are_set_on_a_plain_https_response():
    with override_settings(**SECURITY_SETTINGS):
        request = RequestFactory().get("/", HTTP_HOST="acme.example.com", HTTP_X_FORWARDED_PROTO="https")
        response = _run(lean.SecurityMiddleware, request, lambda: HttpResponse("x"))
    assert response["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin,strict-origin"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"
    with override_settings(**SECURITY_SETTINGS):
        request = RequestFactory().get("/", HTTP_HOST="acme.example.com")
        response = _run(lean.SecurityMiddleware, request, lambda: HttpResponse("x"))
    assert not response.has_header("Strict-Transport-Security")  # never over plain HTTP


def test_ssl_redirect_is_djangos():
    with override_settings(
        **{**SECURITY_SETTINGS, "SECURE_SSL_REDIRECT": True, "SECURE_REDIRECT_EXEMPT": [r"^health"]}
    ):
        for path in ("/clients/?q=1", "/health"):
            outcomes = []
            for cls in (DjangoSecurity, lean.SecurityMiddleware):
                request = RequestFactory().get(path, HTTP_HOST="acme.example.com")
                response = _run(cls, request, lambda: HttpResponse("x"))
                outcomes.append((response.status_code, response.get("Location")))
            assert outcomes[0] == outcomes[1]
        assert outcomes[0] == (200, None)  # the exempt path


def test_a_refused_host_raises_and_is_never_remembered():
    lean._VALID_HOSTS.clear()
    with override_settings(ALLOWED_HOSTS=["good.example"]):
        with pytest.raises(DisallowedHost):
            _run(lean.CommonMiddleware, RequestFactory().get("/", HTTP_HOST="evil.example"), HttpResponse)
        assert "evil.example" not in lean._VALID_HOSTS
        assert (
            _run(lean.CommonMiddleware, RequestFactory().get("/", HTTP_HOST="good.example"), HttpResponse).status_code
            == 200
        )
        assert lean._VALID_HOSTS == {"good.example": "good.example"}
    # ALLOWED_HOSTS changed: what was accepted under the old value is asked again.
    with override_settings(ALLOWED_HOSTS=["other.example"]):
        assert lean._VALID_HOSTS == {}
        with pytest.raises(DisallowedHost):
            _run(lean.CommonMiddleware, RequestFactory().get("/", HTTP_HOST="good.example"), HttpResponse)


def test_forwarded_host_is_validated_when_trusted():
    lean._VALID_HOSTS.clear()
    with override_settings(ALLOWED_HOSTS=["good.example"], USE_X_FORWARDED_HOST=True):
        request = RequestFactory().get("/", HTTP_HOST="good.example", HTTP_X_FORWARDED_HOST="evil.example")
        with pytest.raises(DisallowedHost):
            lean.request_host(request)
    with override_settings(ALLOWED_HOSTS=["good.example"], USE_X_FORWARDED_HOST=False):
        request = RequestFactory().get("/", HTTP_HOST="good.example", HTTP_X_FORWARDED_HOST="evil.example")
        assert lean.request_host(request) == "good.example"


def test_disallowed_user_agent_and_prepend_www_are_djangos():
    with override_settings(DISALLOWED_USER_AGENTS=[re.compile("badbot")], ALLOWED_HOSTS=["*"]):
        request = RequestFactory().get("/", HTTP_USER_AGENT="a badbot/1.0")
        with pytest.raises(PermissionDenied):
            _run(lean.CommonMiddleware, request, HttpResponse)
    with override_settings(PREPEND_WWW=True, ALLOWED_HOSTS=["*"], ROOT_URLCONF="codex.site.urls_public"):
        locations = [
            _run(cls, RequestFactory().get("/signup?x=1", HTTP_HOST="codex.example"), HttpResponse)["Location"]
            for cls in (DjangoCommon, lean.CommonMiddleware)
        ]
    assert locations[0] == locations[1] == "http://www.codex.example/signup/?x=1"


def test_x_frame_options_follows_the_setting_and_the_exemption():
    request = RequestFactory().get("/")
    with override_settings(X_FRAME_OPTIONS="sameorigin"):
        assert _run(lean.XFrameOptionsMiddleware, request, HttpResponse)["X-Frame-Options"] == "SAMEORIGIN"
    assert _run(lean.XFrameOptionsMiddleware, request, HttpResponse)["X-Frame-Options"] == "DENY"
    view = xframe_options_exempt(lambda req: HttpResponse("x"))
    assert not lean.XFrameOptionsMiddleware(view)(request).has_header("X-Frame-Options")


def test_a_header_value_with_a_newline_is_refused_as_django_refuses_it():
    from django.http import BadHeaderError

    with (
        override_settings(SECURE_CROSS_ORIGIN_OPENER_POLICY="same-origin\r\nX-Evil: 1"),
        pytest.raises(BadHeaderError),
    ):
        lean.SecurityMiddleware(HttpResponse)


def test_the_stack_serves_the_lean_layers_with_every_header(anon_client):
    assert "codex.lean_middleware.SecurityMiddleware" in settings.MIDDLEWARE
    assert "django.middleware.security.SecurityMiddleware" not in settings.MIDDLEWARE
    response = anon_client.get("/accounts/login/")
    assert response.status_code == 200
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == settings.SECURE_REFERRER_POLICY
    assert response["Cross-Origin-Opener-Policy"] == settings.SECURE_CROSS_ORIGIN_OPENER_POLICY
    assert int(response["Content-Length"]) == len(response.content)


# --- deploy checks ---------------------------------------------------------------------------------
def _ids(found):
    return sorted(message.id for message in found)


def test_deploy_checks_report_weak_security_settings_for_the_subclass():
    weak = {
        "SECURE_HSTS_SECONDS": 0,
        "SECURE_CONTENT_TYPE_NOSNIFF": False,
        "SECURE_SSL_REDIRECT": False,
        "SECURE_REFERRER_POLICY": "no-such-policy",
        "SECURE_CROSS_ORIGIN_OPENER_POLICY": "nonsense",
    }
    with override_settings(**weak):
        assert _ids(checks.check_security_middleware_subclass(None)) == [
            "security.E023",
            "security.E024",
            "security.W004",
            "security.W006",
            "security.W008",
        ]
    with override_settings(**{**SECURITY_SETTINGS, "SECURE_HSTS_PRELOAD": False, "SECURE_REFERRER_POLICY": None}):
        assert _ids(checks.check_security_middleware_subclass(None)) == [
            "security.W008",
            "security.W021",
            "security.W022",
        ]
    strong = {**SECURITY_SETTINGS, "SECURE_SSL_REDIRECT": True}
    with override_settings(**strong):
        assert checks.check_security_middleware_subclass(None) == []


def test_deploy_checks_report_x_frame_options_for_the_subclass():
    with override_settings(X_FRAME_OPTIONS="SAMEORIGIN"):
        assert _ids(checks.check_xframe_middleware_subclass(None)) == ["security.W019"]
    with override_settings(X_FRAME_OPTIONS="DENY"):
        assert checks.check_xframe_middleware_subclass(None) == []


def test_without_any_security_middleware_the_replacement_warnings_fire():
    bare = [m for m in settings.MIDDLEWARE if "lean_middleware" not in m]
    with override_settings(MIDDLEWARE=bare):
        assert _ids(checks.check_security_middleware_subclass(None)) == ["codex.W001"]
        assert _ids(checks.check_xframe_middleware_subclass(None)) == ["codex.W002"]
    stock = [
        *bare,
        "django.middleware.security.SecurityMiddleware",
        "django.middleware.clickjacking.XFrameOptionsMiddleware",
    ]
    with override_settings(MIDDLEWARE=stock):  # Django's own checks' business
        assert checks.check_security_middleware_subclass(None) == []
        assert checks.check_xframe_middleware_subclass(None) == []


def test_csp_nonce_without_the_context_processor_is_reported():
    from django.utils.csp import CSP

    templates = [{**settings.TEMPLATES[0], "OPTIONS": {"context_processors": []}}]
    with override_settings(SECURE_CSP={"script-src": [CSP.SELF, CSP.NONCE]}, TEMPLATES=templates):
        assert _ids(checks.check_csp_middleware_subclass_nonce(None)) == ["security.W027"]
    with override_settings(SECURE_CSP={"script-src": [CSP.SELF, CSP.NONCE]}):
        assert checks.check_csp_middleware_subclass_nonce(None) == []


# --- sessions and messages -------------------------------------------------------------------------
def _session_view(action):
    def view(request):
        if action == "read":
            request.session.get("x")
        elif action == "write":
            request.session["x"] = 1
        elif action == "flush":
            request.session.flush()
        elif action == "message":
            from django.contrib import messages

            messages.info(request, "Saved.")
        return HttpResponse("ok")

    return view


def _session_outcome(cls, action, cookie):
    from django.contrib.sessions.middleware import SessionMiddleware as DjangoSession

    request = RequestFactory().get("/", HTTP_HOST="acme.localhost")
    if cookie is not None:
        request.COOKIES[settings.SESSION_COOKIE_NAME] = cookie
    session = (lean.SessionMiddleware if cls == "lean" else DjangoSession)(_session_view(action))
    response = session(request)
    cookies = {
        name: {k: v for k, v in morsel.items() if k != "expires"} | {"set": bool(morsel.value)}
        for name, morsel in response.cookies.items()
    }
    return response.get("Vary"), cookies, request.session.is_empty()


@pytest.mark.django_db
@pytest.mark.parametrize("action", ["none", "read", "write", "flush"])
@pytest.mark.parametrize("cookie", [None, "no-such-session-key-0123456789abcdef", "short"])
def test_session_cookie_and_vary_are_djangos(firm, action, cookie):
    assert _session_outcome("lean", action, cookie) == _session_outcome("django", action, cookie)


@pytest.mark.django_db
def test_an_untouched_request_without_a_cookie_gets_no_session_cookie(firm):
    vary, cookies, empty = _session_outcome("lean", "none", None)
    assert (vary, cookies, empty) == (None, {}, True)
    vary, cookies, _ = _session_outcome("lean", "write", None)
    assert vary == "Cookie" and cookies[settings.SESSION_COOKIE_NAME]["set"] is True


@pytest.mark.django_db
def test_a_message_is_stored_as_djangos_middleware_stores_it(firm):
    from django.contrib.messages.middleware import MessageMiddleware as DjangoMessages
    from django.contrib.sessions.middleware import SessionMiddleware as DjangoSession

    stored = []
    for session_cls, messages_cls in (
        (lean.SessionMiddleware, lean.MessageMiddleware),
        (DjangoSession, DjangoMessages),
    ):
        request = RequestFactory().get("/", HTTP_HOST="acme.localhost")
        response = session_cls(messages_cls(_session_view("message")))(request)
        stored.append(sorted(response.cookies))
        assert [str(m) for m in request._messages._queued_messages] == ["Saved."]
    assert stored[0] == stored[1] == ["messages"]


def test_message_storage_follows_the_setting():
    request = RequestFactory().get("/")
    middleware = lean.MessageMiddleware(lambda req: HttpResponse("x"))
    middleware(request)
    assert type(request._messages).__name__ == "LazyFallbackStorage"
    with override_settings(MESSAGE_STORAGE="django.contrib.messages.storage.cookie.CookieStorage"):
        middleware(request)
    assert type(request._messages).__name__ == "CookieStorage"


def test_the_admin_accepts_the_session_and_message_subclasses():
    from django.contrib.admin.checks import check_dependencies

    assert "codex.lean_middleware.SessionMiddleware" in settings.MIDDLEWARE
    assert "codex.lean_middleware.MessageMiddleware" in settings.MIDDLEWARE
    assert [e.id for e in check_dependencies() if e.id.startswith("admin.E4")] == []
