"""Every POST operation of the OpenAPI schema honours ``Idempotency-Key`` (Stripe's semantics).

The operations are read from the schema the API serves (drf-spectacular's generator): a new POST
operation fails ``test_every_post_operation_has_a_request_here`` until it gets a valid request in
``REQUESTS``. For each: the first request succeeds; the same key with the same body replays the
first response (``Idempotent-Replayed: true``, same status and body, one record); the same key with
another body is a 422 ``idempotency_key_reused`` in the error envelope.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from django_tenants.utils import schema_context

from billing.models import IdempotencyRecord
from codex.notifications.models import Notification
from crm.models import Activity, ActivityKind, Campaign, ImportJob, PipelineStage, Subscriber
from portfolios import services as portfolio_services
from portfolios.alerts.models import AlertEvent, AlertNotification, AlertRule, RuleKind
from portfolios.market.models import CorporateAction, Instrument
from portfolios.models import ReconciliationBreak
from tenants.models import ApiKey
from tests.billing.conftest import activate
from tests.crm.factories import CompanyFactory, ContactFactory, DealFactory
from tests.portfolios.factories import InstrumentFactory, PortfolioFactory, in_public
from webhooks import services as webhook_services

pytestmark = pytest.mark.django_db

# No credential to scope a key to, and a password in the body: the key is ignored (tested below).
ANONYMOUS = {"auth_token_create"}
POSITION_COLUMNS = {"account": "A", "date": "D", "quantity": "Q", "currency": "C"}
# Ends the caller's sessions: the retry signs in again, as the same user (the key's credential).
SIGNS_OUT = {"auth_token_revoke_create"}


def _post_operations() -> dict[str, str]:
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator(urlconf=settings.ROOT_URLCONF).get_schema(request=None, public=True)
    return {
        operation["operationId"]: path
        for path, item in schema["paths"].items()
        for method, operation in item.items()
        if method == "post"
    }


OPERATIONS = _post_operations()


@dataclass
class Call:
    body: dict = field(default_factory=dict)
    other: dict = field(default_factory=lambda: {"something": "else"})
    ids: dict = field(default_factory=dict)
    csv: bytes | None = None  # multipart upload: the file, with ``body`` as the other fields


CONTACTS_CSV = b"first_name,last_name,email\nAda,Lovelace,ada@example.com\n"
LEDGER_CSV = b"trade_date,kind,amount,currency\n2025-01-02,deposit,100,USD\n"

REQUESTS = {
    "activities_create": lambda w: Call({"kind": "note", "subject": "Called", "contact": w["contact"]}),
    "activities_complete_create": lambda w: Call({"done": True}, {"done": False}, ids={"id": w["task"]}),
    "alerts_events_mark_read_create": lambda w: Call({"ids": [w["event"]]}, {"ids": []}),
    "notifications_mark_read_create": lambda w: Call({"ids": [w["notification"]]}, {"ids": []}),
    "alerts_rules_create": lambda w: Call(
        {"kind": "price_above", "instrument": w["instrument"], "threshold": "100"},
        {"kind": "price_above", "instrument": w["instrument"], "threshold": "200"},
    ),
    "api_keys_create": lambda w: Call({"name": "ci", "scope": "read"}, {"name": "ci", "scope": "write"}),
    "api_keys_revoke_create": lambda w: Call(ids={"id": w["api_key"]}),
    "auth_token_revoke_create": lambda w: Call(),
    "billing_cancel_create": lambda w: Call(),
    "billing_plan_change_create": lambda w: Call({"plan": "enterprise"}, {"plan": "starter"}),
    "billing_reactivate_create": lambda w: Call(),
    "companies_create": lambda w: Call({"name": "Engines Ltd"}, {"name": "Other Ltd"}),
    "companies_merge_create": lambda w: Call({"loser": w["other_company"]}, ids={"id": w["company"]}),
    "contacts_create": lambda w: Call({"first_name": "Ada", "last_name": "Lovelace"}, {"first_name": "Bob"}),
    "contacts_merge_create": lambda w: Call({"loser": w["other_contact"]}, ids={"id": w["contact"]}),
    "deals_create": lambda w: Call({"title": "Mandate", "stage": w["stage"]}, {"title": "Other", "stage": w["stage"]}),
    "deals_move_create": lambda w: Call({"stage": w["next_stage"]}, {"stage": w["stage"]}, ids={"id": w["deal"]}),
    "imports_create": lambda w: Call({"kind": "contacts"}, {"kind": "companies"}, csv=CONTACTS_CSV),
    "imports_commit_create": lambda w: Call(ids={"id": w["import"]}),
    "imports_preview_create": lambda w: Call({"duplicates": "skip"}, {"duplicates": "update"}, ids={"id": w["import"]}),
    "newsletter_campaigns_create": lambda w: Call({"subject": "News", "body": "Hello"}, {"subject": "Other"}),
    "newsletter_campaigns_send_create": lambda w: Call(ids={"id": w["campaign"]}),
    "newsletter_subscribers_create": lambda w: Call({"email": "reader@example.com"}, {"email": "b@example.com"}),
    "newsletter_subscribers_unsubscribe_create": lambda w: Call(ids={"id": w["subscriber"]}),
    "pipeline_stages_create": lambda w: Call({"name": "Due diligence"}, {"name": "Other"}),
    "portfolios_create": lambda w: Call(
        {"name": "Growth", "client": w["contact"], "base_currency": "USD"},
        {"name": "Income", "client": w["contact"], "base_currency": "USD"},
    ),
    "portfolios_transactions_create": lambda w: Call(
        {"kind": "deposit", "trade_date": "2025-01-02", "amount": "500"},
        {"kind": "deposit", "trade_date": "2025-01-02", "amount": "600"},
        ids={"portfolio_pk": w["portfolio"]},
    ),
    "products_create": lambda w: Call({"name": "Planning", "flat_fee": "250"}, {"name": "Other", "flat_fee": "1"}),
    "fee_schedules_create": lambda w: Call(
        {"name": "Std", "effective_from": "2026-01-01", "method": "blended", "tiers": [{"upto": None, "bps": "80"}]},
        {"name": "Std2", "effective_from": "2026-01-01", "method": "blended", "tiers": [{"upto": None, "bps": "90"}]},
    ),
    "fee_schedules_versions_create": lambda w: Call(
        {"effective_from": "2026-07-01", "method": "blended", "tiers": [{"upto": None, "bps": "70"}]},
        {"effective_from": "2026-07-01", "method": "blended", "tiers": [{"upto": None, "bps": "60"}]},
        ids={"id": w["fee_schedule"]},
    ),
    "billing_groups_create": lambda w: Call(
        {"name": "Household", "client": w["contact"], "portfolios": [w["free_portfolio"]]},
        {"name": "Other", "client": w["contact"], "portfolios": [w["free_portfolio"]]},
    ),
    "client_subscriptions_create": lambda w: Call(
        {"group": w["billing_group"], "product": w["product"], "starts_on": "2025-02-01"},
        {"group": w["billing_group"], "product": w["product"], "starts_on": "2025-03-01"},
    ),
    "client_subscriptions_end_create": lambda w: Call(
        {"ends_on": "2026-12-31"}, {"ends_on": "2026-11-30"}, ids={"id": w["client_subscription"]}
    ),
    "fee_runs_create": lambda w: Call(
        {"period_start": "2025-04-01", "period_end": "2025-06-30", "frequency": "quarterly"},
        {"period_start": "2025-07-01", "period_end": "2025-09-30", "frequency": "quarterly"},
    ),
    "fee_runs_approve_create": lambda w: Call(ids={"id": w["fee_run"]}),
    "fee_run_jobs_create": lambda w: Call(
        {"kind": "preview", "period_start": "2025-04-01", "period_end": "2025-06-30", "frequency": "quarterly"},
        {"kind": "preview", "period_start": "2025-07-01", "period_end": "2025-09-30", "frequency": "quarterly"},
    ),
    "fee_runs_issue_create": lambda w: Call(
        {"issued_on": "2025-07-01"}, {"issued_on": "2025-07-02"}, ids={"id": w["approved_run"]}
    ),
    "fee_invoices_void_create": lambda w: Call({"reason": "typo"}, {"reason": "other"}, ids={"id": w["fee_invoice"]}),
    "fee_invoices_credit_note_create": lambda w: Call(
        {"amount": "1.00", "reason": "goodwill"}, {"amount": "2.00", "reason": "goodwill"}, ids={"id": w["fee_invoice"]}
    ),
    "fee_invoices_mark_paid_create": lambda w: Call(
        {"paid_on": "2025-07-10"}, {"paid_on": "2025-07-11"}, ids={"id": w["fee_invoice"]}
    ),
    "webhook_deliveries_replay_create": lambda w: Call(ids={"id": w["webhook_delivery"]}),
    "webhook_endpoints_create": lambda w: Call(
        {"url": "https://127.0.0.1/hooks/a", "event_types": ["contact.created"]},
        {"url": "https://127.0.0.1/hooks/b", "event_types": ["contact.created"]},
    ),
    "webhook_endpoints_rotate_secret_create": lambda w: Call(ids={"id": w["webhook_endpoint"]}),
    "webhook_endpoints_test_create": lambda w: Call(ids={"id": w["webhook_endpoint"]}),
    "instruments_create": lambda w: Call(
        {"symbol": "PRIV1", "name": "Private fund I", "asset_class": "fund", "currency": "USD"},
        {"symbol": "PRIV2", "name": "Private fund II", "asset_class": "fund", "currency": "USD"},
    ),
    "instruments_prices_create": lambda w: Call(
        {"date": "2025-01-02", "close": "101.5"},
        {"date": "2025-01-03", "close": "102"},
        ids={"id": w["firm_instrument"]},
    ),
    "instruments_prices_import_create": lambda w: Call(
        {"overwrite": "false"}, {"overwrite": "true"}, csv=b"symbol,exchange,date,close\nOWNFUND,,2025-01-02,10\n"
    ),
    "custodian_accounts_create": lambda w: Call(
        {"custodian": "ib", "account": "U1", "portfolio": w["portfolio"]},
        {"custodian": "ib", "account": "U2", "portfolio": w["portfolio"]},
    ),
    "custodian_mappings_create": lambda w: Call(
        {"custodian": "ib", "kind": "positions", "columns": POSITION_COLUMNS},
        {"custodian": "ib", "kind": "transactions", "columns": {}},
    ),
    "custodian_positions_import_create": lambda w: Call(
        {"custodian": "interactive-brokers", "commit": "false"},
        {"custodian": "interactive-brokers", "commit": "true"},
        csv=b"ClientAccountID,ReportDate,Symbol,ListingExchange,Quantity,CurrencyPrimary,AssetClass\n",
    ),
    "custodian_transactions_import_create": lambda w: Call(
        {"custodian": "interactive-brokers", "commit": "false"},
        {"custodian": "interactive-brokers", "commit": "true"},
        csv=b"ClientAccountID,TradeID,TradeDate,Buy/Sell,Symbol,Quantity,TradePrice,CurrencyPrimary\n",
    ),
    "portfolios_custodian_import_create": lambda w: Call(
        {"custodian": "interactive-brokers", "commit": "false"},
        {"custodian": "interactive-brokers", "commit": "true"},
        ids={"portfolio_pk": w["portfolio"]},
        csv=b"TradeID,TradeDate,Buy/Sell,Symbol,Quantity,TradePrice,CurrencyPrimary\n",
    ),
    "corporate_actions_create": lambda w: Call(
        {"action": w["corporate_action"], "portfolio": w["held_portfolio"], "accept": False},
        {"action": w["corporate_action"], "portfolio": w["held_portfolio"], "accept": True},
    ),
    "reconciliation_runs_create": lambda w: Call({"as_of": "2025-01-02"}, {"as_of": "2025-01-03"}),
    "reconciliation_breaks_resolve_create": lambda w: Call(
        {"action": "explain", "note": "timing"}, {"action": "explain", "note": "other"}, ids={"id": w["break"]}
    ),
    "portfolios_transactions_import_create": lambda w: Call(
        {"commit": "true"}, {"commit": "false"}, ids={"portfolio_pk": w["portfolio"]}, csv=LEDGER_CSV
    ),
}


@pytest.fixture
def world(firm, owner, advisor):
    """One object of each kind an operation names, in acme; the owner (who may do everything) calls."""
    activate(firm, code="pro", anchor=timezone.now().replace(microsecond=0) - timezone.timedelta(days=3))
    instrument = in_public(InstrumentFactory)
    contact = ContactFactory(owner=owner, email="client@example.com")
    company = CompanyFactory(owner=owner)
    deal = DealFactory(owner=owner, contact=contact, company=company)
    stages = list(PipelineStage.objects.filter(is_active=True).order_by("position"))
    portfolio = PortfolioFactory(advisor=owner, client=contact)
    rule = AlertRule.objects.create(kind=RuleKind.PRICE_ABOVE, instrument=instrument, threshold=100)
    event = AlertEvent.objects.create(
        rule=rule, fired_at=timezone.now(), observed_on=timezone.now().date(), value=101, message="crossed"
    )
    AlertNotification.objects.create(event=event, recipient=owner)
    Subscriber.objects.create(email="confirmed@example.com", status="confirmed")
    with schema_context(settings.PUBLIC_SCHEMA_NAME):
        api_key = ApiKey.objects.filter(tenant=firm).order_by("pk").last()
    from tenants.services import api_key_create

    if api_key is None:
        api_key, _raw = api_key_create(tenant=firm, name="to revoke", scope="read", created_by="test")
    endpoint = webhook_services.endpoint_create(
        tenant=firm, url="https://127.0.0.1/hooks/world", event_types=["contact.created"], actor="test"
    )
    delivery = webhook_services.endpoint_send_test(tenant=firm, endpoint=endpoint)
    firm_instrument = Instrument.all_objects.create(
        symbol="OWNFUND", name="Own fund", asset_class="fund", currency="USD", owner=firm.schema_name
    )
    brk = ReconciliationBreak.objects.create(
        portfolio=portfolio, as_of=timezone.now().date(), instrument=instrument, currency=instrument.currency,
        ledger_quantity=0, custodian_quantity=1, difference=1,
    )  # fmt: skip
    held_portfolio = PortfolioFactory(advisor=owner, client=contact)
    portfolio_services.transaction_record(
        portfolio=held_portfolio,
        kind="deposit",
        trade_date=date(2025, 1, 2),
        amount="1000",
        currency=instrument.currency,
    )
    portfolio_services.transaction_record(
        portfolio=held_portfolio,
        kind="buy",
        trade_date=date(2025, 1, 3),
        instrument=instrument,
        quantity="1",
        price="1",
    )
    action = CorporateAction.objects.create(
        instrument=instrument, kind="dividend", date=date(2025, 2, 3), value=1, source="test"
    )
    return {
        "break": brk.pk,
        "held_portfolio": held_portfolio.pk,
        "corporate_action": action.pk,
        "instrument": instrument.pk,
        "firm_instrument": firm_instrument.pk,
        "contact": contact.pk,
        "other_contact": ContactFactory(owner=owner).pk,
        "company": company.pk,
        "other_company": CompanyFactory(owner=owner).pk,
        "deal": deal.pk,
        "stage": deal.stage_id,
        "next_stage": next(s.pk for s in stages if s.pk != deal.stage_id),
        "task": Activity.objects.create(
            kind=ActivityKind.TASK, subject="Call back", contact=contact, owner=owner, due_date=timezone.now().date()
        ).pk,
        "portfolio": portfolio.pk,
        "event": event.pk,
        "campaign": Campaign.objects.create(subject="Quarterly", body="Dear reader", created_by=owner).pk,
        "subscriber": Subscriber.objects.create(email="leaving@example.com", status="confirmed").pk,
        "import": ImportJob.objects.create(
            kind="contacts",
            filename="people.csv",
            headers=["first_name", "last_name", "email"],
            rows=[["Grace", "Hopper", "grace@example.com"]],
            mapping={"first_name": "first_name", "last_name": "last_name", "email": "email"},
            created_by=owner,
        ).pk,
        "api_key": api_key.pk,
        "webhook_endpoint": endpoint.pk,
        "webhook_delivery": delivery.pk,
        "notification": Notification.objects.create(recipient=owner, kind="import", title="Import finished").pk,
        **_fee_world(owner, contact),
    }


def _fee_world(owner, contact) -> dict:
    import datetime as dt

    from fees import services as fee_services
    from fees.models import FeeInvoice
    from portfolios import services as portfolio_services

    def funded():
        p = PortfolioFactory(advisor=owner, client=contact)
        portfolio_services.transaction_record(
            portfolio=p, kind="deposit", trade_date=dt.date(2025, 1, 2), amount="1000"
        )
        return p

    schedule = fee_services.fee_schedule_create(
        name="World", effective_from=dt.date(2020, 1, 1), method="blended", tiers=[{"upto": None, "bps": "100"}]
    )
    product = fee_services.product_create(name="World product", fee_schedule=schedule)
    group = fee_services.billing_group_create(name="World group", client=contact, portfolios=[funded()])
    sub = fee_services.subscription_create(group=group, product=product, starts_on=dt.date(2025, 1, 2))
    q2 = {"period_start": dt.date(2025, 4, 1), "period_end": dt.date(2025, 6, 30), "frequency": "quarterly"}
    run = fee_services.fee_run_preview(**q2)
    approved = fee_services.fee_run_approve(run=fee_services.fee_run_preview(**q2), actor=owner)
    invoice = FeeInvoice.objects.create(
        number="W-1",
        group=group,
        client=contact,
        period_start=dt.date(2025, 1, 1),
        period_end=dt.date(2025, 3, 31),
        issued_on=dt.date(2025, 4, 1),
        due_on=dt.date(2025, 5, 1),
        currency="USD",
        total=10,
        collection="invoice",
    )
    return {
        "fee_schedule": schedule.pk,
        "product": product.pk,
        "billing_group": group.pk,
        "client_subscription": sub.pk,
        "free_portfolio": funded().pk,
        "fee_run": run.pk,
        "approved_run": approved.pk,
        "fee_invoice": invoice.pk,
    }


def _send(client, path: str, call: Call, body: dict, key: str):
    if call.csv is not None:
        upload = SimpleUploadedFile("rows.csv", call.csv, content_type="text/csv")
        return client.post(path, {**body, "file": upload}, HTTP_IDEMPOTENCY_KEY=key)
    return client.post(path, json.dumps(body), content_type="application/json", HTTP_IDEMPOTENCY_KEY=key)


def test_every_post_operation_has_a_request_here():
    assert set(OPERATIONS) - ANONYMOUS == set(REQUESTS), "add a valid request for each new POST operation"


@pytest.mark.parametrize("operation_id", sorted(set(OPERATIONS) - ANONYMOUS))
def test_post_operation_honours_idempotency_key(operation_id, world, owner_client, owner, firm):
    if operation_id == "billing_reactivate_create":
        owner_client.post("/api/v1/billing/cancel/")
    call = REQUESTS[operation_id](world)
    path = OPERATIONS[operation_id].format(**call.ids)
    key = f"key-{operation_id}"

    first = _send(owner_client, path, call, call.body, key)
    assert 200 <= first.status_code < 300, (first.status_code, first.content[:500])
    assert "Idempotent-Replayed" not in first.headers
    if operation_id in SIGNS_OUT:
        owner_client.force_login(owner)

    again = _send(owner_client, path, call, call.body, key)
    assert again.status_code == first.status_code, again.content[:500]
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    with schema_context(settings.PUBLIC_SCHEMA_NAME):
        assert IdempotencyRecord.objects.filter(tenant=firm, key=key).count() == 1

    other = _send(owner_client, path, call, call.other, key)
    assert other.status_code == 422, other.content[:500]
    assert other.json()["error"]["code"] == "idempotency_key_reused"


def _contact(client, key, first_name="Ada", **extra):
    body = json.dumps({"first_name": first_name, "last_name": "Lovelace"})
    return client.post("/api/v1/contacts/", body, content_type="application/json", HTTP_IDEMPOTENCY_KEY=key, **extra)


def test_the_same_key_from_another_credential_is_another_key(owner_client, client, api_key_for, firm):
    from crm.models import Contact

    raw = api_key_for(firm, "write")
    by_user = _contact(owner_client, "shared-key")
    by_key = _contact(client, "shared-key", "Bob", HTTP_HOST="api.localhost", HTTP_X_API_KEY=raw)
    assert by_user.status_code == by_key.status_code == 201
    assert "Idempotent-Replayed" not in by_key.headers
    assert Contact.objects.filter(pk__in=[by_user.json()["id"], by_key.json()["id"]]).count() == 2


def test_the_same_key_at_another_firm_is_another_key(owner_client, outsider_client, firm, other_firm):
    from crm.models import Contact

    mine = _contact(owner_client, "firm-key")
    theirs = _contact(outsider_client, "firm-key", "Bob")
    assert mine.status_code == theirs.status_code == 201 and "Idempotent-Replayed" not in theirs.headers
    with schema_context(other_firm.schema_name):
        assert Contact.objects.filter(first_name="Bob").count() == 1
    assert not Contact.objects.filter(first_name="Bob").exists()


def test_a_replay_of_a_new_api_key_is_sealed_at_rest(owner_client, firm):
    body = json.dumps({"name": "integration", "scope": "read"})
    first = owner_client.post("/api/v1/api-keys/", body, content_type="application/json", HTTP_IDEMPOTENCY_KEY="k")
    again = owner_client.post("/api/v1/api-keys/", body, content_type="application/json", HTTP_IDEMPOTENCY_KEY="k")
    assert first.status_code == again.status_code == 201 and again.json() == first.json()
    raw = first.json()["key"]
    with schema_context(settings.PUBLIC_SCHEMA_NAME):
        record = IdempotencyRecord.objects.get(tenant=firm, key="k")
        assert raw not in record.response_sealed and record.response_body is None
        assert ApiKey.objects.filter(tenant=firm, name="integration").count() == 1


def test_a_key_longer_than_255_characters_is_a_400(owner_client):
    response = _contact(owner_client, "x" * 256)
    assert response.status_code == 400 and "idempotency_key" in response.json()["error"]["details"]


def test_an_expired_key_runs_the_request_again(owner_client, firm, settings):
    from crm.models import Contact

    assert _contact(owner_client, "old-key").status_code == 201
    with schema_context(settings.PUBLIC_SCHEMA_NAME):
        IdempotencyRecord.objects.filter(tenant=firm, key="old-key").update(
            created_at=timezone.now() - timezone.timedelta(days=settings.CODEX_IDEMPOTENCY_DAYS + 1)
        )
    again = _contact(owner_client, "old-key")
    assert again.status_code == 201 and "Idempotent-Replayed" not in again.headers
    assert Contact.objects.filter(first_name="Ada", last_name="Lovelace").count() == 2


def test_sign_in_ignores_the_key(anon_client, firm):
    from tests.conftest import PASSWORD

    body = json.dumps({"email": "owner@acme.test", "password": PASSWORD})
    responses = [
        anon_client.post("/api/v1/auth/token/", body, content_type="application/json", HTTP_IDEMPOTENCY_KEY="t")
        for _ in range(2)
    ]
    assert [r.status_code for r in responses] == [200, 200]
    assert all("Idempotent-Replayed" not in r.headers for r in responses)
    with schema_context(settings.PUBLIC_SCHEMA_NAME):
        assert not IdempotencyRecord.objects.filter(tenant=firm, key="t").exists()


def test_a_body_that_is_not_an_object_is_fingerprinted_too(owner_client):
    send = lambda body: owner_client.post(  # noqa: E731
        "/api/v1/contacts/", json.dumps(body), content_type="application/json", HTTP_IDEMPOTENCY_KEY="array-body"
    )
    first = send([1, 2])
    assert first.status_code == 400  # the API refuses it, and the key is not used up
    assert send([1, 2]).status_code == 400
    assert send({"first_name": "Ada"}).status_code == 201
