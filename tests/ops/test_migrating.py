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


def _collide_on_a_shared_function(name: str) -> str:
    """What PostgreSQL answers the second of two transactions replacing one function at once
    (as django-pgtrigger's trigger SQL replaces ``public._pgtrigger_should_ignore`` in every
    firm migrated in parallel): the message ``migrate_one`` retries on."""
    import threading
    import time

    import psycopg

    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    params.pop("prepare_threshold", None)
    params.pop("server_side_binding", None)
    body = f"CREATE OR REPLACE FUNCTION public.{name}() RETURNS int LANGUAGE sql AS 'SELECT 1'"
    with psycopg.connect(**params, autocommit=True) as setup:
        setup.execute(body)
    errors: list[str] = []
    try:
        with psycopg.connect(**params) as first, psycopg.connect(**params) as second:
            first.execute(body)  # holds the function's catalog row until it commits

            def replace_too():
                try:
                    second.execute(body)  # waits for the first, then finds the row changed
                    second.commit()
                except psycopg.Error as exc:
                    errors.append(str(exc))
                    second.rollback()

            racer = threading.Thread(target=replace_too)
            racer.start()
            waiting = (
                f"SELECT 1 FROM pg_stat_activity WHERE pid = {second.info.backend_pid} AND wait_event_type = 'Lock'"
            )
            with psycopg.connect(**params, autocommit=True) as watch:
                for _ in range(200):  # until the second waits on the first's row (at most 10 s)
                    if watch.execute(waiting).fetchone():
                        break
                    time.sleep(0.05)
            first.commit()
            racer.join(10)
    finally:
        with psycopg.connect(**params, autocommit=True) as cleanup:
            cleanup.execute(f"DROP FUNCTION IF EXISTS public.{name}()")
    return errors[0] if errors else ""


@pytest.mark.django_db
def test_two_firms_replacing_one_shared_function_at_once_collide_with_the_message_retried():
    message = _collide_on_a_shared_function("codex_test_shared_function")
    assert migrating.CONCURRENT_CATALOG_UPDATE in message


def test_a_firm_whose_migration_collided_on_a_shared_catalog_row_is_migrated_again(monkeypatch):
    from django.db import InternalError

    calls = []

    def collide_twice(*args, **kwargs):
        calls.append(kwargs["schema_name"])
        if len(calls) <= 2:
            raise InternalError("tuple concurrently updated")

    monkeypatch.setattr(migrating, "call_command", collide_twice)
    monkeypatch.setattr(migrating.time, "sleep", lambda seconds: None)
    monkeypatch.setattr(migrating, "set_schema_to_public", lambda: None)
    migrating.migrate_one("firm_a")
    assert calls == ["firm_a"] * 3


def test_another_internal_error_or_a_collision_that_persists_is_raised(monkeypatch):
    from django.db import InternalError

    calls = []

    def fail(message):
        def call(*args, **kwargs):
            calls.append(message)
            raise InternalError(message)

        return call

    monkeypatch.setattr(migrating.time, "sleep", lambda seconds: None)
    monkeypatch.setattr(migrating, "set_schema_to_public", lambda: None)
    monkeypatch.setattr(migrating, "call_command", fail("could not open relation"))
    with pytest.raises(InternalError, match="could not open relation"):
        migrating.migrate_one("firm_a")
    assert len(calls) == 1
    calls.clear()
    monkeypatch.setattr(migrating, "call_command", fail("tuple concurrently updated"))
    with pytest.raises(InternalError, match="tuple concurrently updated"):
        migrating.migrate_one("firm_a")
    assert len(calls) == migrating.CATALOG_RETRIES + 1
