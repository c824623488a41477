from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("crm", "0015_list_order_and_search_indexes"),
    ]

    operations = [
        migrations.AlterField(
            model_name="importjob",
            name="status",
            field=models.CharField(
                choices=[
                    ("pending", "Waiting for review"),
                    ("importing", "Importing"),
                    ("committed", "Imported"),
                    ("cancelled", "Cancelled"),
                ],
                default="pending",
                max_length=12,
            ),
        ),
    ]
