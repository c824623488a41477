"""Secrets the app reads back are sealed at rest (codex.crypto): envelope encryption with keys from
``CODEX_ENCRYPTION_KEYS``, rotation by ``manage.py rotate_encryption_keys``, and a clear refusal
for a value no key opens (tampered, or a key removed too soon)."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from django.apps import apps
from django.core.exceptions import ImproperlyConfigured
from django.core.management import CommandError, call_command
from django.db import connection
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_tenants.utils import schema_context

from codex import crypto
from tenants.accounts import twofactor
from tenants.accounts.models import SealedTOTPDevice

pytestmark = pytest.mark.django_db


@pytest.fixture
def keys(settings):
    """Two fresh master keys; the first encrypts."""
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.CODEX_ENCRYPTION_KEYS = [old]
    return old, new


def test_seal_round_trips_and_each_value_has_its_own_data_key(keys):
    a, b = crypto.seal("secret"), crypto.seal("secret")
    assert a != b and "secret" not in a
    assert crypto.unseal(a) == crypto.unseal(b) == "secret"


def test_a_tampered_value_is_refused_not_decrypted_to_garbage(keys):
    sealed = crypto.seal("0123456789abcdef")
    prefix, wrapped, ciphertext = sealed.split("$")
    flipped = ciphertext[:-6] + ("A" if ciphertext[-6] != "A" else "B") + ciphertext[-5:]
    with pytest.raises(crypto.DecryptionError, match="tampered"):
        crypto.unseal(f"{prefix}${wrapped}${flipped}")
    with pytest.raises(crypto.DecryptionError):
        crypto.unseal("not sealed at all")


def test_a_value_sealed_by_a_removed_key_is_refused(keys, settings):
    old, new = keys
    sealed = crypto.seal("x")
    settings.CODEX_ENCRYPTION_KEYS = [new]
    with pytest.raises(crypto.DecryptionError, match="CODEX_ENCRYPTION_KEYS"):
        crypto.unseal(sealed)


def test_malformed_keys_fail_naming_the_variable():
    with pytest.raises(ImproperlyConfigured, match="CODEX_ENCRYPTION_KEYS"):
        crypto.master_keys_parse("not-a-key")
    with pytest.raises(ImproperlyConfigured, match="CODEX_ENCRYPTION_KEYS"):
        crypto.master_keys_parse(" , ")


def test_totp_key_is_sealed_and_still_verifies(firm, owner, keys):
    device = twofactor.totp_enrolment_start(user=owner)
    stored = SealedTOTPDevice.objects.values_list("sealed_key", flat=True).get(pk=device.pk)
    assert crypto.is_sealed(stored) and device.key not in stored
    code = totp(device.bin_key, step=device.step, digits=device.digits)
    twofactor.totp_enrolment_confirm(user=owner, device=device, token=f"{code:06d}")
    assert SealedTOTPDevice.objects.get(pk=device.pk).confirmed
    assert "otpauth://totp/" in device.config_url and "secret=" in device.config_url


def test_rotation_rewraps_every_sealed_value_in_every_schema(firm, owner, keys, settings):
    old, new = keys
    mine = twofactor.totp_enrolment_start(user=owner)
    with schema_context(settings.PUBLIC_SCHEMA_NAME):
        from tenants.accounts.models import User

        operator = User.objects.create_user("ops-rotate@codex.test", None, is_staff=True)
        theirs = SealedTOTPDevice.objects.create(user=operator, name="phone")
        their_key = theirs.key
    my_key = mine.key
    settings.CODEX_ENCRYPTION_KEYS = [new, old]
    call_command("rotate_encryption_keys")
    settings.CODEX_ENCRYPTION_KEYS = [new]  # the old key is gone: everything still opens
    assert SealedTOTPDevice.objects.get(pk=mine.pk).key == my_key
    with schema_context(settings.PUBLIC_SCHEMA_NAME):
        assert SealedTOTPDevice.objects.get(pk=theirs.pk).key == their_key


def test_rotation_with_a_wrong_key_is_refused_and_writes_nothing(firm, owner, keys, settings):
    old, new = keys
    device = twofactor.totp_enrolment_start(user=owner)
    before = SealedTOTPDevice.objects.values_list("sealed_key", flat=True).get(pk=device.pk)
    settings.CODEX_ENCRYPTION_KEYS = [new]  # the key that sealed it is missing
    with pytest.raises(CommandError, match="Rotation refused, nothing was re-encrypted.*SealedTOTPDevice"):
        call_command("rotate_encryption_keys")
    assert SealedTOTPDevice.objects.values_list("sealed_key", flat=True).get(pk=device.pk) == before


def test_rotation_is_idempotent(firm, owner, keys, settings, capsys):
    old, new = keys
    twofactor.totp_enrolment_start(user=owner)
    settings.CODEX_ENCRYPTION_KEYS = [new, old]
    call_command("rotate_encryption_keys")
    capsys.readouterr()
    call_command("rotate_encryption_keys")
    assert "re-encrypted 0 value(s)" in capsys.readouterr().out


def test_new_key_option_prints_a_usable_key(capsys):
    call_command("rotate_encryption_keys", "--new-key")
    Fernet(capsys.readouterr().out.strip().encode())


def test_plaintext_totp_devices_are_moved_and_sealed(firm, owner, keys):
    """The data migration accounts.0003 seals django-otp's devices and removes the clear ones."""
    from importlib import import_module

    migration = import_module("tenants.accounts.migrations.0003_move_totp_devices_sealed")
    plain = TOTPDevice.objects.create(user=owner, name="old phone", confirmed=True, drift=1, last_t=42)
    key = plain.key
    migration.move_devices(apps, connection.schema_editor())
    assert not TOTPDevice.objects.filter(user=owner).exists()
    moved = SealedTOTPDevice.objects.get(user=owner, name="old phone")
    assert moved.key == key and moved.confirmed and moved.drift == 1 and moved.last_t == 42
    assert key not in SealedTOTPDevice.objects.values_list("sealed_key", flat=True).get(pk=moved.pk)


