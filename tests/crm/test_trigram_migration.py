"""Migrations 0011 (expand) and 0012 (contract) move a firm made before them from the hand-written
trigram functions (0008-0010) to pg_trgm: a schema is migrated to 0010, given rows the old way,
then migrated on; its rows are found by the new search and nothing of the old machinery is left."""

from __future__ import annotations

from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from crm.selectors import crm_search

SCHEMA = "firm_before_trgm"


def _fetch(sql: str, params=None):
    with connection.cursor() as cursor:
        cursor.execute(sql, params or [])
        return cursor.fetchall()


def _migrate(target: str) -> None:
    executor = MigrationExecutor(connection)
    executor.migrate([("crm", target)])


def _migrate_to_latest(*apps: str) -> None:
    """``apps`` to their latest migrations, with every migration those depend on."""
    executor = MigrationExecutor(connection)
    executor.migrate([node for node in executor.loader.graph.leaf_nodes() if node[0] in apps])


def test_a_firm_made_before_pg_trgm_is_moved_over(db):
    from tenants.accounts.models import Role, User

    with connection.cursor() as cursor:
        cursor.execute(f"CREATE SCHEMA {SCHEMA}")
    connection.set_schema(SCHEMA)
    try:
        _migrate("0010_drop_name_trigram_indexes")
        # The old state: stored trigram arrays, the vocabulary and its triggers, the SQL functions.
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO crm_contact (first_name, last_name, email, phone, other_emails, other_phones,"
                " job_title, lifecycle, tags, source, notes, created_at, updated_at) VALUES"
                " ('Zoë', 'Ångström', 'zoe@example.com', '', '{}', '{}', '', 'client', '{}', '', '', now(), now()),"
                " ('John', 'Smith', 'js@example.com', '', '{}', '{}', '', 'lead', '{}', '', '', now(), now())"
            )
            # The test's transaction stands for the commit a real firm had made: run the deferred
            # foreign-key checks now, as a commit would (ALTER TABLE refuses pending ones).
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        assert _fetch("SELECT name_trigrams <> '{}' FROM crm_contact") == [(True,), (True,)]
        assert {"zoe", "angstrom", "john", "smith"} <= {row[0] for row in _fetch("SELECT word FROM crm_nameword")}

        _migrate("0011_pg_trgm_search")  # expand: new columns filled for existing rows, old ones kept
        assert sorted(_fetch("SELECT search_name FROM crm_contact")) == [("john smith",), ("zoe angstrom",)]
        assert _fetch("SELECT count(*) FROM crm_contact WHERE cardinality(name_trigrams) > 0") == [(2,)]

        _migrate("0012_drop_hand_written_trigrams")  # contract
        columns = {row[0] for row in _fetch(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = %s AND table_name = 'crm_contact'",
            [SCHEMA],
        )}  # fmt: skip
        assert {"search_name", "search_text"} <= columns and not {"name_trigrams", "name_words"} & columns
        assert _fetch("SELECT to_regclass('crm_nameword')") == [(None,)]
        assert _fetch(
            "SELECT count(*) FROM pg_proc WHERE proname LIKE 'crm\\_%%' AND pronamespace = %s::regnamespace", [SCHEMA]
        ) == [(0,)]
        assert _fetch(
            "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'crm_contact'::regclass AND NOT tgisinternal"
        ) == [(0,)]
        indexes = dict(_fetch("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = %s", [SCHEMA]))
        assert "gin_trgm_ops" in indexes["crm_contact_name_trgm"] and "gin_trgm_ops" in indexes["crm_contact_text_trgm"]

        # The firm's old rows are found by the new search, typos and accents included; new writes too
        # (crm and the firm's users brought to their latest migrations first, with all they depend
        # on: what the search and a new user read and write. The other apps' migrations are not
        # run here: rendering their states was four fifths of this test's time, and every test
        # database runs them all, in the order migrate_all does, when it is made).
        _migrate_to_latest("crm", "accounts")
        owner = User.objects.create_user("owner@before.test", "Sturdy-pass-123", role=Role.OWNER)
        assert [h.title for h in crm_search(owner, "zoe angstorm", 10)] == ["Zoë Ångström"]
        assert [h.title for h in crm_search(owner, "Jonh Smiht", 10)] == ["John Smith"]
        with connection.cursor() as cursor:
            cursor.execute("UPDATE crm_contact SET last_name = 'Smythe' WHERE first_name = 'John'")
        assert _fetch("SELECT search_name FROM crm_contact WHERE first_name = 'John'") == [("john smythe",)]
    finally:
        connection.set_schema_to_public()
