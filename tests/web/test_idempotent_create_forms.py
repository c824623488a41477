"""Every create form of the web UI carries a one-time idempotency key (codex.idempotent_forms):
the same form sent twice (a double click, the browser's "resend") creates one row, and the second
submission gets the first answer again."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from crm import services as crm_services
from crm.models import Activity, Campaign, Company, Deal, ImportJob, PipelineStage, Subscriber
from fees.models import BillingGroup, FeeSchedule
from portfolios.alerts.models import AlertRule
from tenants.accounts.models import Invitation
from tenants.models import ApiKey
from tests.crm.factories import ContactFactory
from tests.portfolios.factories import PortfolioFactory
from webhooks.models import WebhookEndpoint

pytestmark = pytest.mark.django_db

KEY = re.compile(r'name="idempotency_key" value="([0-9a-f]{32})"')


@dataclass
class Case:
    page: str  # the page that shows the form
    post: str  # where the form posts
    data: dict
    rows: Any  # () -> queryset of what the form creates
    files: dict = field(default_factory=dict)


def _cases(owner) -> dict[str, Any]:
    def contact_activity():
        contact = ContactFactory(owner=owner)
        return Case(
            f"/crm/contacts/{contact.pk}/",
            f"/crm/contacts/{contact.pk}/log/",
            {"kind": "call", "subject": "Idem call", "body": ""},
            lambda: Activity.objects.filter(subject="Idem call"),
        )

    def deal():
        stage = crm_services.pipeline_stages_ensure()[0]
        return Case(
            "/crm/deals/new/",
            "/crm/deals/new/",
            {"title": "Idem deal", "stage": stage.pk, "amount": "1000", "currency": "USD", "owner": owner.pk},
            lambda: Deal.objects.filter(title="Idem deal"),
        )

    def alert():
        portfolio = PortfolioFactory(advisor=owner, client=ContactFactory(owner=owner))
        return Case(
            "/portfolios/alerts/",
            "/portfolios/alerts/",
            {"kind": "portfolio_drawdown_pct", "portfolio": portfolio.pk, "threshold": "10", "note": "Idem alert"},
            lambda: AlertRule.objects.filter(note="Idem alert"),
        )

    def crm_import():
        upload = SimpleUploadedFile(
            "idem.csv", b"first_name,last_name,email\nIdem,Import,idem@example.com\n", "text/csv"
        )
        return Case(
            "/crm/import/",
            "/crm/import/",
            {"kind": "contacts"},
            lambda: ImportJob.objects.filter(created_at__date=timezone.localdate()),
            files={"file": upload},
        )

    def fee_group():
        contact = ContactFactory(owner=owner)
        portfolio = PortfolioFactory(advisor=owner, client=contact)
        return Case(
            "/fees/groups/new/",
            "/fees/groups/new/",
            {"name": "Idem household", "client": contact.pk, "portfolios": [portfolio.pk]},
            lambda: BillingGroup.objects.filter(name="Idem household"),
        )

    return {
        "activity": contact_activity,
        "company": lambda: Case(
            "/crm/companies/new/",
            "/crm/companies/new/",
            {"name": "Idem Co", "owner": owner.pk},
            lambda: Company.objects.filter(name="Idem Co"),
        ),
        "deal": deal,
        "pipeline stage": lambda: Case(
            "/crm/pipeline/stages/",
            "/crm/pipeline/stages/",
            {"snew-name": "Idem stage", "snew-position": "7", "snew-probability": "40", "snew-kind": "open"},
            lambda: PipelineStage.objects.filter(name="Idem stage"),
        ),
        "task": lambda: Case(
            "/crm/tasks/",
            "/crm/tasks/",
            {"subject": "Idem task", "due_date": timezone.localdate().isoformat(), "body": ""},
            lambda: Activity.objects.filter(subject="Idem task"),
        ),
        "import upload": crm_import,
        "newsletter subscriber": lambda: Case(
            "/crm/newsletter/",
            "/crm/newsletter/",
            {"email": "idem-sub@example.com"},
            lambda: Subscriber.objects.filter(email="idem-sub@example.com"),
        ),
        "campaign": lambda: Case(
            "/crm/newsletter/campaigns/new/",
            "/crm/newsletter/campaigns/new/",
            {"subject": "Idem campaign", "body": "Hello"},
            lambda: Campaign.objects.filter(subject="Idem campaign"),
        ),
        "alert rule": alert,
        "invitation": lambda: Case(
            "/accounts/team/",
            "/accounts/team/",
            {"email": "idem-invite@example.com", "role": "advisor"},
            lambda: Invitation.objects.filter(email="idem-invite@example.com"),
        ),
        "api key": lambda: Case(
            "/accounts/api-keys/",
            "/accounts/api-keys/",
            {"name": "Idem key", "scope": "read"},
            lambda: ApiKey.objects.filter(name="Idem key"),
        ),
        "fee schedule": lambda: Case(
            "/fees/schedules/new/",
            "/fees/schedules/new/",
            {
                "name": "Idem schedule",
                "currency": "USD",
                "terms-effective_from": "2026-01-01",
                "terms-method": "blended",
                "tiers-bps_0": "100",
            },
            lambda: FeeSchedule.objects.filter(name="Idem schedule"),
        ),
        "billing group": fee_group,
        "webhook endpoint": lambda: Case(
            "/settings/webhooks/",
            "/settings/webhooks/",
            {"url": "http://127.0.0.1:9/idem", "event_types": ["contact.created"], "enabled": "on"},
            lambda: WebhookEndpoint.objects.filter(url="http://127.0.0.1:9/idem"),
        ),
    }


def _send(client, case: Case, key: str):
    for upload in case.files.values():
        upload.seek(0)
    return client.post(case.post, {**case.data, **case.files, "idempotency_key": key})


@pytest.mark.parametrize(
    "name",
    [
        "activity",
        "company",
        "deal",
        "pipeline stage",
        "task",
        "import upload",
        "newsletter subscriber",
        "campaign",
        "alert rule",
        "invitation",
        "api key",
        "fee schedule",
        "billing group",
        "webhook endpoint",
    ],
)
def test_a_create_form_sent_twice_creates_one_row(name, firm, owner, owner_client):
    case = _cases(owner)[name]()
    page = owner_client.get(case.page)
    assert page.status_code == 200
    keys = KEY.findall(page.content.decode())
    assert keys, f"the {name} form carries an idempotency key"
    before = case.rows().count()
    first = _send(owner_client, case, keys[0])
    assert first.status_code in (200, 302), first.content.decode()[:2000]
    assert case.rows().count() == before + 1, f"the first {name} submission creates its row"
    again = _send(owner_client, case, keys[0])
    assert again.status_code == first.status_code and again["Idempotent-Replayed"] == "true"
    if first.status_code == 302:
        assert again["Location"] == first["Location"]
    assert case.rows().count() == before + 1, f"a second {name} submission creates nothing"


def test_each_page_view_gives_a_fresh_key(owner_client):
    a = KEY.findall(owner_client.get("/crm/companies/new/").content.decode())
    b = KEY.findall(owner_client.get("/crm/companies/new/").content.decode())
    assert a and b and a != b


def test_the_new_api_key_page_is_replayed_with_the_same_key_and_its_next_form_has_a_fresh_key(owner_client):
    page = owner_client.get("/accounts/api-keys/").content.decode()
    key = KEY.search(page).group(1)
    first = owner_client.post("/accounts/api-keys/", {"name": "Shown once", "scope": "read", "idempotency_key": key})
    again = owner_client.post("/accounts/api-keys/", {"name": "Shown once", "scope": "read", "idempotency_key": key})
    secret = re.compile(r'<code class="secret">([^<]+)</code>')
    shown = secret.findall(first.content.decode())
    assert shown and shown == secret.findall(again.content.decode())
    next_key = KEY.search(first.content.decode()).group(1)
    assert next_key != key  # the spent key is not offered for the next key
    assert ApiKey.objects.filter(name="Shown once").count() == 1


def test_a_form_sent_again_with_other_values_is_refused(owner_client):
    key = KEY.search(owner_client.get("/crm/companies/new/").content.decode()).group(1)
    assert owner_client.post("/crm/companies/new/", {"name": "First Co", "idempotency_key": key}).status_code == 302
    other = owner_client.post("/crm/companies/new/", {"name": "Second Co", "idempotency_key": key})
    assert other.status_code == 422
    assert not Company.objects.filter(name="Second Co").exists()