# --- webhook signing secrets (decision 0930) ------------------------------------------------------------
HOOK_URL = "http://127.0.0.1:9/hooks"  # never called: these tests only store endpoints


def _endpoint_columns(pk: int) -> dict:
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM webhooks_webhookendpoint WHERE id = %s", [pk])
        names = [c.name for c in cursor.description]
        return dict(zip(names, cursor.fetchone(), strict=True))


def test_webhook_signing_secrets_are_sealed_in_the_database_and_still_sign(firm, owner, keys):
    from webhooks import services
    from webhooks.models import WebhookEndpoint

    endpoint = services.endpoint_create(tenant=firm, url=HOOK_URL, event_types=["contact.created"], actor="t")
    first = endpoint.secret
    endpoint = services.endpoint_rotate_secret(endpoint=endpoint)
    second = endpoint.secret
    assert first.startswith("whsec_") and second.startswith("whsec_") and first != second
    row = _endpoint_columns(endpoint.pk)
    assert "secret" not in row and "previous_secret" not in row  # the clear columns are gone
    assert crypto.is_sealed(row["sealed_secret"]) and crypto.is_sealed(row["sealed_previous_secret"])
    stored = "|".join(str(value) for value in row.values())
    for secret in (first, second):
        assert secret not in stored and secret.removeprefix("whsec_") not in stored
    fresh = WebhookEndpoint.objects.get(pk=endpoint.pk)
    assert fresh.secret == second and fresh.previous_secret == first


def test_webhook_secret_sealed_by_a_removed_key_is_refused_not_used(firm, keys, settings):
    from webhooks import services
    from webhooks.models import WebhookEndpoint

    old, new = keys
    endpoint = services.endpoint_create(tenant=firm, url=HOOK_URL, event_types=["contact.created"], actor="t")
    settings.CODEX_ENCRYPTION_KEYS = [new]
    with pytest.raises(crypto.DecryptionError):
        WebhookEndpoint.objects.get(pk=endpoint.pk).secret  # noqa: B018


def test_rotation_rewraps_webhook_secrets(firm, keys, settings):
    from webhooks import services
    from webhooks.models import WebhookEndpoint

    old, new = keys
    endpoint = services.endpoint_create(tenant=firm, url=HOOK_URL, event_types=["contact.created"], actor="t")
    secret = endpoint.secret
    settings.CODEX_ENCRYPTION_KEYS = [new, old]
    call_command("rotate_encryption_keys")
    settings.CODEX_ENCRYPTION_KEYS = [new]
    assert WebhookEndpoint.objects.get(pk=endpoint.pk).secret == secret


def test_migration_seals_existing_clear_secrets(firm, keys):
    """webhooks.0002 on an endpoint stored before it (clear ``secret`` / ``previous_secret``):
    both are sealed into the new columns, which open to the same values."""
    from importlib import import_module

    from django.db.migrations.loader import MigrationLoader

    migration_module = import_module("webhooks.migrations.0002_seal_signing_secrets")
    loader = MigrationLoader(connection)
    state = loader.project_state(("webhooks", "0001_initial"))
    for operation in migration_module.Migration.operations[:2]:  # the two AddFields
        operation.state_forwards("webhooks", state)
    # The clear columns as 0001 made them, inside this test's transaction (rolled back after).
    with connection.cursor() as cursor:
        cursor.execute(
            "ALTER TABLE webhooks_webhookendpoint ADD COLUMN secret varchar(100) NOT NULL DEFAULT '', "
            "ADD COLUMN previous_secret varchar(100) NOT NULL DEFAULT ''"
        )
    Old = state.apps.get_model("webhooks", "WebhookEndpoint")
    current = Old.objects.create(url="https://hooks.example.com/a", event_types=["contact.created"], secret="whsec_now")
    rotating = Old.objects.create(
        url="https://hooks.example.com/b",
        event_types=["contact.created"],
        secret="whsec_new",
        previous_secret="whsec_old",
    )
    migration_module.seal_secrets(state.apps, connection.schema_editor())
    a, b = _endpoint_columns(current.pk), _endpoint_columns(rotating.pk)
    assert crypto.unseal(a["sealed_secret"]) == "whsec_now" and a["sealed_previous_secret"] == ""
    assert (
        crypto.unseal(b["sealed_secret"]) == "whsec_new" and crypto.unseal(b["sealed_previous_secret"]) == "whsec_old"
    )
    assert "whsec_" not in a["sealed_secret"] + b["sealed_secret"] + b["sealed_previous_secret"]
