"""Dunning: reminders on schedule, past due, suspension after grace, paying reactivates at once."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core import mail
from django.test import override_settings

from billing import services, tasks
from billing.models import BillingProfile, DunningNotice, Invoice, Subscription, SubscriptionStatus
from tenants.models import AuditEvent, Tenant, TenantStatus

from .conftest import activate, plan, utc
from .factories import bare_subscription, bare_tenant

pytestmark = [pytest.mark.django_db]
DUE = utc(2026, 3, 8)  # invoice finalized 1 March, due 7 days later


@pytest.fixture
def overdue(in_public):
    tenant = bare_tenant(status=TenantStatus.ACTIVE)
    BillingProfile.objects.create(tenant=tenant, billing_email="billing@bare.test")
    sub = bare_subscription(plan=plan("starter"), tenant=tenant, start=utc(2026, 3, 1))
    services.invoice_run(now=utc(2026, 3, 1), subscription_ids=[sub.pk])
    invoice = Invoice.objects.get(subscription=sub)
    assert invoice.due_at == DUE
    return invoice


def _run(at, capture):
    with capture(execute=True):
        return services.dunning_run(now=at)


def _status(invoice):
    return Tenant.objects.get(pk=invoice.tenant_id).status


def test_nothing_happens_before_the_due_date(overdue, django_capture_on_commit_callbacks):
    result = _run(DUE - timedelta(seconds=1), django_capture_on_commit_callbacks)
    assert result.reminders == 0 and _status(overdue) == TenantStatus.ACTIVE and not mail.outbox


def test_due_moment_moves_firm_and_subscription_to_past_due(overdue, django_capture_on_commit_callbacks):
    _run(DUE, django_capture_on_commit_callbacks)
    assert _status(overdue) == TenantStatus.PAST_DUE
    assert Subscription.objects.get(pk=overdue.subscription_id).status == SubscriptionStatus.PAST_DUE
    assert AuditEvent.objects.filter(action="tenant.past_due", tenant_id=overdue.tenant_id).exists()


def test_reminders_follow_the_schedule_once_each(overdue, django_capture_on_commit_callbacks):
    for day in (1, 1, 2, 3, 3, 5, 7, 7):
        _run(DUE + timedelta(days=day), django_capture_on_commit_callbacks)
    assert [m.to for m in mail.outbox] == [["billing@bare.test"]] * 3
    assert "Reminder: invoice" in mail.outbox[0].subject and overdue.number in mail.outbox[0].body
    assert list(DunningNotice.objects.filter(invoice=overdue).values_list("offset_days", "sent")) == [
        (1, True),
        (3, True),
        (7, True),
    ]


def test_missed_runs_send_only_the_latest_reminder(overdue, django_capture_on_commit_callbacks):
    _run(DUE + timedelta(days=8), django_capture_on_commit_callbacks)
    assert len(mail.outbox) == 1 and "7 day(s) ago" in mail.outbox[0].body
    assert list(DunningNotice.objects.filter(invoice=overdue).values_list("offset_days", "sent")) == [
        (1, False),
        (3, False),
        (7, True),
    ]


def test_suspended_after_grace_with_one_notice_then_paying_reactivates(overdue, django_capture_on_commit_callbacks):
    _run(DUE + timedelta(days=13), django_capture_on_commit_callbacks)
    assert _status(overdue) == TenantStatus.PAST_DUE
    _run(DUE + timedelta(days=14), django_capture_on_commit_callbacks)
    _run(DUE + timedelta(days=15), django_capture_on_commit_callbacks)
    assert _status(overdue) == TenantStatus.SUSPENDED
    suspensions = [m for m in mail.outbox if "suspended" in m.subject]
    assert len(suspensions) == 1
    services.invoice_mark_paid(invoice=overdue, actor="op", now=DUE + timedelta(days=16))
    assert _status(overdue) == TenantStatus.ACTIVE
    assert Subscription.objects.get(pk=overdue.subscription_id).status == SubscriptionStatus.ACTIVE


def test_partial_payment_does_not_reactivate(overdue, django_capture_on_commit_callbacks):
    _run(DUE + timedelta(days=15), django_capture_on_commit_callbacks)
    services.payment_record(invoice=overdue, amount=Decimal("10.00"), provider="manual", actor="op")
    assert _status(overdue) == TenantStatus.SUSPENDED


@override_settings(CODEX_DUNNING_REMINDER_DAYS=[2], CODEX_DUNNING_GRACE_DAYS=3)
def test_timings_come_from_settings(overdue, django_capture_on_commit_callbacks):
    _run(DUE + timedelta(days=1), django_capture_on_commit_callbacks)
    assert not mail.outbox
    _run(DUE + timedelta(days=2), django_capture_on_commit_callbacks)
    assert len(mail.outbox) == 1
    _run(DUE + timedelta(days=3), django_capture_on_commit_callbacks)
    assert _status(overdue) == TenantStatus.SUSPENDED


def test_dunning_twice_in_a_row_is_idempotent(overdue, django_capture_on_commit_callbacks):
    _run(DUE + timedelta(days=3), django_capture_on_commit_callbacks)
    _run(DUE + timedelta(days=3), django_capture_on_commit_callbacks)
    assert len(mail.outbox) == 1 and DunningNotice.objects.filter(invoice=overdue).count() == 2


def test_reminder_goes_to_owners_without_a_billing_email(firm, django_capture_on_commit_callbacks):
    sub = activate(firm, code="starter", anchor=utc(2026, 3, 1))
    services.invoice_run(now=utc(2026, 3, 1), subscription_ids=[sub.pk])
    with django_capture_on_commit_callbacks(execute=True):
        services.dunning_run(now=DUE + timedelta(days=1))
    assert mail.outbox and mail.outbox[0].to == ["owner@acme.test"]


def test_tasks_are_registered_and_run(overdue, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        tasks.dunning_run.apply().get()
    assert isinstance(tasks.invoice_run.apply().get(), dict)
    assert tasks.usage_flush.apply().get() == 0


def test_beat_schedule_runs_every_billing_task():
    from django.conf import settings

    from codex.celery import app

    scheduled = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    expected = {"billing.usage_flush", "billing.invoice_run", "billing.dunning_run", "billing.usage_snapshot"}
    assert expected <= scheduled
    assert expected <= set(app.tasks)
