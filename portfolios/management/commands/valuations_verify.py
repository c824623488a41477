"""``manage.py valuations_verify [--firm SLUG]``: recompute every portfolio's valuations from
scratch and report any difference with the store to the cent. Exit status 1 when any differs."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django_tenants.utils import get_public_schema_name, schema_context, tenant_context

from portfolios.models import Portfolio
from portfolios.valuation_services import firm_valuations_verify, valuations_verify
from tenants.models import Tenant

SHOWN = 10  # differences printed per portfolio


class Command(BaseCommand):
    help = "Recompute stored valuations from scratch and report differences to the cent (exit 1 if any)."

    def add_arguments(self, parser):
        parser.add_argument("--firm", help="Only this firm (its slug).")

    def handle(self, *args, firm=None, **options):
        with schema_context(get_public_schema_name()):
            firms = Tenant.objects.exclude(schema_name=get_public_schema_name()).order_by("slug")
            if firm:
                firms = firms.filter(slug=firm)
            firms = list(firms)
        if firm and not firms:
            raise CommandError(f"No firm with slug {firm!r}.")
        checked = differing = firms_differing = 0
        for tenant in firms:
            with tenant_context(tenant):
                for portfolio in Portfolio.objects.order_by("pk").select_related("valuation_state"):
                    checked += 1
                    diffs = valuations_verify(portfolio=portfolio)
                    if not diffs:
                        continue
                    differing += 1
                    state = getattr(portfolio, "valuation_state", None)
                    pending = " (a rebuild is pending)" if state is not None and state.updating else ""
                    self.stdout.write(
                        f"{tenant.slug} portfolio {portfolio.pk} {portfolio.name}: {len(diffs)} difference(s){pending}"
                    )
                    for line in diffs[:SHOWN]:
                        self.stdout.write(f"  {line}")
                    if len(diffs) > SHOWN:
                        self.stdout.write(f"  ... and {len(diffs) - SHOWN} more")
                firm_diffs = firm_valuations_verify()
                if firm_diffs:
                    firms_differing += 1
                    self.stdout.write(f"{tenant.slug} firm totals: {len(firm_diffs)} difference(s)")
                    for line in firm_diffs[:SHOWN]:
                        self.stdout.write(f"  {line}")
                    if len(firm_diffs) > SHOWN:
                        self.stdout.write(f"  ... and {len(firm_diffs) - SHOWN} more")
        summary = (
            f"{checked} portfolio(s) in {len(firms)} firm(s) checked, {differing} differ; "
            f"the firm totals differ in {firms_differing} firm(s)."
        )
        if differing or firms_differing:
            raise CommandError(summary)
        self.stdout.write(summary)
