"""Periodic jobs: every task is acks_late with retries and backoff; beat fans per-firm work out."""

from __future__ import annotations

import pytest
from django.conf import settings

from codex.celery import app
from tenants.models import Tenant
from tenants.tasks import for_each_firm


def _our_tasks():
    """Every task registered with the app except Celery's built-ins (``celery.*``): a new app's
    tasks are covered without listing its package here."""
    app.loader.import_default_modules()
    # Celery's own tasks, and test doubles that test modules register (``tests.ops.fails``: under
    # pytest-xdist a worker may have imported them before this test runs), are not ours.
    return {name: task for name, task in app.tasks.items() if not name.startswith(("celery.", "tests."))}


def test_the_task_list_covers_every_app_with_tasks():
    names = set(_our_tasks())
    # one task of each app that has a tasks module, whatever its name's form
    for name in ["portal.tasks.report_run", "webhooks.deliver", "codex.outbox.relay", "codex.for_each_firm"]:
        assert name in names, name
    assert not {name for name in app.tasks if name.startswith("celery.")} & names


def test_every_task_of_ours_is_acks_late_and_retries_with_backoff():
    gaps = []
    for name, task in _our_tasks().items():
        if name == "codex.current_schema":  # a diagnostic probe, no effect to retry
            continue
        if not task.acks_late:
            gaps.append(f"{name}: not acks_late")
        if not getattr(task, "autoretry_for", ()):
            gaps.append(f"{name}: no autoretry_for")
        if not getattr(task, "retry_backoff", False):
            gaps.append(f"{name}: no retry_backoff")
    assert not gaps, gaps
    assert settings.CELERY_TASK_REJECT_ON_WORKER_LOST and settings.CELERY_WORKER_PREFETCH_MULTIPLIER == 1


def test_every_beat_entry_names_a_registered_task():
    tasks = _our_tasks()
    for name, entry in settings.CELERY_BEAT_SCHEDULE.items():
        assert entry["task"] in tasks, name
        if entry["task"] == "codex.for_each_firm":
            assert entry["kwargs"]["task"] in tasks, name


def test_valuations_reach_today_on_the_hour_so_at_midnight_itself():
    """The extension runs at minute 0 of every hour: at 00:00 UTC, whenever beat started (an
    interval counted from beat's start left up to an hour after midnight in which every portfolio
    page found today missing from the store and replayed its ledger)."""
    from celery.schedules import crontab

    schedule = settings.CELERY_BEAT_SCHEDULE["valuations-extend"]["schedule"]
    assert isinstance(schedule, crontab)
    assert schedule.minute == {0} and schedule.hour == set(range(24))
    assert schedule.day_of_week == set(range(7)) and schedule.day_of_month == set(range(1, 32))


def test_fan_out_sends_one_task_per_open_firm_in_its_schema(db, other_firm, monkeypatch):
    from tenants.services import tenant_suspend

    tenant_suspend(tenant=other_firm, actor="test", reason="test")
    sent = []
    monkeypatch.setattr(app, "send_task", lambda name, kwargs=None, headers=None, **kw: sent.append((name, headers)))
    count = for_each_firm.apply(kwargs={"task": "codex.current_schema"}).get()
    open_firms = Tenant.objects.filter(status__in=["trialing", "active", "past_due"]).order_by("pk")
    assert count == open_firms.count() == len(sent)
    assert [h["_schema_name"] for _, h in sent] == [t.schema_name for t in open_firms]
    assert "firm_globex" not in {h["_schema_name"] for _, h in sent}


def test_fan_out_refuses_an_unknown_task(db):
    with pytest.raises(KeyError):
        for_each_firm.apply(kwargs={"task": "no.such.task"}).get()
