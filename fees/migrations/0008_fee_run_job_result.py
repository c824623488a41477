from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("fees", "0007_fee_run_job_heartbeat"),
    ]

    operations = [
        migrations.AddField(
            model_name="feerunjob",
            name="result",
            field=models.JSONField(blank=True, default=dict),
        ),
    ]
