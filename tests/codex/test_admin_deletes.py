"""The operators' console never answers a delete with a 500.

Every model registered on the operator site is walked, with rows in a firm's schema that refer to
public rows (users, instruments, plans): where the console offers a delete (the delete view, the
bulk "delete selected" action, a model's own delete actions), it does what it says or refuses with
a reason; where it offers none, the delete URL says why.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from django.apps import apps
from django.conf import settings
from django.contrib.messages import get_messages
from django.test import RequestFactory
from django.urls import reverse
from django.utils import timezone
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_static.models import StaticDevice
from django_tenants.utils import schema_context

from billing import services as billing_services
from billing.models import (
    BillingProfile,
    DunningNotice,
    Invoice,
    Metric,
    Plan,
    UsageDaily,
    WebhookEvent,
)
from codex.admin import operator_site
from codex.status.models import ServiceCheck, State
from crm.models import Contact
from portfolios import services as portfolio_services
from portfolios.market.models import CorporateAction, FeedRun, FxRate, Instrument, Price, ProviderCall
from portfolios.models import Portfolio
from tenants.accounts import services as account_services
from tenants.accounts.models import SealedTOTPDevice, User
from tenants.models import ApiKey, AuditEvent, Domain, Tenant
from tenants.services import api_key_create
from tests.billing.conftest import activate, utc

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator(public_client):
    with schema_context(settings.PUBLIC_SCHEMA_NAME):
        user = User.objects.create_superuser("ops-walker@codex.test", None)
        device = SealedTOTPDevice.objects.create(user=user, name="walker", confirmed=True)
        public_client.force_login(user)
        session = public_client.session
        session[DEVICE_ID_SESSION_KEY] = device.persistent_id
        session.save()
    return user


@pytest.fixture
def world(firm, owner, advisor, advisor2, operator):
    """Rows in acme's schema referring to users and an instrument, and one row of each model the
    console registers (the newest of each is the one walked)."""
    instrument = Instrument.objects.create(symbol="WALK", exchange="XTST", name="Walk Corp", currency="USD")
    Price.objects.create(instrument=instrument, date=date(2026, 1, 2), close=Decimal("10"))
    FxRate.objects.create(base="EUR", quote="USD", date=date(2026, 1, 2), rate=Decimal("1.1"))
    run = FeedRun.objects.create(provider="ecb", kind="fx", status="ok")
    ProviderCall.objects.create(
        run=run, provider="ecb", url="https://www.ecb.europa.eu/stats/eurofxref/eurofxref-daily.xml",
        started_at=timezone.now(), status=200, latency_ms=120, rows=1,
    )  # fmt: skip
    CorporateAction.objects.create(
        instrument=instrument, kind="dividend", date=date(2026, 1, 2), value=Decimal("0.5"), source="alphavantage"
    )
    contact = Contact.objects.create(first_name="Walk", last_name="Client", owner=advisor)
    contact.shared_with.add(advisor2)
    portfolio = Portfolio.objects.create(name="Walk", client=contact, advisor=advisor, base_currency="USD")
    portfolio.shared_with.add(owner)
    portfolio_services.transaction_record(
        portfolio=portfolio, kind="deposit", trade_date=date(2026, 1, 2), amount=Decimal("1000"), currency="USD"
    )
    portfolio_services.transaction_record(
        portfolio=portfolio,
        kind="buy",
        trade_date=date(2026, 1, 2),
        instrument=instrument,
        quantity=Decimal("5"),
        price=Decimal("10"),
        currency="USD",
        created_by=advisor,
    )
    with schema_context(settings.PUBLIC_SCHEMA_NAME):
        victim = User.objects.create_user("ops-victim@codex.test", None, is_staff=True)
        SealedTOTPDevice.objects.create(user=victim, name="victim phone", confirmed=True)
        StaticDevice.objects.create(user=victim, name="victim codes", confirmed=True)
        Plan.objects.create(code="legacy-walk", name="Legacy", price_month=Decimal("1"), price_year=Decimal("10"))
        sub = activate(firm, code="pro", anchor=utc(2026, 3, 1))
        billing_services.invoice_run(now=utc(2026, 3, 1, 1), subscription_ids=[sub.pk])
        invoice = Invoice.objects.filter(subscription=sub).latest("pk")
        billing_services.invoice_mark_paid(invoice=invoice, actor="walker")
        DunningNotice.objects.create(invoice=invoice, offset_days=3)
        WebhookEvent.objects.create(provider="stripe", event_id="evt_walk", type="invoice.paid", payload={})
        BillingProfile.objects.update_or_create(tenant=firm, defaults={"legal_name": "Acme Wealth Partners LLC"})
        UsageDaily.objects.create(tenant=firm, day=date(2026, 1, 1), metric=Metric.API_CALLS, count=3)
        Domain.objects.create(tenant=firm, domain="walk.acme.example", is_primary=False)
        api_key_create(tenant=firm, name="walk", scope="read", created_by="walker")
        ServiceCheck.objects.create(checked_at=utc(2026, 3, 1), service="database", state=State.OK, latency_ms=2)
    return {"portfolio": portfolio, "contact": contact, "victim": victim, "instrument": instrument}


def registered_models():
    return [model for model in apps.get_models() if operator_site.is_registered(model)]


def _superuser_request(operator):
    request = RequestFactory().get("/admin/")
    request.user = operator
    return request


def _admin_url(model, view, *args):
    opts = model._meta
    return reverse(
        f"admin:{opts.app_label}_{opts.model_name}_{view}", args=args, urlconf=settings.PUBLIC_SCHEMA_URLCONF
    )


def _messages(response) -> str:
    return " ".join(str(m) for m in get_messages(response.wsgi_request))


def _exists(model, pk) -> bool:
    with schema_context(settings.PUBLIC_SCHEMA_NAME):
        return model.objects.filter(pk=pk).exists()


def test_the_walk_covers_the_console():
    names = {model._meta.label for model in registered_models()}
    assert {"accounts.User", "tenants.Tenant", "billing.Plan", "market.Instrument"} <= names


@pytest.mark.parametrize("model", registered_models(), ids=lambda m: m._meta.label)
def test_every_console_delete_does_what_it_says_or_refuses(model, world, public_client, operator, firm):
    model_admin = operator_site.get_model_admin(model)
    with schema_context(settings.PUBLIC_SCHEMA_NAME):
        obj = model.objects.exclude(pk=operator.pk).order_by("-pk").first() if model is User else None
        obj = obj or model.objects.order_by("-pk").first()
        assert obj is not None, f"the world has no {model._meta.label} row"
        pk = obj.pk
        can_delete = model_admin.has_delete_permission(_superuser_request(operator), obj)

    page = public_client.get(_admin_url(model, "delete", pk))
    if not can_delete:
        assert page.status_code in (302, 403), page.status_code
        if page.status_code == 302:
            assert _messages(page), "a refusal names its reason"
        refused = public_client.post(_admin_url(model, "delete", pk), {"post": "yes"})
        assert refused.status_code in (302, 403)
        assert _exists(model, pk), f"{model._meta.label} was deleted although the console refuses"
    else:
        assert page.status_code == 200
        # Django's own refusal: protected related rows, or related rows the console may not delete.
        protected = "<title>Cannot delete" in page.content.decode()
        done = public_client.post(_admin_url(model, "delete", pk), {"post": "yes"})
        if protected:
            assert done.status_code == 200 and _exists(model, pk)
        else:
            assert done.status_code == 302, done.status_code
            assert not _exists(model, pk), f"the console said it deleted {model._meta.label} {pk}"

    # Bulk actions that delete (Django's own and the model's): on the newest remaining row.
    with schema_context(settings.PUBLIC_SCHEMA_NAME):
        remaining = model.objects.exclude(pk=operator.pk) if model is User else model.objects.all()
        target = remaining.order_by("-pk").first()
        actions = model_admin.get_actions(_superuser_request(operator))
        target_deletable = target is not None and model_admin.has_delete_permission(
            _superuser_request(operator), target
        )
    if target is None:
        return
    for name in [name for name in actions if "delete" in name]:
        response = public_client.post(
            _admin_url(model, "changelist"), {"action": name, "_selected_action": [target.pk], "post": "yes"}
        )
        if name == "delete_selected" and not target_deletable:
            # Django's own refusal for a row its admin may not delete (e.g. a primary domain).
            assert response.status_code == 403 and _exists(model, target.pk)
        else:
            assert response.status_code in (200, 302), (name, response.status_code)
            if name == "delete_selected" and response.status_code == 302:
                assert not _exists(model, target.pk)


def test_operator_delete_is_refused_with_a_reason_and_the_firm_rows_stay(world, public_client, operator, firm):
    victim = world["victim"]
    response = public_client.get(_admin_url(User, "delete", victim.pk), follow=True)
    assert "Operators are not deleted" in response.content.decode()
    assert _exists(User, victim.pk)
    # The firm user with the same primary key as the operator is untouched, and so are their rows.
    assert Portfolio.objects.filter(pk=world["portfolio"].pk, shared_with__isnull=False).exists()


def test_operator_deactivation_ends_access(world, public_client, operator):
    victim = world["victim"]
    response = public_client.post(
        _admin_url(User, "changelist"), {"action": "deactivate", "_selected_action": [victim.pk]}, follow=True
    )
    assert "1 operator(s) deactivated" in response.content.decode()
    with schema_context(settings.PUBLIC_SCHEMA_NAME):
        victim.refresh_from_db()
        assert not victim.is_active
        assert AuditEvent.objects.filter(action="operator.deactivated", target=victim.email).exists()


def test_operator_cannot_deactivate_self_or_the_last_superuser(world, operator):
    from django.core.exceptions import ValidationError

    with schema_context(settings.PUBLIC_SCHEMA_NAME):
        with pytest.raises(ValidationError, match="yourself"):
            account_services.operator_deactivate(actor=operator, operator=operator)
        User.objects.filter(is_superuser=True).exclude(pk=operator.pk).update(is_active=False)
        other = User.objects.create_user("ops-second@codex.test", None, is_staff=True)
        with pytest.raises(ValidationError, match="at least one active superuser"):
            account_services.operator_deactivate(actor=other, operator=operator)
        operator.refresh_from_db()
        assert operator.is_active


def test_deleting_an_active_firm_is_refused_with_a_reason(world, public_client, firm):
    response = public_client.post(
        _admin_url(Tenant, "changelist"), {"action": "delete_exported", "_selected_action": [firm.pk]}, follow=True
    )
    assert "before deleting it" in response.content.decode()
    assert _exists(Tenant, firm.pk)
    assert Portfolio.objects.filter(pk=world["portfolio"].pk).exists()


def test_a_plan_in_use_is_protected_and_an_unused_one_is_deleted(world, public_client):
    with schema_context(settings.PUBLIC_SCHEMA_NAME):
        pro = Plan.objects.get(code="pro")
        legacy = Plan.objects.get(code="legacy-walk")
    page = public_client.post(_admin_url(Plan, "delete", pro.pk), {"post": "yes"})
    assert page.status_code == 200 and "<title>Cannot delete plan" in page.content.decode()
    assert "subscription" in page.content.decode()
    assert _exists(Plan, pro.pk)
    done = public_client.post(_admin_url(Plan, "delete", legacy.pk), {"post": "yes"})
    assert done.status_code == 302 and not _exists(Plan, legacy.pk)


def test_a_primary_domain_is_not_deleted(world, public_client, firm):
    with schema_context(settings.PUBLIC_SCHEMA_NAME):
        primary = Domain.objects.get(tenant=firm, is_primary=True)
    response = public_client.post(_admin_url(Domain, "delete", primary.pk), {"post": "yes"})
    assert response.status_code == 403
    assert _exists(Domain, primary.pk)


def test_api_key_rows_are_revoked_not_deleted(world, public_client):
    with schema_context(settings.PUBLIC_SCHEMA_NAME):
        key = ApiKey.objects.latest("pk")
    response = public_client.post(_admin_url(ApiKey, "delete", key.pk), {"post": "yes"})
    assert response.status_code == 403 and _exists(ApiKey, key.pk)
