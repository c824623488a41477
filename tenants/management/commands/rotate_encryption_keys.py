"""``manage.py rotate_encryption_keys``: re-encrypt every secret at rest with the newest key.

Rotation: put a new key first in ``CODEX_ENCRYPTION_KEYS`` (``--new-key`` prints one), keep the
old ones after it, deploy, run this command, then remove the old keys.
"""

from cryptography.fernet import Fernet
from django.core.management.base import BaseCommand, CommandError

from tenants.encryption import RotationRefused, sealed_values_rotate


class Command(BaseCommand):
    help = "Re-encrypt every sealed secret (TOTP keys, stored API responses) with the first CODEX_ENCRYPTION_KEYS key."

    def add_arguments(self, parser):
        parser.add_argument("--new-key", action="store_true", help="Print a new key to put first, and stop.")
        parser.add_argument("--dry-run", action="store_true", help="Check that every value opens; write nothing.")

    def handle(self, *args, new_key=False, dry_run=False, **options):
        if new_key:
            self.stdout.write(Fernet.generate_key().decode())
            return
        try:
            report = sealed_values_rotate(dry_run=dry_run)
        except RotationRefused as exc:
            raise CommandError(f"Rotation refused, nothing was re-encrypted. {exc}") from exc
        verb = "would re-encrypt" if dry_run else "re-encrypted"
        for label, count in sorted(report.by_column.items()):
            self.stdout.write(f"{label}: {count}")
        self.stdout.write(
            self.style.SUCCESS(
                f"{verb} {report.rewrapped} value(s); {report.already_newest} already on the newest key."
            )
        )
