"""Each delivery remembers the task queued for its next attempt (id and time), so the sweep can
tell a task waiting behind a backlog from a lost one. Two nullable/defaulted columns: backward
compatible (expand only); existing pending deliveries start with no task recorded, so the first
sweep queues them once."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("webhooks", "0002_seal_signing_secrets"),
    ]

    operations = [
        migrations.AddField(
            model_name="webhookdelivery",
            name="task_id",
            field=models.CharField(blank=True, default="", max_length=64),
        ),
        migrations.AddField(
            model_name="webhookdelivery",
            name="queued_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
    ]
