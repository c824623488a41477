import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("portfolios", "0007_portfolio_figures_and_valuation_day_index"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="LedgerImport",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                (
                    "status",
                    models.CharField(
                        choices=[("importing", "Importing"), ("done", "Imported"), ("refused", "Not imported")],
                        default="importing",
                        max_length=10,
                    ),
                ),
                ("headers", models.JSONField(default=list)),
                (
                    "rows",
                    models.JSONField(default=list, help_text="Emptied when the job ends: the ledger holds them then."),
                ),
                ("report", models.JSONField(blank=True, default=dict, help_text="created and skipped, or the error.")),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("finished_at", models.DateTimeField(blank=True, null=True)),
                (
                    "created_by",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                (
                    "portfolio",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="ledger_imports",
                        to="portfolios.portfolio",
                    ),
                ),
            ],
            options={
                "ordering": ["-created_at", "-pk"],
                "constraints": [
                    models.CheckConstraint(
                        condition=models.Q(("status__in", ["importing", "done", "refused"])),
                        name="ledger_import_status",
                    )
                ],
            },
        ),
    ]
