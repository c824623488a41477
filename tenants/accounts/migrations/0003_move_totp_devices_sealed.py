"""Move django-otp's TOTP devices (key in clear) to SealedTOTPDevice (key sealed), then delete
them, so no TOTP secret stays readable in the database. Runs in the public schema and in every
firm's schema. Signed-in users verified with a moved device enter a code again once (the device's
persistent id changes)."""

from django.db import migrations

FIELDS = [
    "user_id",
    "name",
    "confirmed",
    "throttling_failure_timestamp",
    "throttling_failure_count",
    "created_at",
    "last_used_at",
    "step",
    "t0",
    "digits",
    "tolerance",
    "drift",
    "last_t",
]


def move_devices(apps, schema_editor):
    from codex.crypto import seal

    Plain = apps.get_model("otp_totp", "TOTPDevice")
    Sealed = apps.get_model("accounts", "SealedTOTPDevice")
    for device in Plain.objects.all().iterator():
        Sealed.objects.create(sealed_key=seal(device.key), **{name: getattr(device, name) for name in FIELDS})
    Plain.objects.all().delete()


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0002_sealed_totp_device"),
        ("otp_totp", "0003_add_timestamps"),
    ]

    operations = [migrations.RunPython(move_devices, migrations.RunPython.noop)]
