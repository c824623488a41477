from __future__ import annotations

from datetime import date

import pytest
from django.test import RequestFactory
from django.urls import path
from drf_spectacular.generators import SchemaGenerator
from rest_framework import viewsets
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from codex.api.lifecycle import ApiLifecycleMiddleware, deprecated

pytestmark = pytest.mark.django_db


class OldThingView(APIView):
    permission_classes = [AllowAny]
    authentication_classes: list = []

    @deprecated(since=date(2026, 12, 1), sunset=date(2027, 6, 30), link="https://docs.example/api#things")
    def get(self, request):
        return Response({"old": True})

    def post(self, request):
        return Response({"current": True})


class ThingViewSet(viewsets.ViewSet):
    permission_classes = [AllowAny]
    authentication_classes: list = []

    def list(self, request):
        return Response([])

    @deprecated(since=date(2026, 12, 1), sunset=date(2027, 12, 1))
    def retrieve(self, request, pk=None):
        return Response({"id": pk})


def _through_middleware(view_func, method="get", url="/api/v1/things/", **kwargs):
    request = getattr(RequestFactory(), method)(url)
    middleware = ApiLifecycleMiddleware(lambda req: view_func(req, **kwargs))
    middleware.process_view(request, view_func, (), kwargs)
    return middleware(request)


def test_deprecated_operation_sends_deprecation_sunset_and_link():
    response = _through_middleware(OldThingView.as_view())
    assert response["API-Version"] == "1.0.0"
    assert response["Deprecation"] == "@1796083200"  # 2026-12-01T00:00:00Z (RFC 9745)
    assert response["Sunset"] == "Wed, 30 Jun 2027 00:00:00 GMT"  # RFC 8594 HTTP-date
    assert response["Link"] == '<https://docs.example/api#things>; rel="deprecation"; type="text/html"'


def test_other_methods_of_the_view_are_not_deprecated():
    response = _through_middleware(OldThingView.as_view(), method="post")
    assert response["API-Version"] == "1.0.0"
    assert "Deprecation" not in response and "Sunset" not in response


def test_a_deprecated_viewset_action_is_found_through_its_action():
    detail = ThingViewSet.as_view({"get": "retrieve"})
    listing = ThingViewSet.as_view({"get": "list"})
    assert _through_middleware(detail, url="/api/v1/things/1/", pk="1")["Sunset"] == "Wed, 01 Dec 2027 00:00:00 GMT"
    assert "Deprecation" not in _through_middleware(listing)


def test_deprecated_operations_are_marked_in_the_schema_with_their_headers():
    patterns = [
        path("api/v1/things/", OldThingView.as_view()),
        path("api/v1/thing-set/", ThingViewSet.as_view({"get": "list"})),
        path("api/v1/thing-set/<str:pk>/", ThingViewSet.as_view({"get": "retrieve"})),
    ]
    schema = SchemaGenerator(patterns=patterns).get_schema(request=None, public=True)
    old_get = schema["paths"]["/api/v1/things/"]["get"]
    assert old_get["deprecated"] is True
    assert {"Deprecation", "Sunset", "Link", "API-Version"} <= set(old_get["responses"]["200"]["headers"])
    post = schema["paths"]["/api/v1/things/"]["post"]
    assert not post.get("deprecated") and "Sunset" not in post["responses"]["200"]["headers"]
    assert schema["paths"]["/api/v1/thing-set/{id}/"]["get"]["deprecated"] is True
    assert not schema["paths"]["/api/v1/thing-set/"]["get"].get("deprecated")


def test_less_than_six_months_notice_is_refused():
    with pytest.raises(ValueError, match="six months"):
        deprecated(since=date(2026, 12, 1), sunset=date(2027, 3, 1))


def test_every_api_response_carries_the_version(firm, owner_client, anon_client):
    assert owner_client.get("/api/v1/me/")["API-Version"] == "1.0.0"
    assert anon_client.get("/api/v1/me/").status_code == 401
    assert anon_client.get("/api/v1/me/")["API-Version"] == "1.0.0"
    assert owner_client.get("/api/v1/no-such-thing/")["API-Version"] == "1.0.0"
    assert owner_client.post("/api/v1/contacts/", {}, content_type="application/json")["API-Version"] == "1.0.0"
    assert "API-Version" not in owner_client.get("/crm/contacts/")


def test_the_schema_documents_the_version_header_on_operations(owner_client):
    schema = owner_client.get("/api/v1/schema/?format=json").json()
    assert schema["info"]["version"] == "1.0.0"
    responses = schema["paths"]["/api/v1/contacts/"]["get"]["responses"]
    assert "API-Version" in responses["200"]["headers"]
