"""Whole-database backups: a dump is written and complete, old ones are pruned, and the operators'
console shows the newest one's age with an alert when it is missing or too old."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command
from django_otp import DEVICE_ID_SESSION_KEY
from django_tenants.utils import schema_context

from tenants.accounts.models import SealedTOTPDevice, User
from tenants.db_backup import backup_status, backups_list, database_backup

pytestmark = pytest.mark.django_db


def _fake(directory, when: datetime) -> None:
    (directory / f"codex-{when:%Y%m%dT%H%M%SZ}.dump").write_bytes(b"old")


def test_a_backup_is_a_complete_custom_format_dump(tmp_path):
    backup = database_backup(directory=tmp_path)
    assert backup.path.exists() and backup.size > 1000
    assert backup.path.read_bytes()[:5] == b"PGDMP"  # pg_dump's custom format
    assert (tmp_path / (backup.path.name + ".sha256")).read_text().split()[1] == backup.path.name
    assert not list(tmp_path.glob("*.partial"))


def test_old_backups_are_pruned_but_the_newest_is_kept(tmp_path, settings):
    settings.CODEX_BACKUP_KEEP_DAYS = 7
    now = datetime.now(UTC).replace(microsecond=0)
    _fake(tmp_path, now - timedelta(days=30))
    _fake(tmp_path, now - timedelta(days=3))
    backup = database_backup(directory=tmp_path, now=now)
    kept = [b.taken_at for b in backups_list(directory=tmp_path)]
    assert kept == [backup.taken_at, now - timedelta(days=3)]


def test_status_says_when_the_last_backup_is_too_old(tmp_path, settings):
    settings.CODEX_BACKUP_MAX_AGE_HOURS = 26
    assert backup_status(directory=tmp_path).too_old  # none at all
    now = datetime.now(UTC).replace(microsecond=0)
    _fake(tmp_path, now - timedelta(hours=2))
    assert not backup_status(directory=tmp_path, now=now).too_old
    assert backup_status(directory=tmp_path, now=now + timedelta(hours=25)).too_old


def test_the_command_writes_a_backup(tmp_path, capsys):
    call_command("backup_database", "--directory", str(tmp_path))
    assert "bytes" in capsys.readouterr().out and len(backups_list(directory=tmp_path)) == 1


def test_the_console_alerts_when_no_recent_backup(public_client, tmp_path, settings):
    settings.CODEX_BACKUP_DIR = tmp_path
    with schema_context(settings.PUBLIC_SCHEMA_NAME):
        operator = User.objects.create_superuser("ops-backup@codex.test", None)
        device = SealedTOTPDevice.objects.create(user=operator, name="phone", confirmed=True)
        public_client.force_login(operator)
        session = public_client.session
        session[DEVICE_ID_SESSION_KEY] = device.persistent_id
        session.save()
    page = public_client.get("/admin/").content.decode()
    assert "No database backup found" in page
    _fake(tmp_path, datetime.now(UTC) - timedelta(hours=1))
    page = public_client.get("/admin/").content.decode()
    assert "Last backup" in page and "older than the allowed age" not in page


def test_restore_drill_restores_and_matches_every_table(tmp_path, firm):
    from tenants.db_backup import restore_drill

    backup = database_backup(directory=tmp_path)
    report = restore_drill(backup=backup)
    assert report.ok, report.mismatches
    assert report.tables > 50 and report.rows > 0  # public and every firm's tables were compared


def test_restore_drill_refuses_a_damaged_dump(tmp_path):
    from tenants.backup import ExportError
    from tenants.db_backup import restore_drill

    backup = database_backup(directory=tmp_path)
    data = bytearray(backup.path.read_bytes())
    data[-10] ^= 0xFF
    backup.path.write_bytes(bytes(data))
    with pytest.raises(ExportError, match="damaged"):
        restore_drill(backup=backup)


def test_restore_drill_reports_a_table_that_differs(tmp_path, firm):
    """The comparison can fail: a row written after the dump is reported."""
    from crm.models import Contact
    from tenants.db_backup import restore_drill

    backup = database_backup(directory=tmp_path)
    Contact.objects.create(first_name="After", last_name="Dump")
    report = restore_drill(backup=backup)
    assert any(m.startswith("firm_acme.crm_contact:") for m in report.mismatches)
