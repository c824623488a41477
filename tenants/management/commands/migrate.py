"""``manage.py migrate``: django-tenants' command (every schema), with the migration autodetector
that ``makemigrations`` uses. django-pgtrigger extends Django's autodetector so migrations carry
triggers (change history, decision 0802); Django's check ``commands.E001`` requires ``migrate``
and ``makemigrations`` to agree, and django-tenants' command names Django's own."""

from django.core.management.commands import makemigrations
from django_tenants.management.commands.migrate_schemas import MigrateSchemasCommand


class Command(MigrateSchemasCommand):
    autodetector = makemigrations.Command.autodetector
