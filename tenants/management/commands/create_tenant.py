from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from tenants.services import firm_url, tenant_provision


class Command(BaseCommand):
    help = "Provision a firm: schema cloned from the template, domain, owner, trial subscription."

    def add_arguments(self, parser):
        parser.add_argument("--name", required=True)
        parser.add_argument("--slug", required=True)
        parser.add_argument("--owner-email", required=True)
        parser.add_argument("--owner-password", default=None, help="Omit to let the owner set one by reset.")
        parser.add_argument("--plan", default="starter")

    def handle(self, *args, **o):
        try:
            tenant = tenant_provision(
                name=o["name"],
                slug=o["slug"],
                owner_email=o["owner_email"],
                owner_password=o["owner_password"],
                plan_code=o["plan"],
                actor="manage.py create_tenant",
            )
        except ValidationError as exc:
            raise CommandError("; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())) from exc
        self.stdout.write(self.style.SUCCESS(f"Created {tenant.name}: {firm_url(tenant.slug)}"))
