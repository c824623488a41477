"""Seal webhook signing secrets at rest (decision 0930): new sealed columns, every existing
endpoint's secret (and the previous one, during a rotation's grace period) sealed into them, then
the clear columns dropped, so no signing secret stays readable in the database. Runs in every
firm's schema. A value that cannot be sealed (no CODEX_ENCRYPTION_KEYS) stops the migration and
writes nothing."""

from django.db import migrations

import codex.crypto


def seal_secrets(apps, schema_editor):
    from codex.crypto import seal

    Endpoint = apps.get_model("webhooks", "WebhookEndpoint")
    for endpoint in Endpoint.objects.all().iterator():
        Endpoint.objects.filter(pk=endpoint.pk).update(
            sealed_secret=seal(endpoint.secret),
            sealed_previous_secret=seal(endpoint.previous_secret) if endpoint.previous_secret else "",
        )


def unseal_secrets(apps, schema_editor):
    from codex.crypto import unseal

    Endpoint = apps.get_model("webhooks", "WebhookEndpoint")
    for endpoint in Endpoint.objects.all().iterator():
        Endpoint.objects.filter(pk=endpoint.pk).update(
            secret=unseal(endpoint.sealed_secret),
            previous_secret=unseal(endpoint.sealed_previous_secret) if endpoint.sealed_previous_secret else "",
        )


class Migration(migrations.Migration):
    dependencies = [
        ("webhooks", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="webhookendpoint",
            name="sealed_secret",
            field=codex.crypto.SealedTextField(
                default="", help_text="The signing secret, sealed with CODEX_ENCRYPTION_KEYS."
            ),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="webhookendpoint",
            name="sealed_previous_secret",
            field=codex.crypto.SealedTextField(
                blank=True, default="", help_text="The secret before the last rotation, sealed; empty if none."
            ),
        ),
        migrations.RunPython(seal_secrets, unseal_secrets),
        migrations.RemoveField(model_name="webhookendpoint", name="secret"),
        migrations.RemoveField(model_name="webhookendpoint", name="previous_secret"),
    ]
