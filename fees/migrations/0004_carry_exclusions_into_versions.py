"""Exclusions become dated (decision 1200): a schedule's undated exclusions applied to every run
so far, so each of its versions carries them over; the schedule's own fields go in 0005."""

from django.db import migrations


def carry_over(apps, schema_editor):
    FeeSchedule = apps.get_model("fees", "FeeSchedule")
    FeeScheduleVersion = apps.get_model("fees", "FeeScheduleVersion")
    for schedule in FeeSchedule.objects.prefetch_related("excluded_instruments"):
        instruments = list(schedule.excluded_instruments.all())
        for version in FeeScheduleVersion.objects.filter(schedule=schedule):
            version.exclude_cash = schedule.exclude_cash
            version.excluded_asset_classes = list(schedule.excluded_asset_classes or [])
            version.save(update_fields=["exclude_cash", "excluded_asset_classes"])
            version.excluded_instruments.set(instruments)


def carry_back(apps, schema_editor):
    """Undo: the latest version's exclusions go back onto the schedule (the only undated place)."""
    FeeSchedule = apps.get_model("fees", "FeeSchedule")
    FeeScheduleVersion = apps.get_model("fees", "FeeScheduleVersion")
    for schedule in FeeSchedule.objects.all():
        latest = FeeScheduleVersion.objects.filter(schedule=schedule).order_by("-effective_from").first()
        if latest is None:
            continue
        schedule.exclude_cash = latest.exclude_cash
        schedule.excluded_asset_classes = list(latest.excluded_asset_classes or [])
        schedule.save(update_fields=["exclude_cash", "excluded_asset_classes"])
        schedule.excluded_instruments.set(list(latest.excluded_instruments.all()))


class Migration(migrations.Migration):
    dependencies = [("fees", "0003_exclusions_on_versions")]

    operations = [migrations.RunPython(carry_over, carry_back)]
