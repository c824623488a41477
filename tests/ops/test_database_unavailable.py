"""A database that refuses connections (max_connections reached, a restart) before any view runs:
the host and API-key lookups of tenant routing answer a 503 envelope with Retry-After, not a 500
(decision 0933). The whole-stack drill is bench/drill_pg_exhausted.py (docs/reliability.md)."""

from __future__ import annotations

import pytest
from django.db import OperationalError

from tenants import middleware
from tests.conftest import FirmClient

pytestmark = pytest.mark.django_db


def _refuse(*args, **kwargs):
    raise OperationalError("connection failed: FATAL:  sorry, too many clients already")


def test_firm_host_lookup_without_a_connection_is_a_503(firm, monkeypatch):
    monkeypatch.setattr(middleware, "tenant_for_host", _refuse)
    api = FirmClient(firm).get("/api/v1/portfolios/")
    assert api.status_code == 503 and api["Retry-After"] == "5"
    assert api.json()["error"] == {
        "code": "service_unavailable",
        "message": "The database is unavailable; retry shortly.",
        "details": {"service": "database"},
    }
    page = FirmClient(firm).get("/")
    assert page.status_code == 503 and b"briefly unavailable" in page.content


def test_api_key_lookup_without_a_connection_is_a_503(firm, monkeypatch):
    monkeypatch.setattr(middleware, "api_key_resolve", _refuse)
    response = FirmClient(firm).get("/api/v1/portfolios/", HTTP_HOST="api.localhost", HTTP_X_API_KEY="ck_x_y")
    assert response.status_code == 503 and response.json()["error"]["code"] == "service_unavailable"
