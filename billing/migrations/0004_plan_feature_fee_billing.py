"""Client fee billing (issue 21) joins the Pro and Enterprise plans that exist already (plans_seed
never overwrites operators' plans, so the new feature is added here, once)."""

from django.db import migrations

PLANS = ("pro", "enterprise")


def add_feature(apps, schema_editor):
    Plan = apps.get_model("billing", "Plan")
    for plan in Plan.objects.filter(code__in=PLANS):
        if "fee_billing" not in (plan.features or []):
            plan.features = [*(plan.features or []), "fee_billing"]
            plan.save(update_fields=["features"])


def remove_feature(apps, schema_editor):
    Plan = apps.get_model("billing", "Plan")
    for plan in Plan.objects.filter(code__in=PLANS):
        plan.features = [f for f in (plan.features or []) if f != "fee_billing"]
        plan.save(update_fields=["features"])


class Migration(migrations.Migration):
    dependencies = [("billing", "0003_idempotency_per_credential")]
    operations = [migrations.RunPython(add_feature, remove_feature)]
