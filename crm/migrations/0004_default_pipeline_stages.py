"""Seed the default pipeline in every firm schema (and in the template that new firms are cloned from)."""

from django.db import migrations

DEFAULT_STAGES = [
    ("Lead", 10, "open"),
    ("Qualified", 25, "open"),
    ("Proposal", 50, "open"),
    ("Negotiation", 75, "open"),
    ("Won", 100, "won"),
    ("Lost", 0, "lost"),
]


def seed(apps, schema_editor):
    PipelineStage = apps.get_model("crm", "PipelineStage")
    if PipelineStage.objects.exists():
        return
    PipelineStage.objects.bulk_create(
        PipelineStage(name=name, position=i, probability=p, kind=kind)
        for i, (name, p, kind) in enumerate(DEFAULT_STAGES, start=1)
    )


class Migration(migrations.Migration):
    dependencies = [("crm", "0003_entities_pipeline_activities_newsletter")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
