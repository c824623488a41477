from pathlib import Path

from django.core.management.base import BaseCommand

from portal.openapi import portal_schema_json


class Command(BaseCommand):
    help = "Write the client portal's OpenAPI slice (the frontend's client is generated from it)."

    def add_arguments(self, parser):
        parser.add_argument("--file", default="frontend/src/api/openapi.json")

    def handle(self, *args, file, **options):
        Path(file).parent.mkdir(parents=True, exist_ok=True)
        Path(file).write_text(portal_schema_json())
        self.stdout.write(f"wrote {file}")
