"""API fuzzing: Schemathesis against the live OpenAPI schema, in-process through the WSGI app.

Every operation of the schema the API serves is called with generated data (valid and invalid)
as a firm's write API key, and every response is checked with Schemathesis' checks: no 5xx,
status codes and bodies as documented, content types, headers, invalid data rejected, and
``ignored_auth`` (the operation refuses the request without credentials). The number of examples
is bounded (``CODEX_FUZZ_EXAMPLES``, default 15) to keep the run short.

All of Schemathesis' checks run, including ``positive_data_acceptance`` (schema-valid data is
accepted) and ``negative_data_rejection`` (schema-invalid data is a 4xx). What a schema cannot
say is supplied here, each justified in docs/decisions/0503-api-fuzzing.md:

- ids of related objects must exist: schema-valid requests (positive mode) name the ids of
  objects planted in the firm (``related_ids``) instead of random integers, and the code of a plan
  of the catalogue;
- an uploaded import must be a CSV file with a header row (its name, type and content): a
  schema-valid upload sends one;
- dates are generated from 1900-01-01 up to today: ledger dates refuse earlier and future dates
  (400 naming the field); the pattern of a ledger date states the first, JSON Schema cannot
  express the second for ``format: date``;
- strings carry no NUL character: PostgreSQL text cannot store it and DRF refuses it with a 400
  naming the field.
"""

from __future__ import annotations

import os
from datetime import date

import pytest
import schemathesis
from django.core.cache import cache
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig

from tests.security.fuzz_support import EARLIEST_DATE, name_existing_objects, register_date_format

pytestmark = pytest.mark.django_db

EXAMPLES = int(os.environ.get("CODEX_FUZZ_EXAMPLES", "15"))
# The coverage phase (every boundary and invalid value of every parameter, ~300 requests for one
# write operation) takes 1 to 4 minutes (idle vs busy 2 cores); `make fuzz` runs it, the suite runs the
# random phase with EXAMPLES examples per operation.
COVERAGE = os.environ.get("CODEX_FUZZ_COVERAGE", "") == "1"
# Both doors of the API: the firm's host, and the API host where the key chooses the firm (links
# built there must not depend on the URLconf that served the request: issue 27).
HOSTS = ["acme.localhost", "api.localhost"]


def _schema_dict() -> dict:
    from drf_spectacular.generators import SchemaGenerator

    return SchemaGenerator(urlconf="codex.site.urls_tenant").get_schema(request=None, public=True)


def _config() -> SchemathesisConfig:
    # Every check, with Schemathesis' default expected statuses (docs/decisions/0503).
    phases = ["examples", "fuzzing"] + (["coverage"] if COVERAGE else [])
    return SchemathesisConfig.from_dict(
        {
            "generation": {"allow-x00": False},
            "phases": {name: {"enabled": name in phases} for name in ("examples", "coverage", "fuzzing")},
        }
    )


register_date_format()  # from 1900-01-01 up to today (see the module docstring)


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
    # A high rate: thousands of requests in a row are not an attack here.
    settings.CODEX_PLAN_RATE_MULTIPLIERS = {"pro": 1000.0}
    cache.clear()
    return api_key_for(firm, "write")


@pytest.fixture(scope="module")
def planted_ids(django_db_setup, django_db_blocker):
    """One object of every kind a request can name, in the fuzzed firm, and their ids: planted once
    for the module in a transaction rolled back after its last test (each test runs in a savepoint
    inside it, so what a test's requests change is undone before the next one). Planting them for
    every test was most of the module's time: the billed account's ledger from 1900 is valued day
    by day (docs/decisions/1270)."""
    from django.conf import settings as django_settings
    from django.db import connection, transaction
    from django_tenants.utils import schema_context

    from tenants.accounts.models import User
    from tenants.models import Tenant

    with django_db_blocker.unblock(), transaction.atomic():
        with schema_context(django_settings.PUBLIC_SCHEMA_NAME):
            firm = Tenant.objects.get(slug="acme")
        connection.set_tenant(firm)
        try:
            ids = _plant(firm, User.objects.get(email="advisor@acme.test"))
        finally:
            connection.set_schema_to_public()
        yield ids
        transaction.set_rollback(True)


@pytest.fixture
def related_ids(planted_ids, firm):
    return dict(planted_ids)


def _plant(firm, advisor) -> dict:
    from django_tenants.utils import schema_context

    from billing.entitlements import plan_of
    from billing.models import Plan
    from fees import services as fee_services
    from portfolios.alerts.models import AlertRule, RuleKind
    from portfolios.market.models import CorporateAction
    from portfolios.services import transaction_record
    from tests.crm.factories import CompanyFactory, ContactFactory, DealFactory
    from tests.portfolios.factories import InstrumentFactory, PortfolioFactory, in_public

    instrument = in_public(InstrumentFactory)
    contact = ContactFactory(owner=advisor, lifecycle="client")
    company = CompanyFactory(owner=advisor)
    deal = DealFactory(owner=advisor, contact=contact, company=company)
    portfolio = PortfolioFactory(advisor=advisor, client=contact)
    rule = AlertRule.objects.create(kind=RuleKind.PRICE_ABOVE, instrument=instrument, threshold=100)
    # Not held by the planted portfolio: deciding on it is a 409 (not pending), not a 400 (no such id).
    corporate_action = in_public(
        CorporateAction.objects.create,
        instrument=instrument,
        kind=CorporateAction.Kind.DIVIDEND,
        date=date(2020, 1, 2),
        value=1,
        source="fuzz",
    )
    # A billing group whose account exists from the earliest date generated, so that a subscription
    # may start on any of them; its own account, so that the planted portfolio can still be grouped.
    billed = PortfolioFactory(advisor=advisor, client=contact)
    transaction_record(portfolio=billed, kind="deposit", trade_date=EARLIEST_DATE, amount=1000, currency="USD")
    group = fee_services.billing_group_create(name="Planted household", client=contact, portfolios=[billed])
    schedule = fee_services.fee_schedule_create(
        name="Planted schedule", effective_from=EARLIEST_DATE, method="blended", tiers=[{"upto": None, "bps": "100"}]
    )
    product = fee_services.product_create(name="Planted product", fee_schedule=schedule)
    run = fee_services.fee_run_preview(
        period_start=date(2020, 1, 1), period_end=date(2020, 3, 31), frequency="quarterly"
    )
    current = plan_of(firm)
    with schema_context("public"):
        plans = Plan.objects.filter(is_public=True).exclude(pk=getattr(current, "pk", None)).order_by("pk")
        plan = plans.values_list("code", flat=True).first()
    return {
        "plan_code": plan,
        "user": advisor.pk,
        "users": [advisor.pk],
        "contact": contact.pk,
        "other_contact": ContactFactory(owner=advisor).pk,
        "company": company.pk,
        "deal": deal.pk,
        "stage": deal.stage_id,
        "instrument": instrument.pk,
        "portfolio": portfolio.pk,
        "rule": rule.pk,
        "corporate_action": corporate_action.pk,
        "billing_group": group.pk,
        "product": product.pk,
        "fee_schedule": schedule.pk,
        "fee_run": run.pk,
    }


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
    database=None,
)
@pytest.mark.parametrize("host", HOSTS)
def test_api_conforms_to_its_schema(case, host, in_test_transaction, api_key, related_ids):
    name_existing_objects(case, related_ids)
    case.call_and_validate(base_url=f"http://{host}", headers={"X-API-Key": api_key, "Host": host})
