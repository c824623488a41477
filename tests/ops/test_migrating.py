"""Migrations at scale: only firms behind the template are migrated; a failure names its firm.

The full drill (500 firms, an additive migration, a failure in one firm) is
bench/drill_migrations.py; these tests pin the decisions it relies on.
"""

from __future__ import annotations

import io

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection

from tenants import migrating


def test_firms_cloned_from_the_template_are_current(db):
    assert set(migrating.firm_schemas()) >= {"firm_acme", "firm_globex"}
    assert migrating.schemas_behind() == []


def test_a_firm_missing_a_migration_record_is_behind(db):
    with connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM firm_globex.django_migrations WHERE id = (SELECT max(id) FROM firm_globex.django_migrations)"
        )
    assert migrating.schemas_behind() == ["firm_globex"]


def test_a_new_template_migration_puts_every_firm_behind(db):
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {settings.TENANT_BASE_SCHEMA}.django_migrations (app, name, applied) "
            "VALUES ('drill', '0001_new', now())"
        )
    assert set(migrating.schemas_behind()) == set(migrating.firm_schemas())


def test_no_op_migrate_all_migrates_no_firm(db):
    out = io.StringIO()
    call_command("migrate_all", executor="standard", verbosity=1, stdout=out)
    assert "behind the template: 0" in out.getvalue()


def test_the_first_failure_stops_the_run_and_names_its_firm(monkeypatch):
    done = []

    def fake_migrate(schema, verbosity=0):
        if schema == "firm_b":
            raise RuntimeError("column already exists")
        done.append(schema)

    monkeypatch.setattr(migrating, "migrate_one", fake_migrate)
    with pytest.raises(migrating.FirmMigrationFailed) as exc:
        migrating.migrate_sequential(["firm_a", "firm_b", "firm_c", "firm_d"])
    assert exc.value.schema == "firm_b"
    assert (exc.value.migrated, exc.value.not_attempted) == (1, 2)
    assert "firm_b" in str(exc.value) and "column already exists" in str(exc.value)
    assert done == ["firm_a"]


def test_a_child_reports_its_failed_firm_on_a_line_of_its_own(monkeypatch, tmp_path):
    def fake_migrate(schema, verbosity=0):
        raise RuntimeError("boom")

    monkeypatch.setattr(migrating, "migrate_one", fake_migrate)
    firms = tmp_path / "firms.json"
    firms.write_text('["firm_x"]')
    out = io.StringIO()
    out.write("  Applying drillapp.0002_flag...")  # what django-tenants leaves unterminated
    assert migrating.run_child(firms, tmp_path / "stop", 0, out) == 1
    (line,) = [x for x in out.getvalue().splitlines() if x.startswith(migrating.FAILED_PREFIX)]
    assert '"schema": "firm_x"' in line


def test_a_child_stops_before_its_next_firm_when_told(monkeypatch, tmp_path):
    monkeypatch.setattr(migrating, "migrate_one", lambda schema, verbosity=0: None)
    stop = tmp_path / "stop"
    stop.touch()
    assert migrating.migrate_sequential(["firm_a", "firm_b"], stop_file=stop) == []


def test_parallel_children_migrate_their_share_and_report_it(db, monkeypatch):
    """The real child processes (manage.py migrate_all --child-firms) against the test database."""
    from .helpers import database_url_for_subprocesses

    monkeypatch.setenv("DATABASE_URL", database_url_for_subprocesses())
    monkeypatch.delenv("DATABASE_TEST_NAME", raising=False)
    done = migrating.migrate_parallel(["firm_acme", "firm_globex"], parallel=2, verbosity=1)
    assert sorted(done) == ["firm_acme", "firm_globex"]
