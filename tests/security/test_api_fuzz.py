"""API fuzzing: Schemathesis against the live OpenAPI schema, in-process through the WSGI app.

Every operation of the schema the API serves is called with generated data (valid and invalid)
as a firm's write API key, and every response is checked with Schemathesis' checks: no 5xx,
status codes and bodies as documented, content types, headers, invalid data rejected, and
``ignored_auth`` (the operation refuses the request without credentials). The number of examples
is bounded (``CODEX_FUZZ_EXAMPLES``, default 8) to keep the run short.
"""

from __future__ import annotations

import os

import pytest
import schemathesis
from django.core.cache import cache
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig

pytestmark = pytest.mark.django_db

EXAMPLES = int(os.environ.get("CODEX_FUZZ_EXAMPLES", "15"))
# The coverage phase (every boundary and invalid value of every parameter, ~300 requests for one
# write operation) takes 1 to 4 minutes (idle vs busy 2 cores); `make fuzz` runs it, the suite runs the
# random phase with EXAMPLES examples per operation.
COVERAGE = os.environ.get("CODEX_FUZZ_COVERAGE", "") == "1"
HOST = "acme.localhost"


def _schema_dict() -> dict:
    from drf_spectacular.generators import SchemaGenerator

    return SchemaGenerator(urlconf="codex.urls_tenant").get_schema(request=None, public=True)


def _config() -> SchemathesisConfig:
    # Every check but two that test parsing strictness rather than safety (docs/decisions/0503):
    # - positive_data_acceptance: an id that does not exist is schema-valid (a schema cannot say
    #   "must exist") and is rightly answered 400 naming the field;
    # - negative_data_rejection: DRF and django-filter are lenient by design (an empty filter is
    #   no filter, 0 is read as "0" for a text field). Invalid data is still sent (negative mode)
    #   and must never cause a 5xx, an undocumented status or a body off the schema.
    phases = ["examples", "fuzzing"] + (["coverage"] if COVERAGE else [])
    return SchemathesisConfig.from_dict(
        {
            "checks": {
                "positive_data_acceptance": {"enabled": False},
                "negative_data_rejection": {"enabled": False},
            },
            "phases": {name: {"enabled": name in phases} for name in ("examples", "coverage", "fuzzing")},
        }
    )


def _wsgi():
    from django.core.wsgi import get_wsgi_application

    return get_wsgi_application()


schema = schemathesis.openapi.from_dict(_schema_dict(), config=_config())
schema.app = _wsgi()  # every call, including the checks' own re-sends, goes through the WSGI app


@pytest.fixture
def in_test_transaction(firm):
    """Requests run in the test's transaction (Django's test client does the same)."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.fixture
def api_key(firm, api_key_for, settings):
    # Process-local cache and a high rate: thousands of requests in a row are not an attack here,
    # and the database cache's queries would double the run time.
    settings.CACHES = {**settings.CACHES, "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    settings.CODEX_PLAN_RATE_MULTIPLIERS = {"pro": 1000.0}
    cache.clear()
    return api_key_for(firm, "write")


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
    database=None,
)
def test_api_conforms_to_its_schema(case, in_test_transaction, api_key):
    case.call_and_validate(base_url=f"http://{HOST}", headers={"X-API-Key": api_key, "Host": HOST})
