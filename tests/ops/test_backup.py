"""Firm export and restore: a seeded firm round-trips table by table; closing exports, deleting needs it.

pg_dump runs in its own process and only sees committed rows, so the source firm is provisioned
and seeded once per module outside the test transactions (and dropped at the end); everything the
tests themselves write (imports, closures, deletions) is rolled back.
"""

from __future__ import annotations

import io
import json
import tarfile

import pytest
from django.conf import settings
from django.contrib.auth.models import Group, Permission
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.db import connection
from django_tenants.utils import schema_context
from pghistory.models import Event as HistoryEvent

from billing.models import Subscription
from tenants import services
from tenants.accounts.models import Role, User
from tenants.backup import ImportError_, firm_public_rows, tenant_export_verified, tenant_import
from tenants.models import AuditEvent, Domain, Tenant

SOURCE = "exportsrc"
# Tabs, newlines, backslashes, quotes, non-ASCII, and the schema's own name: COPY escaping and the
# schema rename must leave data alone.
TRICKY = "Zoë\tTab \\ back\nline 'q' \"dq\" firm_exportsrc.accounts_user"


def _drop_firm(slug: str) -> None:
    with schema_context(settings.PUBLIC_SCHEMA_NAME):
        tenant = Tenant.objects.filter(slug=slug).first()
        if tenant is not None:
            rows = firm_public_rows(tenant=tenant)
            for model in reversed(list(rows)):
                # the change history's events are append-only and outlive the firm (tenant_delete)
                if model not in (Tenant, AuditEvent) and not issubclass(model, HistoryEvent):
                    model.objects.filter(pk__in=[o.pk for o in rows[model]]).delete()
            AuditEvent.objects.filter(tenant=tenant).delete()
            tenant.delete()
        with connection.cursor() as cursor:
            cursor.execute(f"DROP SCHEMA IF EXISTS {services.schema_name_for(slug)} CASCADE")


def schema_snapshot(schema: str) -> dict[str, list]:
    """Every row of every table (sorted) and every sequence position of a schema."""
    out: dict[str, list] = {}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s AND table_type = 'BASE TABLE'",
            [schema],
        )
        for (table,) in cursor.fetchall():
            cursor.execute(f'SELECT t::text FROM "{schema}"."{table}" t ORDER BY t::text')
            out[table] = [r[0] for r in cursor.fetchall()]
        cursor.execute(
            "SELECT sequencename, last_value FROM pg_sequences WHERE schemaname = %s ORDER BY sequencename", [schema]
        )
        out["<sequences>"] = cursor.fetchall()
    return out


@pytest.fixture(scope="module")
def source_export(django_db_setup, django_db_blocker, tmp_path_factory):
    """A committed, seeded firm and its export archive."""
    path = tmp_path_factory.mktemp("exports") / f"{SOURCE}.tar.gz"
    with django_db_blocker.unblock():
        _drop_firm(SOURCE)
        tenant = services.tenant_provision(
            name="Export Source LLP", slug=SOURCE, owner_email="owner@exportsrc.test", plan_code="pro"
        )
        with schema_context(tenant.schema_name):
            group = Group.objects.create(name="Partners")
            group.permissions.set(Permission.objects.filter(codename__startswith="view_")[:5])
            for i in range(25):
                user = User.objects.create_user(
                    f"user{i}@exportsrc.test", None, role=Role.ADVISOR, first_name=TRICKY, last_name=str(i)
                )
                user.groups.add(group)
        call_command("export_tenant", SOURCE, output=str(path), verbosity=0)
        with schema_context(settings.PUBLIC_SCHEMA_NAME):
            snapshot = schema_snapshot(tenant.schema_name)
    yield tenant, path, snapshot
    with django_db_blocker.unblock():
        _drop_firm(SOURCE)


