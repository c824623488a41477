"""Codex's CSP middleware behaves as Django's (django.middleware.csp), with the unused-nonce policy
built once (decision 0704): nonce in header and page alike, view overrides, report-only, settings
changes."""

from __future__ import annotations

import re

from django.http import HttpResponse, JsonResponse
from django.template import engines
from django.test import RequestFactory, override_settings
from django.utils.csp import CSP, LazyNonce, build_policy
from django.views.decorators.csp import csp_override, csp_report_only_override

from codex.security.middleware import ContentSecurityPolicyMiddleware

rf = RequestFactory()
POLICY = {"default-src": [CSP.SELF], "script-src": [CSP.SELF, CSP.NONCE]}


def _serve(view, request=None):
    request = request or rf.get("/")
    return request, ContentSecurityPolicyMiddleware(view)(request)


@override_settings(SECURE_CSP=POLICY, SECURE_CSP_REPORT_ONLY={})
def test_a_page_that_uses_the_nonce_gets_it_in_its_header():
    template = engines["django"].from_string("<script {% csp_nonce_attr %}></script>")

    def page(request):
        return HttpResponse(template.render({}, request))

    request, response = _serve(page)
    assert isinstance(request._csp_nonce, LazyNonce)
    nonce = re.search(r'nonce="([^"]+)"', response.content.decode()).group(1)
    assert response.headers["Content-Security-Policy"] == build_policy(POLICY, nonce)
    assert f"'nonce-{nonce}'" in response.headers["Content-Security-Policy"]
    # Another request, another nonce.
    _, again = _serve(page)
    assert re.search(r'nonce="([^"]+)"', again.content.decode()).group(1) != nonce


@override_settings(SECURE_CSP=POLICY, SECURE_CSP_REPORT_ONLY={})
def test_a_response_that_never_used_the_nonce_gets_the_policy_without_one():
    request, response = _serve(lambda request: JsonResponse({"ok": True}))
    assert response.headers["Content-Security-Policy"] == "default-src 'self'; script-src 'self'"
    assert not request._csp_nonce  # never evaluated
    assert "Content-Security-Policy-Report-Only" not in response.headers


@override_settings(SECURE_CSP=POLICY, SECURE_CSP_REPORT_ONLY={"default-src": [CSP.NONE]})
def test_report_only_policy_and_settings_changes_are_followed():
    _, response = _serve(lambda request: JsonResponse({}))
    assert response.headers["Content-Security-Policy-Report-Only"] == "default-src 'none'"
    middleware = ContentSecurityPolicyMiddleware(lambda request: JsonResponse({}))
    assert middleware(rf.get("/")).headers["Content-Security-Policy"] == "default-src 'self'; script-src 'self'"
    with override_settings(SECURE_CSP={"default-src": [CSP.SELF, "https://cdn.example"]}):
        assert middleware(rf.get("/")).headers["Content-Security-Policy"] == "default-src 'self' https://cdn.example"
    assert middleware(rf.get("/")).headers["Content-Security-Policy"] == "default-src 'self'; script-src 'self'"


@override_settings(SECURE_CSP=POLICY, SECURE_CSP_REPORT_ONLY={})
def test_a_view_keeps_its_own_header_and_its_overrides():
    def own(request):
        response = HttpResponse("x")
        response.headers["Content-Security-Policy"] = "default-src 'none'"
        return response

    assert _serve(own)[1].headers["Content-Security-Policy"] == "default-src 'none'"

    @csp_override({"img-src": [CSP.SELF, "data:"]})
    def overridden(request):
        return HttpResponse("x")

    assert _serve(overridden)[1].headers["Content-Security-Policy"] == "img-src 'self' data:"

    @csp_override({})
    def without(request):
        return HttpResponse("x")

    assert "Content-Security-Policy" not in _serve(without)[1].headers

    @csp_report_only_override({"script-src": [CSP.SELF, CSP.NONCE]})
    def report_only(request):
        return HttpResponse(str(request._csp_nonce))  # uses the nonce

    request, response = _serve(report_only)
    nonce = response.content.decode()
    assert response.headers["Content-Security-Policy-Report-Only"] == f"script-src 'self' 'nonce-{nonce}'"
    assert response.headers["Content-Security-Policy"] == build_policy(POLICY, nonce)
