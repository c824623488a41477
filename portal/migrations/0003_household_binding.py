import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("fees", "0001_fee_business"),
        ("portal", "0002_report_settings"),
    ]

    operations = [
        migrations.AddField(
            model_name="clientaccess",
            name="household",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="client_users",
                to="fees.billinggroup",
            ),
        ),
        migrations.AddField(
            model_name="clientinvitation",
            name="household",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="client_invitations",
                to="fees.billinggroup",
            ),
        ),
    ]