def test_round_trip_restores_every_table_row_by_row(db, source_export):
    source, path, before = source_export
    call_command("import_tenant", str(path), slug="exportcopy", verbosity=0)

    copy = Tenant.objects.get(slug="exportcopy")
    assert copy.schema_name == "firm_exportcopy"
    assert copy.name == source.name
    after = schema_snapshot("firm_exportcopy")
    assert set(after) == set(before)
    assert len(before["accounts_user"]) == 26
    for table in before:
        assert after[table] == before[table], table
    with schema_context(copy.schema_name):
        assert User.objects.filter(first_name=TRICKY).count() == 25
        assert User.objects.get(email="user3@exportsrc.test").groups.get().permissions.count() == 5
    # Public rows: a new primary domain, the subscription copied onto the new firm.
    assert list(Domain.objects.filter(tenant=copy).values_list("domain", flat=True)) == ["exportcopy.localhost"]
    old_sub, new_sub = Subscription.objects.get(tenant=source), Subscription.objects.get(tenant=copy)
    fields = [f.attname for f in Subscription._meta.concrete_fields if f.attname not in ("id", "tenant_id")]
    assert [getattr(new_sub, f) for f in fields] == [getattr(old_sub, f) for f in fields]
    assert AuditEvent.objects.filter(tenant=copy, action="tenant.imported").exists()


def test_restored_firm_serves_its_own_users(db, source_export):
    _source, path, _before = source_export
    tenant_import(path=path, slug="exportcopy2")
    from tests.conftest import FirmClient

    client = FirmClient(Tenant.objects.get(slug="exportcopy2"))
    with schema_context("firm_exportcopy2"):
        user = User.objects.get(email="user7@exportsrc.test")
    client.force_login(user)
    response = client.get("/api/v1/me/")
    assert response.status_code == 200
    assert response.json()["email"] == "user7@exportsrc.test"


def test_import_to_a_taken_slug_writes_nothing(db, source_export):
    _source, path, _before = source_export
    tenants_before = Tenant.objects.count()
    with pytest.raises(ValidationError) as exc:
        tenant_import(path=path, slug="acme")
    assert "slug" in exc.value.message_dict
    assert Tenant.objects.count() == tenants_before


