"""Seed plans, an operator and two demo firms (acme, globex). Idempotent: never seeds twice."""

from django.conf import settings
from django.core.management import call_command, get_commands
from django.core.management.base import BaseCommand
from django_tenants.utils import schema_context

from tenants.accounts.models import Role, User
from tenants.models import Tenant
from tenants.services import firm_url, tenant_provision

DEMO_PASSWORD = "codex-demo-2026"  # noqa: S105 - the published demo login, development only
OPERATOR_EMAIL = "operator@codex.local"
DEMO_FIRMS = [
    ("acme", "Acme Wealth Partners"),
    ("globex", "Globex Family Office"),
]


class Command(BaseCommand):
    help = "Seed demo data: plans, operator superuser, firms acme and globex with an owner and an advisor."

    def handle(self, *args, **options):
        call_command("seed_plans", verbosity=options["verbosity"])  # billing's command: tenants imports no billing
        with schema_context(settings.PUBLIC_SCHEMA_NAME):
            if not User.objects.filter(email__iexact=OPERATOR_EMAIL).exists():
                User.objects.create_superuser(OPERATOR_EMAIL, DEMO_PASSWORD)
        for slug, name in DEMO_FIRMS:
            tenant = Tenant.objects.filter(slug=slug).first()
            if tenant is None:
                tenant = tenant_provision(
                    name=name,
                    slug=slug,
                    owner_email=f"owner@{slug}.example",
                    owner_password=DEMO_PASSWORD,
                    plan_code="pro",
                    actor="seed_demo",
                )
            with schema_context(tenant.schema_name):
                if not User.objects.filter(email__iexact=f"advisor@{slug}.example").exists():
                    User.objects.create_user(
                        f"advisor@{slug}.example",
                        DEMO_PASSWORD,
                        role=Role.ADVISOR,
                        first_name="Alex",
                        last_name="Advisor",
                    )
        # Domain apps add their demo data through their own seed commands when present.
        available = get_commands()
        for command in ("seed_market", "seed_portfolios", "seed_crm", "seed_billing"):
            if command in available:
                call_command(command, verbosity=options["verbosity"])
        self.stdout.write(self.style.SUCCESS("demo data ready"))
        self.print_logins()

    def print_logins(self):
        port = f":{settings.CODEX_PUBLIC_PORT}" if settings.CODEX_PUBLIC_PORT else ""
        base = f"{settings.CODEX_URL_SCHEME}://{settings.CODEX_BASE_DOMAIN}{port}"
        lines = [
            "",
            "Codex is seeded. Open:",
            f"  Operators (admin):  {base}/admin/   {OPERATOR_EMAIL} / {DEMO_PASSWORD}",
            f"  Sign-up:            {base}/signup/",
        ]
        for slug, _ in DEMO_FIRMS:
            lines.append(
                f"  Firm {slug + ':':8}       {firm_url(slug)}   "
                f"owner@{slug}.example, advisor@{slug}.example / {DEMO_PASSWORD}"
            )
        lines.append(f"  API docs:           {firm_url('acme', '/api/v1/docs/')}")
        self.stdout.write("\n".join(lines) + "\n")
