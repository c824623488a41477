"""What an outside attacker with real credentials found (issue 27), each reproduced, then fixed.

Every test here failed before its fix: a 500, a half-done state (a campaign left "sending", a
subscriber without a mail) or harm to the other users of the firm (a dashboard down for everyone).
"""

from __future__ import annotations

import json
import re
from datetime import date, timedelta

import pytest
from django.conf import settings as django_settings
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import override_settings
from django.utils import timezone
from django_tenants.utils import schema_context

from crm.models import Campaign, Delivery, Subscriber
from portfolios import services as portfolio_services
from portfolios.imports import TransactionImport
from portfolios.models import Transaction
from tests.conftest import PASSWORD, FirmClient
from tests.crm.factories import ContactFactory as CrmContactFactory
from tests.crm.factories import SubscriberFactory
from tests.portfolios.factories import ContactFactory, PortfolioFactory

pytestmark = pytest.mark.django_db
API = "/api/v1"


def _error(response) -> dict:
    assert response["Content-Type"].startswith("application/json"), response.content[:200]
    body = response.json()
    assert set(body) == {"error"} and {"code", "message", "details"} <= set(body["error"]), body
    return body["error"]


@pytest.fixture
def book(firm, advisor):
    client = ContactFactory(owner=advisor, first_name="Ada", last_name="Lovelace")
    return PortfolioFactory(name="Ada growth", advisor=advisor, client=client, base_currency="USD")


# --- 1. trade dates in a sane range ------------------------------------------------------------------------


@pytest.mark.parametrize("day", ["0001-01-01", "1899-12-31", "9999-12-31"])
def test_api_refuses_a_trade_date_outside_the_firm_range(key_client, book, day):
    r = key_client.post(
        f"{API}/portfolios/{book.pk}/transactions/",
        {"kind": "deposit", "trade_date": day, "amount": "1", "currency": "USD"},
        content_type="application/json",
    )
    assert r.status_code == 400
    assert "trade_date" in _error(r)["details"]
    assert not Transaction.objects.filter(portfolio=book).exists()


def test_web_form_refuses_a_trade_date_before_1900(owner_client, book):
    r = owner_client.post(
        f"/portfolios/{book.pk}/transactions/new/",
        {"kind": "deposit", "trade_date": "0001-01-01", "amount": "1", "currency": "USD"},
    )
    assert r.status_code == 200
    assert "1900-01-01" in r.content.decode()
    assert not Transaction.objects.filter(portfolio=book).exists()


def test_csv_import_refuses_a_trade_date_before_1900(book):
    text = "kind,trade_date,amount,currency\ndeposit,0001-01-01,1,USD\ndeposit,1900-01-01,1,USD\n"
    upload = SimpleUploadedFile("t.csv", text.encode(), content_type="text/csv")
    preview = TransactionImport.from_upload(portfolio=book, upload=upload).preview()
    assert [(e.row, e.field) for e in preview.errors] == [(2, "trade_date")]


def test_acquired_on_has_the_same_range(book):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError) as exc:
        portfolio_services.transaction_clean(
            portfolio=book,
            data={"kind": "transfer_in", "trade_date": date(2020, 1, 2), "acquired_on": date(1, 1, 1)},
        )
    assert "acquired_on" in exc.value.message_dict


def test_the_schema_states_the_trade_date_range(anon_client):
    schema = anon_client.get(f"{API}/schema/?format=json").json()
    trade_date = schema["components"]["schemas"]["TransactionInputRequest"]["properties"]["trade_date"]
    assert "1900-01-01" in trade_date["description"]
    assert re.fullmatch(trade_date["pattern"], "1900-01-01")
    assert not re.fullmatch(trade_date["pattern"], "0001-01-01")


def test_analytics_answer_for_the_earliest_allowed_date(owner_client, book):
    """A ledger starting on the first allowed day: every page and analytics endpoint answers."""
    r = owner_client.post(
        f"{API}/portfolios/{book.pk}/transactions/",
        {"kind": "deposit", "trade_date": "1900-01-01", "amount": "1", "currency": "USD"},
        content_type="application/json",
    )
    assert r.status_code == 201, r.content
    for path in ("/", "/portfolios/", f"/portfolios/{book.pk}/"):
        assert owner_client.get(path).status_code == 200, path
    for path in ("performance/", "value-series/", "performance/?start=1900-01-01", "holdings/?date=1900-01-01"):
        assert owner_client.get(f"{API}/portfolios/{book.pk}/{path}").status_code == 200, path


