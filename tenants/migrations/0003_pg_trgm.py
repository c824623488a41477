"""pg_trgm (PostgreSQL contrib) in the public schema, where every firm's search path finds its
operators and the ``gin_trgm_ops`` operator class: CRM search's typo step (crm migration 0011,
docs/decisions/0201 and 0800). A shared app's migration, so it runs once, in public: created from a
firm's migration it would land in that firm's schema, out of the others' reach."""

from django.contrib.postgres.operations import TrigramExtension
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("tenants", "0002_template_snapshot")]

    operations = [TrigramExtension()]
