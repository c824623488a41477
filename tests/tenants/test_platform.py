"""Health, readiness, Celery tenant context, deploy checks, the operator console."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.conf import settings
from django.db import connection

from codex import tasks
from tenants.models import AuditEvent, Tenant
from tests.security.helpers import verified_login

ROOT = Path(settings.BASE_DIR)
pytestmark = pytest.mark.django_db


def test_health_needs_no_database(client, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = client.get("/health", HTTP_HOST="localhost")
    assert response.json() == {"status": "ok"}


def test_ready_checks_database_and_migrations(client):
    response = client.get("/ready", HTTP_HOST="localhost")
    assert response.status_code == 200
    assert response.json()["checks"] == {"database": "ok", "redis": "ok", "migrations": "ok"}


def test_ready_is_503_when_the_database_is_unreachable(client, monkeypatch):
    from django.db import OperationalError

    from codex import health

    def down(*args, **kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr(health.connection, "cursor", down)
    response = client.get("/ready", HTTP_HOST="localhost")
    assert response.status_code == 503
    assert response.json()["checks"]["database"] == "unreachable"


def test_eager_task_runs_in_the_senders_firm(firm, other_firm):
    assert tasks.current_schema.delay().get() == "firm_acme"
    connection.set_tenant(other_firm)
    assert tasks.current_schema.delay().get() == "firm_globex"


def test_real_worker_runs_a_task_in_the_senders_firm(settings):
    """A real Celery worker on Redis (the tests' Redis) receives the firm's schema and runs the
    task in it.

    The firms were committed when the test database was set up, so the worker (another process,
    another connection) sees them; this test writes nothing.
    """
    url = settings.REDIS_URL
    test_db = connection.settings_dict["NAME"]
    env = {**os.environ, "REDIS_URL": url, "CELERY_TASK_ALWAYS_EAGER": "false"}
    env["DATABASE_URL"] = _database_url(test_db)
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "codex", "worker", "--pool", "solo", "--loglevel", "INFO"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        from celery import Celery

        from codex.celery import CodexCelery

        app = CodexCelery("codex-test", broker=url, backend=url)
        app.conf.task_always_eager = False
        tenant = Tenant.objects.get(slug="globex")
        connection.set_tenant(tenant)
        result = app.send_task("codex.current_schema", headers={"_schema_name": tenant.schema_name})
        outcome = result.get(timeout=60)
        assert outcome == "firm_globex", worker_output(worker)
        assert isinstance(app, Celery)
    finally:
        worker.terminate()
        worker.wait(timeout=30)
        connection.set_schema_to_public()


def worker_output(worker) -> str:
    worker.terminate()
    out, _ = worker.communicate(timeout=30)
    return out.decode(errors="replace")[-3000:]


def _database_url(name: str) -> str:
    """The URL this test run uses, pointed at database ``name``."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(settings.DATABASE_URL)
    return urlunsplit(parts._replace(path=f"/{name}"))


def test_production_refuses_to_start_without_a_secret_key():
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SECRET_KEY"}
    env["DJANGO_ENV"] = "production"
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import django, os; os.environ.setdefault('DJANGO_SETTINGS_MODULE','codex.settings'); django.setup()",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY" in result.stderr


def test_production_refuses_to_start_without_encryption_keys():
    env = {k: v for k, v in os.environ.items() if k != "CODEX_ENCRYPTION_KEYS"}
    env["DJANGO_ENV"] = "production"
    env["DJANGO_SECRET_KEY"] = "x" * 20 + "-prod-secret-for-the-deploy-check-0123456789"
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import django, os; os.environ.setdefault('DJANGO_SETTINGS_MODULE','codex.settings'); django.setup()",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "CODEX_ENCRYPTION_KEYS must be set in production" in result.stderr


def test_check_deploy_passes_in_production():
    env = {
        **os.environ,
        "DJANGO_ENV": "production",
        "DJANGO_SECRET_KEY": "x" * 20 + "-prod-secret-for-the-deploy-check-0123456789",
        "CODEX_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
    }
    env["DATABASE_URL"] = _database_url(connection.settings_dict["NAME"])
    env["REDIS_URL"] = "redis://127.0.0.1:6379/14"
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_operator_console_lists_firms_with_user_counts(public_client):
    from tenants.accounts.models import User

    operator = User.objects.create_superuser("ops@codex.test", "Sturdy-pass-123")
    verified_login(public_client, operator)
    page = public_client.get("/admin/tenants/tenant/").content.decode()
    assert "Acme Wealth Partners" in page and "Globex Family Office" in page
    assert "field-users" in page
    index = public_client.get("/admin/").content.decode()
    assert "Firms" in index
    assert "Portfolios" not in index and "CRM" not in index


def test_operator_suspends_a_firm_from_the_console(public_client):
    from tenants.accounts.models import User

    operator = User.objects.create_superuser("ops2@codex.test", "Sturdy-pass-123")
    verified_login(public_client, operator)
    acme = Tenant.objects.get(slug="acme")
    chosen = {"action": "suspend", "_selected_action": [acme.pk]}
    # first a confirmation page naming the firm and asking for the reason; nothing changes yet
    confirm = public_client.post("/admin/tenants/tenant/", chosen)
    assert confirm.status_code == 200
    assert "Suspend 1 firm?" in confirm.content.decode() and "Acme" in confirm.content.decode()
    no_reason = public_client.post("/admin/tenants/tenant/", {**chosen, "confirmed": "yes", "reason": " "})
    assert no_reason.status_code == 200 and "Say why" in no_reason.content.decode()
    acme.refresh_from_db()
    assert acme.status != "suspended"
    response = public_client.post(
        "/admin/tenants/tenant/", {**chosen, "confirmed": "yes", "reason": "Invoice 2026-0042 unpaid since 1 Nov"}
    )
    assert response.status_code == 302
    acme.refresh_from_db()
    assert acme.status == "suspended" and acme.suspension_reason == "Invoice 2026-0042 unpaid since 1 Nov"
    event = AuditEvent.objects.get(action="tenant.suspended", tenant_slug="acme", actor="ops2@codex.test")
    assert event.details["reason"] == "Invoice 2026-0042 unpaid since 1 Nov"


def test_audit_log_is_read_only_in_the_console(public_client):
    from tenants.accounts.models import User

    operator = User.objects.create_superuser("ops3@codex.test", "Sturdy-pass-123")
    verified_login(public_client, operator)
    event = AuditEvent.objects.create(action="x.test", actor="a")
    assert public_client.get("/admin/tenants/auditevent/").status_code == 200
    assert public_client.get("/admin/tenants/auditevent/add/").status_code == 403
    assert public_client.post(f"/admin/tenants/auditevent/{event.pk}/delete/").status_code == 403