def test_damaged_archive_is_refused_and_nothing_is_written(db, source_export, tmp_path):
    _source, path, _before = source_export
    with tarfile.open(path) as tar:
        members = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}
    members["schema.sql"] = members["schema.sql"].replace(b"CREATE TABLE", b"CREATE TABLE ", 1)
    damaged = tmp_path / "damaged.tar.gz"
    with tarfile.open(damaged, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    with pytest.raises(ImportError_, match="checksum"):
        tenant_import(path=damaged, slug="damaged")
    assert not Tenant.objects.filter(slug="damaged").exists()
    manifest = json.loads(members["manifest.json"])
    assert manifest["slug"] == SOURCE and manifest["tables"]["accounts_user"] == 26


def test_failed_restore_leaves_no_schema_and_no_rows(db, source_export, tmp_path):
    """A dump that breaks halfway (here: a statement PostgreSQL rejects) rolls everything back."""
    _source, path, _before = source_export
    with tarfile.open(path) as tar:
        members = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}
    members["schema.sql"] += b"\nSELECT 1/0;\n"
    manifest = json.loads(members["manifest.json"])
    import hashlib

    manifest["sha256"]["schema.sql"] = hashlib.sha256(members["schema.sql"]).hexdigest()
    members["manifest.json"] = json.dumps(manifest).encode()
    broken = tmp_path / "broken.tar.gz"
    with tarfile.open(broken, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    from django.db import DataError, transaction

    with pytest.raises(DataError), transaction.atomic():
        tenant_import(path=broken, slug="halfway")
    assert not Tenant.objects.filter(slug="halfway").exists()
    assert not Domain.objects.filter(domain="halfway.localhost").exists()
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM information_schema.schemata WHERE schema_name = 'firm_halfway'")
        assert cursor.fetchone() is None


def test_closing_exports_and_deleting_requires_that_export(db, source_export, tmp_path):
    source, _path, _before = source_export
    tenant, result = services.tenant_close_with_export(
        tenant=source, actor="ops@test", reason="contract ended", output=tmp_path / "final.tar.gz"
    )
    assert tenant.status == "closed"
    assert result.path.is_file() and result.tables["accounts_user"] == 26
    assert tenant_export_verified(tenant=tenant, since=tenant.status_changed_at)["sha256"] == result.sha256

    export = services.tenant_delete(tenant=tenant, actor="ops@test")

    assert export["path"] == str(result.path.resolve())
    assert not Tenant.objects.filter(slug=SOURCE).exists()
    assert not Subscription.objects.filter(tenant_id=source.pk).exists()
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM information_schema.schemata WHERE schema_name = %s", [source.schema_name])
        assert cursor.fetchone() is None
    deleted = AuditEvent.objects.get(action="tenant.deleted", target=SOURCE)
    assert deleted.details["export"]["sha256"] == result.sha256


def test_deleting_an_open_firm_is_refused(db, other_firm):
    with pytest.raises(services.InvalidTransition):
        services.tenant_delete(tenant=other_firm)
    assert Tenant.objects.filter(pk=other_firm.pk).exists()


def test_deleting_without_an_export_since_closing_is_refused(db, other_firm):
    closed = services.tenant_close(tenant=other_firm, actor="ops@test")
    with pytest.raises(services.ExportRequired):
        services.tenant_delete(tenant=closed)
    assert Tenant.objects.filter(pk=other_firm.pk).exists()


def test_deleting_is_refused_when_the_export_file_was_altered(db, source_export, tmp_path):
    source, _path, _before = source_export
    tenant, result = services.tenant_close_with_export(tenant=source, output=tmp_path / "x.tar.gz")
    result.path.write_bytes(result.path.read_bytes() + b"tampered")
    with pytest.raises(services.ExportRequired):
        services.tenant_delete(tenant=tenant)
    assert Tenant.objects.filter(pk=source.pk).exists()


def _admin_request(user_is_superuser=True):
    from django.contrib.messages.storage.fallback import FallbackStorage
    from django.test import RequestFactory

    request = RequestFactory().post("/admin/tenants/tenant/")
    request.user = type("Op", (), {"email": "op@codex.test", "is_superuser": user_is_superuser})()
    request.session = {}
    request._messages = FallbackStorage(request)
    return request


def _messages(request) -> list[str]:
    return [str(m) for m in request._messages]


def test_admin_close_exports_then_delete_needs_that_export(db, source_export, settings, tmp_path):
    from codex.admin import operator_site
    from tenants.admin import TenantAdmin

    settings.CODEX_EXPORT_DIR = tmp_path
    source, _path, _before = source_export
    model_admin = TenantAdmin(Tenant, operator_site)

    request = _admin_request()
    model_admin.close(request, Tenant.objects.filter(pk=source.pk))
    assert Tenant.objects.get(pk=source.pk).status == "closed"
    assert "export" in _messages(request)[0] and list(tmp_path.glob(f"{SOURCE}-*.tar.gz"))

    request = _admin_request()
    model_admin.delete_exported(request, Tenant.objects.filter(pk=source.pk))
    assert not Tenant.objects.filter(pk=source.pk).exists(), _messages(request)


def test_admin_delete_refuses_a_firm_without_export(db, other_firm):
    from codex.admin import operator_site
    from tenants.admin import TenantAdmin

    services.tenant_close(tenant=other_firm)
    request = _admin_request()
    TenantAdmin(Tenant, operator_site).delete_exported(request, Tenant.objects.filter(pk=other_firm.pk))
    assert Tenant.objects.filter(pk=other_firm.pk).exists()
    assert "export it first" in _messages(request)[0]


def test_admin_delete_is_for_superusers_only(db, other_firm):
    from codex.admin import operator_site
    from tenants.admin import TenantAdmin

    request = _admin_request(user_is_superuser=False)
    TenantAdmin(Tenant, operator_site).delete_exported(request, Tenant.objects.filter(pk=other_firm.pk))
    assert Tenant.objects.filter(pk=other_firm.pk).exists()
    assert "superusers" in _messages(request)[0]
