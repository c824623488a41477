"""Formerly created the pg_trgm extension. Typo tolerance no longer uses any extension (migration
0008, docs/decisions/0201-crm-search.md); kept, empty, so that databases that applied it keep a
consistent migration history."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("crm", "0001_initial")]

    operations = []
