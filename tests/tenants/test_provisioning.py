"""Provisioning: clone from the template, all or nothing, slug rules, every door."""

import pytest
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.db import connection
from django_tenants.utils import schema_context, schema_exists

from billing.models import Subscription, SubscriptionStatus
from billing.services import subscriptions as billing_subscriptions
from tenants import services
from tenants.accounts.models import Role, User
from tenants.models import Domain, Tenant
from tests.security.helpers import verified_login

pytestmark = pytest.mark.django_db


def _provision(slug="newfirm", **kw):
    args = {"name": "New Firm", "slug": slug, "owner_email": f"boss@{slug}.test", "owner_password": "Sturdy-pass-123"}
    args.update(kw)
    return services.tenant_provision(**args)


def test_provision_creates_schema_domain_owner_and_trial():
    tenant = _provision()
    assert tenant.schema_name == "firm_newfirm"
    assert schema_exists("firm_newfirm")
    assert Domain.objects.get(tenant=tenant).domain == f"newfirm.{settings.CODEX_BASE_DOMAIN}"
    sub = Subscription.objects.get(tenant=tenant)
    assert sub.status == SubscriptionStatus.TRIALING and sub.trial_ends_at is not None
    with schema_context("firm_newfirm"):
        owner = User.objects.get()
        assert owner.email == "boss@newfirm.test" and owner.role == Role.OWNER
        assert owner.check_password("Sturdy-pass-123")
        assert owner.password.startswith("argon2")


def _tables(schema: str) -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = %s", [schema])
        return {row[0] for row in cursor.fetchall()}


def _migrations(schema: str) -> set[tuple[str, str]]:
    with connection.cursor() as cursor:
        cursor.execute(f'SELECT app, name FROM "{schema}".django_migrations')
        return set(cursor.fetchall())


def test_provision_clones_the_template_instead_of_migrating(monkeypatch):
    from django.db.migrations.executor import MigrationExecutor

    from tenants import cloning

    def no_migrations(*args, **kwargs):
        raise AssertionError("provisioning must not run migrations")

    monkeypatch.setattr(MigrationExecutor, "migrate", no_migrations)
    used = []
    original = cloning.clone_template
    monkeypatch.setattr(services, "clone_template", lambda name: used.append(original(name)) or used[-1])
    _provision("clonefirm")
    assert used == ["snapshot"]
    template = settings.TENANT_BASE_SCHEMA
    assert _tables("firm_clonefirm") == _tables(template)
    assert _migrations("firm_clonefirm") == _migrations(template) != set()


def test_clone_falls_back_to_the_clone_function_without_a_snapshot():
    from tenants import cloning
    from tenants.models import TemplateSnapshot

    TemplateSnapshot.objects.all().delete()
    cloning._snapshot_cache.clear()
    try:
        assert cloning.clone_template("firm_fallback") == "function"
        assert _tables("firm_fallback") == _tables(settings.TENANT_BASE_SCHEMA)
    finally:
        cloning._snapshot_cache.clear()


def test_new_firm_sequences_start_after_the_template_rows():
    tenant = _provision("seqfirm")
    with schema_context(tenant.schema_name):
        from django.contrib.auth.models import Permission
        from django.contrib.contenttypes.models import ContentType

        ct = ContentType.objects.create(app_label="zz", model="probe")
        Permission.objects.create(codename="probe", name="Probe", content_type=ct)  # no duplicate-key error
        assert ContentType.objects.filter(app_label="accounts").exists()


def test_failure_midway_leaves_no_schema_tenant_domain_or_user(monkeypatch):
    def boom(**kwargs):
        raise RuntimeError("billing is down")

    # billing's provisioning step (registered with tenants.registry) fails after the schema exists
    monkeypatch.setattr(billing_subscriptions, "subscription_start_trial", boom)
    with pytest.raises(RuntimeError):
        _provision("halfway")
    assert not schema_exists("firm_halfway")
    assert not Tenant.objects.filter(slug="halfway").exists()
    assert not Domain.objects.filter(domain__startswith="halfway.").exists()
    assert not Subscription.objects.filter(tenant__slug="halfway").exists()


@pytest.mark.parametrize(
    ("slug", "message"),
    [
        ("www", "reserved"),
        ("api", "reserved"),
        ("admin", "reserved"),
        ("public", "reserved"),
        ("template", "reserved"),
        ("static", "reserved"),
        ("-bad", "start and end"),
        ("bad-", "start and end"),
        ("Has_Underscore", "lower-case"),
        ("a" * 51, "1 to 50"),
        ("", "Choose an address"),
        ("dots.in.it", "lower-case"),
    ],
)
def test_bad_slugs_are_refused_with_a_clear_message(slug, message):
    with pytest.raises(ValidationError) as info:
        _provision(slug)
    assert message in " ".join(info.value.message_dict["slug"])
    assert not Tenant.objects.filter(slug=slug).exists()


def test_duplicate_slug_is_refused():
    with pytest.raises(ValidationError) as info:
        _provision("acme")
    assert "already taken" in info.value.message_dict["slug"][0]


def test_weak_password_and_bad_email_name_their_fields():
    with pytest.raises(ValidationError) as info:
        _provision("weakfirm", owner_email="not-an-email", owner_password="123")
    assert set(info.value.message_dict) >= {"owner_email", "owner_password"}
    assert not schema_exists("firm_weakfirm")


def test_create_tenant_command_provisions(capsys):
    call_command("create_tenant", name="Cmd Firm", slug="cmdfirm", owner_email="o@cmd.test")
    assert Tenant.objects.filter(slug="cmdfirm").exists()
    assert "cmdfirm.localhost" in capsys.readouterr().out


def test_create_tenant_command_reports_bad_slug():
    with pytest.raises(CommandError, match="reserved"):
        call_command("create_tenant", name="X", slug="www", owner_email="o@x.test")


def test_signup_page_creates_a_trial_firm_and_sends_to_its_login(public_client):
    response = public_client.post(
        "/signup/",
        {
            "name": "Sign Up Co",
            "slug": "signupco",
            "owner_email": "me@signup.test",
            "owner_password": "Sturdy-pass-123",
        },
    )
    assert response.status_code == 302
    assert response["Location"].startswith("http://signupco.localhost")
    assert "/accounts/welcome/" in response["Location"]  # signs the owner in (tests/tenants/test_signup_flow.py)
    tenant = Tenant.objects.get(slug="signupco")
    assert tenant.subscription.status == "trialing"
    assert tenant.subscription.plan.code == settings.CODEX_SIGNUP_PLAN  # no plan chosen: the default


def test_signup_page_shows_field_errors_and_writes_nothing(public_client):
    response = public_client.post(
        "/signup/", {"name": "X", "slug": "api", "owner_email": "me@x.test", "owner_password": "Sturdy-pass-123"}
    )
    assert response.status_code == 200
    assert "reserved" in response.content.decode()
    assert not Tenant.objects.filter(name="X").exists()


def test_operator_admin_adds_a_firm_through_the_service(public_client):
    operator = User.objects.create_superuser("op@codex.test", "Sturdy-pass-123")
    verified_login(public_client, operator)
    response = public_client.post(
        "/admin/tenants/tenant/add/",
        {"name": "Admin Firm", "slug": "adminfirm", "owner_email": "o@adminfirm.test", "plan_code": "starter"},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    tenant = Tenant.objects.get(slug="adminfirm")
    assert schema_exists(tenant.schema_name)
    with schema_context(tenant.schema_name):
        assert User.objects.get().role == Role.OWNER
