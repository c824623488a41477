import django.db.models.deletion
from django.db import migrations, models


def fill_figures(apps, schema_editor):
    """The figures of what is stored already (docs/decisions/1000), by the service that keeps
    them; a schema with no stored valuations (a new firm, the template) has nothing to fill."""
    if not apps.get_model("portfolios", "Valuation").objects.exists():
        return
    from portfolios.valuation_services import portfolio_figures_rebuild

    portfolio_figures_rebuild()


class Migration(migrations.Migration):
    dependencies = [
        ("portfolios", "0006_merge_firm_valuations_and_custodian"),
    ]

    operations = [
        migrations.CreateModel(
            name="PortfolioFigures",
            fields=[
                (
                    "portfolio",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        primary_key=True,
                        related_name="figures",
                        serialize=False,
                        to="portfolios.portfolio",
                    ),
                ),
                ("as_of", models.DateField(help_text="The day of the figures: the portfolio's last stored close.")),
                ("value", models.DecimalField(decimal_places=40, max_digits=60)),
                ("ytd", models.DecimalField(blank=True, decimal_places=40, max_digits=60, null=True)),
                ("since_inception", models.DecimalField(blank=True, decimal_places=40, max_digits=60, null=True)),
            ],
            options={
                "indexes": [models.Index(fields=["-value", "portfolio"], name="portfolio_figures_value_idx")],
            },
        ),
        migrations.AddIndex(
            model_name="valuation",
            index=models.Index(fields=["date", "portfolio"], name="valuation_day_idx"),
        ),
        migrations.RunPython(fill_figures, migrations.RunPython.noop),
    ]