@pytest.mark.parametrize("query", ["start=0001-01-01", "start=1899-12-31&end=1900-01-05"])
def test_analytics_refuse_a_range_before_the_earliest_date(owner_client, book, query):
    portfolio_services.transaction_record(portfolio=book, kind="deposit", trade_date=date(2020, 1, 2), amount="10")
    r = owner_client.get(f"{API}/portfolios/{book.pk}/performance/?{query}")
    assert r.status_code == 400
    assert "start" in _error(r)["details"]


def test_holdings_refuse_a_date_before_the_earliest_date(owner_client, book):
    r = owner_client.get(f"{API}/portfolios/{book.pk}/holdings/?date=0001-01-01")
    assert r.status_code == 400
    assert "date" in _error(r)["details"]


# --- 2. the API host builds the same links as the firm host ------------------------------------------------


def test_search_with_hits_answers_on_both_hosts(key_client):
    contact = CrmContactFactory(first_name="Ada", last_name="Lovelace")
    r = key_client.get(f"{API}/search/?q=ada")
    assert r.status_code == 200, r.content
    hits = r.json()["results"]
    assert any(h["id"] == contact.pk and h["url"] == f"/crm/contacts/{contact.pk}/" for h in hits)


def test_subscriber_add_mails_the_confirmation_on_both_hosts(key_client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        r = key_client.post(f"{API}/newsletter/subscribers/", {"email": "grace@example.com"}, "application/json")
    assert r.status_code == 201, r.content
    assert len(mail.outbox) == 1
    port = f":{django_settings.CODEX_PUBLIC_PORT}" if django_settings.CODEX_PUBLIC_PORT else ""
    assert f"{django_settings.CODEX_URL_SCHEME}://acme.localhost{port}/crm/newsletter/confirm/" in mail.outbox[0].body


def test_campaign_send_finishes_on_both_hosts(key_client, django_capture_on_commit_callbacks):
    for i in range(3):
        SubscriberFactory(email=f"c{i}@example.com", status="confirmed")
    campaign = Campaign.objects.create(subject="Quarterly letter", body="Markets rose.")
    with django_capture_on_commit_callbacks(execute=True):
        r = key_client.post(f"{API}/newsletter/campaigns/{campaign.pk}/send/")
    assert r.status_code == 202, r.content
    campaign.refresh_from_db()
    assert campaign.status == "sent"
    assert Delivery.objects.filter(campaign=campaign, status="sent").count() == 3
    assert len(mail.outbox) == 3
    assert all("acme.localhost" in m.extra_headers["List-Unsubscribe"] for m in mail.outbox)


@pytest.mark.parametrize("urlconf", ["codex.urls_api", "codex.urls_public", "codex.urls_tenant"])
def test_links_for_a_firm_do_not_depend_on_the_urlconf_in_force(firm, urlconf):
    """What a campaign send or a sign-up runs after the API host's request: the URLconf of that
    request (no web pages) is still in force; the links are the firm's all the same."""
    from django.urls import set_urlconf

    from crm.newsletter import services as crm_services

    subscriber = SubscriberFactory(email="s@example.com", status="confirmed")
    set_urlconf(urlconf)
    try:
        links = crm_services.newsletter_links(tenant=firm, subscriber=subscriber)
    finally:
        set_urlconf(None)
    origin = f"{django_settings.CODEX_URL_SCHEME}://acme.localhost"
    assert links["confirm"].startswith(f"{origin}")
    assert "/crm/newsletter/confirm/" in links["confirm"]
    assert "/crm/newsletter/unsubscribe/" in links["unsubscribe"]


def test_client_record_timeline_answers_on_both_hosts(key_client, advisor):
    from crm.models import DealStageChange
    from tests.crm.factories import DealFactory

    contact = CrmContactFactory(owner=advisor, lifecycle="client")
    deal = DealFactory(owner=advisor, contact=contact)
    DealStageChange.objects.create(deal=deal, from_stage=None, to_stage=deal.stage, changed_by=advisor)
    r = key_client.get(f"{API}/clients/{contact.pk}/")
    assert r.status_code == 200, r.content


# --- 3. control characters in a campaign subject -----------------------------------------------------------

LINE_BREAKS = ["\n", "\r", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029", "\x00", "\x7f"]


@pytest.mark.parametrize("char", LINE_BREAKS, ids=[f"U+{ord(c):04X}" for c in LINE_BREAKS])
def test_campaign_subject_with_a_line_break_is_refused(key_client, char):
    r = key_client.post(
        f"{API}/newsletter/campaigns/", {"subject": f"Hello{char}Bcc: x@example.com", "body": "x"}, "application/json"
    )
    assert r.status_code == 400
    assert "subject" in _error(r)["details"]
    assert not Campaign.objects.exists()


def test_campaign_subject_update_with_a_line_break_is_refused(key_client):
    campaign = Campaign.objects.create(subject="Fine", body="x")
    r = key_client.patch(f"{API}/newsletter/campaigns/{campaign.pk}/", {"subject": "a\u2028b"}, "application/json")
    assert r.status_code == 400
    assert "subject" in _error(r)["details"]
    campaign.refresh_from_db()
    assert campaign.subject == "Fine"


def test_a_stored_campaign_with_a_bad_subject_is_not_started(key_client, django_capture_on_commit_callbacks):
    """A campaign written before the rule (or by a path that skipped it) is refused at send: it
    stays a draft, no delivery row exists."""
    SubscriberFactory(email="c@example.com", status="confirmed")
    campaign = Campaign.objects.create(subject="a\nb", body="x")
    with django_capture_on_commit_callbacks(execute=True):
        r = key_client.post(f"{API}/newsletter/campaigns/{campaign.pk}/send/")
    assert r.status_code == 400
    assert "subject" in _error(r)["details"]
    campaign.refresh_from_db()
    assert campaign.status == "draft" and not campaign.deliveries.exists()


def test_a_campaign_whose_mails_cannot_be_built_ends_failed_not_sending(firm):
    from crm.newsletter import services as crm_services

    for i in range(2):
        SubscriberFactory(email=f"c{i}@example.com", status="confirmed")
    campaign = Campaign.objects.create(subject="a\nb", body="x", status="sending", send_started_at=timezone.now())
    for sub in Subscriber.objects.all():
        Delivery.objects.create(campaign=campaign, subscriber=sub, email=sub.email)
    result = crm_services.campaign_deliver(campaign_id=campaign.pk, tenant=firm)
    campaign.refresh_from_db()
    assert result == {"sent": 0, "failed": 2}
    assert campaign.status == "failed"
    assert set(campaign.deliveries.values_list("status", flat=True)) == {"failed"}
    assert all("linefeed" in e or "newline" in e.lower() for e in campaign.deliveries.values_list("error", flat=True))
    assert not mail.outbox


# --- 4. every body validated by a serializer ---------------------------------------------------------------


@pytest.fixture
def task(firm, owner):
    from crm.models import Activity

    return Activity.objects.create(kind="task", subject="Call Ada", owner=owner, occurred_at=timezone.now())


@pytest.fixture
def import_job(owner_client):
    csv = SimpleUploadedFile("c.csv", b"first_name,last_name,email\nAda,Lovelace,ada@example.com\n", "text/csv")
    r = owner_client.post(f"{API}/imports/", {"kind": "contacts", "file": csv})
    assert r.status_code == 201, r.content
    return r.json()["id"]


@pytest.mark.parametrize("body", ["[]", '"x"', "1", "true", "null"])
def test_non_object_bodies_are_a_400(key_client, task, import_job, body):
    for path in (f"{API}/activities/{task.pk}/complete/", f"{API}/imports/{import_job}/preview/"):
        r = key_client.post(path, body, content_type="application/json")
        assert r.status_code == 400, (path, r.content)
        assert _error(r)["code"] == "invalid"
    task.refresh_from_db()
    assert task.completed_at is None


@pytest.mark.parametrize("body", [{"done": {}}, {"done": []}, {"done": "maybe"}, {"done": None}])
def test_task_complete_refuses_a_done_that_is_not_a_boolean(key_client, task, body):
    r = key_client.post(f"{API}/activities/{task.pk}/complete/", body, content_type="application/json")
    assert r.status_code == 400
    assert "done" in _error(r)["details"]
    task.refresh_from_db()
    assert task.completed_at is None


def test_task_complete_still_completes_and_reopens(key_client, task):
    assert key_client.post(f"{API}/activities/{task.pk}/complete/", {}, "application/json").status_code == 200
    task.refresh_from_db()
    assert task.completed_at is not None
    r = key_client.post(f"{API}/activities/{task.pk}/complete/", {"done": False}, "application/json")
    assert r.status_code == 200
    task.refresh_from_db()
    assert task.completed_at is None


@pytest.mark.parametrize(
    "body", [{"mapping": None}, {"mapping": []}, {"mapping": {"Email": 1}}, {"duplicates": "explode"}]
)
def test_import_preview_refuses_a_malformed_mapping(owner_client, import_job, body):
    r = owner_client.post(f"{API}/imports/{import_job}/preview/", body, content_type="application/json")
    assert r.status_code == 400
    assert set(body) <= set(_error(r)["details"])


# --- 5. nesting depth ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("depth", [2_000, 100_000])
def test_deeply_nested_json_is_a_400_before_parsing(firm, depth):
    client = FirmClient(firm)
    body = "[" * depth + "]" * depth
    r = client.post(f"{API}/auth/token/", body, content_type="application/json")
    assert r.status_code == 400
    assert _error(r)["code"] == "parse_error"
    nested = '{"email": ' + "{" * 0 + "[" * depth + "]" * depth + ', "password": "x"}'
    r = client.post(f"{API}/auth/token/", nested, content_type="application/json")
    assert r.status_code == 400
    assert _error(r)["code"] == "parse_error"


def test_nesting_bound_is_exact():
    from codex.api.parsers import MAX_DEPTH, nesting_deeper_than

    def nested(depth: int) -> bytes:
        return (
            '{"a": ' * (depth // 2) + "[" * (depth - depth // 2) + "1" + "]" * (depth - depth // 2) + "}" * (depth // 2)
        ).encode()

    assert json.loads(nested(MAX_DEPTH))
    assert not nesting_deeper_than(nested(MAX_DEPTH), MAX_DEPTH)
    assert nesting_deeper_than(nested(MAX_DEPTH + 1), MAX_DEPTH)
    assert not nesting_deeper_than(b'{"a": "[[[[[[[[\\"]]]"}', 2)
    assert not nesting_deeper_than(b"[[[[", 2)  # unbalanced: left to the JSON parser's own error


def test_multipart_body_over_the_size_limit_gets_the_envelope(key_client):
    csv = SimpleUploadedFile("c.csv", b"first_name,last_name\nAda,Lovelace\n", "text/csv")
    with override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=100):
        r = key_client.post(f"{API}/imports/", {"kind": "contacts" * 50, "file": csv})
    assert r.status_code in (400, 413)
    assert _error(r)["code"] == "request_too_large"


def test_brackets_inside_strings_do_not_count_as_nesting(firm):
    client = FirmClient(firm)
    body = json.dumps({"email": "[" * 5000 + "@example.com", "password": "{" * 5000})
    r = client.post(f"{API}/auth/token/", body, content_type="application/json")
    assert r.status_code in (400, 401)
    assert _error(r)["code"] != "parse_error"


def test_ordinary_nesting_is_accepted(key_client, book):
    r = key_client.post(
        f"{API}/portfolios/{book.pk}/transactions/",
        {"kind": "deposit", "trade_date": "2020-01-02", "amount": "5", "currency": "USD", "lots": None},
        content_type="application/json",
    )
    assert r.status_code == 201, r.content


# --- 6. bodies over the size limit -----------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/auth/token/", "/contacts/"])
def test_a_body_over_the_size_limit_gets_the_envelope(key_client, path):
    body = json.dumps({"email": "a@example.com", "password": "x" * 5000, "first_name": "y" * 5000})
    with override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=2000):
        r = key_client.post(f"{API}{path}", body, content_type="application/json")
    assert r.status_code in (400, 413)
    error = _error(r)
    assert error["code"] == "request_too_large"
    assert error["details"] == {"limit_bytes": 2000}


# --- 7. e-mailed links from configuration, not from the Host header ------------------------------------------


@override_settings(CODEX_PUBLIC_PORT="8443", CODEX_URL_SCHEME="https")
def test_password_reset_link_ignores_the_port_of_the_host_header(firm, owner):
    client = FirmClient(firm, host="acme.localhost:6666")
    r = client.post("/accounts/password/reset/", {"email": owner.email})
    assert r.status_code == 302
    assert len(mail.outbox) == 1
    body = mail.outbox[0].body
    assert "https://acme.localhost:8443/accounts/password/reset/" in body
    assert "6666" not in body


@override_settings(CODEX_PUBLIC_PORT="", CODEX_URL_SCHEME="https")
def test_invitation_link_ignores_the_port_of_the_host_header(firm, owner, django_capture_on_commit_callbacks):
    client = FirmClient(firm, host="acme.localhost:6666")
    client.force_login(owner)
    with django_capture_on_commit_callbacks(execute=True):
        r = client.post("/accounts/team/", {"email": "new.person@example.com", "role": "advisor"})
    assert r.status_code == 302, r.content[:500]
    assert len(mail.outbox) == 1
    body = mail.outbox[0].body
    assert "https://acme.localhost/accounts/invitation/" in body
    assert "6666" not in body


# --- 8. bearer tokens end with a password change and with "require 2FA" -------------------------------------


def _bearer(firm, email: str) -> FirmClient:
    client = FirmClient(firm)
    r = client.post(f"{API}/auth/token/", {"email": email, "password": PASSWORD}, "application/json")
    assert r.status_code == 200, r.content
    return FirmClient(firm, HTTP_AUTHORIZATION=f"Bearer {r.json()['access']}")


def test_a_password_change_ends_existing_bearer_tokens(firm, advisor):
    bearer = _bearer(firm, advisor.email)
    assert bearer.get(f"{API}/me/").status_code == 200
    web = FirmClient(firm)
    web.force_login(advisor)
    r = web.post(
        "/accounts/password/change/",
        {
            "old_password": PASSWORD,
            "new_password1": "another-horse-battery-7",
            "new_password2": "another-horse-battery-7",
        },
    )
    assert r.status_code == 302, r.content[:500]
    assert bearer.get(f"{API}/me/").status_code == 401
    # the session that changed it stays signed in (Django keeps it), and a new token works
    assert web.get("/accounts/password/change/done/").status_code == 200


def test_requiring_two_factor_ends_existing_bearer_tokens(firm, owner, advisor):
    from tenants.firm_settings import firm_settings_update

    bearer = _bearer(firm, advisor.email)
    assert bearer.get(f"{API}/me/").status_code == 200
    firm_settings_update(tenant=firm, actor=owner, name=firm.name, brand_color=firm.brand_color, require_2fa=True)
    connection.set_tenant(firm)
    assert bearer.get(f"{API}/me/").status_code == 401


def test_saving_settings_without_turning_two_factor_on_keeps_tokens(firm, owner, advisor):
    from tenants.firm_settings import firm_settings_update

    bearer = _bearer(firm, advisor.email)
    firm_settings_update(tenant=firm, actor=owner, name="Acme Renamed", brand_color=firm.brand_color, require_2fa=False)
    connection.set_tenant(firm)
    assert bearer.get(f"{API}/me/").status_code == 200


# --- 9. API keys die with their creator ------------------------------------------------------------------------


def test_api_keys_of_a_deactivated_person_stop_working(firm, owner, admin_user):
    from tenants.accounts import services as account_services

    maker = FirmClient(firm)
    maker.force_login(admin_user)
    connection.set_tenant(firm)
    r = maker.post(f"{API}/api-keys/", {"name": "integration", "scope": "write"}, "application/json")
    assert r.status_code == 201, r.content
    raw = r.json()["key"]
    other_key = FirmClient(firm, host="api.localhost", HTTP_X_API_KEY=_owner_key(firm, owner))
    api = FirmClient(firm, host="api.localhost", HTTP_X_API_KEY=raw)
    assert api.get(f"{API}/contacts/").status_code == 200

    account_services.user_deactivate(actor=owner, user=admin_user, tenant=firm)
    connection.set_tenant(firm)
    assert api.get(f"{API}/contacts/").status_code == 401
    assert api.post(f"{API}/contacts/", {"first_name": "X", "last_name": "Y"}, "application/json").status_code == 401
    # keys made by others are the firm's business, untouched
    assert other_key.get(f"{API}/contacts/").status_code == 200
    # reactivating the person does not bring the key back
    account_services.user_reactivate(actor=owner, user=admin_user, tenant=firm)
    connection.set_tenant(firm)
    assert api.get(f"{API}/contacts/").status_code == 401


def _owner_key(firm, owner) -> str:
    from tenants.services import api_key_create

    _key, raw = api_key_create(tenant=firm, name="owner's", scope="read", created_by=owner.email)
    return raw


def test_the_deactivation_screen_says_the_keys_are_revoked(firm, owner, admin_user):
    from tenants.services import api_key_create

    api_key_create(tenant=firm, name="nightly sync", scope="write", created_by=admin_user.email)
    web = FirmClient(firm)
    web.force_login(owner)
    connection.set_tenant(firm)
    r = web.post(f"/accounts/team/{admin_user.pk}/deactivate/")
    assert r.status_code == 200
    page = r.content.decode()
    assert "API key" in page and "nightly sync" in page


# --- 10. unknown ordering is a 400 -------------------------------------------------------------------------------


@pytest.mark.parametrize("ordering", ["bogus", "-bogus", "last_name,bogus", "owner__password"])
def test_unknown_ordering_is_refused_naming_the_allowed_values(key_client, ordering):
    r = key_client.get(f"{API}/contacts/?ordering={ordering}")
    assert r.status_code == 400
    error = _error(r)
    assert "ordering" in error["details"]
    assert "last_name" in error["details"]["ordering"][0]


def test_known_ordering_still_orders(key_client):
    CrmContactFactory(first_name="B", last_name="Zeta")
    CrmContactFactory(first_name="A", last_name="Alpha")
    r = key_client.get(f"{API}/contacts/?ordering=-last_name")
    assert r.status_code == 200
    names = [c["last_name"] for c in r.json()["results"]]
    assert names == sorted(names, reverse=True)


def test_the_schema_lists_the_allowed_orderings(anon_client):
    schema = anon_client.get(f"{API}/schema/?format=json").json()
    params = {p["name"]: p for p in schema["paths"]["/api/v1/contacts/"]["get"]["parameters"]}
    assert "-last_name" in params["ordering"]["schema"]["items"]["enum"] or "-last_name" in str(params["ordering"])


def _ordered_lists(anon_client) -> list[str]:
    """Staff lists: the client portal's lists answer client users only (404 to staff and keys);
    their ordering is checked with a client user in tests/portal."""
    schema = anon_client.get(f"{API}/schema/?format=json").json()
    return [
        path
        for path, ops in schema["paths"].items()
        if "get" in ops
        and "{" not in path
        and not path.startswith(f"{API}/portal/")
        and any(p["name"] == "ordering" for p in ops["get"].get("parameters", []))
    ]


def test_every_list_refuses_unknown_ordering(owner_client, anon_client):
    """Every list operation of the schema that documents ``ordering`` refuses an unknown value."""
    paths = _ordered_lists(anon_client)
    assert len(paths) >= 10
    for path in paths:
        r = owner_client.get(f"{path}?ordering=not_a_field")
        assert r.status_code == 400, (path, r.status_code)
        assert "ordering" in _error(r)["details"], path
        assert owner_client.get(f"{path}?ordering=").status_code == 400, path


def test_every_list_refuses_unknown_ordering_with_a_key(key_client, anon_client):
    """The same with an API key on both hosts (403 only where keys may not go: the keys list)."""
    refused = 0
    for path in _ordered_lists(anon_client):
        r = key_client.get(f"{path}?ordering=not_a_field")
        assert r.status_code in (400, 403), (path, r.status_code)
        if r.status_code == 400:
            assert "ordering" in _error(r)["details"], path
            refused += 1
    assert refused >= 10


def _today() -> date:
    return timezone.localdate()


def test_future_dates_still_refused(key_client, book):
    r = key_client.post(
        f"{API}/portfolios/{book.pk}/transactions/",
        {"kind": "deposit", "trade_date": str(_today() + timedelta(days=1)), "amount": "1", "currency": "USD"},
        content_type="application/json",
    )
    assert r.status_code == 400


def test_outsider_key_cannot_use_the_api_host_for_acme(firm, other_firm, api_key_for):
    with schema_context("public"):
        raw = api_key_for(other_firm, "write")
    r = FirmClient(firm, HTTP_X_API_KEY=raw).get(f"{API}/contacts/")
    assert r.status_code == 401


# --- 11. what the external Schemathesis run found --------------------------------------------------------


def test_exposure_amounts_have_the_decimals_the_schema_states(owner_client, firm, advisor, anon_client):
    """A portfolio in EUR valued in USD at a rate with 10 decimals: the converted sums keep at most
    the 6 decimals ``FirmExposure`` declares (they had 16)."""
    from tests.portfolios.factories import add_fx, in_public

    for base, quote in (("EUR", "USD"), ("USD", "EUR")):
        in_public(add_fx, base, quote, {date(2024, 1, 2): "1.1234567891" if base == "EUR" else "0.8901098901"})
    client = ContactFactory(owner=advisor)
    eur = PortfolioFactory(advisor=advisor, client=client, base_currency="EUR")
    portfolio_services.transaction_record(
        portfolio=eur, kind="deposit", trade_date=date(2024, 1, 2), amount="1000.123457", currency="EUR"
    )
    r = owner_client.get(f"{API}/firm/exposure/?currency=USD&date=2024-01-03")
    assert r.status_code == 200, r.content
    body = r.json()
    schema = anon_client.get(f"{API}/schema/?format=json").json()["components"]["schemas"]["FirmExposure"]
    for name in ("total_value", "securities_value", "cash_value"):
        assert re.fullmatch(schema["properties"][name]["pattern"], body[name]), (name, body[name])
    assert body["total_value"] != "0"


@pytest.mark.parametrize("path", ["/schemathesis-probe\\\x1b\x01", "/nothing-here/", "/admin/"])
def test_the_api_host_answers_unknown_paths_with_the_envelope(firm, api_key_for, path):
    """Any path outside /api/v1/ on the API host: a 404 envelope (the HTML 404 page linked to web
    pages the API host's URLconf does not have: NoReverseMatch, a 500, found over HTTP)."""
    with override_settings(DEBUG=False):
        r = FirmClient(firm, host="api.localhost", HTTP_X_API_KEY=api_key_for(firm, "read")).get(path)
        assert r.status_code == 404
        assert _error(r)["code"] == "not_found"
        r = FirmClient(firm, host="api.localhost").get(path)  # no key: no firm to answer for
        assert r.status_code == 401
        assert _error(r)["code"] == "not_authenticated"


def test_state_conflicts_are_409_naming_the_field(key_client, book, django_capture_on_commit_callbacks):
    """Schema-valid requests the record's state refuses are conflicts (409), not bad input (400):
    what the external run called "schema-valid request rejected"."""
    campaign = Campaign.objects.create(subject="Sent", body="x", status="sent")
    r = key_client.delete(f"{API}/newsletter/campaigns/{campaign.pk}/")
    assert r.status_code == 409 and "status" in _error(r)["details"]
    r = key_client.patch(f"{API}/newsletter/campaigns/{campaign.pk}/", {"subject": "x"}, "application/json")
    assert r.status_code == 409 and "status" in _error(r)["details"]
    r = key_client.delete(f"{API}/contacts/{book.client_id}/")
    assert r.status_code == 409
    for path in ("performance/", "value-series/"):
        r = key_client.get(f"{API}/portfolios/{book.pk}/{path}")
        assert r.status_code == 409 and _error(r)["code"] == "no_transactions", path


@pytest.mark.parametrize(
    ("first_name", "accepted"),
    [("Ada" + " " * 200, True), ("  Ada  ", True), ("x" * 100, True), ("x" * 101, False), (" " * 3, False)],
)
def test_trimmed_text_length_is_what_the_schema_says(key_client, anon_client, first_name, accepted):
    """DRF trims text before checking its length; the schema says the same (a pattern on what is
    left after trimming), so the API and its schema agree on every such input."""
    schema = anon_client.get(f"{API}/schema/?format=json").json()
    field = schema["components"]["schemas"]["ContactRequest"]["properties"]["first_name"]
    assert "maxLength" not in field
    assert (re.fullmatch(field["pattern"], first_name) is not None) is accepted
    r = key_client.post(f"{API}/contacts/", {"first_name": first_name}, "application/json")
    assert (r.status_code == 201) is accepted, r.content


@pytest.mark.parametrize(("symbol", "accepted"), [("\x85\u3000 \x1f", False), ("\x85ABC\xa0", True)])
def test_white_space_in_the_schema_is_what_drf_trims_in_every_reading(key_client, anon_client, symbol, accepted):
    """A pattern's \\s is Unicode in Python, lacks "\\x85" in ECMA 262 and is ASCII in Schemathesis'
    validator; the schema spells out what str.strip() removes, so all three agree with the API
    (the fuzz test sent a symbol of only such white space: the schema took it, the API said blank)."""
    schema = anon_client.get(f"{API}/schema/?format=json").json()
    pattern = schema["components"]["schemas"]["InstrumentRequest"]["properties"]["symbol"]["pattern"]
    for flags in (0, re.ASCII):
        assert (re.fullmatch(pattern, symbol, flags) is not None) is accepted, flags
    body = {"symbol": symbol, "name": "Fund", "asset_class": "fund", "currency": "CHF"}
    r = key_client.post(f"{API}/instruments/", body, "application/json")
    assert (r.status_code == 201) is accepted, r.content


def test_preview_of_a_finished_import_is_a_conflict(owner_client, import_job):
    assert owner_client.post(f"{API}/imports/{import_job}/commit/").status_code == 200
    r = owner_client.post(f"{API}/imports/{import_job}/preview/", {}, content_type="application/json")
    assert r.status_code == 409 and "status" in _error(r)["details"]


def test_ledger_import_documents_its_201(anon_client):
    schema = anon_client.get(f"{API}/schema/?format=json").json()
    op = schema["paths"]["/api/v1/portfolios/{portfolio_pk}/transactions/import/"]["post"]
    assert {"200", "201"} <= set(op["responses"])


def test_changing_the_base_currency_of_a_ledger_is_a_conflict(key_client, book):
    portfolio_services.transaction_record(portfolio=book, kind="deposit", trade_date=date(2020, 1, 2), amount="10")
    r = key_client.patch(f"{API}/portfolios/{book.pk}/", {"base_currency": "EUR"}, "application/json")
    assert r.status_code == 409 and "base_currency" in _error(r)["details"]
    book.refresh_from_db()
    assert book.base_currency == "USD"


def test_changing_the_kind_of_a_task_with_a_due_date_is_a_conflict(key_client, task):
    task.due_date = date(2026, 1, 5)
    task.save(update_fields=["due_date"])
    r = key_client.patch(f"{API}/activities/{task.pk}/", {"kind": "call"}, "application/json")
    assert r.status_code == 409 and "kind" in _error(r)["details"]
    r = key_client.patch(f"{API}/activities/{task.pk}/", {"kind": "call", "due_date": "2026-01-06"}, "application/json")
    assert r.status_code == 400 and "due_date" in _error(r)["details"]
    r = key_client.patch(f"{API}/activities/{task.pk}/", {"kind": "call", "due_date": None}, "application/json")
    assert r.status_code == 200, r.content
